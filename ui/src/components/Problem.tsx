// An error in words: what failed, and the backend's sentence on why.
export function Problem({ title, message }: { title: string; message: string }) {
  return (
    <div className="error" role="alert">
      <strong>{title}</strong>
      <p>{message}</p>
    </div>
  );
}

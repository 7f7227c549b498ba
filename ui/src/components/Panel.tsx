// The frame every view shares: its title, what it is for and its actions; a line while its
// data loads, the problem in words when it could not be read; what was just done.
import type { ReactNode } from "react";
import type { Load } from "../live";
import { Problem } from "./Problem";

/** The view's title (`id` labels its section), the lede, and its actions (Refresh, if given). */
export function PanelHeader({
  id,
  title,
  lede,
  onRefresh,
  children,
}: {
  id: string;
  title: ReactNode;
  lede: ReactNode;
  onRefresh?: () => void;
  /** More actions, before Refresh. */
  children?: ReactNode;
}) {
  return (
    <header className="panel-header row">
      <div>
        <h1 id={id}>{title}</h1>
        <p className="lede">{lede}</p>
      </div>
      <div className="toolbar">
        {children}
        {onRefresh !== undefined && (
          <button type="button" className="button" onClick={onRefresh}>
            Refresh
          </button>
        )}
      </div>
    </header>
  );
}

/** Nothing once `load` is ready; before that, `loading` ("Reading memory…") or the problem. */
export function NotReady<T>({ load, loading, failed }: { load: Load<T>; loading: string; failed: string }) {
  if (load.state === "loading") return <p className="muted">{loading}</p>;
  if (load.state === "failed") return <Problem title={failed} message={load.message} />;
  return null;
}

/** What the person just did, said once ("Accepted: …"). */
export function Done({ message }: { message: string | null }) {
  if (message === null) return null;
  return (
    <p className="done" role="status">
      {message}
    </p>
  );
}

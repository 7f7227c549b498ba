// The Airlock mark (a shield with a hatch), drawn like icons/icon.png so it needs no asset.
export function Glyph() {
  return (
    <svg className="glyph" viewBox="0 0 64 64" aria-hidden="true" focusable="false">
      <rect x="2" y="2" width="60" height="60" rx="14" fill="#1d3557" />
      <path
        d="M32 9 L49 15.5 V30 C49 42 41 49.5 32 53 C23 49.5 15 42 15 30 V15.5 Z"
        fill="#f1f5f9"
      />
      <circle cx="32" cy="31" r="10.5" fill="#1d3557" />
      <circle cx="32" cy="31" r="8" fill="#f1f5f9" />
      <rect x="31.2" y="23" width="1.6" height="16" fill="#1d3557" />
      <circle cx="32" cy="31" r="2.2" fill="#1d3557" />
    </svg>
  );
}

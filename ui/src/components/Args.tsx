// A tool call's arguments for people: read as a list of fields, edited field by field, and
// compared (proposed against edited) before an approver confirms a change.
import { useId } from "react";

export type Args = Record<string, unknown>;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** One value in words: text as it is, numbers plainly, yes/no, lists joined. */
export function valueText(value: unknown): string {
  if (value === null || value === undefined) return "none";
  if (typeof value === "string") return value === "" ? "(empty)" : value;
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (Array.isArray(value) && value.every((item) => !isRecord(item) && !Array.isArray(item))) {
    return value.length === 0 ? "(none)" : value.map(valueText).join(", ");
  }
  return JSON.stringify(value);
}

/** A value as `valueText` says it, with the cents hint: "25000 (250.00)". */
export function valueWords(key: string, value: unknown): string {
  const hint = centsHint(key, value);
  return hint === null ? valueText(value) : `${valueText(value)} (${hint})`;
}

/** `25000` under a key ending in `_cents` also reads as `250.00`. */
function centsHint(key: string, value: unknown): string | null {
  if (!key.endsWith("_cents") || typeof value !== "number" || !Number.isInteger(value)) return null;
  const sign = value < 0 ? "-" : "";
  const abs = Math.abs(value);
  return `${sign}${String(Math.floor(abs / 100))}.${String(abs % 100).padStart(2, "0")}`;
}

function Value({ name, value }: { name: string; value: unknown }) {
  if (isRecord(value) && Object.keys(value).length > 0) {
    return <ArgsList args={value} nested />;
  }
  const hint = centsHint(name, value);
  return (
    <>
      <span className={value === null || value === "" ? "muted" : undefined}>{valueText(value)}</span>
      {hint !== null && <span className="muted"> ({hint})</span>}
    </>
  );
}

/** The arguments as a list of fields, nested objects indented. */
export function ArgsList({ args, nested = false }: { args: Args; nested?: boolean }) {
  const entries = Object.entries(args);
  if (entries.length === 0) return <p className="muted">No arguments.</p>;
  return (
    <dl className={nested ? "args nested" : "args"}>
      {entries.map(([key, value]) => (
        <div key={key}>
          <dt>{key}</dt>
          <dd>
            <Value name={key} value={value} />
          </dd>
        </div>
      ))}
    </dl>
  );
}

// ---- editing ----

/** How a field is edited, from the type of the proposed value. */
type FieldKind = "text" | "number" | "boolean" | "json";

function kindOf(value: unknown): FieldKind {
  if (typeof value === "string") return "text";
  if (typeof value === "number") return "number";
  if (typeof value === "boolean") return "boolean";
  return "json";
}

/** The editor's text for each field. */
export type Draft = Record<string, string>;

export function draftOf(args: Args): Draft {
  const draft: Draft = {};
  for (const [key, value] of Object.entries(args)) {
    const kind = kindOf(value);
    draft[key] =
      kind === "text" ? (value as string) : kind === "json" ? JSON.stringify(value, null, 2) : String(value);
  }
  return draft;
}

/** The edited arguments, or the fields that do not read as their type. */
export function parseDraft(
  original: Args,
  draft: Draft,
): { args: Args; problems: null } | { args: null; problems: Record<string, string> } {
  const args: Args = {};
  const problems: Record<string, string> = {};
  for (const [key, proposed] of Object.entries(original)) {
    const text = draft[key] ?? "";
    switch (kindOf(proposed)) {
      case "text":
        args[key] = text;
        break;
      case "number": {
        const number = Number(text.trim());
        if (text.trim() === "" || !Number.isFinite(number)) problems[key] = "Write a number.";
        else args[key] = number;
        break;
      }
      case "boolean":
        args[key] = text === "true";
        break;
      case "json":
        try {
          args[key] = JSON.parse(text) as unknown;
        } catch {
          problems[key] = "Write a JSON value (e.g. [\"a\", \"b\"] or {\"key\": 1}).";
        }
        break;
    }
  }
  return Object.keys(problems).length === 0 ? { args, problems: null } : { args: null, problems };
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The names of the fields whose value differs. */
export function changedKeys(before: Args, after: Args): string[] {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
  return keys.filter((key) => !same(before[key], after[key]));
}

export function ArgsEditor({
  original,
  draft,
  problems,
  onChange,
}: {
  original: Args;
  draft: Draft;
  problems: Record<string, string>;
  onChange: (draft: Draft) => void;
}) {
  const id = useId();
  return (
    <div className="arg-editor">
      {Object.entries(original).map(([key, proposed], index) => {
        const field = `${id}-${String(index)}`;
        const kind = kindOf(proposed);
        const text = draft[key] ?? "";
        const problem = problems[key];
        const set = (value: string) => {
          onChange({ ...draft, [key]: value });
        };
        const changed = !same(parseDraft({ [key]: proposed }, { [key]: text }).args?.[key], proposed);
        return (
          <div key={key} className={changed ? "arg-field changed" : "arg-field"}>
            <label htmlFor={field}>{key}</label>
            {kind === "boolean" ? (
              <input
                id={field}
                type="checkbox"
                checked={text === "true"}
                onChange={(event) => {
                  set(event.target.checked ? "true" : "false");
                }}
              />
            ) : kind === "json" ? (
              <textarea
                id={field}
                className="mono"
                rows={Math.min(8, text.split("\n").length)}
                value={text}
                aria-invalid={problem !== undefined}
                onChange={(event) => {
                  set(event.target.value);
                }}
              />
            ) : (
              <input
                id={field}
                type="text"
                inputMode={kind === "number" ? "decimal" : undefined}
                value={text}
                aria-invalid={problem !== undefined}
                onChange={(event) => {
                  set(event.target.value);
                }}
              />
            )}
            <span className="arg-was">
              {changed ? (
                <>
                  was <Value name={key} value={proposed} />
                </>
              ) : null}
            </span>
            {problem !== undefined && <span className="arg-problem">{problem}</span>}
          </div>
        );
      })}
    </div>
  );
}

/** Proposed against edited, field by field; changed fields first and marked. */
/** `afterLabel` heads the new values: "Approve with" while deciding, "Approved with" after. */
export function ArgsDiff({
  before,
  after,
  afterLabel = "Approve with",
}: {
  before: Args;
  after: Args;
  afterLabel?: string;
}) {
  const changed = changedKeys(before, after);
  const unchanged = Object.keys(before).filter((key) => !changed.includes(key));
  return (
    <table className="diff">
      <caption className="sr-only">Proposed and edited arguments</caption>
      <thead>
        <tr>
          <th scope="col">Field</th>
          <th scope="col">Proposed</th>
          <th scope="col">{afterLabel}</th>
        </tr>
      </thead>
      <tbody>
        {changed.map((key) => (
          <tr key={key} className="changed">
            <th scope="row">{key}</th>
            <td className="before">
              {key in before ? <Value name={key} value={before[key]} /> : <span className="muted">not given</span>}
            </td>
            <td className="after">
              {key in after ? <Value name={key} value={after[key]} /> : <span className="muted">removed</span>}
            </td>
          </tr>
        ))}
        {unchanged.map((key) => (
          <tr key={key} className="same">
            <th scope="row">{key}</th>
            <td colSpan={2}>
              <Value name={key} value={before[key]} /> <span className="muted">· unchanged</span>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

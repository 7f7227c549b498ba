// What a task's model turns used and cost: per model, then in total. A model whose price
// is unknown is said to be so, never counted as free.
import type { ModelCost } from "../bindings/ModelCost";

/** Dollars as the CLI prints them: four decimals under a dollar, two above. */
export function usd(amount: number): string {
  return `$${amount.toFixed(amount < 1 ? 4 : 2)}`;
}

function tokens(n: number): string {
  return n.toLocaleString("en-US");
}

function modelWords(spend: ModelCost): string {
  const turns = `${String(spend.turns)} ${spend.turns === 1 ? "turn" : "turns"}`;
  if (spend.counted_turns === 0) return `${turns}, tokens not counted`;
  const cache =
    spend.cache_write_tokens + spend.cache_read_tokens > 0
      ? `, cache ${tokens(spend.cache_write_tokens)} written / ${tokens(spend.cache_read_tokens)} read`
      : "";
  return `${turns}, ${tokens(spend.input_tokens)} in / ${tokens(spend.output_tokens)} out tokens${cache}`;
}

/** The task's cost in one line: a sum, a lower bound when some model has no price, or none. */
export function totalWords(spend: readonly ModelCost[]): string {
  const counted = spend.filter((s) => s.counted_turns > 0);
  if (counted.length === 0) return "No tokens counted: no cost to tell.";
  const priced = counted.filter((s) => s.usd !== null);
  const sum = priced.reduce((total, s) => total + (s.usd ?? 0), 0);
  const unknown = counted.filter((s) => s.usd === null).map((s) => s.model);
  if (unknown.length === 0) return `Total ${usd(sum)}`;
  if (priced.length === 0) return `Cost unknown (no price for ${unknown.join(", ")})`;
  return `At least ${usd(sum)}; cost unknown for ${unknown.join(", ")}`;
}

export function Spend({ spend }: { spend: readonly ModelCost[] }) {
  return (
    <div className="card">
      <h2>Cost</h2>
      {spend.length === 0 ? (
        <p className="muted">No model has run for this task.</p>
      ) : (
        <>
          <p className="strong">{totalWords(spend)}</p>
          <ul className="plain spend">
            {spend.map((s) => (
              <li key={s.model}>
                <code>{s.model}</code>
                <span className="muted">{modelWords(s)}</span>
                <span className="spend-cost">
                  {s.counted_turns === 0 ? "" : s.usd === null ? "cost unknown (no price for this model)" : usd(s.usd)}
                </span>
              </li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}

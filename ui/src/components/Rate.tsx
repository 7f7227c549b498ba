// Rating a task that has ended, as `airlock rate` does: 1 (poor) to 5 (excellent) and an
// optional comment. A low rating that says why proposes a lesson for the workflow.
import { useState } from "react";
import { useAction } from "../action";
import { rateTask } from "../api";
import type { RatingView } from "../bindings/RatingView";
import type { TaskStatus } from "../bindings/TaskStatus";
import { canCancel } from "./Cancel";
import { Problem } from "./Problem";
import { When } from "./When";

const SCORES = [
  { value: 1, label: "Poor" },
  { value: 2, label: "Weak" },
  { value: 3, label: "Fair" },
  { value: 4, label: "Good" },
  { value: 5, label: "Excellent" },
] as const;

function stars(rating: number): string {
  return "★".repeat(rating) + "☆".repeat(Math.max(0, 5 - rating));
}

export function Rate({
  taskId,
  status,
  ratings,
  now,
  onRated,
}: {
  taskId: string;
  status: TaskStatus;
  ratings: readonly RatingView[];
  now: number;
  onRated: () => void;
}) {
  const [score, setScore] = useState<number | null>(null);
  const [comment, setComment] = useState("");
  const { busy, failure, run } = useAction();
  const ended = !canCancel(status);

  return (
    <div className="card">
      <h2>Rating</h2>
      {ratings.length > 0 && (
        <ul className="plain ratings">
          {ratings.map((r) => (
            <li key={r.id}>
              <span className="stars" aria-label={`${String(r.rating)} out of 5`}>
                {stars(r.rating)}
              </span>{" "}
              <span className="muted">
                by {r.rated_by} · <When at={r.rated_at} now={now} />
              </span>
              {r.comment !== null && <p>“{r.comment}”</p>}
            </li>
          ))}
        </ul>
      )}
      {!ended ? (
        <p className="muted">You can rate this task once it has ended.</p>
      ) : (
        <form
          className="rate-form"
          aria-label="Rate this task"
          onSubmit={(event) => {
            event.preventDefault();
            if (score === null) return;
            const said = comment.trim();
            run(
              () => rateTask(taskId, score, said === "" ? null : said),
              () => {
                setScore(null);
                setComment("");
                onRated();
              },
            );
          }}
        >
          <fieldset className="scores">
            <legend>{ratings.length === 0 ? "How did it go?" : "Rate it again"}</legend>
            {SCORES.map((s) => (
              <label key={s.value} className="score">
                <input
                  type="radio"
                  name={`rating-${taskId}`}
                  value={s.value}
                  checked={score === s.value}
                  onChange={() => {
                    setScore(s.value);
                  }}
                />
                <span>
                  {s.value} · {s.label}
                </span>
              </label>
            ))}
          </fieldset>
          <label htmlFor={`rating-comment-${taskId}`}>
            Comment <span className="muted">optional; a low rating that says why proposes a lesson</span>
          </label>
          <textarea
            id={`rating-comment-${taskId}`}
            rows={2}
            value={comment}
            onChange={(event) => {
              setComment(event.target.value);
            }}
          />
          {failure !== null && <Problem title="The rating was not saved." message={failure} />}
          <div className="actions">
            <button type="submit" className="button primary" disabled={busy || score === null}>
              Save rating
            </button>
          </div>
        </form>
      )}
    </div>
  );
}

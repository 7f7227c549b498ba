// A task named by the start of its id, opening it in Task detail: "task 3f1c2a9e" inside a
// sentence, or "Open task 3f1c2a9e" at the end of a card's actions.
import type { ReactNode } from "react";
import { shortId } from "../format";

export function TaskLink({
  id,
  onOpenTask,
  action = false,
  children,
}: {
  id: string;
  onOpenTask: (id: string) => void;
  /** A card's last action ("Open task …", pushed to the right) rather than words in a line. */
  action?: boolean;
  /** Said after the id, inside the link (", step 5"). */
  children?: ReactNode;
}) {
  return (
    <button
      type="button"
      className={action ? "button link push" : "button link inline"}
      title={`Open task ${id}`}
      onClick={() => {
        onOpenTask(id);
      }}
    >
      {action ? "Open task" : "task"} {shortId(id)}
      {children}
    </button>
  );
}

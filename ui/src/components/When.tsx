// A moment as people say it ("4 min ago"), with the date and time in full on hover: the one
// way every view shows when something happened.
import { ago, formatExact } from "../format";

export function When({ at, now, className }: { at: number; now: number; className?: string }) {
  return (
    <time className={className} dateTime={new Date(at).toISOString()} title={formatExact(at)}>
      {ago(at, now)}
    </time>
  );
}

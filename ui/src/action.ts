// A request a person starts from a form or a button (save, revoke, rate...): busy while it
// runs, so it is not sent twice, and its failure in words afterwards.
import { useCallback, useState } from "react";
import { describeError } from "./api";

export type Action = {
  busy: boolean;
  /** Why the last request failed, in words; null before and after a success. */
  failure: string | null;
  /** Sends `request`; `done` gets its answer, `failed` (if given) runs after a failure. */
  run: <T>(request: () => Promise<T>, done: (answer: T) => void, failed?: () => void) => void;
  /** Forgets the last failure (the person changed something). */
  clear: () => void;
};

export function useAction(): Action {
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<string | null>(null);
  const run = useCallback(
    <T>(request: () => Promise<T>, done: (answer: T) => void, failed?: () => void) => {
      setBusy(true);
      setFailure(null);
      request().then(
        (answer) => {
          setBusy(false);
          done(answer);
        },
        (error: unknown) => {
          setBusy(false);
          setFailure(describeError(error));
          failed?.();
        },
      );
    },
    [],
  );
  const clear = useCallback(() => {
    setFailure(null);
  }, []);
  return { busy, failure, run, clear };
}

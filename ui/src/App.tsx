// The app frame: a sidebar of sections and the selected section's panel. Navigation is
// local state; everything shown comes from the backend.
import { useEffect, useRef, useState } from "react";
import { appInfo, listApprovals, onOpenInbox } from "./api";
import { Approvals, type InboxTarget } from "./components/Approvals";
import { Glyph } from "./components/Glyph";
import { History } from "./components/History";
import { Lessons } from "./components/Lessons";
import { Memory } from "./components/Memory";
import { Metrics } from "./components/Metrics";
import { Overview } from "./components/Overview";
import { Policy } from "./components/Policy";
import { Servers } from "./components/Servers";
import { Start } from "./components/Start";
import { TaskDetail } from "./components/TaskDetail";
import { Tasks } from "./components/Tasks";
import { useLive } from "./live";

type View =
  | { section: "approvals" }
  | { section: "tasks" }
  | { section: "task"; id: string; callId?: string }
  | { section: "history" }
  | { section: "start" }
  | { section: "memory" }
  | { section: "lessons" }
  | { section: "metrics" }
  | { section: "policy" }
  | { section: "servers" }
  | { section: "overview" };

type Section = Exclude<View["section"], "task">;

const SECTIONS: readonly { id: Section; label: string }[] = [
  { id: "approvals", label: "Approvals" },
  { id: "tasks", label: "Tasks" },
  { id: "history", label: "History" },
  { id: "start", label: "Start" },
  { id: "memory", label: "Memory" },
  { id: "lessons", label: "Lessons" },
  { id: "metrics", label: "Metrics" },
  { id: "policy", label: "Policy" },
  { id: "servers", label: "Servers" },
  { id: "overview", label: "Overview" },
];

/** The clock the views use to say "5 min ago" and "3 h left"; ticks every 30 s. */
function useNow(): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = window.setInterval(() => {
      setNow(Date.now());
    }, 30_000);
    return () => {
      window.clearInterval(timer);
    };
  }, []);
  return now;
}

function Workspace() {
  const [name, setName] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    appInfo().then(
      (info) => {
        if (live && info.workspace_path !== null) {
          setName(info.workspace_path.split(/[\\/]/).filter(Boolean).pop() ?? null);
        }
      },
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, []);
  if (name === null) return null;
  return (
    <p className="sidebar-foot">
      Workspace <strong>{name}</strong>
    </p>
  );
}

export function App() {
  const [view, setView] = useState<View>({ section: "approvals" });
  const [pending] = useLive(listApprovals, (change) => change.status !== "running");
  const now = useNow();
  // A call in doubt of a cancelled task can be answered but blocks nothing: not counted.
  const pendingCount =
    pending.state === "ready"
      ? pending.data.approvals.length +
        pending.data.in_doubt.filter((call) => call.task_status === "in_doubt").length
      : 0;
  const current: Section = view.section === "task" ? "tasks" : view.section;
  const [target, setTarget] = useState<InboxTarget | null>(null);
  const opened = useRef(0);

  // A notification (or the tray) asks for the inbox, maybe on one approval.
  useEffect(() => {
    let stop: (() => void) | null = null;
    let closed = false;
    void onOpenInbox((open) => {
      opened.current += 1;
      setView({ section: "approvals" });
      setTarget({ ...open, nonce: opened.current });
    }).then((unlisten) => {
      if (closed) unlisten();
      else stop = unlisten;
    });
    return () => {
      closed = true;
      stop?.();
    };
  }, []);

  const openTask = (id: string) => {
    setView({ section: "task", id });
  };

  return (
    <div className="frame">
      <aside className="sidebar">
        <div className="brand">
          <Glyph />
          <span>Airlock</span>
        </div>
        <nav aria-label="Sections">
          <ul>
            {SECTIONS.map((section) => (
              <li key={section.id}>
                <button
                  type="button"
                  className="nav-item"
                  aria-current={section.id === current ? "page" : undefined}
                  onClick={() => {
                    setTarget(null);
                    setView({ section: section.id });
                  }}
                >
                  <span>{section.label}</span>
                  {section.id === "approvals" && pendingCount > 0 && (
                    <span className="badge" aria-label={`${String(pendingCount)} waiting`}>
                      {pendingCount}
                    </span>
                  )}
                </button>
              </li>
            ))}
          </ul>
        </nav>
        <Workspace />
      </aside>
      <main className="content">
        {view.section === "approvals" && (
          <Approvals
            now={now}
            target={target}
            onOpenTask={openTask}
            onShowTasks={() => {
              setView({ section: "tasks" });
            }}
          />
        )}
        {view.section === "tasks" && (
          <Tasks
            now={now}
            onOpen={openTask}
            onStart={() => {
              setView({ section: "start" });
            }}
          />
        )}
        {view.section === "task" && (
          <TaskDetail
            key={`${view.id}/${view.callId ?? ""}`}
            id={view.id}
            now={now}
            callId={view.callId}
            onBack={() => {
              setView({ section: "tasks" });
            }}
            onShowApprovals={(open) => {
              opened.current += 1;
              setView({ section: "approvals" });
              setTarget({ ...open, nonce: opened.current });
            }}
          />
        )}
        {view.section === "history" && (
          <History
            onOpenCall={(id, callId) => {
              setView({ section: "task", id, callId });
            }}
          />
        )}
        {view.section === "start" && <Start onStarted={openTask} />}
        {view.section === "memory" && <Memory now={now} onOpenTask={openTask} />}
        {view.section === "lessons" && <Lessons now={now} onOpenTask={openTask} />}
        {view.section === "metrics" && <Metrics />}
        {view.section === "policy" && <Policy now={now} />}
        {view.section === "servers" && <Servers />}
        {view.section === "overview" && <Overview />}
      </main>
    </div>
  );
}

// The app frame: a sidebar of sections and the selected section's panel.
// Only sections that work are listed; each new one adds an entry to `sections`.
import { useState, type ReactNode } from "react";
import { Glyph } from "./components/Glyph";
import { Overview } from "./components/Overview";

interface Section {
  id: string;
  label: string;
  panel: () => ReactNode;
}

const sections: readonly Section[] = [
  { id: "overview", label: "Overview", panel: () => <Overview /> },
];

export function App() {
  const [selected, setSelected] = useState(sections[0]?.id);
  const current = sections.find((section) => section.id === selected) ?? sections[0];

  return (
    <div className="frame">
      <aside className="sidebar">
        <div className="brand">
          <Glyph />
          <span>Airlock</span>
        </div>
        <nav aria-label="Sections">
          <ul>
            {sections.map((section) => (
              <li key={section.id}>
                <button
                  type="button"
                  className="nav-item"
                  aria-current={section.id === current?.id ? "page" : undefined}
                  onClick={() => {
                    setSelected(section.id);
                  }}
                >
                  {section.label}
                </button>
              </li>
            ))}
          </ul>
        </nav>
      </aside>
      <main className="content">{current?.panel()}</main>
    </div>
  );
}

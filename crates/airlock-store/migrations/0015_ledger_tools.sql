-- The tools the ledger has rows for: the history's "Tool" filter offers them. Reading
-- them off the ledger itself scans it (60-235 ms at 100,000 calls), because no index
-- starts with `tool`, and one would be one more B-tree every call writes. Here a call
-- of a tool already listed only probes this one-page table; a new tool adds a row.
CREATE TABLE ledger_tools (tool TEXT PRIMARY KEY) WITHOUT ROWID;

INSERT INTO ledger_tools (tool) SELECT DISTINCT tool FROM tool_calls;

CREATE TRIGGER tool_calls_tools AFTER INSERT ON tool_calls
WHEN NOT EXISTS (SELECT 1 FROM ledger_tools WHERE tool = NEW.tool)
BEGIN
    INSERT INTO ledger_tools (tool) VALUES (NEW.tool);
END;

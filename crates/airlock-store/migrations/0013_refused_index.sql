-- The history's filters on refused calls (migration 0012), through an index of the refused
-- rows alone: "rejected by a person" or "denied by a rule" is a range of it, already in
-- the history's newest-first order, and its count reads the range instead of the ledger
-- (100,000 calls: 20-130 ms without it, under 1 ms with it). Refusals are rare, so most
-- ledger writes never touch it; a refused row adds one entry.
CREATE INDEX tool_calls_refused ON tool_calls (refused_by, intent_at, id)
    WHERE refused_by IS NOT NULL;

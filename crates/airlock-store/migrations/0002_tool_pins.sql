-- Tool definitions pinned by hash when first used. When a server reports a different
-- definition, it is noted here and the tool is held until a person accepts the change.
CREATE TABLE tool_pins (
    tool                TEXT    PRIMARY KEY,
    hash                TEXT    NOT NULL,
    definition          TEXT    NOT NULL,
    pinned_at           BIGINT  NOT NULL,
    pinned_by           TEXT    NOT NULL,
    changed_hash        TEXT,
    changed_definition  TEXT,
    changed_at          BIGINT
);

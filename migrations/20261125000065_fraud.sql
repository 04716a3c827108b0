-- Fraud detection (issue 6, item 7). The high-risk ranges are an audited table, not events:
-- they are configuration an admin edits, not facts about money or calls; each flag copies the
-- range and label it matched into its evidence, so history stays explainable after an edit
-- (docs/decisions/0009-fraud-rules.md).
CREATE TABLE fraud_risk_ranges (
    prefix   text PRIMARY KEY CHECK (prefix ~ '^[0-9]{1,15}$'),
    label    text NOT NULL CHECK (length(label) BETWEEN 1 AND 200),
    source   text NOT NULL,
    added_by uuid,
    added_at timestamptz NOT NULL DEFAULT now()
);

-- Every change to the list: who, when, what. Never updated or deleted.
CREATE TABLE fraud_risk_range_audit (
    id     bigserial PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT now(),
    actor  uuid,
    action text NOT NULL CHECK (action IN ('seed', 'add', 'remove')),
    prefix text NOT NULL,
    label  text NOT NULL
);

-- The fraud process manager's place in the log (commit order, as the runner's checkpoints).
CREATE TABLE fraud_process (
    name            text PRIMARY KEY,
    tx_id           bigint NOT NULL,
    global_position bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

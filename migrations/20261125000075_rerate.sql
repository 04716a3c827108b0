-- Re-rating after rate corrections (issue 11, docs/rate-corrections.md): the process manager's
-- own bookkeeping. The ledger's truth is in the events (`CallReRated`, `CreditAdjusted`, each
-- idempotent by key); these tables only say how far a run got and what it did.

-- One run per correction: where it stands, so a run that dies resumes after its last page.
CREATE TABLE rerate_runs
(
    correction        bigint PRIMARY KEY CHECK (correction >= 1),
    status            text        NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    cursor_placed_at  timestamptz,
    cursor_call_id    uuid,
    candidates        bigint      NOT NULL DEFAULT 0,
    examined          bigint      NOT NULL DEFAULT 0,
    message           text,
    started_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz
);

-- Each call a correction re-rated, written once per page after its events: the run's summary
-- (calls re-rated, accounts credited, total refunded) is read from here.
CREATE TABLE rerate_calls
(
    correction            bigint NOT NULL,
    call_id               uuid   NOT NULL,
    account_id            uuid   NOT NULL,
    refund_micros         bigint NOT NULL CHECK (refund_micros >= 0),
    our_cost_delta_micros bigint NOT NULL,
    credited              boolean NOT NULL,
    PRIMARY KEY (correction, call_id)
);

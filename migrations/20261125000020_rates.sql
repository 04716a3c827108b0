-- Rate engine (issue 5): files waiting to be imported, import progress, and quotes.
-- The rate decks themselves are events; their read model is the `rate_table` projection.

-- A deck file as uploaded, kept until its import finishes (bounded by the upload limit).
CREATE TABLE rate_uploads (
    id          uuid PRIMARY KEY,
    file_name   text        NOT NULL,
    sha256      text        NOT NULL,
    size_bytes  bigint      NOT NULL,
    content     bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One import run: what the durable job is doing, for progress bars and the admin's report.
CREATE TABLE rate_imports (
    id              uuid PRIMARY KEY,
    upload_id       uuid REFERENCES rate_uploads (id) ON DELETE SET NULL,
    deck_id         uuid        NOT NULL,
    file_name       text        NOT NULL,
    format          text,
    currency        text        NOT NULL,
    effective_from  timestamptz NOT NULL,
    actor           uuid        NOT NULL,
    status          text        NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'imported', 'duplicate', 'failed')),
    bytes_total     bigint      NOT NULL,
    bytes_done      bigint      NOT NULL DEFAULT 0,
    rows_done       bigint      NOT NULL DEFAULT 0,
    error_count     bigint      NOT NULL DEFAULT 0,
    message         text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rate_imports_deck ON rate_imports (deck_id);

-- Quotes shown to callers, kept until they expire (a recurring job deletes old ones). The
-- number is kept only as a keyed hash: enough to check that a call dials what was quoted.
CREATE TABLE quotes (
    id           uuid PRIMARY KEY,
    account_id   uuid        NOT NULL,
    number_hash  bytea       NOT NULL,
    quote        jsonb       NOT NULL,
    issued_at    timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX quotes_expiry ON quotes (expires_at);

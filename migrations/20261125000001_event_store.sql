-- The event log. Columns up to `metadata` are postgres-es 0.5's own layout, so its repository
-- reads this table unchanged; the rest are ours (ARCHITECTURE.md, "Postgres is the event store").
CREATE TABLE events
(
    aggregate_type  text                         NOT NULL,
    aggregate_id    text                         NOT NULL,
    sequence        bigint CHECK (sequence >= 1) NOT NULL,
    event_type      text                         NOT NULL,
    event_version   text                         NOT NULL,
    payload         json                         NOT NULL,
    metadata        json                         NOT NULL,
    -- Total order of appends (not of commits: see tx_id).
    global_position bigserial                    NOT NULL,
    -- The writing transaction: runners read below pg_snapshot_xmin and order by (tx_id, global_position).
    tx_id           xid8                         NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at     timestamptz                  NOT NULL DEFAULT clock_timestamp(),
    -- Stamped by the command service in the aggregate's queue; never earlier than the stream's last event.
    occurred_at     timestamptz                  NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE UNIQUE INDEX events_global_position ON events (global_position);
CREATE INDEX events_commit_order ON events (tx_id, global_position);

-- Events are never updated or deleted: a correction is a new event.
CREATE FUNCTION events_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are immutable: append a correcting event instead of %', TG_OP;
END;
$$;
CREATE TRIGGER events_immutable BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_immutable();

-- Idempotency keys, written in the same statement as the events they produced. A repeat of a
-- key returns the events in [first_sequence, last_sequence] and appends nothing.
CREATE TABLE idempotency_keys
(
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    key            text        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    first_sequence bigint      NOT NULL,
    last_sequence  bigint      NOT NULL CHECK (last_sequence >= first_sequence),
    recorded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (aggregate_type, aggregate_id, key)
);

-- Our own snapshots (cqrs-es's snapshot modes are off: they apply events twice). One row per
-- aggregate, replaced only by a later sequence. A snapshot is a cache: deleting it loses nothing.
CREATE TABLE aggregate_snapshots
(
    aggregate_type   text        NOT NULL,
    aggregate_id     text        NOT NULL,
    last_sequence    bigint      NOT NULL CHECK (last_sequence >= 1),
    last_occurred_at timestamptz NOT NULL,
    payload          json        NOT NULL,
    taken_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (aggregate_type, aggregate_id)
);

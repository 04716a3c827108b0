-- Metering (issue 6, docs/metering-protocol.md): per-account keys that seal destinations, the
-- media node registry, and the `jti`s of media requests seen within their expiry.

-- Same shape as the auth branch's 20261125000010_identity.sql, so either order works.
-- Deleting a row shreds every destination sealed with it (crypto-shredding).
CREATE TABLE IF NOT EXISTS account_keys
(
    account_id uuid PRIMARY KEY,
    key        bytea NOT NULL CHECK (length(key) = 32)
);

-- `register` doubles as heartbeat: a node silent for 3 x heartbeat_seconds is not picked.
CREATE TABLE media_nodes
(
    node_id        text PRIMARY KEY CHECK (node_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    control_url    text        NOT NULL,
    public_ws_url  text        NOT NULL,
    active_calls   integer     NOT NULL,
    max_calls      integer     NOT NULL,
    cpu_per_mille  integer     NOT NULL,
    registered_at  timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL
);

-- A media request's `jti` is refused when seen again before its `exp` (replay).
CREATE TABLE metering_jtis
(
    jti        uuid PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX metering_jtis_expiry ON metering_jtis (expires_at);

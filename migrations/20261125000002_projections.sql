-- Statement lines trace each posting to its event; an id per event makes that trace stable.
ALTER TABLE events ADD COLUMN event_id uuid NOT NULL DEFAULT gen_random_uuid();

-- Where each version of each projection has read up to: the (tx_id, global_position) pair of
-- the last event applied, never the position alone (a lower xid can commit a higher position later).
CREATE TABLE projection_checkpoints
(
    projection      text        NOT NULL,
    version         int         NOT NULL CHECK (version >= 1),
    tx_id           xid8        NOT NULL DEFAULT '0',
    global_position bigint      NOT NULL DEFAULT 0,
    events_applied  bigint      NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, version)
);

-- Which version of a projection readers see (through views named after the projection's
-- tables), and which one a blue/green rebuild is building.
CREATE TABLE projection_versions
(
    projection       text PRIMARY KEY,
    live_version     int         NOT NULL,
    building_version int,
    switched_at      timestamptz NOT NULL DEFAULT now()
);

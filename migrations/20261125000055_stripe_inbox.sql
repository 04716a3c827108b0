-- Stripe webhooks (issue 8): every verified event, raw, unique by Stripe's event id. The row is
-- written, with its processing job (queue `stripe`, kind `stripe.webhook`, idempotency key =
-- event id), in the transaction that answers Stripe; a repeat delivery finds the row and changes
-- nothing. The raw payload holds personal data: it is purged (set NULL) after the retention
-- period once the event is processed or ignored; the ids stay, and so does the ledger.
CREATE TABLE stripe_inbox
(
    event_id       text        PRIMARY KEY CHECK (event_id ~ '^[A-Za-z0-9_-]{1,255}$'),
    event_type     text        NOT NULL CHECK (length(event_type) BETWEEN 1 AND 128),
    livemode       boolean     NOT NULL,
    api_version    text        CHECK (length(api_version) <= 64),
    -- Stripe's `created` (its clock, not ours).
    stripe_created timestamptz NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now(),
    -- The body exactly as signed; NULL once purged.
    payload        text,
    payload_bytes  int         NOT NULL CHECK (payload_bytes >= 0),
    status         text        NOT NULL DEFAULT 'received'
                               CHECK (status IN ('received', 'processed', 'ignored')),
    -- What processing did, in a line (no personal data).
    outcome        text        CHECK (length(outcome) <= 1000),
    payment_intent text        CHECK (length(payment_intent) <= 255),
    processed_at   timestamptz,
    purged_at      timestamptz,
    CHECK ((payload IS NULL) = (purged_at IS NOT NULL)),
    CHECK ((status = 'received') = (processed_at IS NULL))
);

-- The purge walks finished rows that still hold a payload, oldest first.
CREATE INDEX stripe_inbox_purgeable ON stripe_inbox (received_at)
    WHERE payload IS NOT NULL AND status <> 'received';
CREATE INDEX stripe_inbox_payment ON stripe_inbox (payment_intent) WHERE payment_intent IS NOT NULL;

-- The development mail catcher's mailbox (api/src/mail/catcher.rs): every message it accepts,
-- parsed once on arrival. Development and tests only: production never writes here. The
-- catcher keeps the newest rows and deletes the rest, and refuses messages over its size limit
-- before they reach this table; the CHECKs repeat those bounds.
CREATE TABLE dev_mailbox (
    id           bigserial PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    mail_from    text        NOT NULL,
    rcpt_to      text[]      NOT NULL,
    subject      text        NOT NULL DEFAULT '',
    text_body    text,
    html_body    text,
    raw          bytea       NOT NULL,
    CHECK (octet_length(raw) <= 10485760),
    CHECK (cardinality(rcpt_to) BETWEEN 1 AND 100)
);

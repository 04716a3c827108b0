-- Identity (issue 7): people, their credentials and sessions. Personal data lives here and
-- never in events; events name an account by its id, and a user's id IS its AccountId.
-- Deleting a person clears these rows' personal columns and the account key
-- (crypto-shredding); the ledger stays whole under the pseudonymous id.

CREATE TABLE users (
    id                 uuid PRIMARY KEY,
    -- Lower-cased at the edge; NULL once the person is erased.
    email              text UNIQUE CHECK (email = lower(email)),
    password_hash      text,
    role               text NOT NULL DEFAULT 'customer' CHECK (role IN ('customer', 'admin')),
    confirmed_at       timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    sign_in_count      integer NOT NULL DEFAULT 0,
    current_sign_in_at timestamptz,
    last_sign_in_at    timestamptz,
    current_sign_in_ip inet,
    last_sign_in_ip    inet,
    failed_attempts    integer NOT NULL DEFAULT 0,
    locked_at          timestamptz,
    -- TOTP: the raw secret (never logged, never in an event); enabled once confirmed by a code.
    totp_secret        bytea,
    totp_enabled_at    timestamptz,
    -- The last 30-second step a code was accepted for: a code is never accepted twice.
    totp_last_step     bigint,
    -- Set once the ledger Account is opened (after confirmation); a sign-in retries while NULL.
    account_opened_at  timestamptz,
    deleted_at         timestamptz
);

-- Single-use tokens sent by email; only their SHA-256 is stored.
CREATE TABLE user_tokens (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text NOT NULL CHECK (purpose IN ('confirm', 'reset', 'unlock')),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX user_tokens_user ON user_tokens (user_id, purpose);

-- Server-side sessions; the cookie holds a random id, the table its SHA-256.
CREATE TABLE sessions (
    id_hash         bytea PRIMARY KEY,
    user_id         uuid REFERENCES users (id) ON DELETE CASCADE,
    -- Password accepted, second factor outstanding.
    pending_user_id uuid REFERENCES users (id) ON DELETE CASCADE,
    csrf_token      text NOT NULL,
    remember        boolean NOT NULL DEFAULT false,
    flash_kind      text,
    flash_message   text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE sign_in_events (
    id       bigserial PRIMARY KEY,
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    at       timestamptz NOT NULL DEFAULT now(),
    ip       inet,
    outcome  text NOT NULL CHECK (outcome IN ('success', 'bad_password', 'locked', 'bad_code', 'unconfirmed'))
);
CREATE INDEX sign_in_events_user ON sign_in_events (user_id, at DESC);

CREATE TABLE recovery_codes (
    code_hash bytea PRIMARY KEY,
    user_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    used_at   timestamptz
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

-- Per-account encryption keys, kept outside the event log: deleting a row shreds what was
-- encrypted with it (destination numbers in CallPlaced).
CREATE TABLE account_keys (
    account_id uuid PRIMARY KEY,
    key        bytea NOT NULL CHECK (length(key) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

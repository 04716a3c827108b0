-- Durable jobs (ARCHITECTURE.md, "Projections, jobs and process managers"): at-least-once,
-- claimed with FOR UPDATE SKIP LOCKED and a lease in one short statement, run outside any
-- transaction. `lease_token` fences a claim: finishing a job must present the token of the
-- claim that still holds it, so a worker whose lease expired and was reclaimed cannot finish it.
CREATE TABLE jobs
(
    id              bigserial PRIMARY KEY,
    queue           text        NOT NULL CHECK (queue ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    kind            text        NOT NULL CHECK (kind ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    payload         jsonb       NOT NULL DEFAULT '{}',
    idempotency_key text        CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    status          text        NOT NULL DEFAULT 'queued'
                                CHECK (status IN ('queued', 'running', 'done', 'dead')),
    -- Not claimed before this instant (scheduled jobs, and the next retry after a backoff).
    run_at          timestamptz NOT NULL DEFAULT now(),
    -- Claims so far, this one included while running; a shutdown's hand-back does not count.
    attempts        int         NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts    int         NOT NULL CHECK (max_attempts BETWEEN 1 AND 100),
    lease_until     timestamptz,
    lease_token     uuid,
    -- The worker holding the job, or the last one that did.
    worker          text        CHECK (length(worker) BETWEEN 1 AND 128),
    last_error      text        CHECK (length(last_error) <= 4000),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    CHECK ((status = 'running') = (lease_until IS NOT NULL AND lease_token IS NOT NULL)),
    CHECK (status <> 'running' OR worker IS NOT NULL),
    CHECK ((status IN ('done', 'dead')) = (finished_at IS NOT NULL))
);

-- A repeat of a key returns the first job and changes nothing (kept until the job is pruned).
CREATE UNIQUE INDEX jobs_idempotency ON jobs (queue, kind, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- Claiming: the oldest due job of a queue.
CREATE INDEX jobs_claimable ON jobs (queue, run_at, id) WHERE status = 'queued';
-- Reclaiming: running jobs whose lease expired (their worker died).
CREATE INDEX jobs_leases ON jobs (queue, lease_until) WHERE status = 'running';
-- The dead-letter list, newest first, and pruning of finished jobs.
CREATE INDEX jobs_dead ON jobs (finished_at DESC, id DESC) WHERE status = 'dead';
CREATE INDEX jobs_done ON jobs (finished_at) WHERE status = 'done';

-- Recurring jobs: each due period enqueues one job keyed `name@<next_run_at>`, so several
-- processes ticking at once still enqueue it once; missed periods collapse into one run.
CREATE TABLE recurring_jobs
(
    name             text        PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    queue            text        NOT NULL CHECK (queue ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    kind             text        NOT NULL CHECK (kind ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    payload          jsonb       NOT NULL DEFAULT '{}',
    every_seconds    int         NOT NULL CHECK (every_seconds BETWEEN 1 AND 31536000),
    max_attempts     int         NOT NULL CHECK (max_attempts BETWEEN 1 AND 100),
    next_run_at      timestamptz NOT NULL,
    last_enqueued_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX recurring_jobs_due ON recurring_jobs (next_run_at);

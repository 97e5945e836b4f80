-- gmfuse schema for PostgreSQL: the tables of migrations/sqlite/ with native types (UUID ids,
-- JSONB documents, TIMESTAMPTZ times, BOOLEAN flags). Times are written by the database's
-- clock (now()), so leases mean the same thing to every process whatever its own clock says.

-- Uploaded models: one row per distinct content (sha256), the bytes live in the blob store.
CREATE TABLE models (
    id           UUID PRIMARY KEY,
    name         TEXT NOT NULL,
    sha256       TEXT NOT NULL UNIQUE,
    size_bytes   BIGINT NOT NULL,
    architecture TEXT,
    tensors      JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);

-- Custom architectures (the presets are built in and never stored).
CREATE TABLE architectures (
    name       TEXT PRIMARY KEY,
    spec       JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- Uploaded evaluation sets (the built-in mnist-test is not stored). `blobs` is a JSON array of
-- blob hashes.
CREATE TABLE datasets (
    id         UUID PRIMARY KEY,
    name       TEXT NOT NULL,
    format     TEXT NOT NULL CHECK (format IN ('idx', 'safetensors')),
    blobs      JSONB NOT NULL,
    samples    BIGINT NOT NULL,
    shape      JSONB NOT NULL,
    size_bytes BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX datasets_by_blob ON datasets USING GIN (blobs);

-- The job queue. `attempt` counts claims and is the fencing token: every write from a worker
-- names the attempt it holds and is ignored once another attempt has started.
CREATE TABLE jobs (
    id                UUID PRIMARY KEY,
    status            TEXT NOT NULL
                      CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    attempt           INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL,
    lease_owner       TEXT,
    lease_expires_at  TIMESTAMPTZ,
    cancel_requested  BOOLEAN NOT NULL DEFAULT FALSE,
    progress_stage    TEXT,
    progress_fraction DOUBLE PRECISION,
    timings           JSONB NOT NULL DEFAULT '[]',
    spec              JSONB NOT NULL,
    report            JSONB,
    error_code        TEXT,
    error_message     TEXT,
    created_at        TIMESTAMPTZ NOT NULL,
    started_at        TIMESTAMPTZ,
    finished_at       TIMESTAMPTZ,
    updated_at        TIMESTAMPTZ NOT NULL
);
-- The claim reads the oldest queued job; the rescue reads running jobs by lease expiry.
CREATE INDEX jobs_queued ON jobs (created_at, id) WHERE status = 'queued';
CREATE INDEX jobs_by_lease ON jobs (lease_expires_at) WHERE status = 'running';

-- Blobs a job reads (its input models and dataset): they outlive a deleted model row.
CREATE TABLE job_blobs (
    job_id UUID NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (job_id, sha256)
);
CREATE INDEX job_blobs_by_sha ON job_blobs (sha256);

-- One row per claim: which worker ran which attempt and how it ended.
CREATE TABLE job_attempts (
    job_id      UUID NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    worker      TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    outcome     TEXT,
    PRIMARY KEY (job_id, attempt)
);

-- Fused weights computed on demand, cached as blobs.
CREATE TABLE job_outputs (
    job_id     UUID NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    method     TEXT NOT NULL,
    proportion DOUBLE PRECISION NOT NULL,
    sha256     TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (job_id, method, proportion)
);
CREATE INDEX job_outputs_by_sha ON job_outputs (sha256);

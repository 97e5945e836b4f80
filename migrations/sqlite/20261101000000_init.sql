-- gmfuse schema for SQLite. Times are Unix milliseconds (INTEGER); JSON lives in TEXT columns.
-- migrations/postgres/ will hold the same tables with UUID, JSONB and TIMESTAMPTZ.

-- Uploaded models: one row per distinct content (sha256), the bytes live in the blob store.
CREATE TABLE models (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    sha256       TEXT NOT NULL UNIQUE,
    size_bytes   INTEGER NOT NULL,
    architecture TEXT,
    tensors      TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);

-- Custom architectures (the presets are built in and never stored).
CREATE TABLE architectures (
    name       TEXT PRIMARY KEY,
    spec       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- Uploaded evaluation sets (the built-in mnist-test is not stored).
CREATE TABLE datasets (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    format     TEXT NOT NULL CHECK (format IN ('idx', 'safetensors')),
    blobs      TEXT NOT NULL,
    samples    INTEGER NOT NULL,
    shape      TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

-- The job queue. `attempt` counts claims and is the fencing token: every write from a worker
-- names the attempt it holds and is ignored once another attempt has started.
CREATE TABLE jobs (
    id                TEXT PRIMARY KEY,
    status            TEXT NOT NULL
                      CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    attempt           INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL,
    lease_owner       TEXT,
    lease_expires_at  INTEGER,
    cancel_requested  INTEGER NOT NULL DEFAULT 0,
    progress_stage    TEXT,
    progress_fraction REAL,
    timings           TEXT NOT NULL DEFAULT '[]',
    spec              TEXT NOT NULL,
    report            TEXT,
    error_code        TEXT,
    error_message     TEXT,
    created_at        INTEGER NOT NULL,
    started_at        INTEGER,
    finished_at       INTEGER,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX jobs_by_status ON jobs (status, created_at);
CREATE INDEX jobs_by_lease ON jobs (status, lease_expires_at);

-- Blobs a job reads (its input models and dataset): they outlive a deleted model row.
CREATE TABLE job_blobs (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (job_id, sha256)
);
CREATE INDEX job_blobs_by_sha ON job_blobs (sha256);

-- One row per claim: which worker ran which attempt and how it ended.
CREATE TABLE job_attempts (
    job_id      TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    worker      TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    outcome     TEXT,
    PRIMARY KEY (job_id, attempt)
);

-- Fused weights computed on demand, cached as blobs.
CREATE TABLE job_outputs (
    job_id     TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    method     TEXT NOT NULL,
    proportion REAL NOT NULL,
    sha256     TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (job_id, method, proportion)
);

-- Tenants (issue 7): every model, custom architecture, dataset and job belongs to one tenant;
-- rows from before belong to `default`. A model is unique per (tenant, sha256) and an
-- architecture name per tenant, so SQLite rebuilds those two tables (nothing references them).

CREATE TABLE models_new (
    id           TEXT PRIMARY KEY,
    tenant       TEXT NOT NULL DEFAULT 'default',
    name         TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    size_bytes   INTEGER NOT NULL,
    architecture TEXT,
    tensors      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (tenant, sha256)
);
INSERT INTO models_new (id, name, sha256, size_bytes, architecture, tensors, created_at)
    SELECT id, name, sha256, size_bytes, architecture, tensors, created_at FROM models;
DROP TABLE models;
ALTER TABLE models_new RENAME TO models;
CREATE INDEX models_by_sha ON models (sha256);
CREATE INDEX models_by_tenant ON models (tenant, created_at, id);

CREATE TABLE architectures_new (
    tenant     TEXT NOT NULL DEFAULT 'default',
    name       TEXT NOT NULL,
    spec       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, name)
);
INSERT INTO architectures_new (name, spec, created_at)
    SELECT name, spec, created_at FROM architectures;
DROP TABLE architectures;
ALTER TABLE architectures_new RENAME TO architectures;

ALTER TABLE datasets ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
CREATE INDEX datasets_by_tenant ON datasets (tenant, created_at, id);
ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
CREATE INDEX jobs_by_tenant ON jobs (tenant, id);

-- API keys: only the sha256 of the secret is kept; `prefix` (the first characters of the key)
-- lets people tell keys apart in `gmfuse keys list`.
CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    tenant        TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);

-- Tenants (issue 7): every model, custom architecture, dataset and job belongs to one tenant;
-- rows from before belong to `default`. A model is unique per (tenant, sha256) and an
-- architecture name per tenant.

ALTER TABLE models ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE models DROP CONSTRAINT models_sha256_key;
ALTER TABLE models ADD CONSTRAINT models_tenant_sha256_key UNIQUE (tenant, sha256);
CREATE INDEX models_by_sha ON models (sha256);
CREATE INDEX models_by_tenant ON models (tenant, created_at, id);

ALTER TABLE architectures ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE architectures DROP CONSTRAINT architectures_pkey;
ALTER TABLE architectures ADD PRIMARY KEY (tenant, name);

ALTER TABLE datasets ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
CREATE INDEX datasets_by_tenant ON datasets (tenant, created_at, id);
ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
CREATE INDEX jobs_by_tenant ON jobs (tenant, id);

-- API keys: only the sha256 of the secret is kept; `prefix` (the first characters of the key)
-- lets people tell keys apart in `gmfuse keys list`.
CREATE TABLE api_keys (
    id            UUID PRIMARY KEY,
    tenant        TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL UNIQUE,
    created_at    TIMESTAMPTZ NOT NULL,
    revoked_at    TIMESTAMPTZ
);

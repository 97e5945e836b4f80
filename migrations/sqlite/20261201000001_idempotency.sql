-- Idempotency keys (issue 7): the first response to a POST with an `Idempotency-Key`, kept per
-- (tenant, route, key) for the configured retention. `status` is NULL while the first request
-- is still being served.
CREATE TABLE idempotency_keys (
    tenant       TEXT NOT NULL,
    route        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       INTEGER,
    location     TEXT,
    body         TEXT,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant, route, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

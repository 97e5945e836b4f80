# gmfuse: one image for the API (`serve`) and the job workers (`worker`).
#
#   docker build -t gmfuse .
#   docker run --rm -p 8080:8080 -v gmfuse-data:/var/lib/gmfuse gmfuse
#
# Static checks (no Docker engine needed): scripts/check-docker.sh

# ---- build ---------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS builder
WORKDIR /build

# Dependencies first, in their own layer: build them against a dummy crate so that editing the
# sources does not recompile the ~400 dependencies. The dummy manifest drops [[bench]],
# [[example]] and [[test]] tables, whose files are not here yet.
COPY Cargo.toml Cargo.lock ./
COPY crates/gmfuse-engine/Cargo.toml crates/gmfuse-engine/
RUN awk '/^\[/ { skip = /^\[\[(bench|example|test)\]\]/ } !skip' Cargo.toml > Cargo.deps.toml \
    && mv Cargo.deps.toml Cargo.toml \
    && mkdir -p src crates/gmfuse-engine/src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs crates/gmfuse-engine/src/lib.rs \
    && cargo build --release --locked --bin gmfuse \
    && rm -rf src crates/gmfuse-engine/src

# The whole context (see .dockerignore): sources, assets/ (embedded font, MNIST, demo models),
# migrations/ (embedded by sqlx::migrate!) and any bench/example/test files the manifest names.
COPY . .
# COPY keeps the context's mtimes, which may be older than the dummy build: touch the crate roots
# so cargo rebuilds gmfuse and gmfuse-engine themselves. The demo folder is optional; make sure it exists for the copy below.
RUN touch src/main.rs src/lib.rs crates/gmfuse-engine/src/lib.rs \
    && cargo build --release --locked --bin gmfuse \
    && mkdir -p assets/demo

# ---- run -----------------------------------------------------------------------------------
FROM debian:bookworm-slim

# ca-certificates: TLS to PostgreSQL / S3 endpoints. Nothing else (no curl: see HEALTHCHECK).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 gmfuse \
    && useradd --system --uid 10001 --gid gmfuse --home-dir /var/lib/gmfuse \
       --shell /usr/sbin/nologin gmfuse \
    && mkdir -p /var/lib/gmfuse \
    && chown gmfuse:gmfuse /var/lib/gmfuse

COPY --from=builder /build/target/release/gmfuse /usr/local/bin/gmfuse
# The demo models are read at start from GMFUSE_DEMO_DIR (skipped when the folder is empty).
COPY --from=builder /build/assets/demo /usr/local/share/gmfuse/demo

ENV GMFUSE_ADDR=0.0.0.0:8080 \
    GMFUSE_DATA_DIR=/var/lib/gmfuse \
    GMFUSE_DEMO_DIR=/usr/local/share/gmfuse/demo

WORKDIR /var/lib/gmfuse
USER 10001:10001
EXPOSE 8080

# `gmfuse healthcheck` GETs /healthz on GMFUSE_ADDR and exits 0 (healthy) or 1.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["gmfuse", "healthcheck"]

ENTRYPOINT ["gmfuse"]
CMD ["serve"]

//! Integration tests of the gmfuse service over real HTTP: each test starts the service on
//! port 0 with a fresh data directory (or the real binary, for the restart and scale-out
//! tests) and talks to it with reqwest. Tests that touch the database run twice, on SQLite and
//! on PostgreSQL, each in a database of its own (see `backend`). Tests that need trained
//! models use the demo models (`assets/demo`) or the seed models, and say SKIPPED when neither
//! is there.

mod backend;
mod bounds;
mod calibration;
mod capacity;
mod corpus;
mod datasets;
mod disk;
mod fixtures;
mod fuzz;
mod graphs;
mod head;
mod helpers;
mod idempotency;
mod lifecycle;
mod malformed;
mod many;
mod metrics;
mod models;
mod onnx;
mod onnx_external;
mod openapi;
mod ops;
mod paging;
mod queue;
mod quotas;
mod races;
mod repair;
mod restart;
mod retention;
mod s3;
mod scaleout;
mod script;
mod solvers;
mod stored;
mod submit;
mod tenants;
mod ui;
mod walkthrough;

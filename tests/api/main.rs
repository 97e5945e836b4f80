//! Integration tests of the gmfuse service over real HTTP: each test starts the service on
//! port 0 with a fresh data directory and SQLite file (or the real binary, for the restart
//! test) and talks to it with reqwest. Tests that need trained models use the demo models
//! (`assets/demo`) or the seed models, and say SKIPPED when neither is there.

mod datasets;
mod fixtures;
mod helpers;
mod lifecycle;
mod models;
mod openapi;
mod ops;
mod restart;
mod s3;
mod script;
mod submit;
mod walkthrough;

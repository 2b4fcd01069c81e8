//! servebench: a thread-per-core load generator for LLM inference servers.
//!
//! Data flow (see docs/ARCHITECTURE.md): CLI → [`plan`] → [`engine`] shards → records →
//! [`report`]. The wire protocol ([`proto`]) is pure: byte slices in, events out.

pub mod backend;
pub mod bench;
pub mod calibrate;
pub mod cli;
pub mod clock;
pub mod demo;
pub mod engine;
/// The fuzz targets' checks, shared by `fuzz/` and `tests/fuzz_replay.rs`.
#[doc(hidden)]
pub mod fuzzing;
pub mod mock;
pub mod multihost;
pub mod plan;
pub mod procstat;
pub mod proto;
pub mod record;
pub mod report;
pub mod secrets;
pub mod stats;
pub mod sweep;
pub mod tokenizer;
pub mod workload;

//! Integration-test harness for nthlayer-host.
//!
//! Everything here drives *real* processes on loopback ports:
//! * [`core::Core`] — the Python `nthlayer-core` 4.0.1 HTTP API with a throw-away SQLite store;
//! * [`core_proxy::CoreProxy`] — a loopback proxy in front of it that answers 500 or 400 on cue;
//! * [`etcd::EtcdCluster`] — real etcd members (1 or 3) on loopback, for the HA suites;
//! * [`prometheus::Prometheus`] — Debian's Prometheus 2.42, optionally backfilled with
//!   `promtool tsdb create-blocks-from openmetrics`, scraping an in-process
//!   [`exporter::Exporter`];
//! * [`llm_fake::FakeLlm`] — loopback Anthropic / OpenAI-compatible providers for the `llm` import;
//! * [`tempo_fake::FakeTempo`] — loopback Grafana Tempo (query_range, search) answering from recordings;
//! * [`host::HostProcess`] — the `nthlayer-host` binary under test, and
//!   [`host::ReferenceWorkers`] — the Python `nthlayer-workers` 3.0.3 it replaces;
//! * [`scenario`] — the canonical observe scenario of runtime-observe-measure.md §8;
//! * [`parity`] — record normalisation and field-by-field diffs;
//! * [`wait`] — polling with timeouts (use these instead of sleeps).
//!
//! All helpers are synchronous. Child processes are killed on Drop and, when the dropping
//! thread is panicking, the tail of their log is printed to stderr.

/// Test components and built-in modules by name (generated: a typo does not compile).
pub use nthlayer_test_paths::{components, modules, Component, Module};

pub mod core;
pub mod core_proxy;
pub mod etcd;
pub mod exporter;
pub mod host;
pub mod llm_fake;
pub mod measure_scenario;
#[cfg(feature = "otel")]
pub mod otlp;
pub mod parity;
pub mod prometheus;
pub mod scenario;
pub mod tempo_fake;
pub mod util;
pub mod wait;

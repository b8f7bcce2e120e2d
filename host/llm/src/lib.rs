//! Structured LLM calls for nthlayer-host.
//!
//! Wasm modules never see a provider, a key or a URL: they hand the host a prompt and a JSON
//! Schema, and this crate picks the provider, enforces the operator's grant and budgets, talks
//! the provider's wire format, validates the answer (re-asking on failure) and reports usage.
//! It is plain async Rust so the import glue in `nthlayer-host` stays a thin translation layer.

mod anthropic;
mod budget;
mod client;
mod config;
mod conversation;
mod error;
mod exchange;
mod http;
mod metrics;
mod openai;
mod redact;
mod route;
mod stub;
mod types;
mod validate;

// The crate's surface is what nthlayer-host and its tests use; the rest stays private so it
// can change without a breaking release.
pub use budget::{Budget, CycleBudget, Policy};
pub use client::{CallContext, LlmClient};
pub use config::{LlmConfig, OpenAiMode};
pub use error::LlmError;
pub use metrics::{Metrics, LATENCY_BUCKETS_MS};
pub use stub::{canned_value, CANNED_SCHEMAS};
pub use types::{LlmRequest, LlmResponse, Usage};

//! The surface's flags, flattened into `serve`'s arguments (config.rs). Kept apart from the
//! listener so the flags' reader imports nothing of the surface.

/// Loopback, so nothing is exposed until the operator says so; 9464 is the port
/// OpenTelemetry's Prometheus exporter conventionally uses for a process's own metrics.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";

#[derive(clap::Args, Debug, Clone)]
pub struct OpsArgs {
    /// Address of the HTTP surface (/health, /ready, /metrics, the status page at /).
    /// Loopback by default; `0.0.0.0:9464` to expose it; `off` for none.
    #[arg(long, env = "NTHLAYER_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: String,
    /// Do not record metrics (every recorder becomes one atomic load; /metrics answers 404).
    #[arg(long, env = "NTHLAYER_NO_METRICS")]
    pub no_metrics: bool,
    /// What is logged, in RUST_LOG's syntax (`debug`, `info,nthlayer_host::outbox=debug`).
    /// Overrides RUST_LOG when given; changed by a reload without a restart.
    #[arg(long, env = "NTHLAYER_LOG_LEVEL", value_name = "DIRECTIVES")]
    pub log_level: Option<String>,
}

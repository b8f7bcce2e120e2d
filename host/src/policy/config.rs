//! The policy room's flags, flattened into `serve`'s: what the operator grants and the
//! limits it sets per module.

#[derive(Debug, Clone, clap::Args)]
pub struct PolicyArgs {
    // The help lists every capability of the table (capability/mod.rs).
    #[arg(long = "grant", value_name = "MODULE=CAPS", help = crate::policy::table::GRANT_HELP)]
    pub grants: Vec<String>,
    /// Limits for a module as JSON: MODULE={"cpu_ms":5000,"memory_bytes":67108864} (repeatable;
    /// also max_concurrent, max_tasks, min_interval_seconds: docs/SANDBOX.md). Use `*` as
    /// MODULE for every module.
    #[arg(long = "limits", value_name = "MODULE=JSON")]
    pub limits: Vec<String>,
}

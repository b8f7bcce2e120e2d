//! The arbiter's flag.

#[derive(Debug, Clone, clap::Args)]
pub struct ArbiterArgs {
    /// The arbiter's base URL for autonomy reductions (POST /api/v1/governance/reduce).
    /// Unset, nothing is sent: the reference's default of http://localhost:8080 is not kept.
    #[arg(long, env = "NTHLAYER_ARBITER_URL")]
    pub arbiter_url: Option<String>,
}

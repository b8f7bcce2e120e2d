//! The tape's flag: recording every cycle as fixtures.

use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct RecordArgs {
    /// Record every cycle's import calls, clock and randomness as run-once fixtures in
    /// DIR/<task>/<n>/ (docs/modules.md). Recordings hold what the backends answered.
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
}

//! correlate's flags: its tasks' intervals (the reference's names).

#[derive(Debug, Clone, clap::Args)]
pub struct CorrelateArgs {
    #[arg(long)]
    pub correlate_interval: Option<u64>,
    #[arg(long)]
    pub topology_drift_interval: Option<u64>,
    #[arg(long)]
    pub contract_interval: Option<u64>,
}

impl CorrelateArgs {
    pub fn intervals(&self) -> Vec<(&'static str, Option<u64>)> {
        vec![
            ("correlate", self.correlate_interval),
            ("correlate.topology", self.topology_drift_interval),
            ("correlate.contract", self.contract_interval),
        ]
    }
}

//! observe's flags: its tasks' intervals (the reference's names).

#[derive(Debug, Clone, clap::Args)]
pub struct ObserveArgs {
    #[arg(long)]
    pub collect_interval: Option<u64>,
    #[arg(long)]
    pub drift_interval: Option<u64>,
    #[arg(long)]
    pub topology_interval: Option<u64>,
}

impl ObserveArgs {
    pub fn intervals(&self) -> Vec<(&'static str, Option<u64>)> {
        vec![
            ("observe.collect", self.collect_interval),
            ("observe.drift", self.drift_interval),
            ("observe.topology", self.topology_interval),
        ]
    }
}

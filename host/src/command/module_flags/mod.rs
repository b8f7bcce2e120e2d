//! The built-in modules' knobs, one struct per module, flattened into `serve`'s flags with
//! the reference's names and defaults. A module cannot read flags or the environment: the
//! host hands what these say to every cycle as `config` (HostConfig::module_config) and
//! turns the interval flags into task intervals.

pub mod correlate;
pub mod learn;
pub mod measure;
pub mod observe;
pub mod respond;

#[derive(Debug, Clone, clap::Args)]
pub struct ModuleArgs {
    #[command(flatten)]
    pub observe: observe::ObserveArgs,
    #[command(flatten)]
    pub correlate: correlate::CorrelateArgs,
    #[command(flatten)]
    pub measure: measure::MeasureArgs,
    #[command(flatten)]
    pub learn: learn::LearnArgs,
    #[command(flatten)]
    pub respond: respond::RespondArgs,
}

impl ModuleArgs {
    /// The reference's interval flags and the task each one sets.
    pub fn intervals(&self) -> Vec<(&'static str, Option<u64>)> {
        let mut v = self.observe.intervals();
        v.extend(self.correlate.intervals());
        v.extend(self.measure.intervals());
        v.extend(self.learn.intervals());
        v.extend(self.respond.intervals());
        v
    }
}

//! `nthlayer:worker/tempo`.

use serde_json::json;

use crate::backend::tempo::TempoClient;
use super::State;
use crate::bindings::latest::nthlayer::worker::tempo::Host;
use crate::bindings::HostError;
use crate::capability::shared::import::bounded;
use crate::policy::table::Capability;
use crate::policy::caps;
use crate::capability::View;
use crate::tape;

fn check_traceql(traceql: &str) -> Result<(), HostError> {
    caps::bytes("TraceQL", traceql.len(), caps::TRACEQL_BYTES).map_err(HostError::Invalid)
}

impl View<'_, State> {
    /// The client, checked for configuration inside the live call (so a replay answers from
    /// its fixture whether or not this host has a Tempo).
    fn tempo(&self) -> Result<Option<TempoClient>, HostError> {
        self.cx.guard(Capability::Tempo)?;
        Ok(self.state.client.clone())
    }
}

fn configured(tempo: Option<TempoClient>) -> Result<TempoClient, HostError> {
    tempo.ok_or_else(|| HostError::Unavailable("not configured (start the host with --tempo-endpoint)".into()))
}

impl Host for View<'_, State> {
    async fn metrics_range(
        &mut self,
        traceql: String,
        start: f64,
        end: f64,
        step: String,
    ) -> Result<String, HostError> {
        let tempo = self.tempo()?;
        check_traceql(&traceql)?;
        caps::bytes("step", step.len(), caps::STEP_BYTES).map_err(HostError::Invalid)?;
        let args = json!({"traceql": traceql, "start": start, "end": end, "step": step});
        let budget = self.cx.budget();
        let live = async move {
            bounded("Tempo", budget, configured(tempo)?.metrics_range(&traceql, start, end, &step)).await
        };
        let v = tape::read(self.cx.tape.clone(), "tempo", "metrics-range", args, live).await?;
        self.cx.respond("metrics_range", v)
    }

    async fn search(&mut self, traceql: String, start: f64, end: f64, limit: u32) -> Result<String, HostError> {
        let tempo = self.tempo()?;
        check_traceql(&traceql)?;
        let args = json!({"traceql": traceql, "start": start, "end": end, "limit": limit});
        let budget = self.cx.budget();
        let live =
            async move { bounded("Tempo", budget, configured(tempo)?.search(&traceql, start, end, limit)).await };
        let v = tape::read(self.cx.tape.clone(), "tempo", "search", args, live).await?;
        self.cx.respond("search", v)
    }
}

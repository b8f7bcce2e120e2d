//! `nthlayer:worker/tempo`.

use super::bounded;
use crate::bindings::latest::nthlayer::worker::tempo::Host;
use crate::bindings::HostError;
use crate::capabilities::Capability;
use crate::caps;
use crate::clients::tempo::TempoClient;
use crate::runtime::store::StoreData;

fn check_traceql(traceql: &str) -> Result<(), HostError> {
    caps::bytes("TraceQL", traceql.len(), caps::TRACEQL_BYTES).map_err(HostError::Invalid)
}

impl StoreData {
    fn tempo(&self) -> Result<TempoClient, HostError> {
        self.guard(Capability::Tempo)?;
        self.cx
            .services
            .tempo
            .clone()
            .ok_or_else(|| HostError::Unavailable("not configured (start the host with --tempo-endpoint)".into()))
    }
}

impl Host for StoreData {
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
        let v = bounded("Tempo", self.budget(), tempo.metrics_range(&traceql, start, end, &step)).await?;
        self.respond("metrics_range", v)
    }

    async fn search(&mut self, traceql: String, start: f64, end: f64, limit: u32) -> Result<String, HostError> {
        let tempo = self.tempo()?;
        check_traceql(&traceql)?;
        let v = bounded("Tempo", self.budget(), tempo.search(&traceql, start, end, limit)).await?;
        self.respond("search", v)
    }
}

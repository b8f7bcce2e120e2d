//! The backends behind the imports, shared by every cycle.

use crate::clients::core::CoreClient;
use crate::clients::prometheus::PrometheusClient;
use crate::clients::tempo::TempoClient;
use crate::llm::LlmService;

pub struct Services {
    pub core: CoreClient,
    pub prometheus: PrometheusClient,
    /// None without `--tempo-endpoint`: tempo calls answer unavailable("not configured").
    pub tempo: Option<TempoClient>,
    pub llm: LlmService,
    /// Who wakes on which submitted records (contract 0.2.0).
    pub wake: crate::wake::WakeBus,
}

//! The backends behind the imports, shared by every cycle.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value};

use crate::clients::arbiter::ArbiterClient;
use crate::clients::core::CoreClient;
use crate::clients::envelope::RecordKind;
use crate::clients::prometheus::PrometheusClient;
use crate::clients::tempo::TempoClient;
use crate::clients::ClientError;
use crate::llm::LlmService;

pub struct Services {
    pub core: CoreClient,
    /// Where the `core` import's submitted records go. Today straight to core; a durable
    /// outbox replaces this one field and commits in an after-cycle hook.
    pub records: Arc<dyn RecordSink>,
    pub prometheus: PrometheusClient,
    /// None without `--tempo-endpoint`: tempo calls answer unavailable("not configured").
    pub tempo: Option<TempoClient>,
    pub llm: LlmService,
    /// None without `--arbiter-url`: respond's autonomy reduction stays inside the host.
    pub arbiter: Option<ArbiterClient>,
    /// Who wakes on which submitted records (contract 0.2.0).
    pub wake: crate::wake::WakeBus,
    /// `--record DIR`: every cycle's import calls are written there as fixtures.
    pub record: Option<Arc<crate::tape::RecordTo>>,
}

/// Takes the records a module submits (assessments, verdicts) and answers the id stored.
pub trait RecordSink: Send + Sync {
    fn submit<'a>(
        &'a self,
        kind: RecordKind,
        record: &'a Map<String, Value>,
        component: &'a str,
    ) -> BoxFuture<'a, Result<String, ClientError>>;
}

impl RecordSink for CoreClient {
    fn submit<'a>(
        &'a self,
        kind: RecordKind,
        record: &'a Map<String, Value>,
        component: &'a str,
    ) -> BoxFuture<'a, Result<String, ClientError>> {
        Box::pin(CoreClient::submit(self, kind, record, component))
    }
}

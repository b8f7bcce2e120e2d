//! The backends behind the imports, shared by every cycle.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value};

use crate::backend::core::CoreClient;
use crate::backend::envelope::RecordKind;
use crate::backend::ClientError;
use crate::capability::{Backends, CapabilityArgs, Shared};
use crate::wake::WakeBus;

pub struct Services {
    /// One backend per capability (capability/mod.rs's table): `backends.core`,
    /// `backends.tempo`, ….
    pub backends: Backends,
    /// Where the `core` import posts records of cycles that do not hold them (one-shot
    /// commands: gate, run). Scheduled cycles hold theirs for the outbox instead.
    pub records: Arc<dyn RecordSink>,
    /// The durable outbox (`serve` only): commits of scheduled cycles, the sender's queue,
    /// task state without core, the last good manifests. Set once, after loading.
    pub outbox: std::sync::OnceLock<Arc<crate::outbox::Outbox>>,
    /// Who wakes on which submitted records (contract 0.2.0).
    pub wake: Arc<WakeBus>,
    /// `--record DIR`: every cycle's import calls are written there as fixtures.
    pub record: Option<Arc<crate::tape::RecordTo>>,
}

impl Services {
    /// Every command and test builds its backends here, from the capability flags (use
    /// [`CapabilityArgs::offline`] for a host that must reach none).
    pub fn build(caps: &CapabilityArgs) -> anyhow::Result<Self> {
        let backends = Backends::build(caps, &Shared::default())?;
        Ok(Services {
            records: Arc::new(backends.core.clone()),
            backends,
            outbox: Default::default(),
            wake: Default::default(),
            record: None,
        })
    }

    /// Services reaching no backend, with every flag at its default.
    pub fn offline() -> anyhow::Result<Self> {
        Self::build(&CapabilityArgs::offline_defaults())
    }
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

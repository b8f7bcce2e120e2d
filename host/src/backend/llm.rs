//! The LLM service behind the `llm` import: nthlayer-llm's client plus per-module policy.
//!
//! The capability grant (`--grant mod=llm`, or a built-in module's declared need) decides
//! whether a module may call at all; `--llm MODULE=JSON` sets its model override and
//! budgets. Provider, model and keys come from the environment (capability/llm/config.rs). Modules never
//! see any of them.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use nthlayer_llm::{CallContext, CycleBudget, LlmClient, LlmConfig, LlmError, LlmRequest, Policy};
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::bindings::latest::nthlayer::worker::llm::{StructuredRequest, StructuredResponse, Usage};
use crate::bindings::{HostError, Rejection};

/// `--llm MODULE=JSON`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicySpec {
    model: Option<String>,
    max_calls_per_cycle: Option<u32>,
    max_tokens_per_hour: Option<u64>,
}

#[derive(Clone)]
pub struct LlmService {
    /// Err holds why the client could not be built (e.g. a key-like NTHLAYER_MODEL).
    client: Result<LlmClient, String>,
    policies: Arc<HashMap<String, PolicySpec>>,
}

impl Default for LlmService {
    fn default() -> Self {
        LlmService { client: Err("not configured".into()), policies: Arc::default() }
    }
}

impl LlmService {
    /// From `--llm` specs and the provider's configuration (None: not configured). A bad
    /// provider configuration does not stop the host: the llm import answers `unavailable`
    /// with the reason, and the rest keeps working.
    pub fn new(specs: &[String], provider: Option<LlmConfig>) -> Result<Self> {
        let mut policies = HashMap::new();
        for spec in specs {
            let (module, json) =
                spec.split_once('=').with_context(|| format!("--llm {spec:?}: expected MODULE=JSON"))?;
            let p: PolicySpec = serde_json::from_str(json).with_context(|| {
                format!("--llm {module}: expected {{\"model\",\"max_calls_per_cycle\",\"max_tokens_per_hour\"}}")
            })?;
            policies.insert(module.to_string(), p);
        }
        let Some(provider) = provider else {
            return Ok(LlmService { policies: Arc::new(policies), ..Default::default() });
        };
        let client = LlmClient::new(provider).map_err(|e| e.to_string());
        if let Err(e) = &client {
            tracing::warn!(error = %e, "LLM not available; llm calls will answer unavailable");
        }
        Ok(LlmService { client, policies: Arc::new(policies) })
    }

    /// Each module with a token budget (`max_tokens_per_hour`): (module, limit, spent in the
    /// last hour). For the status page and `/metrics`.
    pub fn budgets(&self) -> Vec<(String, u64, u64)> {
        let Ok(client) = &self.client else { return Vec::new() };
        let mut out: Vec<_> = self
            .policies
            .iter()
            .filter_map(|(m, p)| Some((m.clone(), p.max_tokens_per_hour?, client.budget().tokens_in_window(m))))
            .collect();
        out.sort();
        out
    }

    pub fn metrics(&self) -> Value {
        self.client.as_ref().map(|c| c.metrics().snapshot()).unwrap_or(Value::Null)
    }

    /// One structured call for `module`. `cycle` is the module's per-cycle call counter.
    pub async fn structured_call(
        &self,
        module: &str,
        cycle: &CycleBudget,
        req: StructuredRequest,
        deadline: Instant,
    ) -> Result<StructuredResponse, HostError> {
        let client = self.client.as_ref().map_err(|e| HostError::Unavailable(e.clone()))?;
        let spec = self.policies.get(module).cloned().unwrap_or_default();
        let policy = Policy {
            allowed: true, // the capability grant was checked by the import
            model_override: spec.model,
            max_calls_per_cycle: spec.max_calls_per_cycle,
            max_tokens_per_hour: spec.max_tokens_per_hour,
        };
        let ctx = CallContext { module, policy: &policy, cycle, deadline: Some(deadline.into_std()) };
        let req = LlmRequest {
            system: req.system,
            user: req.user,
            schema: req.schema,
            schema_name: req.schema_name,
            max_tokens: req.max_tokens,
            timeout_ms: req.timeout_ms,
            max_retries: req.max_retries,
        };
        let r = client.structured_call(ctx, req).await.map_err(|e| match e {
            LlmError::Denied(m) => HostError::Denied(m),
            LlmError::Unavailable(m) => HostError::Unavailable(m),
            LlmError::Timeout(m) => HostError::Timeout(m),
            LlmError::Invalid(m) => HostError::Invalid(m),
            LlmError::Rejected { status, code, detail } => HostError::Rejected(Rejection { status, code, detail }),
        })?;
        Ok(StructuredResponse {
            value: r.value,
            usage: Usage {
                model: r.usage.model,
                input_tokens: r.usage.input_tokens,
                output_tokens: r.usage.output_tokens,
                latency_ms: r.usage.latency_ms,
            },
        })
    }
}

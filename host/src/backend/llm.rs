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

/// The `--llm` lines, parsed: what a config reload installs ([`LlmService::set_policies`]).
#[derive(Debug, Clone, Default)]
pub struct Policies(HashMap<String, PolicySpec>);

impl Policies {
    pub fn parse(specs: &[String]) -> Result<Self> {
        let mut policies = HashMap::new();
        for spec in specs {
            let (module, json) =
                spec.split_once('=').with_context(|| format!("--llm {spec:?}: expected MODULE=JSON"))?;
            let p: PolicySpec = serde_json::from_str(json).with_context(|| {
                format!("--llm {module}: expected {{\"model\",\"max_calls_per_cycle\",\"max_tokens_per_hour\"}}")
            })?;
            policies.insert(module.to_string(), p);
        }
        Ok(Policies(policies))
    }
}

#[derive(Clone)]
pub struct LlmService {
    /// Err holds why the client could not be built (e.g. a key-like NTHLAYER_MODEL).
    client: Result<LlmClient, String>,
    /// Shared by every clone, so a reload reaches the one the status reads; a cycle takes
    /// its own snapshot ([`LlmService::for_cycle`]).
    policies: Arc<arc_swap::ArcSwap<Policies>>,
}

impl Default for LlmService {
    fn default() -> Self {
        LlmService { client: Err("not configured".into()), policies: Default::default() }
    }
}

impl LlmService {
    /// From `--llm` specs and the provider's configuration (None: not configured). A bad
    /// provider configuration does not stop the host: the llm import answers `unavailable`
    /// with the reason, and the rest keeps working.
    pub fn new(specs: &[String], provider: Option<LlmConfig>) -> Result<Self> {
        let policies = Arc::new(arc_swap::ArcSwap::from_pointee(Policies::parse(specs)?));
        let Some(provider) = provider else {
            return Ok(LlmService { policies, ..Default::default() });
        };
        let client = LlmClient::new(provider).map_err(|e| e.to_string());
        if let Err(e) = &client {
            tracing::warn!(error = %e, "LLM not available; llm calls will answer unavailable");
        }
        Ok(LlmService { client, policies })
    }

    /// Installs new `--llm` lines (a config reload) for every later cycle.
    pub fn set_policies(&self, policies: Policies) {
        self.policies.store(Arc::new(policies));
    }

    /// This service with the policies as they are now, fixed: a cycle's calls all run under
    /// the policy the cycle started with, whatever a reload installs meanwhile.
    pub fn for_cycle(&self) -> Self {
        LlmService {
            client: self.client.clone(),
            policies: Arc::new(arc_swap::ArcSwap::new(self.policies.load_full())),
        }
    }

    /// Each module with a token budget (`max_tokens_per_hour`): (module, limit, spent in the
    /// last hour). For the status page and `/metrics`.
    pub fn budgets(&self) -> Vec<(String, u64, u64)> {
        let Ok(client) = &self.client else { return Vec::new() };
        let mut out: Vec<_> = self
            .policies
            .load()
            .0
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
        let spec = self.policies.load().0.get(module).cloned().unwrap_or_default();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A reload's policies reach every clone (the status page's), not a cycle's snapshot.
    #[test]
    fn new_policies_reach_clones_but_not_a_running_cycle() {
        let provider = LlmConfig {
            model: "openai/test-model".into(),
            openai_api_base: "http://127.0.0.1:9".into(),
            openai_api_key: Some("test-key".into()),
            ..LlmConfig::default()
        };
        let service = LlmService::new(&[r#"m={"max_tokens_per_hour":100}"#.into()], Some(provider)).unwrap();
        let (status, cycle) = (service.clone(), service.for_cycle());
        service.set_policies(Policies::parse(&[r#"m={"max_tokens_per_hour":500}"#.into()]).unwrap());
        assert_eq!(status.budgets(), [("m".to_string(), 500, 0)]);
        assert_eq!(cycle.budgets(), [("m".to_string(), 100, 0)]);
        assert!(Policies::parse(&[r#"m={"max_tokens":1}"#.into()]).is_err(), "unknown fields refused");
    }
}

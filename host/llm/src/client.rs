use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use serde_json::Value;
use tokio::time::Instant;

use crate::budget::{Budget, CycleBudget, Policy};
use crate::config::{LlmConfig, OpenAiMode};
use crate::conversation::{Conversation, Prompt};
use crate::error::LlmError;
use crate::metrics::Metrics;
use crate::route::{resolve_model, Route};
use crate::types::{LlmRequest, LlmResponse, Usage};
use crate::validate::SchemaValidator;
use crate::{http, openai, stub};

/// The reference's `structured_call` default.
const DEFAULT_MAX_TOKENS: u32 = 2000;
/// Re-asks are paid for; the reference never asks for more than 3.
pub const MAX_REASKS: u32 = 10;

/// Who is calling and under which limits. Borrowed, because the host owns the policy table
/// and the per-cycle counter.
#[derive(Debug, Clone, Copy)]
pub struct CallContext<'a> {
    pub module: &'a str,
    pub policy: &'a Policy,
    pub cycle: &'a CycleBudget,
    /// The cycle's deadline; the call ends at this or at its own `timeout-ms`, whichever is
    /// sooner.
    pub deadline: Option<StdInstant>,
}

struct Inner {
    config: LlmConfig,
    secrets: Vec<String>,
    http: reqwest::Client,
    budget: Budget,
    metrics: Metrics,
    /// Set once an OpenAI-compatible server has refused tools in `auto` mode.
    openai_prefers_json_schema: AtomicBool,
}

/// The host's single LLM gateway; clones share the HTTP pool, budgets and metrics.
#[derive(Clone)]
pub struct LlmClient {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Spent {
    input: u64,
    output: u64,
}

impl LlmClient {
    pub fn new(config: LlmConfig) -> Result<Self, LlmError> {
        Self::with_budget(config, Budget::new())
    }

    /// Lets tests (and a host that persists spend) supply the token window.
    pub fn with_budget(config: LlmConfig, budget: Budget) -> Result<Self, LlmError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("nthlayer-llm/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| LlmError::unavailable(format!("building HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                secrets: config.secrets(),
                config,
                http,
                budget,
                metrics: Metrics::new(),
                openai_prefers_json_schema: AtomicBool::new(false),
            }),
        })
    }

    pub fn from_env() -> Result<Self, LlmError> {
        Self::new(LlmConfig::from_env())
    }

    pub fn config(&self) -> &LlmConfig {
        &self.inner.config
    }

    pub fn budget(&self) -> &Budget {
        &self.inner.budget
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Runs one mediated call: grant and budgets, then the stub or the provider, validation
    /// with re-asks, accounting. Every error text is redacted before it leaves.
    pub async fn structured_call(&self, ctx: CallContext<'_>, req: LlmRequest) -> Result<LlmResponse, LlmError> {
        let started = Instant::now();
        let model_label = self.model_label(ctx.policy);
        if let Err(e) = self.inner.budget.admit(ctx.module, ctx.policy, ctx.cycle) {
            self.inner.metrics.record(ctx.module, &model_label, Some(e.kind()), 0, 0, None);
            return Err(e);
        }
        let mut spent = Spent::default();
        let result = self.run(&ctx, &req, started, &mut spent).await;
        let latency = started.elapsed().as_millis() as u64;
        let tokens = spent.input + spent.output;
        self.inner.budget.charge(ctx.module, tokens);
        let (model, result) = match result {
            Ok((model, value)) => (
                model.clone(),
                Ok(LlmResponse {
                    value: value.to_string(),
                    usage: Usage {
                        model,
                        input_tokens: sat32(spent.input),
                        output_tokens: sat32(spent.output),
                        latency_ms: sat32(latency),
                    },
                }),
            ),
            Err(e) => (model_label, Err(e.scrub(&self.inner.secrets))),
        };
        let kind = result.as_ref().err().map(LlmError::kind);
        self.inner.metrics.record(ctx.module, &model, kind, spent.input, spent.output, Some(latency));
        match &result {
            Ok(_) => {
                tracing::info!(module = ctx.module, %model, tokens, latency_ms = latency, "llm call ok")
            }
            Err(e) => {
                tracing::info!(module = ctx.module, %model, kind = e.kind(), latency_ms = latency, "llm call failed")
            }
        }
        result
    }

    /// The label metrics use before (or without) a successful route; never the raw string
    /// when it looks like a key.
    fn model_label(&self, policy: &Policy) -> String {
        if self.inner.config.stub {
            return stub::STUB_MODEL.into();
        }
        let m = policy.model_override.as_deref().unwrap_or(&self.inner.config.model);
        match resolve_model(m) {
            Ok(r) => r.label(),
            Err(_) => "invalid-model".into(),
        }
    }

    async fn run(
        &self,
        ctx: &CallContext<'_>,
        req: &LlmRequest,
        started: Instant,
        spent: &mut Spent,
    ) -> Result<(String, Value), LlmError> {
        let validator = SchemaValidator::from_text(&req.schema)?;
        check_name(&req.schema_name)?;
        if req.max_retries > MAX_REASKS {
            return Err(LlmError::invalid(format!(
                "max-retries {} exceeds the host limit of {MAX_REASKS}",
                req.max_retries
            )));
        }
        tracing::debug!(
            module = ctx.module,
            schema = %req.schema_name,
            system_bytes = req.system.len(),
            user_bytes = req.user.len(),
            "llm request"
        );
        if self.inner.config.stub {
            // Stub before the model check, as the reference: under the stub no model is used.
            let value = stub::canned_value(&req.schema_name).ok_or_else(|| {
                LlmError::invalid(format!(
                    "NTHLAYER_LLM_STUB=canned: no canned response registered for {:?}",
                    req.schema_name
                ))
            })?;
            validator.check(&value).map_err(|e| {
                LlmError::invalid(format!(
                    "NTHLAYER_LLM_STUB=canned: the canned {} does not match the request schema: {e}",
                    req.schema_name
                ))
            })?;
            return Ok((stub::STUB_MODEL.into(), value));
        }
        let model = ctx.policy.model_override.as_deref().unwrap_or(&self.inner.config.model);
        let route = resolve_model(model)?;
        let timeout = match req.timeout_ms {
            0 => self.inner.config.default_timeout,
            ms => Duration::from_millis(ms.into()),
        };
        let mut deadline = started + timeout;
        let mut bound = format!("the call's timeout of {} ms", timeout.as_millis());
        if let Some(d) = ctx.deadline {
            let d = Instant::from_std(d);
            if d < deadline {
                deadline = d;
                bound = "the cycle deadline".into();
            }
        }
        if Instant::now() >= deadline {
            return Err(LlmError::timeout(format!("{bound} had already passed")));
        }
        let label = route.label();
        match tokio::time::timeout_at(deadline, self.converse(&route, req, &validator, deadline, spent)).await {
            Ok(Ok(v)) => Ok((label, v)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(LlmError::timeout(format!("[{label}] no valid answer within {bound}"))),
        }
    }

    async fn converse(
        &self,
        route: &Route,
        req: &LlmRequest,
        validator: &SchemaValidator,
        deadline: Instant,
        spent: &mut Spent,
    ) -> Result<Value, LlmError> {
        let cfg = &self.inner.config;
        let prompt = Prompt {
            system: &req.system,
            user: &req.user,
            name: &req.schema_name,
            schema: validator.schema(),
            max_tokens: if req.max_tokens == 0 { DEFAULT_MAX_TOKENS } else { req.max_tokens },
        };
        let ((url, headers), mut conv) = Conversation::open(cfg, route, &prompt, self.openai_structure())?;
        let label = route.label();
        let mut last_error = String::new();
        let mut attempt = 0u32;
        while attempt <= req.max_retries {
            let body = conv.body();
            let reply = match http::post_json(&self.inner.http, cfg, &url, &headers, &body, deadline).await {
                Ok(r) => r,
                Err((f, _)) if conv.fall_back_to_json_schema(cfg.openai_mode, &f) => {
                    tracing::info!(model = %label, "server refused tools; using response_format json_schema");
                    self.inner.openai_prefers_json_schema.store(true, Ordering::Relaxed);
                    continue;
                }
                Err((f, n)) => return Err(f.into_error(&label, n)),
            };
            attempt += 1;
            let mut turn = conv.read(&reply)?;
            spent.input += turn.input_tokens;
            spent.output += turn.output_tokens;
            let checked = std::mem::replace(&mut turn.candidate, Err(String::new()))
                .and_then(|v| validator.check(&v).map(|()| v));
            match checked {
                Ok(v) => return Ok(v),
                Err(msg) => {
                    tracing::debug!(model = %label, attempt, "llm answer failed validation");
                    if attempt <= req.max_retries {
                        conv.reask(turn, &reask_text(&msg));
                    }
                    last_error = msg;
                }
            }
        }
        Err(LlmError::invalid(format!(
            "[{label}] answer failed {} validation after {attempt} attempt(s): {}",
            req.schema_name,
            http::clip(&last_error, 600)
        )))
    }

    fn openai_structure(&self) -> openai::Structure {
        match self.inner.config.openai_mode {
            OpenAiMode::Tools => openai::Structure::Tools,
            OpenAiMode::JsonSchema => openai::Structure::JsonSchema,
            OpenAiMode::Auto if self.inner.openai_prefers_json_schema.load(Ordering::Relaxed) => {
                openai::Structure::JsonSchema
            }
            OpenAiMode::Auto => openai::Structure::Tools,
        }
    }
}

/// Instructor's re-ask wording, so prompts tuned against the reference read the same.
fn reask_text(errors: &str) -> String {
    format!("Validation Error found:\n{errors}\nRecall the function correctly, fix the errors")
}

/// Both providers restrict tool names to `^[a-zA-Z0-9_-]{1,64}$`; failing here is cheaper and
/// clearer than a provider 400.
fn check_name(name: &str) -> Result<(), LlmError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(LlmError::invalid(format!("schema-name {:?} must match ^[A-Za-z0-9_-]{{1,64}}$", http::clip(name, 80))))
    }
}

fn sat32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

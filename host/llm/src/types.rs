/// One structured call, as the WIT `structured-request` carries it. JSON stays text here so
/// the import glue copies strings instead of re-modelling payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmRequest {
    pub system: String,
    pub user: String,
    /// JSON Schema text the answer must satisfy; also sent to the provider as the tool schema.
    pub schema: String,
    /// Tool / schema name sent to the provider; also the stub's lookup key.
    pub schema_name: String,
    /// 0 means the reference default (2000).
    pub max_tokens: u32,
    /// 0 means `NTHLAYER_LLM_TIMEOUT`.
    pub timeout_ms: u32,
    /// Re-asks after an answer fails validation (total requests = max_retries + 1).
    pub max_retries: u32,
}

/// Token and time accounting for one call, summed over every request it made (re-asks
/// included), because that is what the budget and the bill see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub model: String,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub latency_ms: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmResponse {
    /// JSON text, valid against the request's schema.
    pub value: String,
    pub usage: Usage,
}

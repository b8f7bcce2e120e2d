use std::fmt;
use std::time::Duration;

/// The reference's `NTHLAYER_MODEL` default.
pub const DEFAULT_MODEL: &str = "anthropic/claude-sonnet-4-20250514";
const DEFAULT_ANTHROPIC_BASE: &str = "https://api.anthropic.com";
const DEFAULT_OPENAI_BASE: &str = "https://api.openai.com/v1";

/// How the OpenAI-compatible path asks for structure. Many local servers (older vLLM,
/// llama.cpp builds) reject `tools`; `auto` starts with tools like the reference and switches
/// to `response_format: json_schema` for the life of the client after such a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OpenAiMode {
    #[default]
    Auto,
    Tools,
    JsonSchema,
}

impl OpenAiMode {
    fn parse(s: &str) -> Self {
        match s.trim().to_ascii_lowercase().as_str() {
            "tools" => Self::Tools,
            "json_schema" | "json-schema" => Self::JsonSchema,
            _ => Self::Auto,
        }
    }
}

/// Everything the client needs from the environment, read once at start-up (the reference
/// reads these at import time too, so a running host does not see later changes either).
#[derive(Clone)]
pub struct LlmConfig {
    /// `provider/model` or a bare name; see [`crate::resolve_model`].
    pub model: String,
    pub anthropic_api_key: Option<String>,
    /// Settable so tests can point at a loopback server; the Anthropic SDK reads the same var.
    pub anthropic_base_url: String,
    /// The only base URL the reference's structured path honours for non-Anthropic providers.
    pub openai_api_base: String,
    pub openai_api_key: Option<String>,
    pub openai_mode: OpenAiMode,
    /// `NTHLAYER_LLM_STUB=canned` (trimmed, case-insensitive).
    pub stub: bool,
    /// Used when a request says `timeout-ms = 0`.
    pub default_timeout: Duration,
    /// Transport-level retries per request (the provider SDKs default to 2).
    pub http_retries: u32,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// A provider's `retry-after` is honoured up to this much.
    pub retry_after_cap: Duration,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            model: DEFAULT_MODEL.into(),
            anthropic_api_key: None,
            anthropic_base_url: DEFAULT_ANTHROPIC_BASE.into(),
            openai_api_base: DEFAULT_OPENAI_BASE.into(),
            openai_api_key: None,
            openai_mode: OpenAiMode::Auto,
            stub: false,
            default_timeout: Duration::from_secs(60),
            http_retries: 2,
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(8),
            retry_after_cap: Duration::from_secs(30),
        }
    }
}

impl LlmConfig {
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Same as [`Self::from_env`] over any lookup, so tests need not mutate process env.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let nonempty = |k: &str| get(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let d = Self::default();
        Self {
            model: nonempty("NTHLAYER_MODEL").unwrap_or(d.model),
            anthropic_api_key: nonempty("ANTHROPIC_API_KEY"),
            anthropic_base_url: nonempty("ANTHROPIC_BASE_URL")
                .map(|u| u.trim_end_matches('/').to_owned())
                .unwrap_or(d.anthropic_base_url),
            openai_api_base: nonempty("OPENAI_API_BASE")
                .map(|u| u.trim_end_matches('/').to_owned())
                .unwrap_or(d.openai_api_base),
            openai_api_key: nonempty("OPENAI_API_KEY"),
            openai_mode: nonempty("OPENAI_STRUCTURED_MODE").map(|m| OpenAiMode::parse(&m)).unwrap_or_default(),
            stub: get("NTHLAYER_LLM_STUB").is_some_and(|v| v.trim().eq_ignore_ascii_case("canned")),
            // Python int(): anything unparsable falls back to 60.
            default_timeout: nonempty("NTHLAYER_LLM_TIMEOUT")
                .and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_secs)
                .unwrap_or(d.default_timeout),
            ..d
        }
    }

    /// Values removed verbatim from every error text.
    pub(crate) fn secrets(&self) -> Vec<String> {
        [&self.anthropic_api_key, &self.openai_api_key].into_iter().flatten().cloned().collect()
    }
}

/// Keys never reach logs through `{:?}`.
impl fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |k: &Option<String>| if k.is_some() { "<set>" } else { "<unset>" };
        let model = if crate::route::looks_like_api_key(&self.model) {
            "<looks like an API key>".to_owned()
        } else {
            self.model.clone()
        };
        f.debug_struct("LlmConfig")
            .field("model", &model)
            .field("anthropic_api_key", &set(&self.anthropic_api_key))
            .field("anthropic_base_url", &self.anthropic_base_url)
            .field("openai_api_base", &self.openai_api_base)
            .field("openai_api_key", &set(&self.openai_api_key))
            .field("openai_mode", &self.openai_mode)
            .field("stub", &self.stub)
            .field("default_timeout", &self.default_timeout)
            .field("http_retries", &self.http_retries)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> LlmConfig {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        LlmConfig::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_match_reference() {
        let c = cfg(&[]);
        assert_eq!(c.model, "anthropic/claude-sonnet-4-20250514");
        assert_eq!(c.default_timeout, Duration::from_secs(60));
        assert!(!c.stub);
        assert_eq!(c.anthropic_base_url, "https://api.anthropic.com");
    }

    #[test]
    fn env_parsing() {
        let c = cfg(&[
            ("NTHLAYER_LLM_STUB", " CANNED\n"),
            ("NTHLAYER_LLM_TIMEOUT", "abc"),
            ("OPENAI_API_BASE", "http://127.0.0.1:9/v1/"),
            ("OPENAI_STRUCTURED_MODE", "json_schema"),
            ("ANTHROPIC_API_KEY", "sk-ant-secretsecret"),
        ]);
        assert!(c.stub);
        assert_eq!(c.default_timeout, Duration::from_secs(60));
        assert_eq!(c.openai_api_base, "http://127.0.0.1:9/v1");
        assert_eq!(c.openai_mode, OpenAiMode::JsonSchema);
        assert!(!format!("{c:?}").contains("secretsecret"));
    }
}

use crate::error::LlmError;

/// Which wire format a model is reached through. The reference sends every non-Anthropic
/// provider (openai, ollama, vllm, groq, …) through the OpenAI client at `OPENAI_API_BASE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Anthropic,
    OpenAi,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The provider label (`anthropic`, `openai`, `ollama`, …), for metrics and messages.
    pub provider: String,
    /// What goes in the request's `model` field: the part after the first `/`.
    pub model_name: String,
    pub wire: Wire,
}

impl Route {
    /// `provider/model`, the label used in usage reports, metrics and logs; redacted because a
    /// key of a shape the prefix rule misses could still sit in `NTHLAYER_MODEL`.
    pub fn label(&self) -> String {
        crate::redact::redact(&format!("{}/{}", self.provider, self.model_name))
    }
}

const KEY_PREFIXES: [&str; 4] = ["sk-ant-", "sk-", "key-", "Bearer "];

/// The reference's guard against a key pasted into `NTHLAYER_MODEL`: the string starts with
/// `sk-ant-`, `sk-`, `key-` or `Bearer `. We also test the part after `provider/`, since
/// `openai/sk-…` is the same mistake.
pub fn looks_like_api_key(model: &str) -> bool {
    let starts = |s: &str| KEY_PREFIXES.iter().any(|p| s.starts_with(p));
    starts(model) || model.split_once('/').is_some_and(|(_, m)| starts(m))
}

/// Splits `provider/model`, or guesses the provider of a bare name as the reference does:
/// `claude*` → anthropic, `gpt*`/`o1*`/`o3*` → openai, anything else → the OpenAI path.
///
/// A key-like string is refused without echoing any of it (the reference quotes its first 20
/// characters, which is most of a key's entropy-free prefix plus some of the secret).
pub fn resolve_model(model: &str) -> Result<Route, LlmError> {
    let model = model.trim();
    if looks_like_api_key(model) {
        return Err(LlmError::Unavailable(
            "the configured model looks like an API key, not a model name; set NTHLAYER_MODEL \
             to provider/model (e.g. anthropic/claude-sonnet-4-20250514) and put the key in \
             ANTHROPIC_API_KEY or OPENAI_API_KEY"
                .into(),
        ));
    }
    let (provider, name) = match model.split_once('/') {
        Some((p, m)) => (p.to_owned(), m.to_owned()),
        None if model.starts_with("claude") => ("anthropic".into(), model.to_owned()),
        None => ("openai".into(), model.to_owned()),
    };
    if provider.is_empty() || name.is_empty() {
        return Err(LlmError::unavailable(format!("model {model:?} is not of the form provider/model")));
    }
    let wire = if provider == "anthropic" { Wire::Anthropic } else { Wire::OpenAi };
    Ok(Route { provider, model_name: name, wire })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing() {
        let r = resolve_model("anthropic/claude-sonnet-4-20250514").unwrap();
        assert_eq!((r.wire, r.model_name.as_str()), (Wire::Anthropic, "claude-sonnet-4-20250514"));
        assert_eq!(resolve_model("claude-3-haiku").unwrap().wire, Wire::Anthropic);
        let g = resolve_model("gpt-4o").unwrap();
        assert_eq!((g.wire, g.provider.as_str()), (Wire::OpenAi, "openai"));
        assert_eq!(resolve_model("o3-mini").unwrap().provider, "openai");
        let l = resolve_model("llama3").unwrap();
        assert_eq!((l.wire, l.provider.as_str()), (Wire::OpenAi, "openai"));
        let o = resolve_model("ollama/llama3:8b").unwrap();
        assert_eq!((o.wire, o.model_name.as_str()), (Wire::OpenAi, "llama3:8b"));
        assert_eq!(o.label(), "ollama/llama3:8b");
    }

    #[test]
    fn key_like_models() {
        for m in ["sk-ant-api03-xyz", "sk-proj-abc", "key-123", "Bearer abc", "openai/sk-abc"] {
            let e = resolve_model(m).unwrap_err();
            let text = e.to_string();
            assert!(matches!(e, LlmError::Unavailable(_)));
            assert!(!text.contains(m), "{text}");
        }
        assert!(!looks_like_api_key("skynet-1"));
    }
}

use crate::redact::redact;

/// Mirrors the WIT `host-error` so the import glue maps one to one; the variant tells a module
/// whether to degrade ("down", "not allowed") or whether its own request was at fault.
///
/// Texts are built through the constructors below, which redact anything key-like: provider
/// error bodies and transport errors can echo headers back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// The operator has not granted the call, or a budget is spent; the text names the fix.
    #[error("denied: {0}")]
    Denied(String),
    /// No provider configured, unreachable, or 408/429/5xx after retries.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The call's own timeout or the cycle deadline fired first.
    #[error("timeout: {0}")]
    Timeout(String),
    /// The provider refused the request (a 4xx other than 408/429).
    #[error("rejected: HTTP {status} {code}: {detail}")]
    Rejected {
        status: u16,
        code: String,
        /// JSON text, like the WIT `rejection.detail`.
        detail: String,
    },
    /// The request (schema, name) or the answer (schema validation after re-asks) is unusable.
    #[error("invalid: {0}")]
    Invalid(String),
}

impl LlmError {
    pub(crate) fn denied(msg: impl AsRef<str>) -> Self {
        Self::Denied(redact(msg.as_ref()))
    }
    pub(crate) fn unavailable(msg: impl AsRef<str>) -> Self {
        Self::Unavailable(redact(msg.as_ref()))
    }
    pub(crate) fn timeout(msg: impl AsRef<str>) -> Self {
        Self::Timeout(redact(msg.as_ref()))
    }
    pub(crate) fn invalid(msg: impl AsRef<str>) -> Self {
        Self::Invalid(redact(msg.as_ref()))
    }
    pub(crate) fn rejected(status: u16, code: impl AsRef<str>, detail: impl AsRef<str>) -> Self {
        let detail = serde_json::Value::String(redact(detail.as_ref())).to_string();
        Self::Rejected { status, code: redact(code.as_ref()), detail }
    }

    /// Stable label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Denied(_) => "denied",
            Self::Unavailable(_) => "unavailable",
            Self::Timeout(_) => "timeout",
            Self::Rejected { .. } => "rejected",
            Self::Invalid(_) => "invalid",
        }
    }

    /// Re-applies redaction with the configured secrets, which the pattern-based pass alone
    /// cannot know (a key need not look like one).
    pub(crate) fn scrub(self, secrets: &[String]) -> Self {
        let s = |t: String| crate::redact::redact_with(&t, secrets);
        match self {
            Self::Denied(t) => Self::Denied(s(t)),
            Self::Unavailable(t) => Self::Unavailable(s(t)),
            Self::Timeout(t) => Self::Timeout(s(t)),
            Self::Invalid(t) => Self::Invalid(s(t)),
            Self::Rejected { status, code, detail } => Self::Rejected { status, code: s(code), detail: s(detail) },
        }
    }
}

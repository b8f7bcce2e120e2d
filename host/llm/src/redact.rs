use std::sync::OnceLock;

use regex::Regex;

const MASK: &str = "[REDACTED]";

fn patterns() -> &'static [(Regex, &'static str)] {
    static P: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    P.get_or_init(|| {
        let re = |s: &str| Regex::new(s).expect("static redaction pattern");
        vec![
            // Header-ish "name: value" / "name=value" pairs, including JSON-quoted forms.
            (
                re(r#"(?i)\b(x-api-key|api[-_]?key|authorization|access[-_]?token|secret)(["']?\s*[:=]\s*["']?)(?:bearer\s+)?[^\s"',;}]+"#),
                "${1}${2}[REDACTED]",
            ),
            (re(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]{6,}"), "Bearer [REDACTED]"),
            // Vendor key shapes: OpenAI / Anthropic (sk-, sk-ant-), Mailgun-style key-, Groq,
            // Hugging Face, Google.
            (re(r"\bsk-[A-Za-z0-9_\-]{10,}"), MASK),
            (re(r"\bkey-[A-Za-z0-9_\-]{16,}"), MASK),
            (re(r"\bgsk_[A-Za-z0-9]{16,}"), MASK),
            (re(r"\bhf_[A-Za-z0-9]{16,}"), MASK),
            (re(r"\bAIza[0-9A-Za-z_\-]{20,}"), MASK),
        ]
    })
}

/// Removes anything shaped like an API key or credential header from `text`.
///
/// Applied to every error text that can carry provider output or transport detail: providers
/// echo request headers in some 4xx bodies, and a model string can itself be a pasted key.
pub fn redact(text: &str) -> String {
    let mut out = text.to_owned();
    for (re, rep) in patterns() {
        if re.is_match(&out) {
            out = re.replace_all(&out, *rep).into_owned();
        }
    }
    out
}

/// [`redact`] plus literal removal of the configured secrets, which need not look like keys.
pub(crate) fn redact_with(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for s in secrets {
        if s.len() >= 4 && out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    redact(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_key_shapes_and_headers() {
        let t = "bad key sk-ant-api03-abcdefghijklmnop, header x-api-key: zzzzzzzz and \
                 Authorization: Bearer abc.def.ghi123 and {\"api_key\": \"plainsecret\"}";
        let r = redact(t);
        for leak in ["abcdefghijklmnop", "zzzzzzzz", "abc.def.ghi123", "plainsecret"] {
            assert!(!r.contains(leak), "{leak} leaked in {r}");
        }
        assert!(r.contains("bad key"));
    }

    #[test]
    fn leaves_ordinary_words() {
        let t = "risk-assessment for task-runner on claude-sonnet-4-20250514";
        assert_eq!(redact(t), t);
    }

    #[test]
    fn literal_secrets() {
        assert_eq!(redact_with("echo: hunter22", &["hunter22".into()]), "echo: [REDACTED]");
    }
}

//! The LLM's flag and environment.

use nthlayer_llm::LlmConfig;

#[derive(Debug, Clone, clap::Args)]
pub struct LlmArgs {
    /// LLM policy for a module: MODULE={"model":"openai/gpt-4o-mini","max_calls_per_cycle":4,
    /// "max_tokens_per_hour":200000} (repeatable). The `llm` grant is still required.
    #[arg(long = "llm", value_name = "MODULE=JSON")]
    pub llm: Vec<String>,
    /// Provider, model and keys from the environment, as the reference reads them
    /// (`NTHLAYER_MODEL`, `ANTHROPIC_API_KEY`, `OPENAI_API_BASE`, `OPENAI_API_KEY`,
    /// `NTHLAYER_LLM_STUB=canned`, …: nthlayer-llm's `LlmConfig`, whose Debug hides keys).
    /// None: not configured (offline commands).
    #[arg(skip = Some(LlmConfig::from_env()))]
    pub provider: Option<LlmConfig>,
}

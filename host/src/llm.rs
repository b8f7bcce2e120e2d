//! The LLM service behind the `llm` import. (Provider wiring lands with the llm issue.)

use tokio::time::Instant;

use crate::bindings::v0_1::nthlayer::worker::llm::{StructuredRequest, StructuredResponse};
use crate::bindings::HostError;

#[derive(Clone, Default)]
pub struct LlmService {}

impl LlmService {
    pub fn not_configured() -> Self {
        LlmService {}
    }

    pub async fn structured_call(
        &self,
        _module: &str,
        _call_no: u32,
        _req: StructuredRequest,
        _deadline: Instant,
    ) -> Result<StructuredResponse, HostError> {
        Err(HostError::Unavailable("not configured".into()))
    }
}

//! `nthlayer:worker/llm`: structured calls through the operator-controlled LLM service.

use crate::bindings::latest::nthlayer::worker::llm::{Host, StructuredRequest, StructuredResponse};
use crate::bindings::HostError;
use crate::policy::table::Capability;
use super::State;
use crate::capability::View;
use crate::tape;

impl Host for View<'_, State> {
    async fn structured_call(&mut self, request: StructuredRequest) -> Result<StructuredResponse, HostError> {
        self.cx.guard(Capability::Llm)?;
        self.cx.check_request("llm request", request.system.len() + request.user.len() + request.schema.len())?;
        let llm = self.state.service.clone();
        let (deadline, module, cycle) = (self.cx.deadline, self.cx.module.clone(), self.state.cycle.clone());
        let schema = serde_json::from_str::<serde_json::Value>(&request.schema)
            .unwrap_or_else(|_| serde_json::Value::String(request.schema.clone()));
        let args = serde_json::json!({"request": {"system": request.system, "user": request.user, "schema": schema,
            "schema-name": request.schema_name, "max-tokens": request.max_tokens, "timeout-ms": request.timeout_ms,
            "max-retries": request.max_retries}});
        let live = crate::capability::shared::import::observed("llm", async move { llm.structured_call(&module, &cycle, request, deadline).await });
        let response = tape::read(self.cx.tape.clone(), "llm", "structured-call", args, live).await?;
        // The provider's answer is bounded by max-tokens only if the provider honours it; the
        // guest-facing cap applies to this import as to every other.
        let max = self.cx.limits.max_response_bytes;
        if response.value.len() > max {
            return Err(HostError::Invalid(format!(
                "llm response of {} bytes exceeds the limit of {max} bytes",
                response.value.len()
            )));
        }
        Ok(response)
    }
}

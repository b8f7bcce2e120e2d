//! `nthlayer:worker/llm`: structured calls through the operator-controlled LLM service.

use crate::bindings::v0_1::nthlayer::worker::llm::{Host, StructuredRequest, StructuredResponse};
use crate::bindings::HostError;
use crate::capabilities::Capability;
use crate::runtime::store::StoreData;

impl Host for StoreData {
    async fn structured_call(&mut self, request: StructuredRequest) -> Result<StructuredResponse, HostError> {
        self.guard(Capability::Llm)?;
        self.check_request("llm request", request.system.len() + request.user.len() + request.schema.len())?;
        self.cx.llm_calls += 1;
        let llm = self.cx.services.llm.clone();
        let (deadline, module, cycle) = (self.cx.deadline, self.cx.module.clone(), self.cx.llm_cycle.clone());
        llm.structured_call(&module, &cycle, request, deadline).await
    }
}

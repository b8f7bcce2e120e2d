//! Where the `core` import posts the records of a cycle that does not hold them: the
//! one-shot commands (gate, run), which post directly to core. Scheduled cycles hold
//! theirs for the outbox instead.

use crate::backend::core::CoreClient;
use crate::backend::envelope::Emitted;
use crate::backend::ClientError;
use futures_util::future::BoxFuture;

/// Takes the records a module submits (assessments, verdicts) and answers the id stored.
pub trait RecordSink: Send + Sync {
    fn submit<'a>(&'a self, record: &'a Emitted) -> BoxFuture<'a, Result<String, ClientError>>;
}

impl RecordSink for CoreClient {
    fn submit<'a>(&'a self, record: &'a Emitted) -> BoxFuture<'a, Result<String, ClientError>> {
        Box::pin(CoreClient::submit(self, record))
    }
}

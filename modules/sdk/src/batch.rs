//! What the batched host calls take (contract 0.4.0): many records or queries per call, each
//! answered on its own. A module that batches crosses into the host once per batch instead
//! of once per record or query; everything else (grants, caps, ids, order) is as if it had
//! made the single calls one by one.

use serde_json::Value;

use crate::types::RecordKind;

/// Records the host takes in one `submit-batch`; the SDK splits a longer list into calls of
/// this many, so a module never meets the cap.
pub const SUBMIT_BATCH: usize = 1024;
/// Queries the host takes in one batched Prometheus call; the SDK splits longer lists.
pub const QUERY_BATCH: usize = 256;

/// One record for [`crate::Host::submit_batch`]: what `submit_assessment` or
/// `submit_verdict` takes.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub kind: RecordKind,
    /// The assessment or verdict itself; the host builds the CloudEvents envelope.
    pub record: Value,
    /// The envelope's source component; none means the module.
    pub source: Option<String>,
}

impl Submission {
    pub fn assessment(record: Value, source: Option<&str>) -> Self {
        Submission { kind: RecordKind::Assessment, record, source: source.map(Into::into) }
    }
    pub fn verdict(record: Value, source: Option<&str>) -> Self {
        Submission { kind: RecordKind::Verdict, record, source: source.map(Into::into) }
    }
}

/// One instant query for [`crate::Host::prom_query_at_batch`]: `prom_query`'s arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantQuery {
    pub promql: String,
    /// Unix seconds; none means the server's now.
    pub at: Option<f64>,
}

/// One range query for [`crate::Host::prom_query_range_batch`]: `prom_query_range`'s arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeQuery {
    pub promql: String,
    pub start: f64,
    pub end: f64,
    /// Prometheus duration syntax ("1h") or seconds.
    pub step: String,
}

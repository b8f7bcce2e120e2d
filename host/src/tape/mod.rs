//! Import-level recording and replay: `--record DIR` writes what the backends answered a
//! cycle, `run-once --fixtures DIR` answers a cycle from those files (docs/modules.md,
//! "Fixture format").
//!
//! Recorded at the import boundary, not HTTP: the files are the same whatever language the
//! module is written in, a replay needs no server, and what is matched is exactly what the
//! module asked. The sandbox's clock and randomness are part of the tape, which is what
//! makes record ids, timestamps and query times of a replay equal to the recording's.

pub mod config;
pub mod format;
pub mod record;
pub mod replay;
pub mod sandbox;

use std::future::Future;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::bindings::latest::nthlayer::worker::llm::{StructuredResponse, Usage};
use crate::bindings::HostError;
pub use record::{RecordTo, Recorder};
pub use replay::Replay;

/// What a cycle's imports do besides (or instead of) calling the backends.
#[derive(Clone)]
pub enum Tape {
    Replay(Arc<Replay>),
    Record(Arc<Recorder>),
}

impl Tape {
    /// Gives the sandbox the tape's clock and randomness.
    pub fn pin_sandbox(&self, wasi: &mut wasmtime_wasi::WasiCtxBuilder) {
        match self {
            Tape::Record(r) => {
                wasi.wall_clock(sandbox::RecordingClock(r.clock_ns.clone()))
                    .secure_random(sandbox::RecordingRng(r.random.clone()))
                    .insecure_random(sandbox::RecordingRng(r.random.clone()))
                    .insecure_random_seed(r.insecure_seed);
            }
            Tape::Replay(p) => {
                let rng = sandbox::ReplayRng::new(p.random_bytes());
                wasi.wall_clock(sandbox::ReplayClock::new(p.cycle.clock_ns.clone()))
                    .secure_random(rng.clone())
                    .insecure_random(rng)
                    .insecure_random_seed(p.insecure_seed());
            }
        }
    }
}

/// An import's answer as fixture JSON and back.
pub trait Answer: Sized {
    fn to_json(&self) -> Value;
    fn from_json(v: &Value) -> Result<Self, String>;
}

impl Answer for Value {
    fn to_json(&self) -> Value {
        self.clone()
    }
    fn from_json(v: &Value) -> Result<Self, String> {
        Ok(v.clone())
    }
}

/// An answer kept as the JSON text a backend sent (backend/prometheus.rs): a fixture holds it
/// as JSON, as it held the parsed answer before.
impl Answer for Box<serde_json::value::RawValue> {
    fn to_json(&self) -> Value {
        serde_json::from_str(self.get()).unwrap_or(Value::Null)
    }
    fn from_json(v: &Value) -> Result<Self, String> {
        serde_json::value::to_raw_value(v).map_err(|e| e.to_string())
    }
}

impl Answer for String {
    fn to_json(&self) -> Value {
        Value::String(self.clone())
    }
    fn from_json(v: &Value) -> Result<Self, String> {
        v.as_str().map(str::to_string).ok_or_else(|| format!("expected a string, found {v}"))
    }
}

impl Answer for () {
    fn to_json(&self) -> Value {
        Value::Null
    }
    fn from_json(_: &Value) -> Result<Self, String> {
        Ok(())
    }
}

impl Answer for StructuredResponse {
    fn to_json(&self) -> Value {
        let value = serde_json::from_str::<Value>(&self.value).unwrap_or_else(|_| Value::String(self.value.clone()));
        let u = &self.usage;
        json!({"value": value, "usage": {"model": u.model, "input-tokens": u.input_tokens,
            "output-tokens": u.output_tokens, "latency-ms": u.latency_ms}})
    }
    fn from_json(v: &Value) -> Result<Self, String> {
        let value = v.get("value").ok_or("structured-call answer needs \"value\"")?.to_string();
        let u = v.get("usage").cloned().unwrap_or(json!({}));
        let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0) as u32;
        let model = u.get("model").and_then(Value::as_str).unwrap_or("fixture").to_string();
        let usage = Usage {
            model,
            input_tokens: n("input-tokens"),
            output_tokens: n("output-tokens"),
            latency_ms: n("latency-ms"),
        };
        Ok(StructuredResponse { value, usage })
    }
}

/// Which list of `run-once`'s `submitted` a write lands in.
#[derive(Debug, Clone, Copy)]
pub enum Write {
    Assessment,
    Verdict,
    Case,
    Outcome,
    Autonomy,
}

/// A call that only reads. Replayed: answered from the fixture, or unmatched.
pub async fn read<T: Answer>(
    tape: Option<Tape>,
    interface: &'static str,
    call: &'static str,
    args: Value,
    live: impl Future<Output = Result<T, HostError>>,
) -> Result<T, HostError> {
    match tape {
        None => live.await,
        Some(Tape::Record(r)) => {
            let answer = live.await;
            r.push(interface, call, args, answer.as_ref().map(Answer::to_json).map_err(Clone::clone));
            answer
        }
        Some(Tape::Replay(p)) => match p.lookup(interface, call, &args) {
            Some(answer) => p.decode(interface, call, &args, answer),
            None => Err(p.miss(interface, call, args)),
        },
    }
}

/// A call that changes something. Replayed: captured, and answered from a matching fixture
/// entry or else `fresh` (what core answers a first write).
pub async fn write<T: Answer>(
    tape: Option<Tape>,
    interface: &'static str,
    call: &'static str,
    (what, captured): (Write, Value),
    args: Value,
    fresh: impl FnOnce() -> T,
    live: impl Future<Output = Result<T, HostError>>,
) -> Result<T, HostError> {
    match tape {
        Some(Tape::Replay(p)) => {
            p.capture(what, captured);
            match p.lookup(interface, call, &args) {
                Some(answer) => p.decode(interface, call, &args, answer),
                None => Ok(fresh()),
            }
        }
        other => read(other, interface, call, args, live).await,
    }
}

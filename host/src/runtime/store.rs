//! What lives in a per-cycle `Store`: the WASI context (granting nothing), the limiter, and
//! the cycle context every import consults (who is calling, what it may do, until when).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::cpu::GuestClock;
use super::limits::{Limiter, Limits};
use crate::capability::services::Services;
use crate::policy::grants::Grants;

/// Who is running and with what rights; read by every import.
pub struct CycleCtx {
    pub module: String,
    /// The module version, on every log line the module writes (wit/log.wit promises it).
    pub version: String,
    pub task: String,
    pub services: Arc<Services>,
    pub grants: Grants,
    pub limits: Limits,
    /// The whole cycle (guest time plus host calls) must end by then.
    pub deadline: Instant,
    pub log_lines: u32,
    pub log_dropped: u32,
    pub emitted: u32,
    /// Every external effect of a scheduled cycle (records, outcomes, cases, arbiter
    /// reductions), in call order, held until it commits (outbox/); None: the cycle calls
    /// core and the arbiter directly (one-shot commands such as the gate).
    pub held: Option<Vec<crate::outbox::Effect>>,
    /// Bytes of every held effect, capped at [`crate::outbox::MAX_HELD_BYTES`].
    pub held_bytes: usize,
    /// Per-cycle LLM call counter the operator's `max_calls_per_cycle` is checked against.
    pub llm_cycle: Arc<nthlayer_llm::CycleBudget>,
    /// Recording or replaying this cycle's imports (`--record`, `run-once`); None: live.
    pub tape: Option<crate::tape::Tape>,
    /// The host's execution slots (`--max-concurrent-cycles`): one is held while guest code
    /// runs and given back at every host call (runtime/cycle.rs). None: unlimited (CLI runs).
    pub slots: Option<Arc<Semaphore>>,
}

impl CycleCtx {
    /// A context for one call, with its deadline `limits.wall_ms` from now and zeroed
    /// counters.
    pub fn new(
        module: &str,
        version: &str,
        task: &str,
        services: Arc<Services>,
        grants: Grants,
        limits: Limits,
    ) -> Self {
        CycleCtx {
            module: module.to_string(),
            version: version.to_string(),
            task: task.to_string(),
            services,
            grants,
            deadline: Instant::now() + limits.wall(),
            limits,
            log_lines: 0,
            log_dropped: 0,
            emitted: 0,
            held: None,
            held_bytes: 0,
            llm_cycle: Default::default(),
            tape: None,
            slots: None,
        }
    }

    /// Holds the cycle's effects for the outbox's commit instead of sending them.
    pub fn holding(mut self) -> Self {
        self.held = Some(Vec::new());
        self
    }
}

pub struct StoreData {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limiter: Limiter,
    pub cx: CycleCtx,
    /// Guest CPU charged against `cpu_ms` (runtime/cpu.rs), updated by the call hooks.
    pub cpu: GuestClock,
    /// The execution slot held while guest code runs (see [`CycleCtx::slots`]).
    pub slot: Option<OwnedSemaphorePermit>,
    pub stdout: BoundedPipe,
    pub stderr: BoundedPipe,
}

impl StoreData {
    pub fn new(cx: CycleCtx) -> Self {
        let stdout = BoundedPipe::new(cx.limits.stdio_bytes);
        let stderr = BoundedPipe::new(cx.limits.stdio_bytes);
        // No preopens, no environment, no arguments, no network: a module sees the host only
        // through the nthlayer imports. Clocks and randomness are the real ones, unless the
        // cycle is recorded (noted) or replayed (pinned to the recording).
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
        if let Some(tape) = &cx.tape {
            tape.pin_sandbox(&mut wasi);
        }
        let wasi = wasi.build();
        StoreData {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter::new(&cx.limits),
            cpu: GuestClock::new(std::time::Duration::from_millis(cx.limits.cpu_ms.max(1))),
            slot: None,
            cx,
            stdout,
            stderr,
        }
    }
}

impl StoreData {
    /// Keeps one of a scheduled cycle's effects for its commit (outbox/), in call order; every
    /// kind counts against [`crate::outbox::MAX_HELD_BYTES`], so a module cannot make the
    /// host buffer without bound.
    pub fn hold(&mut self, effect: crate::outbox::Effect, bytes: usize) -> Result<(), crate::bindings::HostError> {
        if self.cx.held_bytes + bytes > crate::outbox::MAX_HELD_BYTES {
            return Err(crate::bindings::HostError::Invalid(format!(
                "this cycle's effects exceed {} bytes held for one commit",
                crate::outbox::MAX_HELD_BYTES
            )));
        }
        self.cx.held_bytes += bytes;
        self.cx.emitted += 1;
        self.cx.held.get_or_insert_with(Vec::new).push(effect);
        Ok(())
    }
}

impl WasiView for StoreData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Bytes of a stream's most recent output kept for error messages (a panic message comes
/// last, after whatever filled the kept head).
const TAIL_BYTES: usize = 2048;

/// Guest stdout or stderr for one cycle: keeps the first `capacity` bytes, silently drops
/// (and counts) the rest, and remembers the last [`TAIL_BYTES`]. Writes never fail: with
/// wasmtime's `MemoryOutputPipe` a write past capacity is an error (or a trap), which makes
/// Rust's `println!` panic, so a chatty but correct module would fail its cycle.
#[derive(Clone)]
pub struct BoundedPipe {
    buf: Arc<Mutex<PipeBuf>>,
}

struct PipeBuf {
    capacity: usize,
    kept: Vec<u8>,
    dropped: u64,
    tail: Vec<u8>,
}

impl BoundedPipe {
    pub fn new(capacity: usize) -> Self {
        BoundedPipe { buf: Arc::new(Mutex::new(PipeBuf { capacity, kept: Vec::new(), dropped: 0, tail: Vec::new() })) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PipeBuf> {
        self.buf.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn push(&self, bytes: &[u8]) {
        let mut b = self.lock();
        let room = b.capacity.saturating_sub(b.kept.len());
        let keep = room.min(bytes.len());
        b.kept.extend_from_slice(&bytes[..keep]);
        b.dropped += (bytes.len() - keep) as u64;
        let recent = &bytes[bytes.len().saturating_sub(TAIL_BYTES)..];
        b.tail.extend_from_slice(recent);
        if b.tail.len() > 2 * TAIL_BYTES {
            let cut = b.tail.len() - TAIL_BYTES;
            b.tail.drain(..cut);
        }
    }

    /// The kept head of the output (at most `capacity` bytes).
    pub fn contents(&self) -> Vec<u8> {
        self.lock().kept.clone()
    }

    /// The last bytes written, kept or not (at most 2 KiB).
    pub fn tail(&self) -> Vec<u8> {
        let b = self.lock();
        b.tail[b.tail.len().saturating_sub(TAIL_BYTES)..].to_vec()
    }

    /// Bytes written beyond `capacity` and dropped.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    pub fn capacity(&self) -> usize {
        self.lock().capacity
    }
}

impl AsyncWrite for BoundedPipe {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for BoundedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

// Only `async_stream` is implemented: the default `p2_stream` wraps it in wasmtime-wasi's
// `AsyncWriteStream`, whose readiness and flush semantics are the reference ones. Our writes
// complete immediately, so the guest never waits on them.
impl StdoutStream for BoundedPipe {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_pipe_keeps_the_head_counts_the_rest_and_remembers_the_tail() {
        let p = BoundedPipe::new(10);
        p.push(b"0123456");
        p.push(b"789abcdef");
        p.push(b"panicked at x");
        assert_eq!(p.contents(), b"0123456789");
        assert_eq!(p.dropped(), 6 + 13);
        assert!(p.tail().ends_with(b"panicked at x"));
        let big = vec![b'y'; 10 * TAIL_BYTES];
        p.push(&big);
        p.push(b"last words");
        assert_eq!(p.tail().len(), TAIL_BYTES);
        assert!(p.tail().ends_with(b"last words"));
    }
}

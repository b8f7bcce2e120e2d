//! The runtime's part of a per-cycle `Store`: the WASI context (granting nothing), the
//! memory limiter, the CPU clock, the execution slot and the bounded stdio pipes.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::cpu::{GuestClock, SharedClock};
use super::limiter::Limiter;
use crate::policy::limits::Limits;

/// The sandbox half of a cycle's store data: everything the runtime itself reads between
/// guest calls (the memory limiter, the CPU clock, the execution slot, stdio). The rooms and
/// the shared context sit beside it in `crate::store::StoreData`.
pub struct Sandbox {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limiter: Limiter,
    /// Guest CPU charged against `cpu_ms` (runtime/cpu.rs), updated by the call hooks and by
    /// the future driving the store (shared with it).
    pub cpu: SharedClock,
    /// The host's execution slots (`--max-concurrent-cycles`): one is held while guest code
    /// runs and given back at every host call (runtime/cycle.rs). None: unlimited (CLI runs).
    pub slots: Option<Arc<Semaphore>>,
    /// The execution slot held while guest code runs.
    pub slot: Option<OwnedSemaphorePermit>,
    pub stdout: BoundedPipe,
    pub stderr: BoundedPipe,
}

impl Sandbox {
    /// `pin` may pin the clocks and randomness (a recorded or replayed cycle, tape/).
    pub fn new(limits: &Limits, slots: Option<Arc<Semaphore>>, pin: impl FnOnce(&mut WasiCtxBuilder)) -> Self {
        let stdout = BoundedPipe::new(limits.stdio_bytes);
        let stderr = BoundedPipe::new(limits.stdio_bytes);
        // No preopens, no environment, no arguments, no network: a module sees the host only
        // through the nthlayer imports. Clocks and randomness are the real ones, unless the
        // cycle is recorded (noted) or replayed (pinned to the recording), or runs under HA
        // (randomness seeded from the cycle, seeded.rs).
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
        pin(&mut wasi);
        Sandbox {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: Limiter::new(limits),
            cpu: GuestClock::shared(std::time::Duration::from_millis(limits.cpu_ms.max(1))),
            slots,
            slot: None,
            stdout,
            stderr,
        }
    }

    pub fn wasi(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// What the runtime needs of a store's data, and all it knows of it: the sandbox, who runs
/// (for log lines), the limits and the deadline, and what a finished cycle leaves behind.
/// The data itself — the shared context and the capability rooms — is composed above the
/// runtime (`crate::store`), so the runtime names no capability, outbox or backend.
pub trait CycleData: WasiView + Send + Sized + 'static {
    /// What a throwaway store for `describe()` is built from (for the host: its backends).
    type Env: Send + Sync + 'static;
    /// The effects a cycle holds for its commit.
    type Held: std::fmt::Debug + Clone + PartialEq + Send;

    /// Data for a `describe()` call: no grants, the given limits.
    fn describing(env: Self::Env, limits: Limits) -> Self;
    fn sandbox(&mut self) -> &mut Sandbox;
    fn sandbox_ref(&self) -> &Sandbox;
    /// The module and task, for the log lines of the guest's stdio.
    fn who(&self) -> (&str, &str);
    fn limits(&self) -> &Limits;
    fn deadline(&self) -> tokio::time::Instant;
    /// Takes what the cycle held and counted, once its call returned.
    fn finish(&mut self) -> Finished<Self::Held>;
}

/// What a finished cycle's data hands back besides the guest's output.
pub struct Finished<H> {
    pub held: H,
    /// What holding `held` costs the host, in real bytes.
    pub held_bytes: usize,
    pub emitted: u32,
    pub log_dropped: u32,
    /// A per-cycle bound the rooms enforced outside wasm (records, held bytes): the cycle
    /// fails with this, whatever the guest returned.
    pub refused: Option<String>,
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

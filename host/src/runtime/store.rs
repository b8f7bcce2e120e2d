//! What lives in a per-cycle `Store`: the WASI context (granting nothing), the limiter, and
//! the cycle context every import consults (who is calling, what it may do, until when).

use std::sync::Arc;

use tokio::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::limits::{Limiter, Limits};
use crate::capabilities::Grants;
use crate::services::Services;

/// Who is running and with what rights; read by every import.
pub struct CycleCtx {
    pub module: String,
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
    pub llm_calls: u32,
    /// Per-cycle LLM call counter the operator's `max_calls_per_cycle` is checked against.
    pub llm_cycle: Arc<nthlayer_llm::CycleBudget>,
}

pub struct StoreData {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limiter: Limiter,
    pub cx: CycleCtx,
    /// Epoch ticks observed while guest code ran (see `cycle::cpu_callback`).
    pub cpu_ticks: u64,
    pub stdout: MemoryOutputPipe,
    pub stderr: MemoryOutputPipe,
}

impl StoreData {
    pub fn new(cx: CycleCtx) -> Self {
        let stdout = MemoryOutputPipe::new(cx.limits.stdio_bytes);
        let stderr = MemoryOutputPipe::new(cx.limits.stdio_bytes);
        // No preopens, no environment, no arguments, no network: a module sees the host only
        // through the nthlayer imports. Clocks and randomness are the real ones.
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        StoreData {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter::new(&cx.limits),
            cx,
            cpu_ticks: 0,
            stdout,
            stderr,
        }
    }
}

impl WasiView for StoreData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

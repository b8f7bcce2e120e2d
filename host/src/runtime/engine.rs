//! The one wasmtime `Engine` and its epoch ticker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use wasmtime::{Config, Engine};

/// One epoch tick. CPU budgets are counted in ticks, so this is their resolution.
pub const TICK: Duration = Duration::from_millis(10);

pub fn new_engine() -> Result<Engine> {
    let mut cfg = Config::new();
    cfg.wasm_component_model(true)
        // Epochs, not fuel: fuel costs ~10-30 % of guest speed on every instruction, epochs
        // cost one check per loop header and function entry.
        .epoch_interruption(true)
        // Deep recursion must trap cleanly, long before it can touch the host's own stack.
        .max_wasm_stack(1 << 20)
        .cranelift_opt_level(wasmtime::OptLevel::Speed);
    Ok(Engine::new(&cfg)?)
}

/// Advances the engine's epoch every [`TICK`] on a plain thread (it must keep ticking even
/// when every tokio worker is busy running guest code). Stops when dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("nthlayer-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawn epoch ticker thread");
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

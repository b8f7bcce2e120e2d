//! A cycle's randomness derived from what the cycle is, not drawn fresh, under HA
//! (docs/HA.md "Record ids"). Modules make record ids from `wasi:random` (the SDK's `hex8`);
//! seeded from (task instance, the state the cycle starts from, the cycle's slot), two
//! replicas that ever run the same cycle from the same state make the same ids, so core
//! answers the second one's records with 409 instead of storing them twice.
//!
//! The slot is the cycle's start in whole intervals since the Unix epoch
//! (`floor(start / interval)`), for scheduled and woken cycles alike: a woken cycle in the
//! same interval as a scheduled one from the same state is the same cycle for this purpose.
//! The cost: whoever knows the task, its state and the time can predict the guest's
//! randomness, so it must not be used for secrets (no built-in module does).

use std::convert::Infallible;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::{RngCore as _, SeedableRng as _};
use rand_core::TryRng;
use sha2::{Digest, Sha256};

use super::task_state::TaskState;

/// What seeds a cycle's randomness.
pub type Seed = [u8; 32];

/// The slot of a cycle started at `at` on a task of this interval.
pub fn slot(at: SystemTime, interval: Duration) -> u64 {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    since.as_secs() / interval.as_secs().max(1)
}

/// The seed of the cycle of `task` starting from `state` (its JSON text, as the guest gets
/// it) in `slot`.
pub fn seed(task: &str, state: Option<&TaskState>, slot: u64) -> Seed {
    let state = state.map(TaskState::as_str).unwrap_or_default();
    let mut h = Sha256::new();
    for part in [task.as_bytes(), state.as_bytes()] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.update(slot.to_le_bytes());
    h.finalize().into()
}

/// Pins both `wasi:random` interfaces to a stream from `seed` (one stream, so the order a
/// deterministic guest asks in decides what it gets, as on a replayed tape).
pub fn pin(wasi: &mut wasmtime_wasi::WasiCtxBuilder, seed: Seed) {
    let rng = SeededRng(std::sync::Arc::new(std::sync::Mutex::new(rand::rngs::StdRng::from_seed(seed))));
    let insecure = u128::from_le_bytes(seed[..16].try_into().expect("16 bytes"));
    wasi.secure_random(rng.clone()).insecure_random(rng).insecure_random_seed(insecure);
}

#[derive(Clone)]
struct SeededRng(std::sync::Arc<std::sync::Mutex<rand::rngs::StdRng>>);

impl TryRng for SeededRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).fill_bytes(dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bytes(seed: Seed) -> Vec<u8> {
        let mut rng = SeededRng(std::sync::Arc::new(std::sync::Mutex::new(rand::rngs::StdRng::from_seed(seed))));
        let mut b = vec![0; 16];
        rng.try_fill_bytes(&mut b).unwrap();
        b
    }

    #[test]
    fn same_task_state_and_slot_same_randomness_anything_else_differs() {
        let st = TaskState::from(json!({"slo_status": {"a": "breach"}}));
        let a = bytes(seed("measure#1of4", Some(&st), 100));
        assert_eq!(a, bytes(seed("measure#1of4", Some(&st), 100)));
        assert_ne!(a, bytes(seed("measure#1of4", Some(&st), 101)), "another slot");
        assert_ne!(a, bytes(seed("measure#2of4", Some(&st), 100)), "another shard");
        assert_ne!(a, bytes(seed("measure#1of4", None, 100)), "another state");
        let t = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(slot(t, Duration::from_secs(60)), 16_666);
        assert_eq!(slot(t + Duration::from_secs(19), Duration::from_secs(60)), 16_666);
        assert_eq!(slot(t + Duration::from_secs(20), Duration::from_secs(60)), 16_667);
    }
}

//! The sandbox's clock and randomness, recorded or replayed. Both secure and insecure
//! `wasi:random` draw from one byte stream, so the order a deterministic guest asks in is
//! the order the bytes are replayed in.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::{RngCore as _, SeedableRng as _};
use rand_core::TryRng;
use wasmtime_wasi::HostWallClock;

use super::format::DEFAULT_CLOCK_NS;

/// The real wall clock, noting every reading.
pub struct RecordingClock(pub Arc<Mutex<Vec<u64>>>);

impl HostWallClock for RecordingClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }
    fn now(&self) -> Duration {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        self.0.lock().expect("clock lock").push(now.as_nanos() as u64);
        now
    }
}

/// The recorded readings in order, then the last one forever.
pub struct ReplayClock {
    readings: Vec<u64>,
    next: Mutex<usize>,
}

impl ReplayClock {
    pub fn new(readings: Vec<u64>) -> Self {
        let readings = if readings.is_empty() { vec![DEFAULT_CLOCK_NS] } else { readings };
        ReplayClock { readings, next: Mutex::new(0) }
    }
}

impl HostWallClock for ReplayClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }
    fn now(&self) -> Duration {
        let mut i = self.next.lock().expect("clock lock");
        let ns = self.readings[(*i).min(self.readings.len() - 1)];
        *i += 1;
        Duration::from_nanos(ns)
    }
}

/// The host's real randomness, noting every byte handed out.
pub struct RecordingRng(pub Arc<Mutex<Vec<u8>>>);

impl TryRng for RecordingRng {
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
        rand::rng().fill_bytes(dst);
        self.0.lock().expect("random lock").extend_from_slice(dst);
        Ok(())
    }
}

/// The recorded bytes in order, then a fixed pseudo-random stream (seed 0). Clones share
/// the position.
#[derive(Clone)]
pub struct ReplayRng(Arc<Mutex<(Vec<u8>, usize, rand::rngs::StdRng)>>);

impl ReplayRng {
    pub fn new(bytes: Vec<u8>) -> Self {
        ReplayRng(Arc::new(Mutex::new((bytes, 0, rand::rngs::StdRng::seed_from_u64(0)))))
    }
}

impl TryRng for ReplayRng {
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
        let mut g = self.0.lock().expect("random lock");
        let (bytes, pos, tail) = &mut *g;
        let take = dst.len().min(bytes.len() - *pos);
        dst[..take].copy_from_slice(&bytes[*pos..*pos + take]);
        *pos += take;
        tail.fill_bytes(&mut dst[take..]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::Rng as _;

    #[test]
    fn replay_gives_back_what_was_recorded_then_stays_deterministic() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut rec = RecordingRng(seen.clone());
        let mut first = [0u8; 12];
        rec.fill_bytes(&mut first);
        let mut replay = ReplayRng::new(seen.lock().unwrap().clone());
        let mut again = [0u8; 12];
        replay.clone().fill_bytes(&mut again[..5]);
        replay.fill_bytes(&mut again[5..]);
        assert_eq!(first, again);
        let (mut a, mut b) = (ReplayRng::new(vec![]), ReplayRng::new(vec![]));
        assert_eq!(a.next_u64(), b.next_u64());

        let clock = ReplayClock::new(vec![5, 7]);
        assert_eq!([clock.now(), clock.now(), clock.now()].map(|d| d.as_nanos()), [5, 7, 7]);
        assert_eq!(ReplayClock::new(vec![]).now().as_nanos() as u64, DEFAULT_CLOCK_NS);
    }
}

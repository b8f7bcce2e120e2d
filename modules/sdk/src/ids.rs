//! Record id schemes of the reference, so ids look the same in core whichever runtime wrote
//! them.

use crate::{host::HostExt, time, Host};

/// `asm-<UTC date>-<hex8>-<seq:05>`: observe's assessment id. The reference's `seq` is a
/// process-wide counter; ours is carried in the task's state (see observe), so it keeps
/// counting across cycles and restarts instead of resetting to 1.
pub fn asm_id(host: &dyn Host, seq: u64) -> String {
    format!("asm-{}-{}-{:05}", time::date(host.now()), host.hex8(), seq)
}

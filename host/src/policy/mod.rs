//! Who may do what: one room for the operator's and the code's rights, one name per file.
//! - [`grants`]: Grants (capabilities + emissions), Trust (what the code is), GrantPolicy
//!   (`--grant`, `--trusted-dir`).
//! - [`builtin`]: the built-in modules shipped inside the binary and their sha256, the
//!   identity trust is decided on.
//! - [`emissions`]: which record kinds a module may post; the stamp on every record.
//! - [`caps`]: the bounded contract (a cap on every string and list a module hands the host).
//! - [`limits`]: what a module may use per cycle (`--limits`), enforced by the runtime.
//! - [`shares`]: fair shares between modules (execution slots, per-module caps).
//! - [`table`]: the one table of capabilities and the `Capability` enum it makes.

pub mod builtin;
pub mod caps;
pub mod config;
pub mod emissions;
pub mod grants;
pub mod limits;
pub mod memory;
pub mod shares;
pub mod table;

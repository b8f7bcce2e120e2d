//! `log`: guest log lines into the host's log. Every module has it, and it needs no backend
//! and no flag, so it has a room (its import) but no line in the capability table.

mod import;

use wasmtime::component::LinkerInstance;

use super::{Room, View};

/// A cycle's log counters: lines written and lines dropped past the module's `log_lines`.
#[derive(Debug, Default)]
pub struct State {
    pub lines: u32,
    pub dropped: u32,
}

/// Links the log import into one instance of the linker (see `Unit::link`).
pub fn link<T: Send + 'static>(
    inst: &mut LinkerInstance<'_, T>,
    get: fn(&mut T) -> View<'_, State>,
) -> wasmtime::Result<()> {
    crate::bindings::latest::nthlayer::worker::log::add_to_linker_instance::<T, Room<State>>(inst, get)
}

#[cfg(test)]
mod tests;

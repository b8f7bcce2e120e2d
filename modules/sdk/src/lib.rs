//! The module author's side of the `nthlayer:worker` contract.
//!
//! Module logic is written against [`Host`], a plain Rust trait, instead of against the
//! generated WIT bindings. That keeps every algorithm compilable and unit-testable natively
//! (with [`testing::FakeHost`]) while the wasm build wires the same trait to the host's
//! imports. A module crate needs exactly one line of wasm glue: [`export_module!`].

pub mod batch;
pub mod host;
pub mod ids;
pub mod py;
pub mod testing;
pub mod time;
pub mod types;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod glue;

pub use batch::{InstantQuery, RangeQuery, Submission};
pub use host::{Host, HostError, Level, LlmRequest, LlmResponse, VerdictQuery};
pub use types::{CycleInput, CycleOutput, Emission, FieldTest, Module, ModuleInfo, RecordKind, Task, WakeOn};

/// Re-exported so `export_module!` works without the module crate depending on it.
pub use serde_json;

/// WIT bindings, generated from the newest contract version in `wit/` at the repository
/// root (modules built with this SDK import `nthlayer:worker@0.4.0`). Only exists in wasm
/// builds.
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "worker",
        path: "../../wit/nthlayer-worker@0.4.0",
        pub_export_macro: true,
        export_macro_name: "__export_worker",
        default_bindings_module: "nthlayer_sdk::bindings",
    });
}

/// Exports a [`Module`] implementation as the component's `describe` / `run-cycle`.
/// Expands to nothing in native builds, so the same crate builds as a plain library.
#[macro_export]
macro_rules! export_module {
    ($module:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct NthlayerGuest;
            impl $crate::bindings::Guest for NthlayerGuest {
                fn describe() -> $crate::bindings::nthlayer::worker::types::ModuleInfo {
                    $crate::glue::describe::<$module>()
                }
                fn run_cycle(
                    input: $crate::bindings::nthlayer::worker::types::CycleInput,
                ) -> Result<$crate::bindings::nthlayer::worker::types::CycleOutput, String> {
                    $crate::glue::run_cycle::<$module>(input)
                }
            }
    $crate::bindings::__export_worker!(NthlayerGuest with_types_in $crate::bindings);
        };
    };
}

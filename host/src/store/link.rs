//! Every served contract version's imports, linked to the composed store data: WASI, then
//! for each version its `types` instance and each room's interface under that version's
//! name (capability/mod.rs's `link`). Old versions get the newest implementations — their
//! shapes are the same, which wasmtime checks structurally at pre-instantiation — so a fix
//! lands once (bindings/since_v0_*.rs hold their types and record conversions).

use wasmtime::component::Linker;
use wasmtime::Engine;

use super::StoreData;
use crate::bindings::SERVED;

pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<StoreData>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    for contract in SERVED {
        let version = contract.version();
        // Types only: an instance with nothing in it, as bindgen's own linking defines.
        linker.instance(&format!("nthlayer:worker/types@{version}"))?;
        crate::capability::link(&mut linker, version, contract.interfaces())?;
    }
    Ok(linker)
}

//! spooler: the record producer of the outbox suite (tests/tests/outbox_e2e.rs). Task
//! `spooler` every second, for cycles 1..=LAST:
//! - posts RECORDS `spool_probe` assessments `{cycle, i}` under fresh random ids, as real
//!   modules do (a re-run cycle gets new ids, so only the outbox's commit keeps core from
//!   seeing a cycle twice);
//! - one cycle in four fails half-way, after posting half of them (none may reach core);
//! - state `{"n": cycle}`.
//!
//! After LAST it keeps its state and posts nothing, so a test can wait for quiet.
//!
//! Built a second way (variants.txt, feature `flood`): `spooler-flood` posts 5,000 records
//! a cycle for 10 cycles and never fails, a 50,000-record backlog
//! (tests/tests/outbox_delivery.rs).

use nthlayer_sdk::host::HostExt;
use nthlayer_sdk::serde_json::{json, Value};
use nthlayer_sdk::{export_module, time, CycleInput, CycleOutput, Host, Module, ModuleInfo, Task};

#[cfg(not(feature = "flood"))]
pub const RECORDS: u64 = 10;
#[cfg(not(feature = "flood"))]
pub const LAST: u64 = 30;
#[cfg(feature = "flood")]
pub const RECORDS: u64 = 5_000;
#[cfg(feature = "flood")]
pub const LAST: u64 = 10;
/// Whether one cycle in four fails half-way.
const FAILING: bool = cfg!(not(feature = "flood"));

pub struct Spooler;

impl Module for Spooler {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: "spooler".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            tasks: vec![Task::new("spooler", 1, "posts numbered records, some cycles failing half-way")],
            needs: vec!["core".into()],
            emits: vec![nthlayer_sdk::Emission::assessment("spool_probe")],
        }
    }

    fn run_cycle(host: &dyn Host, input: CycleInput) -> Result<CycleOutput, String> {
        let done = input.state.as_ref().and_then(|s| s.get("n")).and_then(Value::as_u64).unwrap_or(0);
        if done >= LAST {
            return Ok(CycleOutput { state: Some(json!({ "n": done })), result: None, emitted: 0 });
        }
        let n = done + 1;
        let fail = FAILING && host.random_u64() % 4 == 0;
        for i in 0..RECORDS {
            if fail && i == RECORDS / 2 {
                return Err(format!("planned failure half-way through cycle {n}"));
            }
            let record = json!({
                "id": format!("asm-spool-{}{}", host.hex8(), host.hex8()),
                "created_at": time::iso(host.now()),
                "kind": "spool_probe",
                "service": "spooler",
                "data": {"cycle": n, "i": i},
            });
            host.submit_assessment(&record, None).map_err(|e| format!("{e:?}"))?;
        }
        Ok(CycleOutput { state: Some(json!({ "n": n })), result: None, emitted: RECORDS as u32 })
    }
}

export_module!(Spooler);

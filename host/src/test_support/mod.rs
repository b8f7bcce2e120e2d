//! What tests need to exercise the host in-process (`test-support` feature; this crate's own
//! tests turn it on through a dev-dependency on itself, so the shipped binary has none of
//! it): a scripted loopback HTTP server, and a cycle's store data built without a component,
//! so a test can call an import the way a guest would.

/// The scripted HTTP fake lives in its own small crate, so crates that need no host (the
/// integration harness, nthlayer-llm's tests) use it without linking the runtime.
pub use nthlayer_http_fake as http_fake;
pub use nthlayer_http_fake::{HttpFake, Matcher, Reply, Seen, Step};

use std::sync::Arc;
use std::time::Duration;

use crate::capability::CapabilityArgs;
use crate::capability::Services;
use crate::lifecycle::config::{HostConfig, LiveConfig};
use crate::lifecycle::scheduler::RunEnv;
use crate::policy::grants::Grants;
use crate::policy::limits::Limits;
use crate::policy::table::Capability;
use crate::store::{CycleCtx, StoreData};

/// The store data of one cycle of `module`'s task of the same name, version `1.0.0`, with
/// `grants` and `limits`; its deadline is `limits.wall_ms` from now. No component is
/// involved: call the imports' `Host` methods on a room's view of it (`s.core()`, `s.log()`,
/// … from `capability::HasRooms`), as the linker would.
pub fn store(module: &str, services: Arc<Services>, grants: Grants, limits: Limits) -> StoreData {
    StoreData::new(CycleCtx::new(module, "1.0.0", module, services, grants, limits))
}

/// Limits with a wall-clock deadline of `wall` and everything else at its default.
pub fn limits_with_wall(wall: Duration) -> Limits {
    Limits { wall_ms: wall.as_millis() as u64, ..Limits::default() }
}

/// Services from every flag's offline default, changed by `edit` (point a room at a fake).
pub fn services(edit: impl FnOnce(&mut CapabilityArgs)) -> Arc<Services> {
    let mut caps = CapabilityArgs::offline_defaults();
    edit(&mut caps);
    Arc::new(Services::build(&caps).expect("services from the test's flags"))
}

/// These capabilities, no record kinds.
pub fn granted(caps: &[Capability]) -> Grants {
    caps.iter().fold(Grants::none(), |g, c| g.with(*c))
}

/// What a cycle needs to run in-process: a runtime without an artifact cache, services
/// pointed at no backend, the default configuration.
pub fn run_env() -> RunEnv {
    RunEnv {
        runtime: crate::store::runtime(None).expect("runtime"),
        services: Arc::new(Services::offline().expect("offline services")),
        config: LiveConfig::shared(HostConfig::default()),
    }
}

//! The one path from flags to configuration, services, runtime and loaded modules that
//! every command shares, so `gate`, `run` and `run-once` load exactly what `serve` would.

use std::sync::Arc;

use anyhow::Result;

use crate::capability::Services;
use crate::command::args::ServeArgs;
use crate::lifecycle::config::{HostConfig, LiveConfig};
use crate::lifecycle::registry::Registry;
use crate::lifecycle::scheduler::RunEnv;
use crate::lifecycle::swap::Watcher;
use crate::policy::builtin::{self, Embedded};
use crate::policy::grants::GrantPolicy;

/// What every command builds from the same flags: configuration, backends, runtime, and
/// the modules loaded (files first, then the built-ins no file replaces).
pub struct Loaded {
    pub env: RunEnv,
    pub registry: Arc<Registry>,
    pub watcher: Watcher,
    /// Files (or built-ins) that failed to load.
    pub failures: usize,
    /// The watcher's grant policy (clones share its `--grant` lines: a reload swaps them).
    pub grants: GrantPolicy,
}

/// Loads what `args` asks for. `only_builtin` limits the embedded modules to one name (the
/// one-shot commands compile only the module their task lives in). `background`: large
/// uncached components compile in the background instead of delaying the rest (`serve`;
/// the watcher installs them when ready).
pub async fn load(args: &ServeArgs, only_builtin: Option<&str>, background: bool) -> Result<Loaded> {
    if args.swap.no_builtin && args.swap.modules.is_empty() {
        anyhow::bail!("--no-builtin without --modules leaves nothing to run");
    }
    let config = LiveConfig::shared(HostConfig::from_args(args)?);
    let grants = GrantPolicy::parse(&args.policy.grants)?.with_trusted_dirs(&args.swap.trusted_dirs)?;
    let mut services = Services::build(&args.caps)?;
    services.record = args.tape.record.clone().map(|dir| Arc::new(crate::tape::RecordTo::new(dir)));
    let services = Arc::new(services);
    let runtime = crate::store::runtime(args.cache.dir())?;
    let registry = Arc::new(Registry::default());
    let env = RunEnv { runtime, services, config };
    let builtins: &'static [Embedded] = match (args.swap.no_builtin, only_builtin) {
        (true, _) => &[],
        (false, None) => builtin::all(),
        (false, Some(name)) => {
            builtin::all().iter().position(|e| e.name == name).map_or(&[], |i| &builtin::all()[i..=i])
        }
    };
    let mut watcher = Watcher::new(
        args.swap.modules.clone(),
        env.clone(),
        registry.clone(),
        grants.clone(),
        args.swap.rollback_after,
    )
    .with_builtins(builtins)
    .with_background_compile(background);
    let failures = watcher.initial_load(None).await;
    builtin::release_pages();
    Ok(Loaded { env, registry, watcher, failures, grants })
}

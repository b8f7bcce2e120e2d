//! `nthlayer-host serve`: load modules, schedule their tasks, heartbeat, shut down cleanly.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::builtin::{self, Embedded};
use crate::capabilities::GrantPolicy;
use crate::config::{HostConfig, ServeArgs};
use crate::heartbeat::Heartbeat;
use crate::outbox::sender::Sender;
use crate::outbox::{Outbox, OutboxConfig};
use crate::registry::Registry;
use crate::runtime::{cache, Runtime};
use crate::scheduler::{RunEnv, Scheduler};
use crate::services::Services;
use crate::state::StateStore;
use crate::status::HostStatus;
use crate::swap::Watcher;

pub fn cache_dir(args: &ServeArgs) -> Option<std::path::PathBuf> {
    if args.no_cache {
        None
    } else {
        args.cache_dir.clone().or_else(cache::default_dir)
    }
}

/// What every command builds from the same flags: configuration, backends, runtime, and
/// the modules loaded (files first, then the built-ins no file replaces).
pub struct Loaded {
    pub env: RunEnv,
    pub registry: Arc<Registry>,
    pub watcher: Watcher,
    /// Files (or built-ins) that failed to load.
    pub failures: usize,
}

/// Loads what `args` asks for. `only_builtin` limits the embedded modules to one name (the
/// one-shot commands compile only the module their task lives in). `background`: large
/// uncached components compile in the background instead of delaying the rest (`serve`;
/// the watcher installs them when ready).
pub async fn load(args: &ServeArgs, only_builtin: Option<&str>, background: bool) -> Result<Loaded> {
    if args.no_builtin && args.modules.is_empty() {
        anyhow::bail!("--no-builtin without --modules leaves nothing to run");
    }
    let config = Arc::new(HostConfig::from_args(args)?);
    let grants = GrantPolicy::parse(&args.grants)?.with_trusted_dirs(&args.trusted_dirs)?;
    let mut services = Services::build(&args.caps)?;
    services.record = args.record.clone().map(|dir| Arc::new(crate::tape::RecordTo::new(dir)));
    let services = Arc::new(services);
    let runtime = Runtime::new(cache_dir(args))?;
    let registry = Arc::new(Registry::default());
    let env = RunEnv { runtime, services, config };
    let builtins: &'static [Embedded] = match (args.no_builtin, only_builtin) {
        (true, _) => &[],
        (false, None) => builtin::all(),
        (false, Some(name)) => {
            builtin::all().iter().position(|e| e.name == name).map_or(&[], |i| &builtin::all()[i..=i])
        }
    };
    let mut watcher = Watcher::new(args.modules.clone(), env.clone(), registry.clone(), grants, args.rollback_after)
        .with_builtins(builtins)
        .with_background_compile(background);
    let failures = watcher.initial_load(None).await;
    Ok(Loaded { env, registry, watcher, failures })
}

pub async fn serve(args: ServeArgs) -> Result<()> {
    let Loaded { env, registry, watcher, failures } = load(&args, None, true).await?;
    if registry.all().is_empty() {
        tracing::warn!(failures, "no module loaded; the host serves nothing until one loads");
    }
    let core = env.services.backends.core.clone();
    let status = HostStatus::new(registry.clone(), env.services.backends.llm.clone());
    let outbox = open_outbox(&args)?;
    env.services.outbox.set(outbox.clone()).ok().expect("the outbox is set once");
    status.set_outbox(outbox.report());
    let heartbeat = Heartbeat::new(core.clone(), args.instance_id.clone(), status.clone(), Some(outbox.clone()));
    let services = env.services.clone();
    let scheduler = Scheduler::new(env, StateStore::new(core), status.clone(), args.max_concurrent_cycles);
    scheduler.add_hook(outbox.clone());
    let sender = Arc::new(Sender::new(outbox.clone(), services, status, args.instance_id.clone()));
    let sending = tokio::spawn(sender.clone().run(scheduler.shutdown.clone()));
    for (_, slot) in registry.all() {
        scheduler.start_module(slot, Duration::from_millis(args.start_jitter_ms));
    }
    let hb = tokio::spawn(heartbeat.clone().run(scheduler.shutdown.clone()));
    // With --watch-interval-ms 0 the watcher only installs background compiles, then ends.
    tokio::spawn(watcher.run(scheduler.clone(), Duration::from_millis(args.watch_interval_ms)));
    tracing::info!(core = %args.caps.core.core_url, prometheus = %args.caps.prometheus.prometheus_url, instance = %args.instance_id,
        modules = registry.all().len(), spool = %args.state_dir()?.display(), "serving");

    wait_for_signal().await;
    tracing::info!("shutdown requested; finishing in-flight cycles");
    scheduler.stop(Duration::from_secs(args.shutdown_grace_seconds)).await;
    // The background sender ends after its current pass (stop cancelled the shutdown token);
    // then one drain delivers the last cycles' records, all within DRAIN_SECONDS. An entry
    // cut off mid-send is re-sent at the next start (core dedups).
    let drain = Duration::from_secs(DRAIN_SECONDS);
    let t = std::time::Instant::now();
    let mut sending = sending;
    if tokio::time::timeout(drain, &mut sending).await.is_err() {
        sending.abort();
    }
    sender.drain(drain.saturating_sub(t.elapsed())).await;
    hb.abort();
    heartbeat.last(Duration::from_secs(2)).await;
    tracing::info!("stopped");
    Ok(())
}

/// How long a stopping host keeps delivering the spool to core.
const DRAIN_SECONDS: u64 = 5;

fn open_outbox(args: &ServeArgs) -> Result<Arc<Outbox>> {
    Outbox::open(OutboxConfig {
        dir: args.state_dir()?,
        max_bytes: args.spool_max_bytes,
        max_age: Duration::from_secs(args.spool_max_age_seconds),
        retry_window: Duration::from_secs(args.delivery_retry_seconds),
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

//! `nthlayer-host serve`: load modules, schedule their tasks, heartbeat, shut down cleanly.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::builtin::{self, Embedded};
use crate::capabilities::GrantPolicy;
use crate::clients::arbiter::ArbiterClient;
use crate::clients::core::CoreClient;
use crate::clients::prometheus::PrometheusClient;
use crate::clients::retry::RetryPolicy;
use crate::clients::tempo::TempoClient;
use crate::config::{HostConfig, ServeArgs};
use crate::heartbeat::Heartbeat;
use crate::llm::LlmService;
use crate::registry::Registry;
use crate::runtime::{cache, Runtime};
use crate::scheduler::{RunEnv, Scheduler};
use crate::services::Services;
use crate::state::StateStore;
use crate::status::HostStatus;
use crate::swap::Watcher;

/// Backend clients from the CLI's URLs. `NTHLAYER_CORE_BACKOFF_MS` shortens the core retry
/// backoff (tests; the default is the reference's 1 s doubling).
pub fn build_services(core_url: &str, prometheus_url: &str, tempo: Option<&str>, llm: LlmService) -> Result<Services> {
    let mut retry = RetryPolicy::default();
    if let Some(ms) = crate::config::core_backoff_ms() {
        retry.first_delay = Duration::from_millis(ms);
    }
    let timeout = Duration::from_secs(30);
    let core = CoreClient::new(core_url, retry, timeout)?;
    Ok(Services {
        records: Arc::new(core.clone()),
        core,
        prometheus: PrometheusClient::new(prometheus_url, timeout)?,
        tempo: tempo.map(|t| TempoClient::new(t, timeout)).transpose()?,
        llm,
        arbiter: None,
        wake: Default::default(),
        record: None,
    })
}

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
    let mut services = build_services(
        &args.core_url,
        &args.prometheus_url,
        args.tempo_endpoint.as_deref(),
        LlmService::from_env(&args.llm)?,
    )?;
    services.arbiter = args.arbiter_url.as_deref().map(ArbiterClient::new).transpose()?;
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
    let core = env.services.core.clone();
    let status = HostStatus::new(registry.clone(), env.services.llm.clone());
    let heartbeat = Heartbeat::new(core.clone(), args.instance_id.clone(), status.clone());
    let scheduler = Scheduler::new(env, StateStore::new(core), status, args.max_concurrent_cycles);
    for (_, slot) in registry.all() {
        scheduler.start_module(slot, Duration::from_millis(args.start_jitter_ms));
    }
    let hb = tokio::spawn(heartbeat.clone().run(scheduler.shutdown.clone()));
    // With --watch-interval-ms 0 the watcher only installs background compiles, then ends.
    tokio::spawn(watcher.run(scheduler.clone(), Duration::from_millis(args.watch_interval_ms)));
    tracing::info!(core = %args.core_url, prometheus = %args.prometheus_url, instance = %args.instance_id, modules = registry.all().len(), "serving");

    wait_for_signal().await;
    tracing::info!("shutdown requested; finishing in-flight cycles");
    scheduler.stop(Duration::from_secs(args.shutdown_grace_seconds)).await;
    hb.abort();
    heartbeat.last(Duration::from_secs(2)).await;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

//! `nthlayer-host serve`: load modules, schedule their tasks, heartbeat, shut down cleanly.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use crate::capabilities::GrantPolicy;
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
use crate::swap::Watcher;

/// Backend clients from the CLI's URLs. `NTHLAYER_CORE_BACKOFF_MS` shortens the core retry
/// backoff (tests; the default is the reference's 1 s doubling).
pub fn build_services(core_url: &str, prometheus_url: &str, tempo: Option<&str>, llm: LlmService) -> Result<Services> {
    let mut retry = RetryPolicy::default();
    if let Some(ms) = std::env::var("NTHLAYER_CORE_BACKOFF_MS").ok().and_then(|v| v.parse().ok()) {
        retry.first_delay = Duration::from_millis(ms);
    }
    let timeout = Duration::from_secs(30);
    Ok(Services {
        core: CoreClient::new(core_url, retry, timeout)?,
        prometheus: PrometheusClient::new(prometheus_url, timeout)?,
        tempo: tempo.map(|t| TempoClient::new(t, timeout)).transpose()?,
        llm,
        wake: Default::default(),
    })
}

pub fn cache_dir(args: &ServeArgs) -> Option<std::path::PathBuf> {
    if args.no_cache {
        None
    } else {
        args.cache_dir.clone().or_else(cache::default_dir)
    }
}

pub async fn serve(args: ServeArgs) -> Result<()> {
    let config = Arc::new(HostConfig::from_args(&args)?);
    let grants = GrantPolicy::parse(&args.grants)?;
    let services = Arc::new(build_services(
        &args.core_url,
        &args.prometheus_url,
        args.tempo_endpoint.as_deref(),
        LlmService::from_env(&args.llm)?,
    )?);
    let runtime = Runtime::new(cache_dir(&args))?;
    let registry = Arc::new(Registry::default());
    let env = RunEnv { runtime: runtime.clone(), services: services.clone(), config: config.clone() };
    let mut watcher = Watcher::new(args.modules.clone(), env.clone(), registry.clone(), grants, args.rollback_after);
    let failures = watcher.initial_load(None).await;
    if registry.all().is_empty() {
        tracing::warn!(failures, "no module loaded; the host serves nothing until one loads");
    }

    let sched_cell: Arc<OnceLock<Arc<Scheduler>>> = Arc::new(OnceLock::new());
    let snapshot = {
        let (registry, cell, llm) = (registry.clone(), sched_cell.clone(), services.llm.clone());
        Box::new(move || {
            let modules: Vec<String> = registry
                .all()
                .iter()
                .flat_map(|(_, s)| {
                    s.current()
                        .meta
                        .tasks
                        .iter()
                        .filter(|t| t.interval_seconds > 0)
                        .map(|t| t.name.clone())
                        .collect::<Vec<_>>()
                })
                .collect();
            json!({
                "modules": modules,
                "host": {"name": "nthlayer-host", "version": env!("CARGO_PKG_VERSION")},
                "components": registry.versions(),
                "rejected": registry.rejected(),
                "tasks": cell.get().map(|s| s.stats()).unwrap_or_default(),
                "llm": llm.metrics(),
            })
        })
    };
    let heartbeat = Heartbeat::new(services.core.clone(), args.instance_id.clone(), snapshot);
    let env = RunEnv { runtime: runtime.clone(), services: services.clone(), config: config.clone() };
    let scheduler =
        Scheduler::new(env, StateStore::new(services.core.clone()), heartbeat.clone(), args.max_concurrent_cycles);
    let _ = sched_cell.set(scheduler.clone());
    for (_, slot) in registry.all() {
        scheduler.start_module(slot, Duration::from_millis(args.start_jitter_ms));
    }
    let hb = tokio::spawn(heartbeat.clone().run(scheduler.shutdown.clone()));
    if args.watch_interval_ms > 0 {
        tokio::spawn(watcher.run(scheduler.clone(), Duration::from_millis(args.watch_interval_ms)));
    }
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

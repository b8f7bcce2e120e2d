//! `nthlayer-host serve`: load modules, schedule their tasks, heartbeat, shut down cleanly.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use super::load::{load, Loaded};
use crate::command::args::ServeArgs;
use crate::lifecycle::heartbeat::Heartbeat;
use crate::lifecycle::scheduler::Scheduler;
use crate::lifecycle::status::HostStatus;
use crate::outbox::sender::{Sender, Targets};
use crate::outbox::state::StateStore;
use crate::outbox::Outbox;

pub async fn serve(args: ServeArgs) -> Result<()> {
    // Bound first: /health answers and /ready says "starting" while modules load.
    let ops = crate::ops::start(&args.ops).await?;
    let Loaded { env, registry, watcher, failures, grants } = load(&args, None, true).await?;
    // Start-up's code (arguments, loading, compiling) is done with: give it back.
    crate::runtime::resident::keep_releasing();
    if registry.all().is_empty() {
        tracing::warn!(failures, "no module loaded; the host serves nothing until one loads");
    }
    let core = env.services.backends.core.clone();
    let status = HostStatus::new(registry.clone(), env.services.backends.llm.clone());
    let outbox = open_outbox(&args)?;
    env.services.outbox.set(outbox.clone()).ok().expect("the outbox is set once");
    status.set_outbox(outbox.report());
    ops.attach(status.clone());
    let heartbeat = Heartbeat::new(core.clone(), args.instance_id.clone(), status.clone(), Some(outbox.clone()));
    let services = env.services.clone();
    let scheduler = Scheduler::new(env, StateStore::new(core), status.clone(), args.scheduler.max_concurrent_cycles);
    scheduler.set_memory_budget(args.scheduler.cycle_memory_budget_mib);
    scheduler.add_hook(outbox.clone());
    let ha = crate::ha::start(&args.ha, &args.instance_id, &status, &scheduler).await?;
    let live = crate::command::settings::apply::Live {
        config: scheduler.env.config.clone(),
        grants: grants.clone(),
        registry: registry.clone(),
        llm: scheduler.env.services.backends.llm.clone(),
    };
    let reload = crate::command::settings::reload::reloader(live);
    start_admin(&args, registry.clone(), status.clone(), &scheduler, grants, reload).await?;
    crate::ops::metrics::reload::loaded();
    let targets = Targets {
        core: services.backends.core.clone(),
        arbiter: services.backends.arbiter.clone(),
        wake: services.wake.clone(),
    };
    let sender = Arc::new(
        Sender::new(outbox.clone(), targets, status.clone(), args.instance_id.clone())
            .with_concurrency(args.outbox.delivery_concurrency),
    );
    let sending = tokio::spawn(sender.clone().run(scheduler.shutdown.clone()));
    for (_, slot) in registry.all() {
        scheduler.start_module(slot, Duration::from_millis(args.scheduler.start_jitter_ms));
    }
    let hb = tokio::spawn(heartbeat.clone().run(scheduler.shutdown.clone()));
    // With --watch-interval-ms 0 the watcher only installs background compiles, then ends.
    tokio::spawn(watcher.run(scheduler.clone(), Duration::from_millis(args.swap.watch_interval_ms)));
    status.set_ready();
    tracing::info!(core = %args.caps.core.core_url, prometheus = %args.caps.prometheus.prometheus_url, instance = %args.instance_id,
        modules = registry.all().len(), spool = %args.outbox.dir(&args.instance_id)?.display(), "serving");
    crate::ops::systemd::ready(&scheduler.shutdown);

    wait_for_signal().await;
    tracing::info!("shutdown requested; finishing in-flight cycles");
    crate::ops::systemd::stopping();
    scheduler.stop(Duration::from_secs(args.scheduler.shutdown_grace_seconds)).await;
    if let Some(ha) = &ha {
        ha.resign().await;
    }
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
    Outbox::open(args.outbox.config(&args.instance_id)?)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// The admin API's set-up, from serve's flags: the persisted pauses (before any task starts), the context, and
/// if `--admin-listen` is set its listener and SIGHUP. Returns the context.
async fn start_admin(
    args: &ServeArgs,
    registry: Arc<crate::lifecycle::registry::Registry>,
    status: Arc<HostStatus>,
    scheduler: &Arc<Scheduler>,
    grants: crate::policy::grants::GrantPolicy,
    reload: Option<crate::ops::admin::Reload>,
) -> Result<Arc<crate::ops::admin::AdminCtx>> {
    let state_dir = args.outbox.dir(&args.instance_id)?;
    let control = crate::lifecycle::control::TaskControl::open(&state_dir)?;
    for task in control.paused().keys() {
        tracing::warn!(%task, "task paused by the operator before this start; it stays paused until resumed");
    }
    scheduler.control.set(control.clone()).ok();
    let mut ctx = crate::ops::admin::AdminCtx::new(
        registry,
        status,
        control,
        scheduler.env.clone(),
        grants,
        args.swap.modules.clone(),
        state_dir,
        args.admin.admin_token_file.clone(),
    )?;
    ctx.reload = reload;
    let ctx = Arc::new(ctx);
    tokio::spawn(crate::ops::admin::on_sighup(ctx.clone(), scheduler.shutdown.clone()));
    if let Some(addr) = args.admin.admin_listen {
        crate::ops::admin::listen(ctx.clone(), addr, scheduler.shutdown.clone()).await?;
    }
    Ok(ctx)
}

//! The sender's own thread, with a single-threaded runtime.
//!
//! Delivery is thousands of small requests a cycle, each waiting on core. On the host's
//! multi-threaded runtime every answer woke a parked worker, handed the response from the
//! connection's task to the sender's (often on the other worker, another wake-up), and
//! tokio woke a second worker to steal the work: two context switches and the futex calls
//! around them per record, most of the host's CPU per record. On one thread the answer, the
//! sender and the next request run back to back where the answer arrived. Guest cycles keep
//! the multi-threaded runtime to themselves.

use std::future::Future;
use std::sync::{Arc, Mutex};

/// Runs the future `make` builds on a thread of its own named `name`, until it ends; on the
/// caller's runtime if no thread or runtime can be had. `before_park` runs each time the
/// thread is about to wait for I/O or a timer (the sender's coalescing, sender.rs).
pub async fn run<F, Fut, P>(name: &str, make: F, before_park: P)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
    P: Fn() + Send + Sync + 'static,
{
    let slot = Arc::new(Mutex::new(Some(make)));
    let theirs = slot.clone();
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new().name(name.to_string()).spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().on_thread_park(before_park).build() {
            Ok(rt) => rt,
            Err(e) => {
                tracing::warn!(error = %e, "cannot build the delivery runtime; delivering on the host's");
                return;
            }
        };
        let Some(make) = theirs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() else { return };
        rt.block_on(make());
        let _ = done.send(());
    });
    match spawned {
        Ok(_) => {
            if finished.await.is_ok() {
                return;
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot start the delivery thread; delivering on the host's runtime"),
    }
    let left = slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    match left {
        Some(make) => make().await,
        None => tracing::error!("the delivery thread ended early (a panic: its message is above)"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    /// The sender's coalescing lives in the hook: it must run whenever the thread waits.
    #[tokio::test]
    async fn the_hook_runs_before_the_thread_waits() {
        let parks = Arc::new(AtomicUsize::new(0));
        let counted = parks.clone();
        let on_thread = Arc::new(std::sync::Mutex::new(None));
        let name = on_thread.clone();
        super::run(
            "test-delivery",
            move || async move {
                *name.lock().unwrap() = std::thread::current().name().map(str::to_string);
                for _ in 0..3 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            },
            move || {
                counted.fetch_add(1, Ordering::Relaxed);
            },
        )
        .await;
        assert_eq!(on_thread.lock().unwrap().as_deref(), Some("test-delivery"));
        assert!(parks.load(Ordering::Relaxed) >= 3, "parked {} times", parks.load(Ordering::Relaxed));
    }
}

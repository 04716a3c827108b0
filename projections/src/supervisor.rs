//! Keeps one runner per projection following the log in `ringledger serve`: the live version
//! of each, re-reading the registry so a blue/green switch made by `ringledger-replay rebuild`
//! moves the runner to the new version. Building versions are run by the rebuild itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::projection::Projection;
use crate::runner::{Runner, RunnerConfig};
use crate::versions;

const REGISTRY_POLL: Duration = Duration::from_secs(1);

/// Runs until `stop` turns true, then stops every runner it started.
pub async fn run(
    pool: PgPool,
    projections: Vec<Arc<dyn Projection>>,
    config: RunnerConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut running: HashMap<&'static str, (i32, watch::Sender<bool>, JoinHandle<()>)> = HashMap::new();
    while !*stop.borrow() {
        for p in &projections {
            let live = match versions::ensure_live(&pool, p.as_ref()).await {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(projection = p.name(), error = %e, "cannot read the projection registry");
                    continue;
                }
            };
            if running.get(p.name()).is_some_and(|(v, _, _)| *v == live) {
                continue;
            }
            if let Some((old, tx, handle)) = running.remove(p.name()) {
                tracing::info!(
                    projection = p.name(),
                    from = old,
                    to = live,
                    "switching runner to the new live version"
                );
                let _ = tx.send(true);
                let _ = handle.await;
            }
            let (tx, rx) = watch::channel(false);
            let runner = Runner::new(pool.clone(), p.clone(), live, config.clone());
            running.insert(p.name(), (live, tx, tokio::spawn(runner.run(rx))));
        }
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            _ = tokio::time::sleep(REGISTRY_POLL) => {}
        }
    }
    for (_, (_, tx, handle)) in running {
        let _ = tx.send(true);
        let _ = handle.await;
    }
}

/// Runs `work` on a runtime of its own, on its own OS thread, so a projection runner keeps its
/// pace (millisecond re-polls behind the fence) however busy the request-serving runtime is.
pub fn spawn_dedicated<F>(work: F) -> std::thread::JoinHandle<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    std::thread::spawn(
        move || match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt.block_on(work),
            Err(e) => tracing::error!(error = %e, "cannot start a runtime for the projection runner"),
        },
    )
}

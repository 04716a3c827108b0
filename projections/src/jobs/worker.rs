//! A worker pool: one per queue per process, running at most `concurrency` jobs of that
//! queue at once. It claims only as many jobs as it has free slots, so nothing waits in
//! memory; it polls, and wakes early on `LISTEN ringledger_jobs`. Shutdown stops claiming,
//! lets in-flight jobs finish until a deadline, then hands the rest back to the queue. It
//! must never run a job inside the claim's transaction, nor hold more jobs than slots.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle, JoinSet};

use super::config::{QueueConfig, ShutdownReport};
use super::execute::{execute, ExecContext};
use super::handler::Registry;
use super::limits::MAX_CLAIM_BATCH;
use super::queue::{JobQueue, JOBS_CHANNEL};
use super::types::{ClaimedJob, JobId, QueueName, WorkerId};
use super::JobsError;

/// The running pool of one queue.
pub struct WorkerPool {
    queue: QueueName,
    worker: WorkerId,
    stop: watch::Sender<bool>,
    dispatcher: JoinHandle<Dispatcher>,
}

impl WorkerPool {
    /// Starts a pool for `queue` on the current tokio runtime. Dropping the pool without
    /// [`WorkerPool::shutdown`] stops its jobs abruptly: they come back when their leases expire.
    pub fn spawn(
        jobs: JobQueue,
        queue: QueueName,
        registry: Registry,
        config: QueueConfig,
    ) -> Result<WorkerPool, JobsError> {
        config.validate()?;
        let worker = WorkerId::generate(&queue);
        let ctx = Arc::new(ExecContext {
            queue: jobs.with_backoff(config.backoff)?,
            registry,
            lease_ms: config.lease_ms,
            heartbeat_ms: config.heartbeat_ms,
            job_timeout_ms: config.job_timeout_ms,
        });
        let (stop, stop_rx) = watch::channel(false);
        let dispatcher = Dispatcher {
            queue: queue.clone(),
            worker: worker.clone(),
            config,
            ctx,
            tasks: JoinSet::new(),
            in_flight: HashMap::new(),
            stop: stop_rx,
            finished_after_stop: 0,
        };
        tracing::info!(queue = %queue, worker = %worker, concurrency = dispatcher.config.concurrency, "job worker pool started");
        Ok(WorkerPool {
            queue,
            worker,
            stop,
            dispatcher: tokio::spawn(dispatcher.run()),
        })
    }

    pub fn worker_id(&self) -> &WorkerId {
        &self.worker
    }

    /// Stops claiming new jobs; running ones go on. Call [`WorkerPool::shutdown`] to wait.
    pub fn begin_shutdown(&self) {
        self.stop.send_replace(true);
    }

    /// Stops claiming, waits up to `timeout` for running jobs, then stops the rest and hands
    /// them back to the queue (status queued, lease cleared) for another worker.
    pub async fn shutdown(self, timeout: Duration) -> ShutdownReport {
        self.begin_shutdown();
        let report = match self.dispatcher.await {
            Ok(dispatcher) => dispatcher.drain(timeout).await,
            Err(e) => {
                tracing::error!(queue = %self.queue, worker = %self.worker, error = %e,
                    "job dispatcher ended abnormally; its jobs return when their leases expire");
                ShutdownReport::default()
            }
        };
        tracing::info!(queue = %self.queue, worker = %self.worker, finished = report.finished,
            returned = report.returned, lost = report.lost, "job worker pool stopped");
        report
    }
}

/// What woke the dispatcher.
enum Wake {
    Stop,
    Joined(Result<JobId, JoinError>),
    Timer,
}

struct Dispatcher {
    queue: QueueName,
    worker: WorkerId,
    config: QueueConfig,
    ctx: Arc<ExecContext>,
    tasks: JoinSet<JobId>,
    in_flight: HashMap<JobId, ClaimedJob>,
    stop: watch::Receiver<bool>,
    /// Jobs that ended after the shutdown began, for the report.
    finished_after_stop: usize,
}

impl Dispatcher {
    async fn run(mut self) -> Dispatcher {
        let mut listener = if self.config.listen {
            listen(&self.ctx.queue).await
        } else {
            None
        };
        let poll = Duration::from_millis(self.config.poll_ms);
        let depth_every = Duration::from_millis(self.config.depth_every_ms);
        let mut next_depth = tokio::time::Instant::now();
        loop {
            while let Some(joined) = self.tasks.try_join_next() {
                self.on_joined(joined);
            }
            // Checked right before claiming: after `begin_shutdown` returns, nothing new starts.
            // A dropped pool (sender gone) stops too.
            if *self.stop.borrow() || self.stop.has_changed().is_err() {
                break;
            }
            if self.claim_and_spawn().await {
                continue;
            }
            if tokio::time::Instant::now() >= next_depth {
                self.report_depth().await;
                next_depth = tokio::time::Instant::now() + depth_every;
            }
            let wake = tokio::select! {
                changed = self.stop.changed() => if changed.is_err() { Wake::Stop } else { Wake::Timer },
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => Wake::Joined(joined),
                _ = tokio::time::sleep(poll) => Wake::Timer,
                _ = wake_up(&mut listener, &self.queue) => Wake::Timer,
            };
            match wake {
                Wake::Stop => break,
                Wake::Joined(joined) => {
                    self.on_joined(joined);
                }
                Wake::Timer => {}
            }
        }
        self
    }

    /// Claims as many jobs as there are free slots and starts them; `true` when the claim was
    /// full and slots remain (more jobs are probably due: claim again at once).
    async fn claim_and_spawn(&mut self) -> bool {
        let free = self.config.concurrency.saturating_sub(self.tasks.len());
        if free == 0 {
            return false;
        }
        let want = free.min(MAX_CLAIM_BATCH);
        let jobs = match self
            .ctx
            .queue
            .claim(&self.queue, &self.worker, want, self.config.lease_ms)
            .await
        {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::error!(queue = %self.queue, worker = %self.worker, error = %e, "cannot claim jobs; retrying after the poll interval");
                return false;
            }
        };
        let full = jobs.len() == want;
        for job in jobs {
            self.in_flight.insert(job.id, job.clone());
            self.tasks.spawn(execute(self.ctx.clone(), job));
        }
        metrics::gauge!("ringledger_jobs_in_flight", "queue" => self.queue.to_string())
            .set(crate::gauge_count(self.tasks.len()));
        full && self.tasks.len() < self.config.concurrency
    }

    fn on_joined(&mut self, joined: Result<JobId, JoinError>) {
        match joined {
            Ok(id) => {
                self.in_flight.remove(&id);
                if *self.stop.borrow() {
                    self.finished_after_stop += 1;
                }
            }
            // Aborted at the shutdown deadline: the job stays in `in_flight` to be handed back.
            Err(e) if e.is_cancelled() => {}
            Err(e) => {
                tracing::error!(queue = %self.queue, worker = %self.worker, error = %e,
                    "job task panicked outside its handler; the job returns when its lease expires");
            }
        }
    }

    async fn report_depth(&self) {
        metrics::gauge!("ringledger_jobs_in_flight", "queue" => self.queue.to_string())
            .set(crate::gauge_count(self.tasks.len()));
        match self.ctx.queue.queued_count(&self.queue).await {
            Ok(n) => metrics::gauge!("ringledger_jobs_queued", "queue" => self.queue.to_string())
                .set(crate::gauge_count(n)),
            Err(e) => tracing::warn!(queue = %self.queue, error = %e, "cannot count queued jobs"),
        }
    }

    /// Waits for running jobs until `timeout`, then stops the rest and hands them back.
    async fn drain(mut self, timeout: Duration) -> ShutdownReport {
        let mut report = ShutdownReport::default();
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(joined)) => self.on_joined(joined),
                Ok(None) | Err(_) => break,
            }
        }
        self.tasks.abort_all();
        while let Some(joined) = self.tasks.join_next().await {
            self.on_joined(joined);
        }
        report.finished = self.finished_after_stop;
        for job in self.in_flight.values() {
            match self.ctx.queue.release(job).await {
                Ok(true) => {
                    report.returned += 1;
                    tracing::info!(job_id = job.id.0, queue = %self.queue, kind = %job.kind, "unfinished job handed back to the queue");
                }
                Ok(false) => {}
                Err(e) => {
                    report.lost += 1;
                    tracing::error!(job_id = job.id.0, queue = %self.queue, error = %e,
                        "cannot hand the job back; it returns when its lease expires");
                }
            }
        }
        report
    }
}

async fn listen(queue: &JobQueue) -> Option<PgListener> {
    let mut listener = match PgListener::connect_with(queue.pool()).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "job worker cannot LISTEN; polling only");
            return None;
        }
    };
    match listener.listen(JOBS_CHANNEL).await {
        Ok(()) => Some(listener),
        Err(e) => {
            tracing::warn!(error = %e, "job worker cannot LISTEN; polling only");
            None
        }
    }
}

/// Resolves when a NOTIFY for `queue` arrives; never, without a listener.
async fn wake_up(listener: &mut Option<PgListener>, queue: &QueueName) {
    let Some(l) = listener else {
        return std::future::pending().await;
    };
    loop {
        match l.recv().await {
            Ok(n) if n.payload() == queue.as_str() => return,
            Ok(_) => {}
            // The listener reconnects on the next recv; meanwhile the poll timer covers us.
            Err(_) => return std::future::pending().await,
        }
    }
}

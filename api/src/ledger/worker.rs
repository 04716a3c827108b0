//! The worker that owns one aggregate: loads it once (snapshot + the events after it), then
//! decides batches of queued commands on the cached state and appends each batch atomically.
//! On a conflict it reads only the events it missed and decides again.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use rand::Rng;
use serde_json::json;
use tokio::sync::mpsc;

use super::{CommandError, Committed, Decider, Job, Outcome, Shared};
use crate::store::{Append, EventStore, KeyRecord, NewEvent, Snapshot, StoreError, StoredEvent};

struct Loaded<A> {
    aggregate: A,
    version: u64,
    last_occurred_at: DateTime<Utc>,
    snapshot_version: u64,
}

use super::Answer;

pub(crate) async fn run<A: Decider, S: EventStore>(
    shared: Arc<Shared<A, S>>,
    id: String,
    mut rx: mpsc::Receiver<Job<A>>,
) {
    let mut state: Option<Loaded<A>> = None;
    let idle = Duration::from_millis(shared.config.idle_ms.max(1));
    loop {
        let first = match tokio::time::timeout(idle, rx.recv()).await {
            Ok(Some(job)) => job,
            Ok(None) => return,
            Err(_) => {
                retire(&shared, &id, &mut rx);
                continue; // drain what slipped in; `recv` returns None once empty
            }
        };
        let mut batch = vec![first];
        while batch.len() < shared.config.max_batch.max(1) {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        process(&shared, &id, &mut state, batch).await;
    }
}

/// Leaves the registry after idling: closes the queue (later senders start a new worker) and
/// removes our entry, unless a newer worker already replaced it.
fn retire<A: Decider, S: EventStore>(shared: &Shared<A, S>, id: &str, rx: &mut mpsc::Receiver<Job<A>>) {
    if let Ok(mut workers) = shared.workers.lock() {
        rx.close();
        if workers.get(id).is_some_and(|s| s.is_closed()) {
            workers.remove(id);
        }
    }
}

async fn process<A: Decider, S: EventStore>(
    shared: &Shared<A, S>,
    id: &str,
    state: &mut Option<Loaded<A>>,
    mut batch: Vec<Job<A>>,
) {
    let mut rows_loaded = 0u64;
    let max_retries = shared.config.max_conflict_retries;
    for attempt in 0..=max_retries {
        // The cache is trusted until an append conflicts; then only the missed events are read.
        if state.is_none() || attempt > 0 {
            if let Err(e) = catch_up(shared, id, state, &mut rows_loaded).await {
                *state = None;
                return fail_all(batch, &e);
            }
        }
        let current = state.as_ref().map(|l| &l.aggregate);
        batch = match answer_known_keys(shared, id, batch, rows_loaded, current).await {
            Ok(rest) => rest,
            Err((rest, e)) => return fail_all(rest, &e),
        };
        if batch.is_empty() {
            return;
        }
        let Some(loaded) = state.as_ref() else { return };
        let draft = match decide_batch(loaded, &batch) {
            Ok(draft) => draft,
            Err(e) => return fail_all(batch, &e),
        };
        if draft.events.is_empty() {
            return reply_all(batch, draft.answers, rows_loaded);
        }
        let append = Append {
            aggregate_type: A::TYPE,
            aggregate_id: id,
            occurred_at: draft.stamp,
            events: &draft.events,
            keys: &draft.keys,
        };
        match shared.store.append(append).await {
            Ok(_) => {
                let stats = &shared.stats;
                stats.batches.fetch_add(1, Ordering::Relaxed);
                stats.commands.fetch_add(batch.len() as u64, Ordering::Relaxed);
                stats
                    .events_appended
                    .fetch_add(draft.events.len() as u64, Ordering::Relaxed);
                let snapshot_version = loaded.snapshot_version;
                *state = Some(Loaded {
                    aggregate: draft.aggregate,
                    version: draft.version,
                    last_occurred_at: draft.stamp,
                    snapshot_version,
                });
                reply_all(batch, draft.answers, rows_loaded);
                shared.appended.notify_one();
                maybe_snapshot(shared, id, state).await;
                return;
            }
            Err(StoreError::Conflict) => {
                shared.stats.conflicts.fetch_add(1, Ordering::Relaxed);
                let cap_ms = 1u64 << attempt.min(6);
                let pause = rand::thread_rng().gen_range(0..=cap_ms);
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            Err(e) => {
                *state = None;
                return fail_all(batch, &e);
            }
        }
    }
    for job in batch {
        let _ = job.reply.send(Err(CommandError::Conflict(max_retries)));
    }
}

/// The aggregate as stored now, without touching any worker's cache.
pub(crate) async fn load_fresh<A: Decider, S: EventStore>(
    shared: &Shared<A, S>,
    id: &str,
) -> Result<A, StoreError> {
    let mut state = None;
    let mut rows = 0;
    catch_up(shared, id, &mut state, &mut rows).await?;
    state
        .map(|loaded| loaded.aggregate)
        .ok_or_else(|| StoreError::Corrupt(format!("{id}: not loaded")))
}

/// Loads the aggregate if it is not cached, or reads the events appended since it was.
async fn catch_up<A: Decider, S: EventStore>(
    shared: &Shared<A, S>,
    id: &str,
    state: &mut Option<Loaded<A>>,
    rows: &mut u64,
) -> Result<(), StoreError> {
    let mut loaded = match state.take() {
        Some(loaded) => loaded,
        None => {
            shared.stats.loads.fetch_add(1, Ordering::Relaxed);
            from_snapshot(shared, id, rows).await?
        }
    };
    let events = shared.store.load_after::<A>(id, loaded.version).await?;
    *rows += events.len() as u64;
    shared
        .stats
        .rows_loaded
        .fetch_add(events.len() as u64, Ordering::Relaxed);
    for stored in events {
        if stored.sequence != loaded.version + 1 {
            return Err(StoreError::Corrupt(format!(
                "{id}: sequence {} follows {}",
                stored.sequence, loaded.version
            )));
        }
        let (event, occurred_at) = decode::<A>(&stored)?;
        loaded.aggregate.fold_event(&event);
        loaded.version = stored.sequence;
        loaded.last_occurred_at = loaded.last_occurred_at.max(occurred_at);
    }
    *state = Some(loaded);
    Ok(())
}

async fn from_snapshot<A: Decider, S: EventStore>(
    shared: &Shared<A, S>,
    id: &str,
    rows: &mut u64,
) -> Result<Loaded<A>, StoreError> {
    let empty = || Loaded {
        aggregate: A::default(),
        version: 0,
        last_occurred_at: DateTime::<Utc>::MIN_UTC,
        snapshot_version: 0,
    };
    let Some(snapshot) = shared.store.snapshot(A::TYPE, id).await? else {
        return Ok(empty());
    };
    *rows += 1;
    shared.stats.rows_loaded.fetch_add(1, Ordering::Relaxed);
    match serde_json::from_value::<A>(snapshot.payload) {
        Ok(aggregate) => Ok(Loaded {
            aggregate,
            version: snapshot.last_sequence,
            last_occurred_at: snapshot.last_occurred_at,
            snapshot_version: snapshot.last_sequence,
        }),
        Err(e) => {
            // A snapshot from an older shape of the state: fold the whole stream instead.
            tracing::warn!(aggregate_type = A::TYPE, aggregate_id = id, error = %e, "ignoring unreadable snapshot");
            Ok(empty())
        }
    }
}

pub(crate) fn decode<A: Aggregate>(stored: &StoredEvent) -> Result<(A::Event, DateTime<Utc>), StoreError> {
    let event = serde_json::from_value::<A::Event>(stored.payload.clone()).map_err(|e| {
        StoreError::Corrupt(format!("event {} ({}): {e}", stored.sequence, stored.event_type))
    })?;
    let occurred_at = stored
        .metadata
        .get("occurred_at")
        .and_then(|v| v.as_str())
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| StoreError::Corrupt(format!("event {} has no occurred_at", stored.sequence)))?;
    Ok((event, occurred_at))
}

/// Jobs whose idempotency key this stream has answered get the stored events back; the rest
/// are returned for deciding.
async fn answer_known_keys<A: Decider, S: EventStore>(
    shared: &Shared<A, S>,
    id: &str,
    batch: Vec<Job<A>>,
    rows_loaded: u64,
    current: Option<&A>,
) -> Result<Vec<Job<A>>, (Vec<Job<A>>, StoreError)> {
    let mut keys: Vec<String> = batch
        .iter()
        .filter_map(|j| j.envelope.idempotency_key.clone())
        .collect();
    if keys.is_empty() {
        return Ok(batch);
    }
    keys.sort();
    keys.dedup();
    let known = match shared.store.find_keys(A::TYPE, id, &keys).await {
        Ok(known) => known,
        Err(e) => return Err((batch, e)),
    };
    if known.is_empty() {
        return Ok(batch);
    }
    let mut rest = Vec::with_capacity(batch.len());
    for job in batch {
        let record = job
            .envelope
            .idempotency_key
            .as_ref()
            .and_then(|k| known.iter().find(|r| &r.key == k));
        let Some(record) = record else {
            rest.push(job);
            continue;
        };
        let answer = match shared
            .store
            .load_range(A::TYPE, id, record.first_sequence, record.last_sequence)
            .await
        {
            Ok(stored) => stored
                .iter()
                .map(|s| {
                    decode::<A>(s).map(|(event, occurred_at)| Committed {
                        sequence: s.sequence,
                        occurred_at,
                        event,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|events| Outcome {
                    events,
                    replayed: true,
                    rows_loaded,
                    state: current.filter(|_| A::STATE_IN_OUTCOME).cloned(),
                })
                .map_err(CommandError::Store),
            Err(e) => Err(CommandError::Store(e)),
        };
        let _ = job.reply.send(answer);
    }
    Ok(rest)
}

struct Draft<A: Aggregate> {
    aggregate: A,
    version: u64,
    stamp: DateTime<Utc>,
    events: Vec<NewEvent>,
    keys: Vec<KeyRecord>,
    answers: Vec<Pending<A>>,
}

/// One command's events and, when asked for, the state after them.
type Decided<A> = Result<(Vec<Committed<<A as Aggregate>::Event>>, Option<A>), <A as Aggregate>::Error>;

enum Pending<A: Aggregate> {
    Done(Decided<A>),
    /// The same idempotency key earlier in this batch: the same answer.
    SameAs(usize),
}

fn decide_batch<A: Decider>(loaded: &Loaded<A>, batch: &[Job<A>]) -> Result<Draft<A>, StoreError> {
    // Never earlier than the stream's last event, even if this clock is behind another's;
    // microseconds, as Postgres keeps them.
    let stamp = Utc::now().trunc_subsecs(6).max(loaded.last_occurred_at);
    let stamp_text = stamp.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let mut draft = Draft {
        aggregate: loaded.aggregate.clone(),
        version: loaded.version,
        stamp,
        events: Vec::new(),
        keys: Vec::new(),
        answers: Vec::with_capacity(batch.len()),
    };
    let mut first_with_key: HashMap<&str, usize> = HashMap::new();
    for (index, job) in batch.iter().enumerate() {
        let key = job.envelope.idempotency_key.as_deref();
        if let Some(earlier) = key.and_then(|k| first_with_key.get(k)) {
            draft.answers.push(Pending::SameAs(*earlier));
            continue;
        }
        if let Some(k) = key {
            first_with_key.insert(k, index);
        }
        let decided = draft.aggregate.decide_command(&job.envelope.command);
        let Ok(events) = decided else {
            draft
                .answers
                .push(Pending::Done(decided.map(|_| (Vec::new(), None))));
            continue;
        };
        let first = draft.version + 1;
        let mut committed = Vec::with_capacity(events.len());
        for event in events {
            draft.aggregate.fold_event(&event);
            draft.version += 1;
            let mut metadata =
                json!({ "occurred_at": stamp_text, "command": A::command_name(&job.envelope.command) });
            if let Some(k) = key {
                metadata["idempotency_key"] = json!(k);
            }
            draft.events.push(NewEvent {
                sequence: draft.version,
                event_type: event.event_type(),
                event_version: event.event_version(),
                payload: serde_json::to_value(&event).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                metadata,
            });
            committed.push(Committed {
                sequence: draft.version,
                occurred_at: stamp,
                event,
            });
        }
        if let (Some(k), false) = (key, committed.is_empty()) {
            draft.keys.push(KeyRecord {
                key: k.to_owned(),
                first_sequence: first,
                last_sequence: draft.version,
            });
        }
        let after = A::STATE_IN_OUTCOME.then(|| draft.aggregate.clone());
        draft.answers.push(Pending::Done(Ok((committed, after))));
    }
    Ok(draft)
}

fn reply_all<A: Decider>(batch: Vec<Job<A>>, answers: Vec<Pending<A>>, rows_loaded: u64) {
    let resolve = |p: &Pending<A>| -> Answer<A> {
        let done = match p {
            Pending::Done(r) => r,
            Pending::SameAs(i) => match &answers[*i] {
                Pending::Done(r) => r,
                Pending::SameAs(_) => unreachable!("SameAs always points at a decided job"),
            },
        };
        match done {
            Ok((events, state)) => Ok(Outcome {
                events: events.clone(),
                replayed: matches!(p, Pending::SameAs(_)),
                rows_loaded,
                state: state.clone(),
            }),
            Err(e) => Err(CommandError::Rejected(e.clone())),
        }
    };
    for (job, pending) in batch.into_iter().zip(answers.iter()) {
        let _ = job.reply.send(resolve(pending));
    }
}

fn fail_all<A: Decider>(batch: Vec<Job<A>>, error: &StoreError) {
    for job in batch {
        let _ = job.reply.send(Err(CommandError::Store(error.shared())));
    }
}

async fn maybe_snapshot<A: Decider, S: EventStore>(
    shared: &Shared<A, S>,
    id: &str,
    state: &mut Option<Loaded<A>>,
) {
    let Some(loaded) = state.as_mut() else { return };
    if loaded.version - loaded.snapshot_version < shared.config.snapshot_every.max(1) {
        return;
    }
    let payload = match serde_json::to_value(&loaded.aggregate) {
        Ok(p) => p,
        Err(e) => return tracing::warn!(error = %e, "cannot serialise snapshot"),
    };
    let snapshot = Snapshot {
        last_sequence: loaded.version,
        last_occurred_at: loaded.last_occurred_at,
        payload,
    };
    match shared.store.save_snapshot(A::TYPE, id, &snapshot).await {
        Ok(()) => loaded.snapshot_version = loaded.version,
        Err(e) => tracing::warn!(aggregate_type = A::TYPE, error = %e, "snapshot not saved"),
    }
}

//! What the load generator counts while it runs: decision latencies (each `interim`'s round
//! trip as the node sees it, and each `start`'s) in HDR histograms that a benchmark can take
//! and reset per phase, and counters of what happened on the wire.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Latencies are recorded in microseconds, up to 10 minutes.
const MAX_US: u64 = 600_000_000;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("constant histogram bounds are valid")
}

/// Decisions seen in one window.
#[derive(Debug, Clone)]
pub struct Window {
    pub decisions: u64,
    pub latency_us: Histogram<u64>,
}

impl Window {
    pub fn p(&self, quantile: f64) -> f64 {
        self.latency_us.value_at_quantile(quantile) as f64 / 1_000.0
    }
}

#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

pub struct Stats {
    interim: Mutex<Window>,
    interim_all: Mutex<Histogram<u64>>,
    start: Mutex<Histogram<u64>>,
    /// Calls between a 200 to `start` and their end, as the nodes see them.
    pub live_calls: AtomicI64,
    pub starts: Counter,
    pub interims: Counter,
    pub regrants_seen: Counter,
    pub retries: Counter,
    pub busy: Counter,
    pub transport_errors: Counter,
    pub duplicates_checked: Counter,
    pub reorders_checked: Counter,
    pub gaps: Counter,
    pub hangups_received: Counter,
    pub hangups_refused: Counter,
    pub final_units: Counter,
    pub late_byes: Counter,
    denials: Mutex<BTreeMap<String, u64>>,
    ends: Mutex<BTreeMap<String, u64>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            interim: Mutex::new(Window {
                decisions: 0,
                latency_us: histogram(),
            }),
            interim_all: Mutex::new(histogram()),
            start: Mutex::new(histogram()),
            live_calls: AtomicI64::new(0),
            starts: Counter::default(),
            interims: Counter::default(),
            regrants_seen: Counter::default(),
            retries: Counter::default(),
            busy: Counter::default(),
            transport_errors: Counter::default(),
            duplicates_checked: Counter::default(),
            reorders_checked: Counter::default(),
            gaps: Counter::default(),
            hangups_received: Counter::default(),
            hangups_refused: Counter::default(),
            final_units: Counter::default(),
            late_byes: Counter::default(),
            denials: Mutex::new(BTreeMap::new()),
            ends: Mutex::new(BTreeMap::new()),
        }
    }
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(MAX_US).clamp(1, MAX_US)
}

impl Stats {
    /// One answered `interim` (a decision) and its round trip.
    pub fn interim_answered(&self, took: Duration) {
        self.interims.add();
        if let Ok(mut w) = self.interim.lock() {
            w.decisions += 1;
            let _ = w.latency_us.record(us(took));
        }
        if let Ok(mut h) = self.interim_all.lock() {
            let _ = h.record(us(took));
        }
    }

    pub fn start_answered(&self, took: Duration) {
        self.starts.add();
        if let Ok(mut h) = self.start.lock() {
            let _ = h.record(us(took));
        }
    }

    pub fn denied(&self, code: &str) {
        if let Ok(mut d) = self.denials.lock() {
            *d.entry(code.to_owned()).or_default() += 1;
        }
    }

    pub fn ended(&self, how: &str) {
        if let Ok(mut e) = self.ends.lock() {
            *e.entry(how.to_owned()).or_default() += 1;
        }
    }

    /// The decisions since the last call of `take_window`, and a fresh window.
    pub fn take_window(&self) -> Window {
        let fresh = Window {
            decisions: 0,
            latency_us: histogram(),
        };
        match self.interim.lock() {
            Ok(mut w) => std::mem::replace(&mut *w, fresh),
            Err(_) => fresh,
        }
    }

    pub fn interim_latency(&self) -> Histogram<u64> {
        self.interim_all
            .lock()
            .map(|h| h.clone())
            .unwrap_or_else(|_| histogram())
    }

    pub fn start_latency(&self) -> Histogram<u64> {
        self.start
            .lock()
            .map(|h| h.clone())
            .unwrap_or_else(|_| histogram())
    }

    pub fn denials(&self) -> BTreeMap<String, u64> {
        self.denials.lock().map(|d| d.clone()).unwrap_or_default()
    }

    pub fn ends(&self) -> BTreeMap<String, u64> {
        self.ends.lock().map(|d| d.clone()).unwrap_or_default()
    }

    pub fn live(&self) -> i64 {
        self.live_calls.load(Ordering::Relaxed)
    }
}

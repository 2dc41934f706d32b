//! What a run records while it goes: latencies in HDR histograms (in
//! microseconds, 1 µs to 10 min at 3 significant digits), counts, and
//! errors by kind; and the percentiles read from them.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

/// The stages of an order's way from the checkout's answer to
/// `processing`, as the order's history dates them.
pub const HOPS: [&str; 3] = [
    "checkout answered → pending (order created)",
    "pending → payment_processing (stock reserved)",
    "payment_processing → processing (captured)",
];

/// A latency histogram in microseconds.
#[derive(Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        // 1 µs .. 10 min at 3 significant digits: the bounds are valid.
        Self(Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds"))
    }
}

impl Latency {
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.0.saturating_record(micros.max(1));
    }

    pub fn summary(&self) -> Summary {
        let ms = |quantile: f64| self.0.value_at_quantile(quantile) as f64 / 1000.0;
        Summary {
            count: self.0.len(),
            p50: ms(0.50),
            p95: ms(0.95),
            p99: ms(0.99),
            max: self.0.max() as f64 / 1000.0,
        }
    }
}

/// Percentiles of a latency, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// Everything one run counts.
#[derive(Clone, Default)]
pub struct Tally {
    /// Journeys begun.
    pub started: u64,
    /// Checkouts answered `201` while the run offered load.
    pub checkouts_in_window: u64,
    pub checkouts: u64,
    /// Orders that reached `processing` while the run offered load (by the
    /// order's history), and in all.
    pub completed_in_window: u64,
    pub completed: u64,
    pub cart: Latency,
    pub quote: Latency,
    pub checkout: Latency,
    pub to_processing: Latency,
    pub hops: [Latency; HOPS.len()],
    /// Looks at an order while following it to `processing`, answered or
    /// not: the read load each order adds.
    pub polls: u64,
    /// Looks at an order that its service refused as overloaded (and
    /// that were made again).
    pub polls_refused: u64,
    /// Failed journeys, by what failed (`checkout 503 overloaded`).
    pub errors: BTreeMap<String, u64>,
}

impl Tally {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// A [`Tally`] shared by every journey of a run.
#[derive(Default)]
pub struct Recorder(Mutex<Tally>);

impl Recorder {
    pub fn update(&self, change: impl FnOnce(&mut Tally)) {
        // A journey that panicked while holding the lock left counts that
        // are still worth reporting.
        let mut tally = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut tally);
    }

    pub fn error(&self, kind: impl Into<String>) {
        let kind = kind.into();
        self.update(|tally| *tally.errors.entry(kind).or_default() += 1);
    }

    pub fn snapshot(&self) -> Tally {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_read_in_milliseconds() {
        let mut latency = Latency::default();
        for ms in 1..=100 {
            latency.record(Duration::from_millis(ms));
        }
        let summary = latency.summary();
        assert_eq!(summary.count, 100);
        assert!((summary.p50 - 50.0).abs() < 0.1, "{summary:?}");
        assert!((summary.p95 - 95.0).abs() < 0.1, "{summary:?}");
        assert!((summary.p99 - 99.0).abs() < 0.1, "{summary:?}");
        assert!((summary.max - 100.0).abs() < 0.1, "{summary:?}");
    }

    #[test]
    fn an_empty_latency_reads_as_zero_and_errors_add_up_by_kind() {
        assert_eq!(Latency::default().summary(), Summary::default());
        let recorder = Recorder::default();
        recorder.error("checkout 503 overloaded");
        recorder.error("checkout 503 overloaded");
        recorder.error("cart timeout");
        let tally = recorder.snapshot();
        assert_eq!(tally.errors["checkout 503 overloaded"], 2);
        assert_eq!(tally.error_count(), 3);
    }
}

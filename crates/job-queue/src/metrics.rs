//! Prometheus metrics of the job runner, registered in the registry of the
//! service that runs it. Failed jobs stay visible here until pruned
//! (`job_queue_failed_jobs`), not only as a counter that a restart resets.

use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// Everything the job runner reports. Cheap to clone.
#[derive(Clone)]
pub struct JobMetrics {
    /// Jobs that ran to completion, by kind.
    pub completed: IntCounterVec,
    /// Attempts that failed and were rescheduled, by kind.
    pub retried: IntCounterVec,
    /// Jobs given up on (permanent error or attempts exhausted), by kind.
    pub failed: IntCounterVec,
    /// Jobs waiting, due or not (all kinds).
    pub pending: IntGauge,
    /// How long the longest-waiting due job has waited, in seconds.
    pub oldest_pending_age_seconds: IntGauge,
    /// Failed jobs kept in the table, by kind: what an operator must look at.
    pub failed_jobs: IntGaugeVec,
    /// Periodic ticks run by this replica, by task.
    pub ticks: IntCounterVec,
    /// Periodic ticks that returned an error, by task.
    pub tick_failures: IntCounterVec,
}

impl JobMetrics {
    /// Registers the metrics in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let metrics = JobMetrics {
            completed: counter_vec(
                "job_queue_completed_total",
                "Jobs that ran to completion",
                "kind",
            )?,
            retried: counter_vec(
                "job_queue_retried_total",
                "Job attempts that failed and were rescheduled",
                "kind",
            )?,
            failed: counter_vec(
                "job_queue_failed_total",
                "Jobs given up on after a permanent error or their last attempt",
                "kind",
            )?,
            pending: IntGauge::new("job_queue_pending", "Jobs waiting to run, due or not")?,
            oldest_pending_age_seconds: IntGauge::new(
                "job_queue_oldest_pending_age_seconds",
                "How long the longest-waiting due job has waited",
            )?,
            failed_jobs: IntGaugeVec::new(
                Opts::new(
                    "job_queue_failed_jobs",
                    "Failed jobs kept in the queue table for an operator",
                ),
                &["kind"],
            )?,
            ticks: counter_vec(
                "job_queue_periodic_ticks_total",
                "Periodic ticks run by this replica",
                "task",
            )?,
            tick_failures: counter_vec(
                "job_queue_periodic_failures_total",
                "Periodic ticks that failed",
                "task",
            )?,
        };
        registry.register(Box::new(metrics.completed.clone()))?;
        registry.register(Box::new(metrics.retried.clone()))?;
        registry.register(Box::new(metrics.failed.clone()))?;
        registry.register(Box::new(metrics.pending.clone()))?;
        registry.register(Box::new(metrics.oldest_pending_age_seconds.clone()))?;
        registry.register(Box::new(metrics.failed_jobs.clone()))?;
        registry.register(Box::new(metrics.ticks.clone()))?;
        registry.register(Box::new(metrics.tick_failures.clone()))?;
        Ok(metrics)
    }

    /// Metrics that are counted but not exported; for tests and tools.
    pub fn unregistered() -> Self {
        // Registering in a throwaway registry cannot collide.
        Self::register(&Registry::new()).unwrap_or_else(|_| unreachable!())
    }
}

fn counter_vec(name: &str, help: &str, label: &str) -> prometheus::Result<IntCounterVec> {
    IntCounterVec::new(Opts::new(name, help), &[label])
}

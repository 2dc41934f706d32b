//! Durable jobs and periodic tasks, kept in the service's own schema.
//!
//! A handler must not hold a database transaction open across a call to a
//! payment provider, a business's webhook or an SMTP server. Instead it
//! writes a job in its own transaction, and a [`JobRunner`] runs the job
//! after the commit, outside any transaction, retrying with backoff. Jobs are
//! shared safely by all replicas of the service.
//!
//! How a service uses it:
//!
//! 1. At start-up, [`install`] the tables (next to its own migrations).
//! 2. Where the decision is made, [`enqueue`] in the same transaction as the
//!    state change: a rolled-back transaction leaves no job, a committed one
//!    starts within milliseconds (the write announces itself to the runner
//!    of its process, [`JOBS`], which looks until the commit lands).
//!    ```ignore
//!    let mut tx = pool.begin().await?;
//!    store::accept_order(&mut tx, &order).await?;
//!    job_queue::enqueue(
//!        &mut tx,
//!        NewJob::new("deliver_webhook", &Delivery { order_id, business_id })?
//!            .dedupe_key(format!("{order_id}/{business_id}")),
//!    )
//!    .await?;
//!    tx.commit().await?;
//!    ```
//! 3. Write one [`JobHandler`] per kind: it decodes `job.payload::<T>()`,
//!    does the call, and says whether a failure is worth retrying
//!    ([`JobError::Transient`]) or not ([`JobError::Permanent`]). Jobs run at
//!    least once, so the call carries an idempotency key. A handler that
//!    records the call's outcome in a write of its own may end the job in
//!    that write's commit ([`finish`], or [`Job::done_arguments`] in its
//!    own statement) instead of in the runner's statement after it.
//! 4. Write a [`Periodic`] task for work on a schedule (re-drives): it runs
//!    every interval on one replica. For a sweep of whatever has fallen due
//!    (reservation expiry, deadlines), write only one batch, as a [`Sweep`],
//!    and register it as `Sweeper(sweep)`.
//! 5. Register both and run until shutdown:
//!    ```ignore
//!    JobRunner::new(pool, JobConfig::default(), JobMetrics::register(&registry)?)
//!        .on(DeliverWebhook::new(client))
//!        .every(Sweeper(ExpireReservations))
//!        .run(shutdown)
//!        .await?;
//!    ```
//!
//! Modules: [`job`] what a service writes and implements, [`store`] the
//! queries, [`runner`] the loop, [`sweep`] batched sweeps, [`clock`] the
//! injectable time, [`metrics`] what `/metrics` shows, [`schema`] the tables
//! and their retention.

pub mod clock;
pub mod job;
pub mod metrics;
pub mod runner;
pub mod schema;
pub mod store;
pub mod sweep;

pub use clock::{Clock, ManualClock, SystemClock};
pub use job::{Job, JobContext, JobError, JobHandler, NewJob, Periodic};
pub use metrics::JobMetrics;
pub use runner::{JobConfig, JobRunner, Nudge, StartError};
pub use schema::{install, prune, Pruned, Retention};
pub use store::{enqueue, finish};
pub use sweep::{Sweep, Sweeper};

/// Jobs enqueued in this process: announced by [`enqueue`], watched by the
/// [`JobRunner`] (`write-signal` says why not `NOTIFY`).
pub use write_signal::JOBS;

//! In-process announcements of rows a transaction wrote: the outbox's
//! events for the relay, the job queue's jobs for its runners.
//!
//! A `NOTIFY` in the writing transaction would wake the reader exactly at
//! its commit, but PostgreSQL serialises the commits of notifying
//! transactions, fsync included: eight writers' one-row commits fell to
//! between a half and a fifth of their rate with it (see the README's
//! benchmark). Every service writes its outbox rows and jobs in the process
//! that runs its relay and job runner, so the write announces itself
//! in-process instead ([`Signal::written`]). Where the code that commits
//! the transaction is at hand, as in the consumer runner, the announcement
//! waits for the commit ([`hold`]) and the reader finds the rows at its
//! first look. Elsewhere it comes before the commit: a reader woken so looks
//! again every millisecond for a few looks, then less often, for up to
//! [`SETTLE`] ([`Looks`]), until the rows show up. A slow fallback poll
//! covers a commit later than that and rows written by another process.

use std::cell::RefCell;
use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// How long after an announcement a reader keeps looking for the rows:
/// longer than a transaction takes from its last write to its commit,
/// which is the fsync.
pub const SETTLE: Duration = Duration::from_millis(250);

/// The pause between looks after an announcement, for the first
/// [`STEADY_LOOKS`] looks (a commit's fsync takes a millisecond or a few);
/// after that each pause is twice the last.
pub const LOOK_AGAIN: Duration = Duration::from_millis(1);

/// How many looks [`LOOK_AGAIN`] apart follow an announcement before the
/// pauses grow.
pub const STEADY_LOOKS: u32 = 8;

fn channel() -> watch::Sender<u64> {
    watch::channel(0).0
}

/// One kind of row announced, a `static` of the crate that writes it.
pub struct Signal(LazyLock<watch::Sender<u64>>);

impl Signal {
    pub const fn new() -> Self {
        Signal(LazyLock::new(channel))
    }

    /// Announces rows written in a transaction that may not have committed
    /// yet. Cheap: readers that are busy see one change however many writes
    /// came meanwhile.
    /// Inside [`hold`], the announcement waits for its commit.
    pub fn written(&'static self) {
        let held = HELD.try_with(|held| {
            let mut held = held.borrow_mut();
            if !held.iter().any(|signal| std::ptr::eq(*signal, self)) {
                held.push(self);
            }
        });
        if held.is_err() {
            self.announce();
        }
    }

    fn announce(&self) {
        self.0.send_modify(|count| *count = count.wrapping_add(1));
    }

    /// How many announcements were made so far: compare before and after a
    /// piece of work to know whether it wrote anything.
    pub fn announced(&self) -> u64 {
        *self.0.borrow()
    }

    /// What a reader waits on.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}

/// Outbox rows written in this process, watched by its relay.
pub static OUTBOX: Signal = Signal::new();

/// Jobs enqueued in this process, watched by its job runner.
pub static JOBS: Signal = Signal::new();

tokio::task_local! {
    /// The signals written inside [`hold`], announced at its commit.
    static HELD: RefCell<Vec<&'static Signal>>;
}

/// Runs `work`, the statements of a transaction its caller commits after
/// it, holding back what it announces: announced before the commit, the
/// rows could not be found yet, and readers would look for them again and
/// again until it lands. Call [`Held::commit_done`] once the transaction
/// has committed; drop it when the transaction rolled back, so nobody looks.
pub async fn hold<F: Future>(work: F) -> (F::Output, Held) {
    HELD.scope(RefCell::new(Vec::new()), async {
        let output = work.await;
        let held = HELD.with(RefCell::take);
        (output, Held(held))
    })
    .await
}

/// Announcements held back by [`hold`].
#[must_use = "announce them with `commit_done` once the transaction has committed"]
pub struct Held(Vec<&'static Signal>);

impl Held {
    /// The transaction has committed: announces each kind of row it wrote.
    pub fn commit_done(self) {
        for signal in self.0 {
            signal.announce();
        }
    }
}

impl Default for Signal {
    fn default() -> Self {
        Signal::new()
    }
}

/// A reader's looks after an announcement.
#[derive(Debug, Default)]
pub struct Looks {
    /// When rows were last announced, and how many looks found nothing
    /// since, while their commit may still be on its way.
    since: Option<(Instant, u32)>,
}

impl Looks {
    /// Rows were announced: look again soon.
    pub fn announced(&mut self) {
        self.since = Some((Instant::now(), 0));
    }

    /// The rows were found: nothing to look for until the next announcement.
    pub fn found(&mut self) {
        self.since = None;
    }

    /// How long to wait before the next look: short while announced rows
    /// may still be committing, else `idle`, whichever is shorter.
    pub fn pause(&mut self, idle: Duration) -> Duration {
        match self.since {
            Some((at, looks)) if at.elapsed() < SETTLE => {
                self.since = Some((at, looks + 1));
                let pause = LOOK_AGAIN * 2u32.pow(looks.saturating_sub(STEADY_LOOKS).min(8));
                pause.min(idle)
            }
            _ => {
                self.since = None;
                idle
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn looks_are_a_millisecond_apart_then_grow_until_the_settle_time() {
        let mut looks = Looks::default();
        let idle = Duration::from_secs(1);
        assert_eq!(looks.pause(idle), idle, "nothing announced");
        looks.announced();
        let mut pauses = Vec::new();
        loop {
            let pause = looks.pause(idle);
            if pause == idle {
                break;
            }
            pauses.push(pause.as_millis());
            tokio::time::advance(pause).await;
        }
        assert_eq!(pauses[..STEADY_LOOKS as usize], [1; 8]);
        assert_eq!(pauses[8..11], [1, 2, 4]);
        assert!(pauses.iter().sum::<u128>() >= SETTLE.as_millis());
        looks.announced();
        looks.found();
        assert_eq!(looks.pause(idle), idle, "found: back to idle");
    }

    #[tokio::test]
    async fn a_write_inside_hold_is_announced_at_its_commit_and_never_after_a_rollback() {
        let before = JOBS.announced();
        let ((), held) = hold(async {
            JOBS.written();
            JOBS.written();
        })
        .await;
        assert_eq!(
            JOBS.announced(),
            before,
            "nothing announced before the commit"
        );
        held.commit_done();
        assert_eq!(JOBS.announced(), before + 1, "announced once at the commit");

        let ((), rolled_back) = hold(async { JOBS.written() }).await;
        drop(rolled_back);
        assert_eq!(
            JOBS.announced(),
            before + 1,
            "nothing to find after a rollback"
        );
        JOBS.written();
        assert_eq!(JOBS.announced(), before + 2, "outside hold: at once");
    }

    #[tokio::test]
    async fn a_write_wakes_every_reader_once_however_many_came() {
        static ROWS: Signal = Signal::new();
        let mut first = ROWS.subscribe();
        let mut second = ROWS.subscribe();
        let before = ROWS.announced();
        ROWS.written();
        ROWS.written();
        assert_eq!(ROWS.announced(), before + 2);
        first.changed().await.expect("a change");
        second.changed().await.expect("a change");
        assert!(
            !first.has_changed().expect("open"),
            "one wake for both writes"
        );
    }
}

//! What each process of the fleet costs, read from `/proc`: CPU seconds
//! (user + system) and resident memory (now, and its peak, `VmHWM`).
//!
//! PostgreSQL is many processes: the postmaster and a backend per
//! connection. Its CPU is the postmaster's own, its reaped children's
//! (which the kernel adds to the postmaster's `cutime`/`cstime` when a
//! backend exits) and every live child's, so a connection that closes
//! mid-run does not take its share with it.

use std::collections::BTreeMap;

use procfs::process::{all_processes, Process};

/// A process to watch and how to read it.
#[derive(Debug, Clone)]
pub enum Watched {
    /// One process.
    Single { name: String, pid: u32 },
    /// PostgreSQL: the postmaster and all its children.
    Postgres { postmaster: u32 },
}

impl Watched {
    pub fn name(&self) -> &str {
        match self {
            Watched::Single { name, .. } => name,
            Watched::Postgres { .. } => "postgres (all backends)",
        }
    }

    /// CPU seconds used so far.
    pub fn cpu_seconds(&self) -> f64 {
        let ticks = procfs::ticks_per_second() as f64;
        match self {
            Watched::Single { pid, .. } => own_ticks(*pid).map_or(0.0, |t| t as f64 / ticks),
            Watched::Postgres { postmaster } => {
                let Some(stat) = stat(*postmaster) else {
                    return 0.0;
                };
                let reaped = u64::try_from(stat.cutime + stat.cstime).unwrap_or_default();
                let children: u64 = children_of(*postmaster)
                    .into_iter()
                    .filter_map(own_ticks)
                    .sum();
                (stat.utime + stat.stime + reaped + children) as f64 / ticks
            }
        }
    }

    /// Resident memory now and at its peak, in MiB (one process only).
    pub fn memory(&self) -> Option<Memory> {
        let Watched::Single { pid, .. } = self else {
            return None;
        };
        let status = Process::new(i32::try_from(*pid).ok()?)
            .ok()?
            .status()
            .ok()?;
        Some(Memory {
            rss_mib: status.vmrss? as f64 / 1024.0,
            peak_mib: status.vmhwm? as f64 / 1024.0,
        })
    }
}

/// Resident memory of a process.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub rss_mib: f64,
    pub peak_mib: f64,
}

/// CPU seconds of every watched process at one instant.
#[derive(Debug, Clone, Default)]
pub struct CpuSnapshot(pub BTreeMap<String, f64>);

impl CpuSnapshot {
    pub fn take(watched: &[Watched]) -> Self {
        Self(
            watched
                .iter()
                .map(|w| (w.name().to_owned(), w.cpu_seconds()))
                .collect(),
        )
    }

    /// CPU seconds each process used since `earlier`.
    pub fn since(&self, earlier: &CpuSnapshot) -> BTreeMap<String, f64> {
        self.0
            .iter()
            .map(|(name, now)| {
                let before = earlier.0.get(name).copied().unwrap_or(*now);
                (name.clone(), (now - before).max(0.0))
            })
            .collect()
    }
}

fn stat(pid: u32) -> Option<procfs::process::Stat> {
    Process::new(i32::try_from(pid).ok()?).ok()?.stat().ok()
}

fn own_ticks(pid: u32) -> Option<u64> {
    stat(pid).map(|stat| stat.utime + stat.stime)
}

fn children_of(parent: u32) -> Vec<u32> {
    let Ok(processes) = all_processes() else {
        return Vec::new();
    };
    processes
        .filter_map(Result::ok)
        .filter_map(|process| process.stat().ok())
        .filter(|stat| u32::try_from(stat.ppid).ok() == Some(parent))
        .filter_map(|stat| u32::try_from(stat.pid).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_read_and_its_cpu_only_grows() {
        let me = Watched::Single {
            name: "me".to_owned(),
            pid: std::process::id(),
        };
        let before = CpuSnapshot::take(std::slice::from_ref(&me));
        let mut spin = 0u64;
        for n in 0..20_000_000u64 {
            spin = spin.wrapping_add(n ^ (spin >> 3));
        }
        assert_ne!(spin, 1);
        let used = CpuSnapshot::take(std::slice::from_ref(&me)).since(&before);
        assert!(used["me"] >= 0.0);
        let memory = me.memory().expect("our own status");
        assert!(memory.peak_mib >= memory.rss_mib && memory.rss_mib > 0.0);
    }
}

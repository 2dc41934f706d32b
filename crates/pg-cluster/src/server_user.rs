//! The OS user the server runs as, and what that user can reach.
//!
//! PostgreSQL refuses to run as root, so a root process runs every server
//! binary as the `postgres` OS user (`runuser`, from util-linux). That user
//! must be able to enter the cluster's directory, which rules out anything
//! under a home directory like `/root` (mode 0700). Rather than loosen such a
//! directory, callers ask [`server_can_enter`] and pick another place.

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;
use nix::unistd::{Uid, User};

/// Which OS user the server binaries run as.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RunAs {
    CurrentUser,
    /// We are root; the server runs as `postgres` (uid, gid).
    Postgres {
        uid: u32,
        gid: u32,
    },
}

impl RunAs {
    pub(crate) fn detect() -> anyhow::Result<Self> {
        if !Uid::effective().is_root() {
            return Ok(Self::CurrentUser);
        }
        let user = User::from_name("postgres")
            .context("failed to look up the `postgres` OS user")?
            .context("running as root, but there is no `postgres` OS user to run the server as (installing Debian's postgresql creates it)")?;
        Ok(Self::Postgres {
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        })
    }

    /// Makes `dir` the server user's own.
    pub(crate) fn hand_over(self, dir: &Path) -> anyhow::Result<()> {
        match self {
            Self::CurrentUser => Ok(()),
            Self::Postgres { uid, gid } => chown(dir, Some(uid), Some(gid))
                .with_context(|| format!("failed to hand {} to the postgres user", dir.display())),
        }
    }

    /// The words that make a command run as the server's user.
    pub(crate) fn prefix(self) -> &'static [&'static str] {
        match self {
            Self::CurrentUser => &[],
            Self::Postgres { .. } => &["runuser", "-u", "postgres", "--"],
        }
    }

    /// Whether the server's user can enter `dir`, or, while `dir` does not
    /// exist yet, its nearest existing ancestor (what we create below it is
    /// ours to open up).
    pub(crate) fn can_enter(self, dir: &Path) -> anyhow::Result<bool> {
        if let Self::CurrentUser = self {
            return Ok(true);
        }
        let dir = std::path::absolute(dir)
            .with_context(|| format!("failed to resolve {}", dir.display()))?;
        let existing = dir
            .ancestors()
            .find(|ancestor| ancestor.exists())
            .unwrap_or(Path::new("/"));
        // Asking the user itself is exact where reasoning about modes is not
        // (ACLs, supplementary groups): `test -x` on a directory needs search
        // permission on it and on every ancestor.
        let status = Command::new("runuser")
            .args(["-u", "postgres", "--", "test", "-x"])
            .arg(existing)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("failed to run runuser (util-linux) to check a directory's reach")?;
        Ok(status.success())
    }
}

/// Whether the OS user the server runs as can enter `dir` (or, while `dir`
/// does not exist, the nearest ancestor that does). Always true unless this
/// process is root, when that user is `postgres`.
pub fn server_can_enter(dir: &Path) -> anyhow::Result<bool> {
    RunAs::detect()?.can_enter(dir)
}

/// A new, empty temporary directory for a throw-away cluster (or a data
/// directory holding one) that the server's OS user can enter.
///
/// It is made in the system's temporary directory (`$TMPDIR`, else `/tmp`),
/// unless the server's user cannot reach that one (a `$TMPDIR` under `/root`,
/// say): then in `/tmp`. When root, the directory is opened for traversal
/// only (mode 0711), so the server's user can reach what is handed to it
/// inside without being able to list it.
pub fn server_temp_dir(prefix: &str) -> anyhow::Result<tempfile::TempDir> {
    let run_as = RunAs::detect()?;
    let mut parent = std::env::temp_dir();
    if !run_as.can_enter(&parent)? {
        tracing::info!(
            tmpdir = %parent.display(),
            "the postgres OS user cannot enter the temporary directory; using /tmp"
        );
        parent = PathBuf::from("/tmp");
    }
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&parent)
        .with_context(|| {
            format!(
                "failed to create a temporary directory in {}",
                parent.display()
            )
        })?;
    if let RunAs::Postgres { .. } = run_as {
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o711)).with_context(|| {
            format!(
                "failed to open {} to the postgres user",
                dir.path().display()
            )
        })?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_below_a_closed_one_is_out_of_the_servers_reach() {
        // Ours and closed to everyone else, like a home directory.
        let closed = tempfile::tempdir().expect("temp dir");
        fs::set_permissions(closed.path(), fs::Permissions::from_mode(0o700)).expect("chmod");
        let open = server_temp_dir("heyblue-reach-").expect("server temp dir");
        let run_as = RunAs::detect().expect("server user");
        let below_open = run_as
            .can_enter(&open.path().join("data/postgres"))
            .expect("checked");
        let below_closed = run_as
            .can_enter(&closed.path().join("data/postgres"))
            .expect("checked");
        assert!(below_open);
        match run_as {
            RunAs::Postgres { .. } => assert!(!below_closed),
            RunAs::CurrentUser => assert!(below_closed, "our own directories are ours"),
        }
    }
}

//! Advisory file locks (flock(2)) between lbconsole processes: the store's lock
//! around every check-then-write, the guard's lock that says it is alive, and
//! the daemon's, held for its whole life so that a state dir has one daemon.
//!
//! flock rather than a lock file that exists or not: the kernel releases it when
//! the holder dies, however it dies, so a kill -9 never leaves the store locked.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use super::atomic::FILE_MODE;
use super::sys::flock;

/// An exclusive flock, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct Lock {
    file: File,
}

/// A lock file is never a symbolic link: one planted in the state dir must not
/// make root create or write a file elsewhere.
fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

impl Lock {
    /// Waits until this process holds the lock on `path` (created if missing).
    pub fn acquire(path: &Path) -> io::Result<Lock> {
        let file = open(path)?;
        flock(&file, libc::LOCK_EX)?;
        Ok(Lock { file })
    }

    /// The lock when nobody holds it, `None` when somebody does.
    pub fn try_acquire(path: &Path) -> io::Result<Option<Lock>> {
        let file = open(path)?;
        match flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => Ok(Some(Lock { file })),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A shared lock on `path` for a reader, which waits out a writer;
    /// `None` when there is no lock file (and so no store to read). Creates
    /// nothing.
    pub fn shared_if_exists(path: &Path) -> io::Result<Option<Lock>> {
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        flock(&file, libc::LOCK_SH)?;
        Ok(Some(Lock { file }))
    }

    /// Writes this process's id into the lock file, for whoever finds the lock
    /// held to name its holder.
    pub fn record_holder(&self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file
            .write_all_at(format!("{}\n", std::process::id()).as_bytes(), 0)
    }

    /// The process id the holder of the lock on `path` recorded; `None` when it
    /// has not (yet) or the file cannot be read. Ask only while the lock is
    /// held: a holder killed with SIGKILL leaves its id behind.
    pub fn holder(path: &Path) -> Option<u32> {
        let mut text = String::new();
        open(path).ok()?.read_to_string(&mut text).ok()?;
        text.trim().parse().ok()
    }

    /// Whether some process holds the lock on `path`; `false` when there is no
    /// such file.
    pub fn is_held(path: &Path) -> io::Result<bool> {
        if !path.exists() {
            return Ok(false);
        }
        Ok(Self::try_acquire(path)?.is_none())
    }
}

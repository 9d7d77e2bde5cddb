//! Advisory file locks (flock(2)) between lbconsole processes: the store's lock
//! around every check-then-write, and the guard's lock that says it is alive.
//!
//! flock rather than a lock file that exists or not: the kernel releases it when
//! the holder dies, however it dies, so a kill -9 never leaves the store locked.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::atomic::FILE_MODE;

/// An exclusive flock, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Opens the lock file, created if missing, never through a symbolic link.
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

fn flock(file: &File, operation: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor that `file` keeps open.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

impl Lock {
    /// Waits until this process holds the lock on `path` (created if missing).
    pub fn acquire(path: &Path) -> io::Result<Lock> {
        let file = open(path)?;
        flock(&file, libc::LOCK_EX)?;
        Ok(Lock { _file: file })
    }

    /// The lock when nobody holds it, `None` when somebody does.
    pub fn try_acquire(path: &Path) -> io::Result<Option<Lock>> {
        let file = open(path)?;
        match flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => Ok(Some(Lock { _file: file })),
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
        Ok(Some(Lock { _file: file }))
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

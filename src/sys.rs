//! The process's own raw libc calls (signals, standard descriptors), behind
//! safe functions that no argument can make unsound. Every `unsafe` block of
//! the process-wide kind lives here; the areas keep theirs in their own `sys`
//! modules (`health::sys`, `store::sys`, `sandbox::sys`).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Ignores SIGHUP from now on, so that a session leader's hangup (a dropped
/// SSH connection) does not end this process.
pub fn ignore_hangup() {
    // SAFETY: SIG_IGN is no handler (no code runs on the signal); signal(2)
    // changes only this process's disposition of SIGHUP.
    unsafe { libc::signal(libc::SIGHUP, libc::SIG_IGN) };
}

/// Points this process's standard output at `file` (a duplicate of its
/// descriptor), closing what it was.
pub fn redirect_stdout(file: &File) -> io::Result<()> {
    // SAFETY: dup2(2) on two open descriptors: `file`'s, borrowed for the call,
    // and 1, which Rust's runtime keeps open from the start (it opens /dev/null
    // on a closed one) and which no `OwnedFd` of this program owns: std's
    // stdout only borrows it, and finds the new file there.
    if unsafe { libc::dup2(file.as_raw_fd(), libc::STDOUT_FILENO) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

//! The process's own raw libc calls (signals, standard descriptors), behind
//! safe functions that no argument can make unsound. Every `unsafe` block of
//! the process-wide kind lives here; the areas keep theirs in their own `sys`
//! modules (`health::sys`, `store::sys`, `sandbox::sys`).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

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

/// This process's limits of open files: the soft one and the hard one.
pub fn open_file_limits() -> io::Result<(libc::rlim_t, libc::rlim_t)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes one `rlimit` into `limit`, borrowed mutably
    // for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((limit.rlim_cur, limit.rlim_max))
}

/// Sets this process's limits of open files.
pub fn set_open_file_limits(soft: libc::rlim_t, hard: libc::rlim_t) -> io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit(2) reads one `rlimit` from `limit`, borrowed for the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets this process's umask; the previous one.
#[cfg(test)]
pub fn set_umask(mask: libc::mode_t) -> libc::mode_t {
    // SAFETY: umask(2) takes an integer, touches no memory and cannot fail.
    unsafe { libc::umask(mask) }
}

/// Makes `command`'s process leader of a new session (setsid(2)) before it
/// runs the program: no terminal, and no SIGHUP when this one's session ends.
pub fn new_session_on_exec(command: &mut Command) {
    // SAFETY: between fork and exec the closure calls only setsid(2), which is
    // async-signal-safe, and makes its error without allocating.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The real user id of this process.
pub fn user_id() -> u32 {
    // SAFETY: getuid(2) takes nothing, touches no memory and cannot fail.
    unsafe { libc::getuid() }
}

/// The real group id of this process.
pub fn group_id() -> u32 {
    // SAFETY: getgid(2) takes nothing, touches no memory and cannot fail.
    unsafe { libc::getgid() }
}

/// Sends SIGTERM to `child`. Once it has been waited for, its id may be
/// another process's: call this only on a child not yet reaped.
pub fn terminate(child: &std::process::Child) -> io::Result<()> {
    let pid = libc::pid_t::try_from(child.id()).map_err(io::Error::other)?;
    // SAFETY: kill(2) takes integers and touches no memory of this process.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes `command`'s process receive SIGTERM when the thread that spawns it
/// ends (prctl(PR_SET_PDEATHSIG)), and not start at all when this process is
/// gone already. The kernel ties the signal to the spawning *thread*: spawn
/// from a thread that lives as long as the process (the daemon's runtime
/// thread), never from a pool's.
pub fn terminate_with_parent_on_exec(command: &mut Command) {
    let parent = std::process::id();
    // SAFETY: between fork and exec the closure calls only prctl(2) and
    // getppid(2), which are async-signal-safe, and makes its errors without
    // allocating.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before the line above.
            if u32::try_from(libc::getppid()) != Ok(parent) {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// The signals lbconsole sends to the processes it supervises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Hangup,
    Terminate,
    Kill,
}

/// Sends `signal` to process `pid`. Process groups (0, negative ids) cannot
/// be named: only one process is ever signalled.
pub fn send_signal(pid: u32, signal: Signal) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .ok()
        .filter(|&pid| pid > 0)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a process id"))?;
    let signal = match signal {
        Signal::Hangup => libc::SIGHUP,
        Signal::Terminate => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    };
    // SAFETY: kill(2) takes integers and touches no memory of this process.
    if unsafe { libc::kill(pid, signal) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Creates the named pipe `path` with `mode` (less the umask).
pub fn make_fifo(path: &std::path::Path, mode: libc::mode_t) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))?;
    // SAFETY: mkfifo(3) reads the NUL-terminated string `path` owns, borrowed
    // for the call.
    if unsafe { libc::mkfifo(path.as_ptr(), mode) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The cookie of the network namespace `socket` lives in (`SO_NETNS_COOKIE`,
/// Linux 5.14): unlike the namespace's inode number, never reused while the
/// machine runs.
pub fn netns_cookie(socket: &impl AsRawFd) -> io::Result<u64> {
    let mut cookie: u64 = 0;
    let mut length = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `length` bytes into `cookie`, which is
    // that long, and the descriptor is borrowed for the call.
    let result = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NETNS_COOKIE,
            (&raw mut cookie).cast(),
            &mut length,
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cookie)
}

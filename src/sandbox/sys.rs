//! The sandbox's namespace calls (unshare, setns) and what its children do
//! between fork and exec: every `unsafe` block of the sandbox, behind safe
//! functions that no argument can make unsound. Namespaces are named by what
//! they are, not by raw flags: unshare(CLONE_FILES) or (CLONE_FS) from a safe
//! function would let one thread's descriptors or directories part from the
//! others'.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Arc;

/// Moves the calling thread into a new network namespace, and into a new user
/// namespace first when `with_user` (which the kernel refuses to a threaded
/// process).
pub(super) fn unshare_network(with_user: bool) -> io::Result<()> {
    let flags = if with_user {
        libc::CLONE_NEWUSER | libc::CLONE_NEWNET
    } else {
        libc::CLONE_NEWNET
    };
    // SAFETY: unshare(2) takes an integer and touches no memory; new user and
    // network namespaces change what the kernel lets this process see and do,
    // not its memory, threads or descriptors.
    if unsafe { libc::unshare(flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Moves the calling thread into the network namespace `namespace` refers to.
pub(super) fn enter_network(namespace: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: setns(2) takes integers: a descriptor borrowed for the call, and
    // CLONE_NEWNET, which changes only the calling thread's network namespace.
    if unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Makes `command`'s process enter the network namespace `namespace` refers to
/// before it runs the program. `command` holds the descriptor until it is
/// dropped.
pub(super) fn enter_network_on_exec(command: &mut Command, namespace: Arc<OwnedFd>) {
    // SAFETY: the closure owns `namespace`, so the descriptor is open in the
    // child; between fork and exec it calls only setns(2), which is
    // async-signal-safe, and makes its error without allocating.
    unsafe {
        command.pre_exec(move || {
            if libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        });
    }
}

/// Lets `command`'s program inherit `fd` (clears its close-on-exec flag in the
/// child only); the number it has there. `command` holds the descriptor until
/// it is dropped.
pub(super) fn inherit_on_exec(command: &mut Command, fd: Arc<OwnedFd>) -> RawFd {
    let number = fd.as_raw_fd();
    // SAFETY: the closure owns `fd`, so the descriptor is open in the child;
    // between fork and exec it calls only fcntl(2) (F_SETFD on the child's own
    // descriptor table), which is async-signal-safe, and makes its error
    // without allocating.
    unsafe {
        command.pre_exec(move || {
            if libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, 0) == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        });
    }
    number
}

/// Makes `command`'s process a daemon that dies with process `parent`: leader
/// of a new session, killed (SIGKILL) when its parent ends, and not started at
/// all when `parent` is gone already.
pub(super) fn child_dies_with_parent_on_exec(command: &mut Command, parent: u32) {
    // SAFETY: between fork and exec the closure calls only setsid(2), prctl(2)
    // and getppid(2), which are async-signal-safe, and makes its errors
    // without allocating.
    unsafe {
        command.pre_exec(move || {
            libc::setsid();
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before the line above.
            if libc::getppid() as u32 != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

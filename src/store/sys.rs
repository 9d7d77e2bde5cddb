//! The store's raw libc calls (flock, the password database, and the tests'
//! FIFOs): every `unsafe` block of the store, behind safe functions that no
//! argument can make unsound. Opening without following links needs none:
//! std's `OpenOptionsExt::custom_flags` takes O_NOFOLLOW.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// flock(2) `operation` on `file`, tried again when a signal interrupts it.
pub(super) fn flock(file: &File, operation: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock(2) takes integers: a descriptor that `file`, borrowed
        // for the call, keeps open, and the operation; it touches no memory.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// The login name of user `uid` in the password database; `None` when it has
/// none (or a name longer than 4 KiB of entry).
pub(super) fn login_name(uid: u32) -> Option<String> {
    let mut buffer = vec![0 as libc::c_char; 4096];
    // SAFETY: `passwd` is plain old data (integers and pointers, null when
    // zeroed), so all zeroes is a valid value. getpwuid_r(3) writes into
    // `passwd` and at most `buffer.len()` bytes of `buffer`, all borrowed
    // mutably for the call, and sets `result` to null or to `&passwd`, whose
    // `pw_name` then points into `buffer`: a NUL-terminated string copied out
    // while `buffer` is alive.
    unsafe {
        let mut passwd: libc::passwd = std::mem::zeroed();
        let mut result = std::ptr::null_mut();
        let status = libc::getpwuid_r(
            uid,
            &mut passwd,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut result,
        );
        (status == 0 && !result.is_null() && !passwd.pw_name.is_null()).then(|| {
            std::ffi::CStr::from_ptr(passwd.pw_name)
                .to_string_lossy()
                .into_owned()
        })
    }
}

/// Makes a FIFO at `path` (mode 0600).
#[cfg(test)]
pub(super) fn mkfifo(path: &std::path::Path) -> io::Result<()> {
    let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())?;
    // SAFETY: mkfifo(3) reads the NUL-terminated `path`, alive across the call.
    if unsafe { libc::mkfifo(path.as_ptr(), 0o600) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

//! Writes that a crash cannot tear: every file is written under a temporary name,
//! flushed to disk, renamed over the old one, and the directory is flushed so the
//! rename itself survives a power cut. A set of files that must change together is
//! written as a new directory and switched in by one rename.
//!
//! Only regular files are replaced: a symbolic link, a device or a FIFO where a
//! file is to be written is refused, never written through or renamed over.
//!
//! A writer killed half-way leaves its temporary names behind. The store's
//! writers, which hold its lock, write each name down in a [`Scratch`] journal
//! before creating it, and the next lock holder removes exactly those: nothing
//! that lbconsole did not create is ever deleted.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Configuration may hold addresses and names an unprivileged user need not see.
pub const FILE_MODE: u32 = 0o640;
pub const DIR_MODE: u32 = 0o750;

/// Temporary names start with a dot and carry this.
const TEMPORARY: &str = ".tmp-";

/// Where temporary names are written down before they are created.
#[derive(Debug, Clone, Copy)]
pub enum Scratch<'a> {
    /// Not written down: a crash may leave the temporary behind (an export's
    /// target directory, which is not lbconsole's to tidy).
    Unrecorded,
    /// The journal file (in the state dir) of a writer holding the store's lock.
    Journal(&'a Path),
}

impl Scratch<'_> {
    /// A new temporary name in `dir` for `what`, written down first.
    fn temporary(self, dir: &Path, what: &str) -> io::Result<PathBuf> {
        let path = dir.join(temporary_name(what));
        self.record(&path)?;
        Ok(path)
    }

    /// Writes `path` down, before it is created.
    fn record(self, path: &Path) -> io::Result<()> {
        let Self::Journal(journal) = self else {
            return Ok(());
        };
        // Not flushed to disk: a power cut may forget a name, which then stays
        // behind as clutter; it can never make one up.
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW)
            .open(journal)?;
        let absolute = std::path::absolute(path)?;
        let line = absolute
            .to_str()
            .filter(|line| !line.contains('\n'))
            .ok_or_else(|| {
                io::Error::other(format!("{} is not a plain UTF-8 path", path.display()))
            })?;
        writeln!(file, "{line}")
    }
}

/// Removes what the writers that journaled in `journal` left behind, then
/// empties it. Only a recorded name that is still lbconsole's kind of name is
/// removed: a temporary (`.tmp-…`), or a directory `LINK.…` that the link
/// `LINK` (one of `links`) does not point to. Call it holding the store's lock,
/// so no writer is at work.
pub fn remove_recorded(journal: &Path, links: &[PathBuf]) -> io::Result<()> {
    let links: Vec<PathBuf> = links
        .iter()
        .map(std::path::absolute)
        .collect::<io::Result<_>>()?;
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(journal)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file",
            journal.display()
        )));
    }
    let live: Vec<PathBuf> = links
        .iter()
        .filter_map(|link| linked_dir(link).ok())
        .collect();
    for line in io::BufReader::new(file).lines() {
        let path = PathBuf::from(line?);
        let name = file_name(&path);
        let temporary = name.starts_with(TEMPORARY);
        let unlinked_target = links.iter().any(|link| {
            parent(link) == parent(&path) && name.starts_with(&format!("{}.", file_name(link)))
        }) && !live.contains(&path);
        if !(temporary || unlinked_target) {
            continue;
        }
        let removed = match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => Err(e),
            Ok(metadata) if metadata.is_dir() => fs::remove_dir_all(&path),
            Ok(_) => fs::remove_file(&path),
        };
        if let Err(error) = removed {
            tracing::warn!(path = %path.display(), %error, "cannot remove a leftover");
        }
    }
    // Emptied through a new file, like every write: never truncated in place
    // through a name someone else may have put there.
    write_file(journal, b"", Scratch::Unrecorded)
}

/// A name no other process or thread uses at the same time.
fn temporary_name(what: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{TEMPORARY}{what}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates `dir` and its missing parents with mode 0750.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Flushes a directory's entries (a rename, a new file) to disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to a new file `path` with `mode` and flushes it; no rename.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    // The umask may have taken bits away from `mode`; what is kept is `mode`.
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// What kind of file `metadata` describes, in words, when it is not a regular
/// file or a directory.
pub fn special_kind(file_type: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_symlink() {
        "a symbolic link"
    } else if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

/// The mode to give the file that replaces `path`: its own when it is a regular
/// file (an administrator's choice), 0640 for a new one. Anything else at `path`
/// is refused.
fn replacement_mode(path: &Path) -> io::Result<u32> {
    match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_file() => Ok(metadata.permissions().mode() & 0o7777),
        Ok(metadata) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is {}, not a regular file; lbconsole replaces only regular files",
                path.display(),
                special_kind(metadata.file_type())
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(FILE_MODE),
        Err(e) => Err(e),
    }
}

/// Replaces the regular file `path` (or creates it) with `bytes`: a reader sees
/// the old content or the new, never a mixture or a short file, whenever the
/// writer is killed. The file keeps its mode.
pub fn write_file(path: &Path, bytes: &[u8], scratch: Scratch<'_>) -> io::Result<()> {
    let dir = parent(path);
    let mode = replacement_mode(path)?;
    let temporary = scratch.temporary(dir, &file_name(path))?;
    if let Err(error) =
        write_new(&temporary, bytes, mode).and_then(|()| fs::rename(&temporary, path))
    {
        let _ = fs::remove_file(&temporary);
        return Err(error);
    }
    sync_dir(dir)
}

/// Creates directory `dir` holding `files` (name, bytes), complete or not at all:
/// they are written into a temporary directory beside it, which is then renamed.
/// Fails when `dir` exists.
pub fn create_dir_with(
    dir: &Path,
    files: &[(&str, &[u8])],
    scratch: Scratch<'_>,
) -> io::Result<()> {
    let parent = parent(dir);
    let temporary = scratch.temporary(parent, &file_name(dir))?;
    let result = fill_new_dir(&temporary, files).and_then(|()| {
        if fs::symlink_metadata(dir).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} already exists", dir.display()),
            ));
        }
        fs::rename(&temporary, dir)
    });
    if let Err(error) = result {
        let _ = fs::remove_dir_all(&temporary);
        return Err(error);
    }
    sync_dir(parent)
}

fn fill_new_dir(dir: &Path, files: &[(&str, &[u8])]) -> io::Result<()> {
    DirBuilder::new().mode(DIR_MODE).create(dir)?;
    for (name, bytes) in files {
        write_new(&dir.join(name), bytes, FILE_MODE)?;
    }
    sync_dir(dir)
}

/// Makes `dir` disappear at once: renamed to a temporary name first, so a reader
/// never finds it half-deleted, then deleted.
pub fn remove_dir(dir: &Path, scratch: Scratch<'_>) -> io::Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(metadata) if metadata.is_dir() => {}
        Ok(metadata) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is {}, not a directory lbconsole made; left alone",
                    dir.display(),
                    special_kind(metadata.file_type())
                ),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    let parent = parent(dir);
    let doomed = scratch.temporary(parent, &format!("{}-removed", file_name(dir)))?;
    fs::rename(dir, &doomed)?;
    sync_dir(parent)?;
    // The directory is gone from its name; what is left is only disk space.
    let _ = fs::remove_dir_all(&doomed);
    Ok(())
}

/// The directory the link `link` stands for: a directory `NAME.SUFFIX` beside
/// it, as [`replace_linked_dir`] makes them, or `link` itself when it is a real
/// directory (as versions before the link wrote it). A link anywhere else is
/// not lbconsole's, and refused.
pub fn linked_dir(link: &Path) -> io::Result<PathBuf> {
    let metadata = fs::symlink_metadata(link)?;
    if metadata.is_dir() {
        return Ok(link.to_owned());
    }
    let refused = |what: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{what}; lbconsole follows only its own links (`{}.*` beside it)",
                file_name(link)
            ),
        )
    };
    if !metadata.file_type().is_symlink() {
        return Err(refused(format!(
            "it is {}",
            special_kind(metadata.file_type())
        )));
    }
    let target = fs::read_link(link)?;
    let ours = target
        .to_str()
        .is_some_and(|t| !t.contains('/') && t.starts_with(&format!("{}.", file_name(link))));
    if !ours {
        return Err(refused(format!("it points to {}", target.display())));
    }
    let dir = parent(link).join(target);
    if !fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
        return Err(refused(format!("{} is not a directory", dir.display())));
    }
    Ok(dir)
}

/// Replaces the directory that `link` (a symbolic link) points to with a new one
/// holding `files`: the new directory is written completely, then the link is
/// swapped by a rename, so `link/FILE` always opens a file of one complete set.
/// A real directory at `link` (from a version that wrote the files in place) is
/// taken over the same way. The old directory is removed only when it is one
/// of ours ([`linked_dir`]).
pub fn replace_linked_dir(
    link: &Path,
    files: &[(&str, &[u8])],
    scratch: Scratch<'_>,
) -> io::Result<()> {
    let parent = parent(link);
    let name = file_name(link);
    let old = match linked_dir(link) {
        Ok(dir) if dir == link => {
            // rename() cannot put a link over a directory: move it aside first.
            remove_dir(link, scratch)?;
            None
        }
        Ok(dir) => Some(dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(error) => {
            tracing::warn!(link = %link.display(), %error, "replacing a link that is not ours; what it pointed to is left alone");
            None
        }
    };
    let target_name = format!("{name}.{}", unique_suffix());
    let target = parent.join(&target_name);
    // Written down like a temporary: until the link points to it, it is one.
    scratch.record(&target)?;
    create_dir_with(&target, files, scratch)?;
    let new_link = scratch.temporary(parent, &name)?;
    std::os::unix::fs::symlink(&target_name, &new_link)?;
    if let Err(error) = fs::rename(&new_link, link) {
        let _ = fs::remove_file(&new_link);
        return Err(error);
    }
    sync_dir(parent)?;
    if let Some(old) = old {
        let _ = remove_dir(&old, scratch);
    }
    Ok(())
}
fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("lbconsole-atomic-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        create_dir_all(&dir).expect("test dir");
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("exists").permissions().mode() & 0o7777
    }

    #[test]
    fn files_and_directories_get_modes_0640_and_0750_and_a_replaced_file_keeps_its_own() {
        let dir = test_dir("modes");
        write_file(&dir.join("a.conf"), b"x", Scratch::Unrecorded).expect("write");
        create_dir_with(&dir.join("v1"), &[("b.conf", b"y")], Scratch::Unrecorded).expect("dir");
        assert_eq!(mode(&dir.join("a.conf")), 0o640);
        assert_eq!(mode(&dir.join("v1")), 0o750);
        assert_eq!(mode(&dir.join("v1/b.conf")), 0o640);
        fs::set_permissions(dir.join("a.conf"), fs::Permissions::from_mode(0o600)).expect("chmod");
        write_file(&dir.join("a.conf"), b"z", Scratch::Unrecorded).expect("replace");
        assert_eq!(mode(&dir.join("a.conf")), 0o600);
        fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_link_or_a_fifo_is_never_written_through_or_replaced() {
        let dir = test_dir("special");
        fs::write(dir.join("victim"), "keep").expect("victim");
        std::os::unix::fs::symlink(dir.join("victim"), dir.join("link")).expect("link");
        let error = write_file(&dir.join("link"), b"x", Scratch::Unrecorded).expect_err("a link");
        assert!(error.to_string().contains("is a symbolic link"), "{error}");
        assert_eq!(
            fs::read_to_string(dir.join("victim")).expect("victim"),
            "keep"
        );
        assert!(
            fs::symlink_metadata(dir.join("link"))
                .expect("link")
                .is_symlink()
        );
        crate::store::sys::mkfifo(&dir.join("fifo")).expect("a FIFO");
        let error = write_file(&dir.join("fifo"), b"x", Scratch::Unrecorded).expect_err("a FIFO");
        assert!(error.to_string().contains("is a FIFO"), "{error}");
        assert_eq!(names(&dir), ["fifo", "link", "victim"]);
        fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_linked_dir_is_replaced_whole_and_only_recorded_leftovers_are_removed() {
        let dir = test_dir("linked");
        let journal = dir.join("journal");
        let scratch = Scratch::Journal(&journal);
        let link = dir.join("running");
        fs::create_dir(&link).expect("an old real directory");
        fs::write(link.join("a"), "old").expect("old file");
        replace_linked_dir(&link, &[("a", b"1"), ("b", b"1")], scratch).expect("first");
        replace_linked_dir(&link, &[("a", b"2"), ("b", b"2")], scratch).expect("second");
        assert_eq!(fs::read_to_string(link.join("a")).expect("a"), "2");
        assert_eq!(fs::read_to_string(link.join("b")).expect("b"), "2");
        // A writer killed half-way: it wrote these names down, then made them.
        let (left_dir, left_file) = (dir.join("running.123-1"), dir.join(".tmp-x-1-1"));
        scratch.record(&left_dir).expect("record");
        scratch.record(&left_file).expect("record");
        fs::create_dir(&left_dir).expect("a leftover");
        fs::write(&left_file, "").expect("a leftover");
        // An administrator's files that look alike but were never recorded.
        fs::create_dir(dir.join("running.bak")).expect("a backup");
        fs::write(dir.join(".tmp-mine"), "").expect("an editor's file");
        remove_recorded(&journal, std::slice::from_ref(&link)).expect("tidy");
        let names = names(&dir);
        assert_eq!(names.len(), 5, "{names:?}");
        assert_eq!(names[..3], [".tmp-mine", "journal", "running"]);
        assert!(names[3].starts_with("running.1"), "{names:?}");
        assert_eq!(names[4], "running.bak");
        assert_eq!(fs::read(&journal).expect("journal"), b"");
        fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_link_out_of_the_directory_is_replaced_and_its_target_left_alone() {
        let dir = test_dir("foreign-link");
        let victim = test_dir("foreign-link-victim");
        fs::write(victim.join("precious"), "keep").expect("victim");
        let link = dir.join("running");
        std::os::unix::fs::symlink(&victim, &link).expect("link");
        assert!(linked_dir(&link).is_err(), "a foreign link is not ours");
        replace_linked_dir(
            &link,
            &[("a", b"1")],
            Scratch::Journal(&dir.join("journal")),
        )
        .expect("replaced");
        assert_eq!(fs::read_to_string(link.join("a")).expect("a"), "1");
        assert_eq!(
            fs::read_to_string(victim.join("precious")).expect("kept"),
            "keep"
        );
        fs::remove_dir_all(&dir).expect("clean up");
        fs::remove_dir_all(&victim).expect("clean up");
    }

    #[test]
    fn creating_a_dir_that_exists_fails_and_leaves_no_temporary() {
        let dir = test_dir("exists");
        create_dir_with(&dir.join("v1"), &[("a", b"1")], Scratch::Unrecorded).expect("first");
        let error = create_dir_with(&dir.join("v1"), &[("a", b"2")], Scratch::Unrecorded)
            .expect_err("exists");
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_dir(&dir).expect("list").count(), 1);
        assert_eq!(fs::read_to_string(dir.join("v1/a")).expect("a"), "1");
        fs::remove_dir_all(&dir).expect("clean up");
    }
}

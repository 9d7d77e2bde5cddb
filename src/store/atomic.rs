//! Writes that a crash cannot tear: every file is written under a temporary name,
//! flushed to disk, renamed over the old one, and the directory is flushed so the
//! rename itself survives a power cut. A set of files that must change together is
//! written as a new directory and switched in by one rename.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Configuration may hold addresses and names an unprivileged user need not see.
pub const FILE_MODE: u32 = 0o640;
pub const DIR_MODE: u32 = 0o750;

/// Temporary names start with a dot and carry this, so a leftover from a crash is
/// recognised (and removed) by [`remove_leftovers`].
const TEMPORARY: &str = ".tmp-";

/// A name no other process or thread uses at the same time.
pub fn temporary_name(what: &str) -> String {
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

/// Writes `bytes` to a new file `path` (mode 0640) and flushes it; no rename.
fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Replaces `path` with `bytes`: a reader sees the old content or the new, never
/// a mixture or a short file, whenever the writer is killed.
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent(path);
    let name = file_name(path);
    let temporary = dir.join(temporary_name(&name));
    if let Err(error) = write_new(&temporary, bytes).and_then(|()| fs::rename(&temporary, path)) {
        let _ = fs::remove_file(&temporary);
        return Err(error);
    }
    sync_dir(dir)
}

/// Creates directory `dir` holding `files` (name, bytes), complete or not at all:
/// they are written into a temporary directory beside it, which is then renamed.
/// Fails when `dir` exists.
pub fn create_dir_with(dir: &Path, files: &[(&str, &[u8])]) -> io::Result<()> {
    let parent = parent(dir);
    let name = file_name(dir);
    let temporary = parent.join(temporary_name(&name));
    let result = fill_new_dir(&temporary, files).and_then(|()| {
        if dir.exists() {
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
        write_new(&dir.join(name), bytes)?;
    }
    sync_dir(dir)
}

/// Makes `dir` disappear at once: renamed to a temporary name first, so a reader
/// never finds it half-deleted, then deleted.
pub fn remove_dir(dir: &Path) -> io::Result<()> {
    let parent = parent(dir);
    let name = file_name(dir);
    let doomed = parent.join(temporary_name(&format!("{name}-removed")));
    match fs::rename(dir, &doomed) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    sync_dir(parent)?;
    // The directory is gone from its name; what is left is only disk space.
    let _ = fs::remove_dir_all(&doomed);
    Ok(())
}

/// Replaces the directory that `link` (a symbolic link) points to with a new one
/// holding `files`: the new directory is written completely, then the link is
/// swapped by a rename, so `link/FILE` always opens a file of one complete set.
/// A real directory at `link` (from a version that wrote the files in place) is
/// taken over the same way.
pub fn replace_linked_dir(link: &Path, files: &[(&str, &[u8])]) -> io::Result<()> {
    let parent = parent(link);
    let name = file_name(link);
    let old_target = fs::read_link(link).ok().map(|target| parent.join(target));
    let target_name = format!("{name}.{}", unique_suffix());
    create_dir_with(&parent.join(&target_name), files)?;
    let new_link = parent.join(temporary_name(&name));
    std::os::unix::fs::symlink(&target_name, &new_link)?;
    if fs::symlink_metadata(link).is_ok_and(|m| m.is_dir()) {
        // rename() cannot put a link over a directory: move the directory aside.
        remove_dir(link)?;
    }
    if let Err(error) = fs::rename(&new_link, link) {
        let _ = fs::remove_file(&new_link);
        return Err(error);
    }
    sync_dir(parent)?;
    if let Some(old) = old_target {
        let _ = remove_dir(&old);
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

/// Removes what writers killed half-way left in `dir`: temporary files and
/// directories, and directories `PREFIX.*` that `link` no longer points to. Call
/// it holding the store's lock, so no writer is at work.
pub fn remove_leftovers(dir: &Path, linked: &[&str]) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let targets: Vec<PathBuf> = linked
        .iter()
        .filter_map(|link| fs::read_link(dir.join(link)).ok())
        .collect();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale_target = linked.iter().any(|link| {
            name.starts_with(&format!("{link}."))
                && !targets.iter().any(|target| target == Path::new(&name))
        });
        if name.starts_with(TEMPORARY) || stale_target {
            let path = entry.path();
            let removed = if entry.file_type()?.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            if let Err(error) = removed {
                tracing::warn!(path = %path.display(), %error, "cannot remove a leftover");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("lbconsole-atomic-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[test]
    fn files_and_directories_get_modes_0640_and_0750() {
        let dir = scratch("modes");
        write_file(&dir.join("a.conf"), b"x").expect("write");
        create_dir_with(&dir.join("v1"), &[("b.conf", b"y")]).expect("dir");
        let mode = |p: &Path| fs::metadata(p).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("a.conf")), 0o640);
        assert_eq!(mode(&dir.join("v1")), 0o750);
        assert_eq!(mode(&dir.join("v1/b.conf")), 0o640);
        fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_linked_dir_is_replaced_whole_and_the_old_one_removed() {
        let dir = scratch("linked");
        let link = dir.join("running");
        fs::create_dir(&link).expect("an old real directory");
        fs::write(link.join("a"), "old").expect("old file");
        replace_linked_dir(&link, &[("a", b"1"), ("b", b"1")]).expect("first");
        replace_linked_dir(&link, &[("a", b"2"), ("b", b"2")]).expect("second");
        assert_eq!(fs::read_to_string(link.join("a")).expect("a"), "2");
        assert_eq!(fs::read_to_string(link.join("b")).expect("b"), "2");
        fs::create_dir(dir.join("running.123-1")).expect("a leftover");
        fs::write(dir.join(".tmp-x-1-1"), "").expect("a leftover");
        remove_leftovers(&dir, &["running"]).expect("tidy");
        let mut names: Vec<String> = fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(names[0], "running");
        assert!(names[1].starts_with("running."), "{names:?}");
        fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn creating_a_dir_that_exists_fails_and_leaves_no_temporary() {
        let dir = scratch("exists");
        create_dir_with(&dir.join("v1"), &[("a", b"1")]).expect("first");
        let error = create_dir_with(&dir.join("v1"), &[("a", b"2")]).expect_err("exists");
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_dir(&dir).expect("list").count(), 1);
        assert_eq!(fs::read_to_string(dir.join("v1/a")).expect("a"), "1");
        fs::remove_dir_all(&dir).expect("clean up");
    }
}

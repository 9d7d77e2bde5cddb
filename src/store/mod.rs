//! The config directory and the state directory on disk.
//!
//! ```text
//! CONFIG_DIR/ network.conf flows.conf lvs.conf   the saved configuration (what boot applies)
//!             lbconsole.toml                     settings (settings.rs)
//! STATE_DIR/  lock                               flock held around every check-then-write
//!             daemon.lock                        flock held by the daemon for its life; its pid
//!             health.sock                        the daemon's health, for `status` (health/publish.rs)
//!             overrides.toml                     operators' live overrides of real servers
//!             state.toml                         what runs, the last rollback, a save in progress
//!             history/N/                         every version: the three files and meta.toml
//!             running -> running.ID/             what the kernel runs (swapped by one rename)
//!             pending/                           an apply waiting for `lbconsole confirm`
//!             journal                            names a writer is creating (atomic.rs)
//! ```
//!
//! Of the three files, a missing one counts as empty, but a config dir that does
//! not exist or holds none of them is an error: a typo in `--config-dir` must
//! never read as "run nothing". An unreadable file is an error, and so is one
//! that is not a regular file (a FIFO would hang the reader, a device never
//! ends). Every write is atomic (atomic.rs); versions.rs keeps the history with
//! optimistic concurrency; pending.rs records an unconfirmed apply. Files of the
//! state dir are opened without following symbolic links. sys.rs holds the
//! store's only `unsafe` (flock, the password database).

pub mod archive;
pub mod atomic;
pub mod lock;
pub mod overrides;
pub mod pending;
pub mod settings;
pub mod summary;
#[allow(unsafe_code)]
mod sys;
pub mod versions;

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::config::{ConfigFile, Diagnostic, Sources};

pub use archive::Archive;
pub use pending::PendingApply;
pub use settings::Settings;
pub use versions::{Locked, Origin, Saved, State, Store, VersionMeta};

/// Larger files are refused rather than read into memory: no real configuration
/// comes near this, and a mistyped path to a device or a disk image must not hang.
const MAX_FILE_BYTES: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the config directory {} does not exist; nothing was done (check --config-dir or LBCONSOLE_CONFIG_DIR)", dir.display())]
    NoDir { dir: PathBuf },
    #[error("cannot read config directory {}: {source}", dir.display())]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is larger than {} MiB; is it really a configuration file?", path.display(), MAX_FILE_BYTES >> 20)]
    TooLarge { path: PathBuf },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}; {}", path.display(), if undo_failures.is_empty() { "the config directory was left as it was, and nothing was saved".to_owned() } else { format!("putting back the files already written failed too ({}), so the config directory is part-way", undo_failures.join("; ")) })]
    ConfigDirWrite {
        path: PathBuf,
        source: std::io::Error,
        undo_failures: Vec<String>,
    },
    #[error("{} holds none of network.conf, flows.conf and lvs.conf; nothing was done (create them, even empty, to run an empty configuration)", dir.display())]
    Empty { dir: PathBuf },
    #[error("{} is {kind}, not a regular file; lbconsole reads and writes only regular files", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{}: {message}", path.display())]
    Malformed { path: PathBuf, message: String },
    #[error("configuration changed by {user} at {time} (version {version}); reload or merge")]
    Stale {
        version: u64,
        user: String,
        time: String,
    },
    #[error(
        "another lbconsole daemon{} runs on {}; stop it first, or give this one another --state-dir",
        holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default(),
        state_dir.display()
    )]
    DaemonRunning {
        state_dir: PathBuf,
        holder: Option<u32>,
    },
    #[error("there is no version {version} (the versions are 1 to {latest})")]
    NoVersion { version: u64, latest: u64 },
    #[error("the configuration has {}; nothing was {what} (first: {})", plural(diagnostics.iter().filter(|d| d.is_error()).count(), "error"), diagnostics.iter().find(|d| d.is_error()).map(ToString::to_string).unwrap_or_default())]
    Invalid {
        what: &'static str,
        diagnostics: Vec<Diagnostic>,
    },
}

/// `1 error`, `2 errors`.
pub fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// The bytes of the three files of one config directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigFiles {
    pub network: Vec<u8>,
    pub flows: Vec<u8>,
    pub lvs: Vec<u8>,
}

impl ConfigFiles {
    pub fn sources(&self) -> Sources<'_> {
        Sources {
            network: &self.network,
            flows: &self.flows,
            lvs: &self.lvs,
        }
    }

    /// The three files of a config dir; an error when the directory is missing
    /// or holds none of them.
    pub fn read(dir: &Path) -> Result<Self, StoreError> {
        let metadata = std::fs::metadata(dir).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => StoreError::NoDir {
                dir: dir.to_owned(),
            },
            _ => StoreError::Dir {
                dir: dir.to_owned(),
                source,
            },
        })?;
        if !metadata.is_dir() {
            return Err(StoreError::Dir {
                dir: dir.to_owned(),
                source: std::io::Error::other("not a directory"),
            });
        }
        let mut files = Self::default();
        let mut found = false;
        for file in ConfigFile::ALL {
            let path = dir.join(file.file_name());
            if let Some(bytes) = read_capped(&path, Links::Follow)? {
                found = true;
                *files.slot(file) = bytes;
            }
        }
        if !found {
            return Err(StoreError::Empty {
                dir: dir.to_owned(),
            });
        }
        Ok(files)
    }

    /// The configuration last applied to the kernel; `None` before the first
    /// apply. `running` must be our link to a directory of the state dir.
    pub fn read_running(state_dir: &Path) -> Result<Option<Self>, StoreError> {
        let link = running_dir(state_dir);
        match std::fs::symlink_metadata(&link) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::File { path: link, source }),
            Ok(_) => {}
        }
        let dir = atomic::linked_dir(&link).map_err(|source| StoreError::File {
            path: link.clone(),
            source,
        })?;
        Self::read_whole(&dir).map(Some)
    }

    /// The three files of a directory lbconsole wrote (a version, what runs):
    /// each must be there, as a regular file, or the directory is damaged.
    pub fn read_whole(dir: &Path) -> Result<Self, StoreError> {
        let mut files = Self::default();
        for file in ConfigFile::ALL {
            let path = dir.join(file.file_name());
            *files.slot(file) =
                read_capped(&path, Links::Refuse)?.ok_or_else(|| StoreError::File {
                    path,
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "missing from a directory lbconsole wrote whole",
                    ),
                })?;
        }
        Ok(files)
    }

    /// Records these files as what the kernel now runs: the three are written
    /// into a new directory and `running` is switched to it by one rename, so a
    /// reader (or a crash) sees all three old files or all three new ones. The
    /// caller holds the store's lock.
    pub fn write_running(&self, state_dir: &Path) -> Result<(), StoreError> {
        let link = running_dir(state_dir);
        let write_error = |source| StoreError::Write {
            path: link.clone(),
            source,
        };
        atomic::create_dir_all(state_dir).map_err(write_error)?;
        let journal = state_dir.join(JOURNAL);
        atomic::replace_linked_dir(&link, &self.named(), atomic::Scratch::Journal(&journal))
            .map_err(write_error)
    }

    /// (file name, bytes) of each of the three files.
    pub fn named(&self) -> [(&'static str, &[u8]); 3] {
        ConfigFile::ALL.map(|file| (file.file_name(), self.get(file)))
    }

    pub fn get(&self, file: ConfigFile) -> &[u8] {
        match file {
            ConfigFile::Network => &self.network,
            ConfigFile::Flows => &self.flows,
            ConfigFile::Lvs => &self.lvs,
        }
    }

    fn slot(&mut self, file: ConfigFile) -> &mut Vec<u8> {
        match file {
            ConfigFile::Network => &mut self.network,
            ConfigFile::Flows => &mut self.flows,
            ConfigFile::Lvs => &mut self.lvs,
        }
    }
}

/// The name in the state dir of what the kernel runs.
pub const RUNNING: &str = "running";

/// The names the store's writers create, written down first (atomic.rs).
pub const JOURNAL: &str = "journal";

fn running_dir(state_dir: &Path) -> PathBuf {
    state_dir.join(RUNNING)
}

/// Whether opening a file may follow a symbolic link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// An administrator's file (a configuration, an archive): a link is theirs.
    Follow,
    /// A file of the state dir, which only lbconsole writes: a link there is
    /// someone else's, and is refused.
    Refuse,
}

/// Opens `path` for reading without blocking on a FIFO or a device, and refuses
/// anything that is not a regular file. `None` when it does not exist.
pub fn open_regular(path: &Path, links: Links) -> Result<Option<std::fs::File>, StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut flags = libc::O_NONBLOCK;
    if links == Links::Refuse {
        flags |= libc::O_NOFOLLOW;
    }
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(StoreError::NotRegular {
                path: path.to_owned(),
                kind: "a symbolic link",
            });
        }
        Err(source) => {
            return Err(StoreError::File {
                path: path.to_owned(),
                source,
            });
        }
    };
    let file_type = file
        .metadata()
        .map_err(|source| StoreError::File {
            path: path.to_owned(),
            source,
        })?
        .file_type();
    if !file_type.is_file() {
        return Err(StoreError::NotRegular {
            path: path.to_owned(),
            kind: atomic::special_kind(file_type),
        });
    }
    Ok(Some(file))
}

/// The bytes of the regular file `path`, `None` when it does not exist.
pub fn read_capped(path: &Path, links: Links) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(file) = open_regular(path, links)? else {
        return Ok(None);
    };
    read_all_capped(file, path).map(Some)
}

/// Everything `reader` gives, refused beyond [`MAX_FILE_BYTES`]; `path` names it
/// in errors.
pub fn read_all_capped(reader: impl Read, path: &Path) -> Result<Vec<u8>, StoreError> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| StoreError::File {
            path: path.to_owned(),
            source,
        })?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(StoreError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

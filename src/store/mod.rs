//! The config directory and the state directory on disk.
//!
//! ```text
//! CONFIG_DIR/ network.conf flows.conf lvs.conf   the saved configuration (what boot applies)
//!             lbconsole.toml                     settings (settings.rs)
//! STATE_DIR/  lock                               flock held around every check-then-write
//!             daemon.lock                        flock held by the daemon for its life; its pid
//!             health.sock                        the daemon's health, for `status` (health/publish.rs)
//!             state.toml                         what runs, the last rollback, a save in progress
//!             history/N/                         every version: the three files and meta.toml
//!             running -> running.ID/             what the kernel runs (swapped by one rename)
//!             pending/                           an apply waiting for `lbconsole confirm`
//! ```
//!
//! The three files are read where a missing file counts as empty and an unreadable
//! one is an error. Every write is atomic (atomic.rs); versions.rs keeps the
//! history with optimistic concurrency; pending.rs records an unconfirmed apply.

pub mod archive;
pub mod atomic;
pub mod lock;
pub mod pending;
pub mod settings;
pub mod summary;
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
    #[error("no configuration in {}: expected network.conf, flows.conf or lvs.conf", dir.display())]
    Empty { dir: PathBuf },
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

    pub fn read(dir: &Path) -> Result<Self, StoreError> {
        let metadata = std::fs::metadata(dir).map_err(|source| StoreError::Dir {
            dir: dir.to_owned(),
            source,
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
            if let Some(bytes) = read_capped(&path)? {
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

    /// The configuration last applied to the kernel, if any was.
    pub fn read_running(state_dir: &Path) -> Result<Option<Self>, StoreError> {
        let dir = running_dir(state_dir);
        if !dir.is_dir() {
            return Ok(None);
        }
        match Self::read(&dir) {
            Ok(files) => Ok(Some(files)),
            Err(StoreError::Empty { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Records these files as what the kernel now runs: the three are written
    /// into a new directory and `running` is switched to it by one rename, so a
    /// reader (or a crash) sees all three old files or all three new ones.
    pub fn write_running(&self, state_dir: &Path) -> Result<(), StoreError> {
        let link = running_dir(state_dir);
        let write_error = |source| StoreError::Write {
            path: link.clone(),
            source,
        };
        atomic::create_dir_all(state_dir).map_err(write_error)?;
        atomic::replace_linked_dir(&link, &self.named()).map_err(write_error)
    }

    /// Writes the three files into `dir`, each replaced atomically.
    pub fn write_each(&self, dir: &Path) -> Result<(), StoreError> {
        for (name, bytes) in self.named() {
            let path = dir.join(name);
            atomic::write_file(&path, bytes)
                .map_err(|source| StoreError::Write { path, source })?;
        }
        Ok(())
    }

    /// (file name, bytes) of each of the three files.
    pub fn named(&self) -> [(&'static str, &[u8]); 3] {
        ConfigFile::ALL.map(|file| (file.file_name(), self.get(file)))
    }

    /// Like [`ConfigFiles::read`], but a directory without any of the three
    /// files (or no directory) is an empty configuration.
    pub fn read_or_empty(dir: &Path) -> Result<Self, StoreError> {
        match Self::read(dir) {
            Ok(files) => Ok(files),
            Err(StoreError::Empty { .. }) => Ok(Self::default()),
            Err(StoreError::Dir { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(Self::default())
            }
            Err(error) => Err(error),
        }
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

fn running_dir(state_dir: &Path) -> PathBuf {
    state_dir.join(RUNNING)
}

/// The file's bytes, `None` when it does not exist.
pub fn read_capped(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    let file_error = |source| StoreError::File {
        path: path.to_owned(),
        source,
    };
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(file_error(e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(file_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(StoreError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(Some(bytes))
}

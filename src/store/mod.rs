//! The config directory and the state directory on disk. The three files are read
//! where a missing file counts as empty and an unreadable one is an error; the
//! copy of what was last applied (`STATE_DIR/running/`) is written atomically.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::config::{ConfigFile, Sources};

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

    /// Records these files as what the kernel now runs. Each file is replaced
    /// atomically (temporary file, fsync, rename, fsync of the directory).
    pub fn write_running(&self, state_dir: &Path) -> Result<(), StoreError> {
        let dir = running_dir(state_dir);
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Write {
            path: dir.clone(),
            source,
        })?;
        for file in ConfigFile::ALL {
            let path = dir.join(file.file_name());
            write_atomic(&path, self.get(file))
                .map_err(|source| StoreError::Write { path, source })?;
        }
        Ok(())
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

fn running_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("running")
}

/// Replaces `path` with `bytes`: temporary file, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let temporary = dir.join(format!(".{name}.tmp"));
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// The file's bytes, `None` when it does not exist.
fn read_capped(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
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

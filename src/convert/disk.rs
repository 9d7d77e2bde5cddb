//! [`Files`] on the file system: what `lbconsole convert` and the fixture
//! tests read keepalived's `include`s through.

use std::io;
use std::path::{Path, PathBuf};

use super::Files;

/// Reads regular files only: a device or a FIFO named by an `include` is
/// refused rather than read (it could block forever or never end).
#[derive(Debug, Clone, Copy, Default)]
pub struct DiskFiles;

impl Files for DiskFiles {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let metadata = std::fs::metadata(path)?;
        if !metadata.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is {}, not a regular file",
                    path.display(),
                    crate::store::atomic::special_kind(metadata.file_type())
                ),
            ));
        }
        std::fs::read(path)
    }

    fn glob(&self, pattern: &Path) -> io::Result<Vec<PathBuf>> {
        let pattern = pattern
            .to_str()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not UTF-8"))?;
        let paths = glob::glob(pattern)
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error.to_string()))?;
        let mut found = paths
            .collect::<Result<Vec<_>, _>>()
            .map_err(io::Error::from)?;
        found.sort();
        Ok(found)
    }
}

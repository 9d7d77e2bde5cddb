//! [`Files`] on the file system: what `lbconsole convert` and the fixture
//! tests read keepalived's `include`s through.

use std::io;
use std::path::{Path, PathBuf};

use super::Files;
use crate::store::{self, Links, StoreError};

/// Reads as the store reads an administrator's files (`store::read_capped`):
/// regular files only, checked on the open file, and size-capped, so that a
/// device or a FIFO named by an `include` is refused rather than read for ever.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiskFiles;

impl Files for DiskFiles {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        match store::read_capped(path, Links::Follow) {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err(io::Error::from_raw_os_error(libc::ENOENT)),
            Err(StoreError::File { source, .. }) => Err(source),
            Err(error) => Err(io::Error::other(error.to_string())),
        }
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

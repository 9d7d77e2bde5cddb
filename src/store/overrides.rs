//! `STATE_DIR/overrides.toml`: the overrides in force (`plan::overrides`).
//! Written atomically under the store's lock, each write one version more; an
//! apply and a rollback leave them be (a rollback restores the configuration,
//! not the operators' decisions), except those of servers the configuration
//! no longer has, which the apply removes and says so.

use std::path::{Path, PathBuf};

use super::versions::{Locked, Store, parse_toml};
use super::{Links, StoreError, atomic, read_capped};
use crate::plan::overrides::Overrides;

const FILE: &str = "overrides.toml";

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

/// The overrides in force; none when the file does not exist. A file that
/// cannot be read or parsed is an error, never "no override".
pub fn read(state_dir: &Path) -> Result<Overrides, StoreError> {
    let path = path(state_dir);
    match read_capped(&path, Links::Refuse)? {
        None => Ok(Overrides::default()),
        Some(bytes) => parse_toml(&path, &bytes),
    }
}

/// Writes `overrides` as the next version; the version written.
pub fn write(store: &Store, locked: &Locked, overrides: &Overrides) -> Result<u64, StoreError> {
    let path = path(store.state_dir());
    let next = Overrides {
        version: overrides.version + 1,
        servers: overrides.servers.clone(),
    };
    let text = toml::to_string(&next).map_err(|error| StoreError::Malformed {
        path: path.clone(),
        message: error.to_string(),
    })?;
    atomic::write_file(&path, text.as_bytes(), store.scratch(locked)).map_err(|source| {
        StoreError::Write {
            path: path.clone(),
            source,
        }
    })?;
    Ok(next.version)
}

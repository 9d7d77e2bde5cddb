//! `STATE_DIR/pending/`: an apply waiting for `lbconsole confirm`. It holds what ran
//! before (to roll back to), what was applied (whose addresses a rollback hands
//! back), the deadline, and `guard.lock`, which the guard process holds for as long
//! as it lives: the kernel drops a dead guard's lock, so "is the guard alive" is
//! answered without trusting a process id.
//!
//! The directory appears whole (written aside and renamed) and disappears at once
//! (renamed aside, then deleted); it is created and removed only under the store's
//! lock.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::archive::ArchiveFiles;
use super::atomic::{self, Scratch};
use super::lock::Lock;
use super::versions::{Locked, parse_toml};
use super::{ConfigFiles, JOURNAL, Links, StoreError};

const DIR: &str = "pending";
const RECORD: &str = "pending.toml";
const GUARD_LOCK: &str = "guard.lock";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingApply {
    /// Tells this apply from a later one: a guard acts only on its own.
    pub id: String,
    pub user: String,
    /// When it was applied, RFC 3339.
    pub applied_at: String,
    pub timeout_seconds: u64,
    /// Milliseconds since the epoch after which it is rolled back.
    pub deadline_ms: u64,
    /// The saved version that was applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// Why the last attempt to roll back failed, if one did; the guard tries again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_error: Option<String>,
    /// What ran before; none when nothing had been applied before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<ArchiveFiles>,
    pub applied: ArchiveFiles,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join(DIR)
}

impl PendingApply {
    pub fn previous_files(&self) -> Option<ConfigFiles> {
        self.previous.as_ref().map(ArchiveFiles::to_files)
    }

    pub fn applied_files(&self) -> ConfigFiles {
        self.applied.to_files()
    }

    /// Milliseconds left before the deadline; 0 once it has passed.
    pub fn remaining_ms(&self) -> u64 {
        self.deadline_ms.saturating_sub(now_ms())
    }

    pub fn expired(&self) -> bool {
        now_ms() >= self.deadline_ms
    }

    /// Whole seconds left, rounded up (a countdown shows 1 until it is over).
    pub fn seconds_left(&self) -> u64 {
        self.remaining_ms().div_ceil(1000)
    }

    /// The pending apply, if there is one.
    pub fn read(state_dir: &Path) -> Result<Option<PendingApply>, StoreError> {
        let path = dir(state_dir).join(RECORD);
        match super::read_capped(&path, Links::Refuse)? {
            None => Ok(None),
            Some(bytes) => parse_toml(&path, &bytes).map(Some),
        }
    }

    /// Records this apply as pending; fails when one already is.
    pub fn create(&self, _locked: &Locked, state_dir: &Path) -> Result<(), StoreError> {
        let dir = dir(state_dir);
        let text = self.text(&dir)?;
        let journal = state_dir.join(JOURNAL);
        let files = [(RECORD, text.as_bytes()), (GUARD_LOCK, b"".as_slice())];
        atomic::create_dir_with(&dir, &files, Scratch::Journal(&journal))
            .map_err(|source| StoreError::Write { path: dir, source })
    }

    /// Rewrites the record of this (existing) pending apply.
    pub fn update(&self, _locked: &Locked, state_dir: &Path) -> Result<(), StoreError> {
        let path = dir(state_dir).join(RECORD);
        let text = self.text(&path)?;
        let journal = state_dir.join(JOURNAL);
        atomic::write_file(&path, text.as_bytes(), Scratch::Journal(&journal))
            .map_err(|source| StoreError::Write { path, source })
    }

    fn text(&self, path: &Path) -> Result<String, StoreError> {
        toml::to_string(self).map_err(|e| StoreError::Malformed {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Forgets the pending apply (confirmed, or rolled back).
    pub fn remove(_locked: &Locked, state_dir: &Path) -> Result<(), StoreError> {
        let dir = dir(state_dir);
        let journal = state_dir.join(JOURNAL);
        atomic::remove_dir(&dir, Scratch::Journal(&journal))
            .map_err(|source| StoreError::Write { path: dir, source })
    }

    /// Takes the guard's lock of the pending apply: `None` when another guard
    /// already holds it. Held until the returned lock is dropped or the process dies.
    pub fn lock_guard(state_dir: &Path) -> Result<Option<Lock>, StoreError> {
        let path = dir(state_dir).join(GUARD_LOCK);
        Lock::try_acquire(&path).map_err(|source| StoreError::Write { path, source })
    }

    /// Whether a guard process is alive for the pending apply.
    pub fn guard_alive(state_dir: &Path) -> Result<bool, StoreError> {
        let path = dir(state_dir).join(GUARD_LOCK);
        Lock::is_held(&path).map_err(|source| StoreError::File { path, source })
    }
}

impl ArchiveFiles {
    /// The text of `files` (lossy: an applied configuration was validated, and
    /// validation refuses anything that is not UTF-8).
    pub fn from_files(files: &ConfigFiles) -> ArchiveFiles {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        ArchiveFiles {
            network: text(&files.network),
            flows: text(&files.flows),
            lvs: text(&files.lvs),
        }
    }

    pub fn to_files(&self) -> ConfigFiles {
        self.clone().into_files()
    }

    /// The files without a copy: an archive's text may be tens of megabytes.
    pub fn into_files(self) -> ConfigFiles {
        ConfigFiles {
            network: self.network.into_bytes(),
            flows: self.flows.into_bytes(),
            lvs: self.lvs.into_bytes(),
        }
    }
}

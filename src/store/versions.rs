//! The saved configuration and its history, with optimistic concurrency.
//!
//! Every saved configuration is a numbered version, `STATE_DIR/history/N/`, written
//! whole into a temporary directory and renamed into place: a version exists
//! complete or not at all. The config dir is then brought to the new version; as
//! that takes one rename per file, `state.toml` says which version is being written
//! there (`writing_config_dir`), and whoever next takes the lock finishes the job
//! when a crash interrupted it. So the config dir always ends as a complete
//! version, old or new.
//!
//! Every check-then-write holds the store's flock (`STATE_DIR/lock`): two writers
//! racing are serialised, the second sees the first's version and is refused as
//! stale rather than overwriting it.
//!
//! A change made to the config dir by hand is found by comparing it with the newest
//! version and recorded as a version of its own (origin `hand-edit`), so a console
//! that loaded the older version is refused when it saves, instead of silently
//! undoing the hand edit.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::atomic::{self, Scratch};
use super::lock::Lock;
use super::summary::summarize;
use super::{ConfigFiles, JOURNAL, Links, RUNNING, StoreError};
use crate::config;

const HISTORY: &str = "history";
const META: &str = "meta.toml";
const STATE: &str = "state.toml";
const LOCK: &str = "lock";

/// How a version came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// `lbconsole save` or the console's Save.
    Save,
    /// The config dir was changed outside lbconsole.
    HandEdit,
    /// `lbconsole restore N`.
    Restore,
    /// `lbconsole import FILE`.
    Import,
}

impl Origin {
    pub fn name(self) -> &'static str {
        match self {
            Self::Save => "save",
            Self::HandEdit => "hand edit",
            Self::Restore => "restore",
            Self::Import => "import",
        }
    }
}

/// What `history` lists for each version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionMeta {
    pub number: u64,
    /// RFC 3339, UTC, seconds.
    pub time: String,
    /// Who saved it: `SUDO_USER`, else the login name; for a hand edit, the owner
    /// of the file changed last.
    pub user: String,
    pub origin: Origin,
    /// One line: what changed from the version before.
    pub summary: String,
}

/// The saved configuration: the config dir as the newest version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Saved {
    /// 0 when nothing was ever saved (and the config dir is empty).
    pub version: u64,
    pub files: ConfigFiles,
    pub meta: Option<VersionMeta>,
}

/// `STATE_DIR/state.toml`: facts about the store and the kernel that are not
/// versions. Read and written under the store's lock.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// A save was writing this version into the config dir; present only while it
    /// does (or after it was killed doing so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writing_config_dir: Option<u64>,
    /// The last apply that changed the kernel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<RunningRecord>,
    /// The last time an unconfirmed apply was rolled back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rollback: Option<RollbackRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningRecord {
    /// The saved version that was applied, when the config dir was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    pub time: String,
    pub user: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackRecord {
    pub time: String,
    /// Who applied the change that was rolled back, and when.
    pub applied_by: String,
    pub applied_at: String,
    /// The outcome, one line: `restored` or the error.
    pub outcome: String,
}

/// The config dir and the state dir of one appliance.
#[derive(Debug, Clone)]
pub struct Store {
    config_dir: PathBuf,
    state_dir: PathBuf,
    journal: PathBuf,
}

/// Proof that the caller holds the store's lock.
#[derive(Debug)]
pub struct Locked(#[allow(dead_code)] Lock);

fn write_error(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Write {
        path: path.to_owned(),
        source,
    }
}

fn read_error(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::File {
        path: path.to_owned(),
        source,
    }
}

impl Store {
    /// The store over these directories. Nothing is created until the first
    /// write, which makes the state dir (0750) if it is missing.
    pub fn open(config_dir: &Path, state_dir: &Path) -> Result<Store, StoreError> {
        Ok(Store {
            config_dir: config_dir.to_owned(),
            state_dir: state_dir.to_owned(),
            journal: state_dir.join(JOURNAL),
        })
    }

    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Waits for the store's lock, then finishes what a writer killed half-way
    /// left undone. Every change to the store happens holding it.
    pub fn lock(&self) -> Result<Locked, StoreError> {
        let history = self.state_dir.join(HISTORY);
        atomic::create_dir_all(&history).map_err(write_error(&history))?;
        let path = self.state_dir.join(LOCK);
        let locked = Locked(Lock::acquire(&path).map_err(write_error(&path))?);
        self.recover(&locked)?;
        Ok(locked)
    }

    /// Where the writers holding the lock write down the names they create.
    pub fn scratch<'a>(&'a self, _locked: &Locked) -> Scratch<'a> {
        Scratch::Journal(&self.journal)
    }

    fn recover(&self, locked: &Locked) -> Result<(), StoreError> {
        let mut state = self.state()?;
        if let Some(version) = state.writing_config_dir {
            // Killed before the version was renamed into place, the save never
            // happened and the config dir is untouched; after, it is completed.
            if self.version_dir(version).is_dir() {
                tracing::warn!(version, "finishing a save that was interrupted");
                let previous = self.files_of(version - 1)?;
                let files = self.version(version)?;
                if let Err(error) = self.write_config_dir(locked, &files, &previous) {
                    // The config dir is back at the version before: so must the history be.
                    tracing::error!(version, %error, "cannot finish the interrupted save; it is undone");
                    let dir = self.version_dir(version);
                    atomic::remove_dir(&dir, self.scratch(locked)).map_err(write_error(&dir))?;
                }
            }
            state.writing_config_dir = None;
            self.write_state(locked, &state)?;
        }
        atomic::remove_recorded(&self.journal, &[self.state_dir.join(RUNNING)])
            .map_err(write_error(&self.journal))
    }

    /// Brings the config dir from `previous` to `files`, all three or none: a
    /// file that cannot be replaced (a link, a device, a bind mount) leaves the
    /// ones already replaced put back, and says which failed.
    fn write_config_dir(
        &self,
        locked: &Locked,
        files: &ConfigFiles,
        previous: &ConfigFiles,
    ) -> Result<(), StoreError> {
        atomic::create_dir_all(&self.config_dir).map_err(write_error(&self.config_dir))?;
        let scratch = self.scratch(locked);
        let changed: Vec<_> = config::ConfigFile::ALL
            .into_iter()
            .filter(|&file| files.get(file) != previous.get(file))
            .collect();
        for (index, &file) in changed.iter().enumerate() {
            let path = self.config_dir.join(file.file_name());
            let Err(source) = atomic::write_file(&path, files.get(file), scratch) else {
                continue;
            };
            let mut undo_failures = Vec::new();
            for &done in &changed[..index] {
                let path = self.config_dir.join(done.file_name());
                if let Err(error) = atomic::write_file(&path, previous.get(done), scratch) {
                    undo_failures.push(format!("{}: {error}", path.display()));
                }
            }
            return Err(StoreError::ConfigDirWrite {
                path,
                source,
                undo_failures,
            });
        }
        Ok(())
    }

    /// `state.toml`; the default when there is none yet.
    pub fn state(&self) -> Result<State, StoreError> {
        let path = self.state_dir.join(STATE);
        match super::read_capped(&path, Links::Refuse)? {
            None => Ok(State::default()),
            Some(bytes) => parse_toml(&path, &bytes),
        }
    }

    pub fn write_state(&self, locked: &Locked, state: &State) -> Result<(), StoreError> {
        let path = self.state_dir.join(STATE);
        let text = toml::to_string(state).map_err(|e| malformed(&path, e))?;
        atomic::write_file(&path, text.as_bytes(), self.scratch(locked)).map_err(write_error(&path))
    }

    /// The newest version number, 0 when there is none.
    pub fn latest(&self) -> Result<u64, StoreError> {
        Ok(self.numbers()?.last().copied().unwrap_or(0))
    }

    fn numbers(&self) -> Result<Vec<u64>, StoreError> {
        let history = self.state_dir.join(HISTORY);
        let mut numbers = Vec::new();
        let entries = match fs::read_dir(&history) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(numbers),
            entries => entries.map_err(read_error(&history))?,
        };
        for entry in entries {
            let entry = entry.map_err(read_error(&history))?;
            if let Some(number) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
                numbers.push(number);
            }
        }
        numbers.sort_unstable();
        Ok(numbers)
    }

    fn version_dir(&self, number: u64) -> PathBuf {
        self.state_dir.join(HISTORY).join(format!("{number:08}"))
    }

    /// The three files of version `number`.
    pub fn version(&self, number: u64) -> Result<ConfigFiles, StoreError> {
        let dir = self.version_dir(number);
        if !dir.is_dir() {
            return Err(StoreError::NoVersion {
                version: number,
                latest: self.latest()?,
            });
        }
        ConfigFiles::read_whole(&dir)
    }

    /// What `history` says of version `number`.
    pub fn meta(&self, number: u64) -> Result<VersionMeta, StoreError> {
        let path = self.version_dir(number).join(META);
        match super::read_capped(&path, Links::Refuse)? {
            Some(bytes) => parse_toml(&path, &bytes),
            None => Err(StoreError::NoVersion {
                version: number,
                latest: self.latest()?,
            }),
        }
    }

    /// The saved configuration. A config dir changed by hand since the newest
    /// version is recorded first, as a version of its own.
    pub fn saved(&self) -> Result<Saved, StoreError> {
        let locked = self.lock()?;
        self.sync_locked(&locked)
    }

    /// [`Store::saved`] for the console, where an appliance's first
    /// configuration is written: until a version exists, a config dir that does
    /// not exist yet, or holds none of the files, is an empty configuration
    /// (version 0). Once a version exists, it is an error, as for every command.
    pub fn saved_or_first(&self) -> Result<Saved, StoreError> {
        match self.saved() {
            Err(StoreError::NoDir { .. } | StoreError::Empty { .. }) if self.latest()? == 0 => {
                Ok(Saved::default())
            }
            saved => saved,
        }
    }

    /// What [`Store::saved`] returns, without recording anything (for readers
    /// that must not write: `apply --dry-run`, `diff`). A hand edit shows as
    /// the config dir's files under the newest version's number.
    pub fn peek(&self) -> Result<ConfigFiles, StoreError> {
        match self.state()?.writing_config_dir {
            Some(version) if self.version_dir(version).is_dir() => self.version(version),
            _ => ConfigFiles::read(&self.config_dir),
        }
    }

    /// [`Store::saved`] for a caller that holds the lock already.
    pub fn sync_locked(&self, locked: &Locked) -> Result<Saved, StoreError> {
        let latest = self.latest()?;
        let files = ConfigFiles::read(&self.config_dir)?;
        if latest > 0 && self.version(latest)? == files {
            return Ok(Saved {
                version: latest,
                files,
                meta: Some(self.meta(latest)?),
            });
        }
        if latest == 0 && files == ConfigFiles::default() {
            return Ok(Saved {
                version: 0,
                files,
                meta: None,
            });
        }
        let previous = self.files_of(latest)?;
        let (user, time) = self.last_hand_edit(&previous, &files);
        let meta = self.record(
            locked,
            latest,
            &previous,
            &files,
            Some(&files),
            Origin::HandEdit,
            None,
            (user, time),
        )?;
        tracing::info!(version = meta.number, summary = %meta.summary, "recorded a hand edit of the config dir");
        Ok(Saved {
            version: meta.number,
            files,
            meta: Some(meta),
        })
    }

    fn files_of(&self, number: u64) -> Result<ConfigFiles, StoreError> {
        if number == 0 {
            Ok(ConfigFiles::default())
        } else {
            self.version(number)
        }
    }

    /// The owner and modification time of the file changed last among those that
    /// differ: the best account of a hand edit there is.
    fn last_hand_edit(&self, old: &ConfigFiles, new: &ConfigFiles) -> (String, String) {
        use std::os::unix::fs::MetadataExt;
        let newest = config::ConfigFile::ALL
            .into_iter()
            .filter(|&file| old.get(file) != new.get(file))
            .filter_map(|file| fs::metadata(self.config_dir.join(file.file_name())).ok())
            .max_by_key(|m| m.mtime());
        match newest {
            Some(m) => (user_name(m.uid()), rfc3339(m.mtime())),
            None => (current_user(), now()),
        }
    }

    /// Saves `files` as the next version, if the saved version is still
    /// `expect_version` (the one the caller started from); otherwise refuses with
    /// [`StoreError::Stale`] and writes nothing. Saving what is already saved
    /// returns that version. A configuration with errors is refused.
    pub fn save(
        &self,
        files: &ConfigFiles,
        expect_version: u64,
        summary_hint: Option<&str>,
    ) -> Result<VersionMeta, StoreError> {
        self.save_as(files, Some(expect_version), Origin::Save, summary_hint)
    }

    /// [`Store::save`] with the origin recorded and the version check optional.
    pub fn save_as(
        &self,
        files: &ConfigFiles,
        expect_version: Option<u64>,
        origin: Origin,
        summary_hint: Option<&str>,
    ) -> Result<VersionMeta, StoreError> {
        refuse_invalid(files, "saved")?;
        let locked = self.lock()?;
        let (current, config_dir_lost) = match self.sync_locked(&locked) {
            // Writing a whole configuration (re)creates the config dir: a lost
            // /etc/lbconsole comes back with `restore`, a new one with `import`.
            Err(StoreError::NoDir { .. } | StoreError::Empty { .. }) => {
                let version = self.latest()?;
                let saved = Saved {
                    version,
                    files: self.files_of(version)?,
                    meta: (version > 0).then(|| self.meta(version)).transpose()?,
                };
                (saved, true)
            }
            current => (current?, false),
        };
        self.check_expected(&current, expect_version)?;
        if let Some(meta) = current
            .meta
            .filter(|_| current.files == *files && !config_dir_lost)
        {
            return Ok(meta);
        }
        // The config dir holds the current version, once a hand edit is recorded.
        let on_disk = (!config_dir_lost).then_some(&current.files);
        self.record(
            &locked,
            current.version,
            &current.files,
            files,
            on_disk,
            origin,
            summary_hint,
            (current_user(), now()),
        )
    }

    /// Records the config dir as it is as the next version (`lbconsole save`):
    /// like a hand edit, but by this user, checked against `expect_version` first,
    /// and refused when the configuration has errors. Returns the version and
    /// whether it is new.
    pub fn save_config_dir(
        &self,
        expect_version: Option<u64>,
        summary_hint: Option<&str>,
    ) -> Result<(VersionMeta, bool), StoreError> {
        let locked = self.lock()?;
        let latest = self.latest()?;
        let previous = self.files_of(latest)?;
        let current = Saved {
            version: latest,
            meta: if latest == 0 {
                None
            } else {
                Some(self.meta(latest)?)
            },
            files: previous,
        };
        self.check_expected(&current, expect_version)?;
        let files = ConfigFiles::read(&self.config_dir)?;
        if let Some(meta) = current.meta.clone().filter(|_| current.files == files) {
            return Ok((meta, false));
        }
        refuse_invalid(&files, "saved")?;
        let meta = self.record(
            &locked,
            latest,
            &current.files,
            &files,
            Some(&files),
            Origin::Save,
            summary_hint,
            (current_user(), now()),
        )?;
        Ok((meta, true))
    }

    /// Makes version `number` the saved configuration again, as a new version.
    pub fn restore(&self, number: u64, expect_version: u64) -> Result<VersionMeta, StoreError> {
        self.restore_checked(number, Some(expect_version))
    }

    /// [`Store::restore`] with the version check optional.
    pub fn restore_checked(
        &self,
        number: u64,
        expect_version: Option<u64>,
    ) -> Result<VersionMeta, StoreError> {
        let files = self.version(number)?;
        self.save_as(
            &files,
            expect_version,
            Origin::Restore,
            Some(&format!("restore of version {number}")),
        )
    }

    /// Every version, oldest first. A read: it takes the lock only shared (when
    /// there is one), records nothing and creates nothing.
    pub fn history(&self) -> Result<Vec<VersionMeta>, StoreError> {
        let path = self.state_dir.join(LOCK);
        let _shared = Lock::shared_if_exists(&path).map_err(read_error(&path))?;
        self.numbers()?.into_iter().map(|n| self.meta(n)).collect()
    }

    /// What a hand edit changed in the config dir since the newest version, not
    /// recorded yet (the next command that takes the lock records it); `None`
    /// when the config dir is the newest version.
    pub fn unrecorded_edit(&self) -> Result<Option<String>, StoreError> {
        let files = self.peek()?;
        let previous = self.files_of(self.latest()?)?;
        Ok((files != previous).then(|| summarize(&previous, &files)))
    }

    /// What the kernel runs, as last applied; `None` before the first apply.
    pub fn running(&self) -> Result<Option<ConfigFiles>, StoreError> {
        ConfigFiles::read_running(&self.state_dir)
    }

    /// The saved version the kernel runs; `None` when what runs is no saved
    /// version (edits applied unsaved, an import not applied yet) or nothing
    /// was applied. An apply of edits that were saved afterwards runs the
    /// newest version all the same.
    pub fn running_version(&self) -> Result<Option<u64>, StoreError> {
        if let Some(version) = self.state()?.running.and_then(|running| running.version) {
            return Ok(Some(version));
        }
        let newest = self.latest()?;
        if newest == 0 {
            return Ok(None);
        }
        Ok(match self.running()? {
            Some(running) if self.version(newest)? == running => Some(newest),
            _ => None,
        })
    }

    /// Refuses with [`StoreError::Stale`] unless `current` is version `expect`
    /// (no check without one).
    pub fn check_expected(&self, current: &Saved, expect: Option<u64>) -> Result<(), StoreError> {
        match expect {
            Some(expected) if expected != current.version => Err(match &current.meta {
                Some(meta) => StoreError::Stale {
                    version: meta.number,
                    user: meta.user.clone(),
                    time: meta.time.clone(),
                },
                None => StoreError::Stale {
                    version: 0,
                    user: "nobody".to_owned(),
                    time: "no time (nothing was ever saved)".to_owned(),
                },
            }),
            _ => Ok(()),
        }
    }

    /// Writes version `latest + 1` holding `files`, then the config dir, which
    /// the caller has read already: `on_disk` is what it holds (`None`: no
    /// configuration there).
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        locked: &Locked,
        latest: u64,
        previous: &ConfigFiles,
        files: &ConfigFiles,
        on_disk: Option<&ConfigFiles>,
        origin: Origin,
        hint: Option<&str>,
        (user, time): (String, String),
    ) -> Result<VersionMeta, StoreError> {
        let changes = summarize(previous, files);
        let number = latest.checked_add(1).ok_or_else(|| StoreError::Malformed {
            path: self.state_dir.join(HISTORY),
            message: format!(
                "holds version {latest}, the largest number there can be; nothing was saved"
            ),
        })?;
        let meta = VersionMeta {
            number,
            time,
            user,
            origin,
            summary: match hint {
                Some(hint) => format!("{hint}: {changes}"),
                None => changes,
            },
        };
        let dir = self.version_dir(number);
        let meta_text = toml::to_string(&meta).map_err(|e| malformed(&dir, e))?;
        let [network, flows, lvs] = files.named();
        let version_files = [network, flows, lvs, (META, meta_text.as_bytes())];
        let scratch = self.scratch(locked);
        if on_disk == Some(files) {
            // The config dir holds it already (`lbconsole save`): the rename of
            // the version directory is the whole commit.
            atomic::create_dir_with(&dir, &version_files, scratch).map_err(write_error(&dir))?;
            return Ok(meta);
        }
        // The intent goes first: killed after the version appears but before the
        // config dir follows, the next lock holder completes the config dir
        // instead of mistaking the old files for a hand edit.
        let mut state = self.state()?;
        state.writing_config_dir = Some(number);
        self.write_state(locked, &state)?;
        atomic::create_dir_with(&dir, &version_files, scratch).map_err(write_error(&dir))?;
        let written =
            self.write_config_dir(locked, files, on_disk.unwrap_or(&ConfigFiles::default()));
        if written.is_err() {
            // The config dir is as it was: the version it would have been goes.
            atomic::remove_dir(&dir, scratch).map_err(write_error(&dir))?;
        }
        state.writing_config_dir = None;
        self.write_state(locked, &state)?;
        written.map(|()| meta)
    }
}

/// Refuses a configuration with errors: it could not be applied at boot.
pub fn refuse_invalid(files: &ConfigFiles, what: &'static str) -> Result<(), StoreError> {
    let checked = config::check(files.sources());
    if checked.has_errors() {
        return Err(StoreError::Invalid {
            what,
            diagnostics: checked.diagnostics,
        });
    }
    Ok(())
}

fn malformed(path: &Path, error: impl std::fmt::Display) -> StoreError {
    StoreError::Malformed {
        path: path.to_owned(),
        message: error.to_string().trim().replace('\n', " "),
    }
}

pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    bytes: &[u8],
) -> Result<T, StoreError> {
    let text = std::str::from_utf8(bytes).map_err(|e| malformed(path, e))?;
    toml::from_str(text).map_err(|e| {
        // Where and what, never the offending line itself: the file may not be
        // lbconsole's at all (`import /etc/shadow` must not print a hash).
        let place = e
            .span()
            .and_then(|span| text.get(..span.start))
            .map(|before| {
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                format!("line {line}, column {column}: ")
            })
            .unwrap_or_default();
        malformed(path, format!("{place}{}", e.message()))
    })
}

/// Who is acting: `SUDO_USER` (the admin behind sudo), else the login name of
/// the real user, else the user id.
pub fn current_user() -> String {
    if let Ok(user) = std::env::var("SUDO_USER")
        && !user.is_empty()
    {
        return user;
    }
    user_name(crate::sys::user_id())
}

fn user_name(uid: u32) -> String {
    super::sys::login_name(uid).unwrap_or_else(|| format!("uid {uid}"))
}

/// Seconds since the epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The time now, RFC 3339 in UTC.
pub fn now() -> String {
    rfc3339(unix_now())
}

/// `2025-11-21T13:20:00Z` for a time in seconds since the epoch.
pub fn rfc3339(seconds: i64) -> String {
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil: days since 1970-01-01 to year, month, day.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_763_731_205), "2025-11-21T13:20:05Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
    }
}

//! `lbconsole export FILE` / `import FILE`: one self-describing TOML document with
//! the three files as text, where they came from, and a checksum of the three.
//!
//! ```toml
//! format = "lbconsole-archive"
//! format_version = 2
//! exported = "2025-11-21T13:20:00Z"
//! version = 7                      # the saved version exported
//! user = "alice"
//! summary = "lvs.conf: +director web2; …"
//! sha256 = "…"                     # of the three files: a cut or changed archive is refused
//!
//! [files]
//! "network.conf" = """…"""
//! "flows.conf" = """…"""
//! "lvs.conf" = """…"""
//! ```
//!
//! An archive must carry all three files: a missing one is a damaged archive,
//! never an empty file. Format 1 (no checksum) is still read.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::atomic::{self, Scratch};
use super::versions::{Origin, Saved, Store, VersionMeta, now, parse_toml, refuse_invalid};
use super::{ConfigFiles, Links, StoreError};
use crate::config::ConfigFile;

const FORMAT: &str = "lbconsole-archive";
const FORMAT_VERSION: u32 = 2;
/// Archives of this format carry no checksum.
const FORMAT_WITHOUT_CHECKSUM: u32 = 1;

/// Where an archive is written or read: a file, or `-` for stdout and stdin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place<'a> {
    File(&'a Path),
    Standard,
}

impl<'a> Place<'a> {
    pub fn of(path: &'a Path) -> Self {
        if path == Path::new("-") {
            Self::Standard
        } else {
            Self::File(path)
        }
    }

    /// How errors and the history name it.
    pub fn path(self) -> &'a Path {
        match self {
            Self::File(path) => path,
            Self::Standard => Path::new("-"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Archive {
    pub format: String,
    pub format_version: u32,
    pub exported: String,
    pub version: u64,
    pub user: String,
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub files: ArchiveFiles,
}

/// The three files as text (a configuration is UTF-8: `check` refuses anything else).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveFiles {
    #[serde(rename = "network.conf")]
    pub network: String,
    #[serde(rename = "flows.conf")]
    pub flows: String,
    #[serde(rename = "lvs.conf")]
    pub lvs: String,
}

impl Archive {
    /// The archive of a saved configuration.
    pub fn of(saved: &Saved, path: &Path) -> Result<Archive, StoreError> {
        let text = |file: ConfigFile| {
            String::from_utf8(saved.files.get(file).to_vec()).map_err(|_| StoreError::Malformed {
                path: path.to_owned(),
                message: format!(
                    "cannot export: {} of version {} is not UTF-8 text",
                    file.file_name(),
                    saved.version
                ),
            })
        };
        Ok(Archive {
            format: FORMAT.to_owned(),
            format_version: FORMAT_VERSION,
            exported: now(),
            version: saved.version,
            user: saved
                .meta
                .as_ref()
                .map(|m| m.user.clone())
                .unwrap_or_default(),
            summary: saved
                .meta
                .as_ref()
                .map(|m| m.summary.clone())
                .unwrap_or_default(),
            sha256: Some(checksum(&saved.files)),
            files: ArchiveFiles {
                network: text(ConfigFile::Network)?,
                flows: text(ConfigFile::Flows)?,
                lvs: text(ConfigFile::Lvs)?,
            },
        })
    }

    /// The archive as the TOML document `import` reads; `path` names it in errors.
    pub fn to_toml(&self, path: &Path) -> Result<String, StoreError> {
        toml::to_string(self).map_err(|e| StoreError::Malformed {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Writes the archive to a regular file atomically, or to stdout. A
    /// device, a FIFO or a symbolic link is refused: export never replaces one.
    pub fn write(&self, place: Place<'_>) -> Result<(), StoreError> {
        let path = place.path();
        let text = self.to_toml(path)?;
        let write_error = |source| StoreError::Write {
            path: path.to_owned(),
            source,
        };
        match place {
            Place::Standard => {
                let mut stdout = std::io::stdout().lock();
                stdout
                    .write_all(text.as_bytes())
                    .and_then(|()| stdout.flush())
                    .map_err(write_error)
            }
            Place::File(path) => {
                if let Ok(metadata) = std::fs::symlink_metadata(path)
                    && !metadata.is_file()
                {
                    return Err(StoreError::NotRegular {
                        path: path.to_owned(),
                        kind: atomic::special_kind(metadata.file_type()),
                    });
                }
                atomic::write_file(path, text.as_bytes(), Scratch::Unrecorded).map_err(write_error)
            }
        }
    }

    /// Reads an archive; anything that is not one, or one cut short or changed,
    /// is refused with the reason.
    pub fn read(place: Place<'_>) -> Result<Archive, StoreError> {
        let path = place.path();
        let bytes = match place {
            Place::Standard => super::read_all_capped(std::io::stdin().lock(), path)?,
            Place::File(path) => {
                super::read_capped(path, Links::Follow)?.ok_or_else(|| StoreError::File {
                    path: path.to_owned(),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                })?
            }
        };
        Self::parse(path, &bytes)
    }

    /// The archive in `bytes`, read from `path`.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Archive, StoreError> {
        let malformed = |message: String| StoreError::Malformed {
            path: path.to_owned(),
            message,
        };
        let archive: Archive = parse_toml(path, bytes)?;
        if archive.format != FORMAT
            || !(FORMAT_WITHOUT_CHECKSUM..=FORMAT_VERSION).contains(&archive.format_version)
        {
            return Err(malformed(format!(
                "not an lbconsole archive of format {FORMAT_WITHOUT_CHECKSUM} to {FORMAT_VERSION} (format `{}`, version {})",
                archive.format, archive.format_version
            )));
        }
        let expected = match (&archive.sha256, archive.format_version) {
            (Some(sum), _) => sum,
            (None, FORMAT_WITHOUT_CHECKSUM) => return Ok(archive),
            (None, _) => {
                return Err(malformed(
                    "the archive has no `sha256`; is it cut short?".to_owned(),
                ));
            }
        };
        if *expected != checksum(&archive.files.to_files()) {
            return Err(malformed(
                "the files do not match the archive's sha256: it was cut short or changed; nothing was imported".to_owned(),
            ));
        }
        Ok(archive)
    }
}

/// The SHA-256 of the three files, each as its name, its length and its bytes,
/// in hex.
fn checksum(files: &ConfigFiles) -> String {
    let mut hash = Sha256::new();
    for (name, bytes) in files.named() {
        hash.update(name.as_bytes());
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes the saved configuration to the archive `path`; returns the version
/// written.
pub fn export(store: &Store, place: Place<'_>) -> Result<u64, StoreError> {
    let saved = store.saved()?;
    Archive::of(&saved, place.path())?.write(place)?;
    Ok(saved.version)
}

/// The `vrrp` lines `lbconsole convert` writes from keepalived's
/// `vrrp_instance`s, which an import adds to network.conf.
const VRRP_FILE: &str = "vrrp.conf";

/// `network` with the lines of `vrrp` (read from `path`) merged in.
fn merge_vrrp(network: &[u8], vrrp: &[u8], path: &Path) -> Result<Vec<u8>, StoreError> {
    let malformed = |message: String| StoreError::Malformed {
        path: path.to_owned(),
        message,
    };
    let text = |bytes: &[u8], name: &str| {
        String::from_utf8(bytes.to_vec())
            .map_err(|_| malformed(format!("{name} is not UTF-8 text")))
    };
    let merged =
        crate::config::merge::merge_vrrp(&text(network, "network.conf")?, &text(vrrp, "it")?)
            .map_err(|error| malformed(format!("line {}: {}", error.line, error.message)))?;
    Ok(merged.into_bytes())
}

/// What an import would save, read and checked but not saved yet: what the
/// console shows before it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub files: ConfigFiles,
    /// The saved version the files replace. A directory's files were merged
    /// with it, so the import must follow it.
    pub replaces: u64,
    /// Its files.
    pub before: ConfigFiles,
    hint: String,
}

/// Reads what `place` holds (an archive, or a directory that `lbconsole
/// convert --out` wrote) as the configuration an import would save, if the
/// saved version is still `expect_version` (no check without one); one with
/// errors is refused.
pub fn prepare_import(
    store: &Store,
    place: Place<'_>,
    expect_version: Option<u64>,
) -> Result<Prepared, StoreError> {
    let saved_expected = || -> Result<Saved, StoreError> {
        let saved = store.saved_or_first()?;
        store.check_expected(&saved, expect_version)?;
        Ok(saved)
    };
    if let Place::File(dir) = place
        && dir.is_dir()
    {
        return prepare_dir(saved_expected()?, dir);
    }
    // The archive is read first: what is wrong with it is the error to show.
    let archive = Archive::read(place)?;
    let files = archive.files.into_files();
    refuse_invalid(&files, "imported")?;
    let saved = saved_expected()?;
    let source = match place {
        Place::File(path) => path.display().to_string(),
        Place::Standard => "stdin".to_owned(),
    };
    Ok(Prepared {
        files,
        replaces: saved.version,
        before: saved.files,
        hint: format!(
            "import of {source} (version {} of {})",
            archive.version, archive.exported
        ),
    })
}

/// The files the directory `dir` holds, over the `saved` ones: a file the
/// directory lacks keeps its saved text (a converted configuration has no
/// `network.conf`), and the `vrrp` lines of its `vrrp.conf` are added to
/// network.conf.
fn prepare_dir(saved: Saved, dir: &Path) -> Result<Prepared, StoreError> {
    let mut files = saved.files.clone();
    let mut taken = Vec::new();
    for file in ConfigFile::ALL {
        if let Some(bytes) = super::read_capped(&dir.join(file.file_name()), Links::Follow)? {
            *files.slot(file) = bytes;
            taken.push(file.file_name());
        }
    }
    let vrrp_path = dir.join(VRRP_FILE);
    if let Some(vrrp) = super::read_capped(&vrrp_path, Links::Follow)? {
        files.network = merge_vrrp(&files.network, &vrrp, &vrrp_path)?;
        taken.push(VRRP_FILE);
    }
    if taken.is_empty() {
        return Err(StoreError::Empty {
            dir: dir.to_owned(),
        });
    }
    refuse_invalid(&files, "imported")?;
    Ok(Prepared {
        files,
        replaces: saved.version,
        before: saved.files,
        hint: format!("import of {} from {}", taken.join(", "), dir.display()),
    })
}

/// Makes the configuration `place` holds the saved one, as a new version, if
/// the saved version is still `expect_version` (no check without one). A
/// configuration with errors is refused before anything is written. A
/// directory's files are merged with the saved version, which the new one
/// follows, so no save in between is lost.
pub fn import(
    store: &Store,
    place: Place<'_>,
    expect_version: Option<u64>,
) -> Result<VersionMeta, StoreError> {
    let prepared = prepare_import(store, place, expect_version)?;
    save_prepared(store, &prepared)
}

/// Saves what [`prepare_import`] read, if the saved version is still the one
/// it replaces.
pub fn save_prepared(store: &Store, prepared: &Prepared) -> Result<VersionMeta, StoreError> {
    store.save_as(
        &prepared.files,
        Some(prepared.replaces),
        Origin::Import,
        Some(&prepared.hint),
    )
}

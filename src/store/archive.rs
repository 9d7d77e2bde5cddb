//! `lbconsole export FILE` / `import FILE`: one self-describing TOML document with
//! the three files as text and where they came from.
//!
//! ```toml
//! format = "lbconsole-archive"
//! format_version = 1
//! exported = "2025-11-21T13:20:00Z"
//! version = 7                      # the saved version exported
//! user = "alice"
//! summary = "lvs.conf: +director web2; …"
//!
//! [files]
//! "network.conf" = """…"""
//! "flows.conf" = """…"""
//! "lvs.conf" = """…"""
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::StoreError;
use super::atomic;
use super::versions::{Origin, Saved, Store, VersionMeta, now, parse_toml, refuse_invalid};
use crate::config::ConfigFile;

const FORMAT: &str = "lbconsole-archive";
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Archive {
    pub format: String,
    pub format_version: u32,
    pub exported: String,
    pub version: u64,
    pub user: String,
    pub summary: String,
    pub files: ArchiveFiles,
}

/// The three files as text (a configuration is UTF-8: `check` refuses anything else).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveFiles {
    #[serde(rename = "network.conf", default)]
    pub network: String,
    #[serde(rename = "flows.conf", default)]
    pub flows: String,
    #[serde(rename = "lvs.conf", default)]
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
            files: ArchiveFiles {
                network: text(ConfigFile::Network)?,
                flows: text(ConfigFile::Flows)?,
                lvs: text(ConfigFile::Lvs)?,
            },
        })
    }

    /// Writes the archive to `path` atomically.
    pub fn write(&self, path: &Path) -> Result<(), StoreError> {
        let text = toml::to_string(self).map_err(|e| StoreError::Malformed {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        atomic::write_file(path, text.as_bytes()).map_err(|source| StoreError::Write {
            path: path.to_owned(),
            source,
        })
    }

    /// Reads an archive; anything that is not one is refused with the reason.
    pub fn read(path: &Path) -> Result<Archive, StoreError> {
        let bytes = super::read_capped(path)?.ok_or_else(|| StoreError::File {
            path: path.to_owned(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })?;
        let archive: Archive = parse_toml(path, &bytes)?;
        if archive.format != FORMAT || archive.format_version != FORMAT_VERSION {
            return Err(StoreError::Malformed {
                path: path.to_owned(),
                message: format!(
                    "not an lbconsole archive of format {FORMAT_VERSION} (format `{}`, version {})",
                    archive.format, archive.format_version
                ),
            });
        }
        Ok(archive)
    }
}

/// Writes the saved configuration to the archive `path`; returns the version
/// written.
pub fn export(store: &Store, path: &Path) -> Result<u64, StoreError> {
    let saved = store.saved()?;
    Archive::of(&saved, path)?.write(path)?;
    Ok(saved.version)
}

/// Makes the configuration of the archive `path` the saved one, as a new
/// version, if the saved version is still `expect_version` (no check without
/// one). A configuration with errors is refused before anything is written.
pub fn import(
    store: &Store,
    path: &Path,
    expect_version: Option<u64>,
) -> Result<VersionMeta, StoreError> {
    let archive = Archive::read(path)?;
    let files = archive.files.into_files();
    refuse_invalid(&files, "imported")?;
    let hint = format!(
        "import of {} (version {} of {})",
        path.display(),
        archive.version,
        archive.exported
    );
    store.save_as(&files, expect_version, Origin::Import, Some(&hint))
}

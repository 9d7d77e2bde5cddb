//! `CONFIG_DIR/lbconsole.toml`: the appliance's settings. Every field is optional;
//! a missing file is all defaults. Unknown fields are refused by name, so a typo
//! (`confirm_timout`) is not silently ignored.
//!
//! ```toml
//! confirm_timeout = 60   # seconds an apply from the console waits for confirmation
//! theme = "default"      # a preset of themes/ or a file in the user's config dir
//! keymap = "default"     # likewise, from keymaps/
//! ```

use std::ops::RangeInclusive;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::StoreError;
use super::atomic;
use super::versions::parse_toml;

pub const FILE_NAME: &str = "lbconsole.toml";

/// The confirm timeout when the settings name none.
pub const DEFAULT_CONFIRM_TIMEOUT: u64 = 60;

/// The confirm timeouts one may set: long enough to reach the confirm key over
/// a slow link, short enough that a locked-out admin is not locked out for long.
pub const CONFIRM_TIMEOUTS: RangeInclusive<u64> = 10..=3600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Seconds an apply waits for `lbconsole confirm` before it is rolled back.
    pub confirm_timeout: u64,
    pub theme: Option<String>,
    pub keymap: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            confirm_timeout: DEFAULT_CONFIRM_TIMEOUT,
            theme: None,
            keymap: None,
        }
    }
}

impl Settings {
    /// Reads `lbconsole.toml` from `config_dir`; the defaults when it is missing.
    pub fn load(config_dir: &Path) -> Result<Settings, StoreError> {
        let path = config_dir.join(FILE_NAME);
        let settings: Settings = match super::read_capped(&path, super::Links::Follow)? {
            None => return Ok(Settings::default()),
            Some(bytes) => parse_toml(&path, &bytes)?,
        };
        check_confirm_timeout(settings.confirm_timeout)
            .map_err(|message| StoreError::Malformed { path, message })?;
        Ok(settings)
    }

    /// Replaces `lbconsole.toml` in `config_dir` atomically.
    pub fn write(&self, config_dir: &Path) -> Result<(), StoreError> {
        let path = config_dir.join(FILE_NAME);
        let text = toml::to_string(self).map_err(|e| StoreError::Malformed {
            path: path.clone(),
            message: e.to_string(),
        })?;
        atomic::write_file(&path, text.as_bytes(), atomic::Scratch::Unrecorded)
            .map_err(|source| StoreError::Write { path, source })
    }
}

/// Refuses a confirm timeout outside [`CONFIRM_TIMEOUTS`], saying what is allowed.
pub fn check_confirm_timeout(seconds: u64) -> Result<(), String> {
    if CONFIRM_TIMEOUTS.contains(&seconds) {
        Ok(())
    } else {
        Err(format!(
            "confirm_timeout must be {} to {} seconds, not {seconds}",
            CONFIRM_TIMEOUTS.start(),
            CONFIRM_TIMEOUTS.end()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: Option<&str>) -> Result<Settings, StoreError> {
        let dir = std::env::temp_dir().join(format!(
            "lbconsole-settings-{}-{}",
            std::process::id(),
            text.map_or(0, str::len)
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        if let Some(text) = text {
            std::fs::write(dir.join(FILE_NAME), text).expect("write");
        }
        let result = Settings::load(&dir);
        std::fs::remove_dir_all(&dir).expect("clean up");
        result
    }

    #[test]
    fn a_missing_file_gives_a_60_second_confirm_timeout() {
        assert_eq!(load(None).expect("defaults"), Settings::default());
        assert_eq!(Settings::default().confirm_timeout, 60);
    }

    #[test]
    fn fields_override_and_a_typo_is_named() {
        let settings = load(Some("confirm_timeout = 30\ntheme = \"mono\"\n")).expect("valid");
        assert_eq!(settings.confirm_timeout, 30);
        assert_eq!(settings.theme.as_deref(), Some("mono"));
        let error = load(Some("confirm_timout = 30\n"))
            .expect_err("typo")
            .to_string();
        assert!(error.contains("lbconsole.toml: "), "{error}");
        assert!(error.contains("unknown field `confirm_timout`"), "{error}");
        let error = load(Some("confirm_timeout = 0\n"))
            .expect_err("zero")
            .to_string();
        assert!(
            error.ends_with("lbconsole.toml: confirm_timeout must be 10 to 3600 seconds, not 0"),
            "{error}"
        );
    }

    #[test]
    fn written_settings_read_back_the_same() {
        let dir =
            std::env::temp_dir().join(format!("lbconsole-settings-write-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let settings = Settings {
            confirm_timeout: 120,
            theme: Some("mono".to_owned()),
            keymap: None,
        };
        settings.write(&dir).expect("written");
        assert_eq!(Settings::load(&dir).expect("read back"), settings);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}

//! `CONFIG_DIR/lbconsole.toml`: the appliance's settings. Every field is optional;
//! a missing file is all defaults. Unknown fields are refused by name, so a typo
//! (`confirm_timout`) is not silently ignored.
//!
//! ```toml
//! confirm_timeout = 60   # seconds an apply from the console waits for confirmation
//! theme = "default"      # a preset of themes/ or a file in the user's config dir
//! keymap = "default"     # likewise, from keymaps/
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::StoreError;
use super::versions::parse_toml;

pub const FILE_NAME: &str = "lbconsole.toml";

/// The confirm timeout when the settings name none.
pub const DEFAULT_CONFIRM_TIMEOUT: u64 = 60;

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
        let settings: Settings = match super::read_capped(&path)? {
            None => return Ok(Settings::default()),
            Some(bytes) => parse_toml(&path, &bytes)?,
        };
        if settings.confirm_timeout == 0 {
            return Err(StoreError::Malformed {
                path,
                message: "confirm_timeout must be at least 1 second".to_owned(),
            });
        }
        Ok(settings)
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
            error.ends_with("lbconsole.toml: confirm_timeout must be at least 1 second"),
            "{error}"
        );
    }
}

//! `CONFIG_DIR/lbconsole.toml`: the appliance's settings. Every field is optional;
//! a missing file is all defaults. Unknown fields are refused by name, so a typo
//! (`confirm_timout`) is not silently ignored.
//!
//! ```toml
//! confirm_timeout = 60   # seconds an apply from the console waits for confirmation
//! theme = "default"      # a preset of themes/ or a file in the user's config dir
//! keymap = "default"     # likewise, from keymaps/
//! ssh = "ssh -i /root/.ssh/lb_sync"          # the ssh `lbconsole sync` runs (default `ssh`)
//! peer_command = "lbconsole --config-dir /etc/lb"  # what the peer runs (default `lbconsole`)
//! metrics_listen = "127.0.0.1:9712"  # the daemon's metrics on TCP too (default: its socket only)
//! ```
//!
//! `ssh` and `peer_command` are command lines split on whitespace (no quoting).
//! `ssh` is the program and its options, before lbconsole's own `-o BatchMode=yes
//! -o ConnectTimeout=…` and the peer's address: the admin's keys, `known_hosts`
//! and `ssh_config` apply. The environment variable `LBCONSOLE_SSH` overrides it.
//! `peer_command` is run by the peer's shell with `export -` or `import - …`
//! appended: a peer whose binary or directories differ is reached with it.

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
    /// The ssh command line of `lbconsole sync`; `ssh` when unset.
    pub ssh: Option<String>,
    /// The lbconsole command line the peer runs; `lbconsole` when unset.
    pub peer_command: Option<String>,
    /// Where the daemon serves its metrics over TCP, besides `metrics.sock`.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            confirm_timeout: DEFAULT_CONFIRM_TIMEOUT,
            theme: None,
            keymap: None,
            ssh: None,
            peer_command: None,
            metrics_listen: None,
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
            .and_then(|()| check_command("ssh", settings.ssh.as_deref()))
            .and_then(|()| check_command("peer_command", settings.peer_command.as_deref()))
            .map_err(|message| StoreError::Malformed { path, message })?;
        Ok(settings)
    }

    /// The ssh command line: `LBCONSOLE_SSH` (given as `from_env`), else the
    /// `ssh` setting, else `ssh`; split on whitespace.
    pub fn ssh_command(&self, from_env: Option<&str>) -> Result<Vec<String>, String> {
        match from_env {
            Some(line) => {
                check_command(SSH_ENV, Some(line))?;
                Ok(split_command(line))
            }
            None => Ok(split_command(self.ssh.as_deref().unwrap_or(DEFAULT_SSH))),
        }
    }

    /// The command line the peer runs, split on whitespace.
    pub fn peer_command(&self) -> Vec<String> {
        split_command(self.peer_command.as_deref().unwrap_or(DEFAULT_PEER_COMMAND))
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

/// The environment variable that overrides the `ssh` setting.
pub const SSH_ENV: &str = "LBCONSOLE_SSH";
const DEFAULT_SSH: &str = "ssh";
const DEFAULT_PEER_COMMAND: &str = "lbconsole";

fn split_command(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

/// Refuses a command line with no command in it, naming the setting.
fn check_command(name: &str, line: Option<&str>) -> Result<(), String> {
    match line {
        Some(line) if line.split_whitespace().next().is_none() => {
            Err(format!("{name} must name a command, not be empty"))
        }
        _ => Ok(()),
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
        // Tests run in parallel: each load has a directory of its own.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "lbconsole-settings-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
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
    fn ssh_and_peer_command_split_on_whitespace_and_the_environment_wins() {
        let settings = load(Some(
            "ssh = \"ssh  -i /k\t-o UserKnownHostsFile=/x\"\npeer_command = \"/usr/local/bin/lbconsole --config-dir /etc/lb\"\n",
        ))
        .expect("valid");
        assert_eq!(
            settings.ssh_command(None).expect("ssh"),
            ["ssh", "-i", "/k", "-o", "UserKnownHostsFile=/x"]
        );
        assert_eq!(
            settings.ssh_command(Some("/opt/ssh -F /c")).expect("env"),
            ["/opt/ssh", "-F", "/c"]
        );
        assert_eq!(
            settings.peer_command(),
            ["/usr/local/bin/lbconsole", "--config-dir", "/etc/lb"]
        );
        let defaults = Settings::default();
        assert_eq!(defaults.ssh_command(None).expect("ssh"), ["ssh"]);
        assert_eq!(defaults.peer_command(), ["lbconsole"]);
        assert_eq!(
            defaults.ssh_command(Some("  ")).expect_err("blank env"),
            "LBCONSOLE_SSH must name a command, not be empty"
        );
    }

    #[test]
    fn an_empty_command_or_an_unknown_key_is_refused_by_name() {
        let error = load(Some("peer_command = \" \"\n"))
            .expect_err("empty")
            .to_string();
        assert!(
            error.ends_with("lbconsole.toml: peer_command must name a command, not be empty"),
            "{error}"
        );
        let error = load(Some("ssh = \"\"\n")).expect_err("empty").to_string();
        assert!(
            error.ends_with("ssh must name a command, not be empty"),
            "{error}"
        );
        let error = load(Some("ssh_command = \"ssh\"\n"))
            .expect_err("unknown")
            .to_string();
        assert!(error.contains("unknown field `ssh_command`"), "{error}");
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
            ssh: Some("ssh -i /k".to_owned()),
            peer_command: None,
            metrics_listen: Some("127.0.0.1:9712".parse().expect("an address")),
        };
        settings.write(&dir).expect("written");
        assert_eq!(Settings::load(&dir).expect("read back"), settings);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}

//! Live overrides: an operator's decision about one real server of one
//! director, above the configuration. `drain` and `disable` also stand above
//! health (a drained server that turns healthy stays drained); health stands
//! above `weight N` (a down server is out, or at weight 0 by `inhibit`,
//! whatever weight an operator gave it). Sorry servers follow their rule with
//! their overridden weight. The store keeps them (`store::overrides`); this
//! module says what they mean.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::model::LvsConfig;

/// What an operator holds a server at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Hold {
    /// Weight 0: no new connection comes, established ones finish. Becomes
    /// `Disable` when the server has no active connection left, or at
    /// `deadline` (seconds since the epoch), whichever comes first.
    Drain {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline: Option<i64>,
    },
    /// Out of IPVS.
    Disable,
    /// A temporary weight, in place of the configured one.
    Weight { weight: u32 },
}

impl Hold {
    /// The word `server list` shows: drain, disable, weight.
    pub fn name(self) -> &'static str {
        match self {
            Hold::Drain { .. } => "drain",
            Hold::Disable => "disable",
            Hold::Weight { .. } => "weight",
        }
    }

    /// Whether the server takes no new connection, whatever its health.
    pub fn keeps_out(self) -> bool {
        matches!(self, Hold::Drain { .. } | Hold::Disable)
    }
}

/// One override, with who set it, when, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub director: String,
    pub server: String,
    #[serde(flatten)]
    pub hold: Hold,
    /// The user who set it.
    pub by: String,
    /// When, in seconds since the epoch.
    pub at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Override {
    /// `web/web1`, as the command line names a server.
    pub fn target(&self) -> String {
        format!("{}/{}", self.director, self.server)
    }

    /// What it does to IPVS: `weight 0`, `out of IPVS`, `weight 5`.
    pub fn effect(&self) -> String {
        match self.hold {
            Hold::Drain { .. } => "weight 0 until its connections end".to_owned(),
            Hold::Disable => "out of IPVS".to_owned(),
            Hold::Weight { weight } => format!("weight {weight} while it is up"),
        }
    }
}

impl fmt::Display for Override {
    /// `server web1 of web drained by alice at 2026-11-30T10:02:00Z: weight 0
    /// until its connections end (kernel upgrade)`: what `apply --dry-run` and
    /// `server list` say.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.hold {
            Hold::Drain { .. } => "drained",
            Hold::Disable => "disabled",
            Hold::Weight { .. } => "reweighted",
        };
        write!(
            f,
            "server {} of {} {verb} by {} at {}: {}",
            self.server,
            self.director,
            self.by,
            crate::store::versions::rfc3339(self.at),
            self.effect()
        )?;
        if let Hold::Drain {
            deadline: Some(deadline),
        } = self.hold
        {
            write!(
                f,
                ", disabled at {} at the latest",
                crate::store::versions::rfc3339(deadline)
            )?;
        }
        if let Some(note) = &self.note {
            write!(f, " ({note})")?;
        }
        Ok(())
    }
}

/// Every override in force, one per server, in the order of their targets.
/// `version` counts the writes, so that a writer that read an older one is
/// refused rather than undo another operator's change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overrides {
    #[serde(default)]
    pub version: u64,
    #[serde(default, rename = "server", skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<Override>,
}

impl Overrides {
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    pub fn get(&self, director: &str, server: &str) -> Option<&Override> {
        self.servers
            .iter()
            .find(|o| o.director == director && o.server == server)
    }

    /// Puts `change` in force in place of any override of the same server.
    pub fn set(&mut self, change: Override) {
        self.remove(&change.director, &change.server);
        let at = self
            .servers
            .partition_point(|o| (&o.director, &o.server) < (&change.director, &change.server));
        self.servers.insert(at, change);
    }

    pub fn remove(&mut self, director: &str, server: &str) -> Option<Override> {
        let index = self
            .servers
            .iter()
            .position(|o| o.director == director && o.server == server)?;
        Some(self.servers.remove(index))
    }

    /// The overrides of servers `config` has, and those of servers it no
    /// longer has (which an apply removes, saying so).
    pub fn split_by(&self, config: &LvsConfig) -> (Overrides, Vec<Override>) {
        let (kept, gone) = self
            .servers
            .iter()
            .cloned()
            .partition(|o| has_server(config, &o.director, &o.server));
        (
            Overrides {
                version: self.version,
                servers: kept,
            },
            gone,
        )
    }
}

/// Whether `config` has a server `server` in director `director`.
pub fn has_server(config: &LvsConfig, director: &str, server: &str) -> bool {
    config
        .directors
        .iter()
        .filter(|d| d.name.as_str() == director)
        .flat_map(|d| &d.servers)
        .any(|s| s.name.as_str() == server)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse::parse_lvs;

    fn drain(director: &str, server: &str) -> Override {
        Override {
            director: director.into(),
            server: server.into(),
            hold: Hold::Drain { deadline: None },
            by: "alice".into(),
            at: 1_764_496_920,
            note: None,
        }
    }

    #[test]
    fn one_override_per_server_kept_in_order() {
        let mut overrides = Overrides::default();
        overrides.set(drain("web", "b"));
        overrides.set(drain("api", "z"));
        overrides.set(Override {
            hold: Hold::Weight { weight: 5 },
            ..drain("web", "b")
        });
        let targets: Vec<String> = overrides.servers.iter().map(Override::target).collect();
        assert_eq!(targets, ["api/z", "web/b"]);
        assert_eq!(
            overrides.get("web", "b").map(|o| o.hold),
            Some(Hold::Weight { weight: 5 })
        );
        assert!(overrides.remove("api", "z").is_some());
        assert!(overrides.remove("api", "z").is_none());
    }

    #[test]
    fn says_who_when_and_what() {
        let mut o = drain("web", "web1");
        o.note = Some("kernel upgrade".into());
        assert_eq!(
            o.to_string(),
            "server web1 of web drained by alice at 2025-11-30T10:02:00Z: weight 0 until its connections end (kernel upgrade)"
        );
        o.hold = Hold::Drain {
            deadline: Some(1_764_497_520),
        };
        assert!(
            o.to_string()
                .contains(", disabled at 2025-11-30T10:12:00Z at the latest")
        );
    }

    #[test]
    fn the_file_reads_back_what_was_written() {
        let mut overrides = Overrides {
            version: 7,
            ..Overrides::default()
        };
        overrides.set(drain("web", "web1"));
        overrides.set(Override {
            hold: Hold::Weight { weight: 5 },
            note: Some("warming up".into()),
            ..drain("web", "web2")
        });
        overrides.set(Override {
            hold: Hold::Disable,
            ..drain("api", "a1")
        });
        let text = toml::to_string(&overrides).unwrap();
        assert!(text.contains("state = \"weight\""), "{text}");
        assert_eq!(toml::from_str::<Overrides>(&text).unwrap(), overrides);
    }

    #[test]
    fn overrides_of_servers_the_configuration_lost_are_split_off() {
        let (config, _) = parse_lvs(b"director web 10.0.0.1:80 TCP\n    server web1 10.0.1.1:80\n");
        let mut overrides = Overrides::default();
        overrides.set(drain("web", "web1"));
        overrides.set(drain("web", "web9"));
        overrides.set(drain("gone", "web1"));
        let (kept, gone) = overrides.split_by(&config);
        assert_eq!(kept.servers, [drain("web", "web1")]);
        let gone: Vec<String> = gone.iter().map(Override::target).collect();
        assert_eq!(gone, ["gone/web1", "web/web9"]);
    }
}

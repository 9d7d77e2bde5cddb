//! Live operations on real servers — drain, disable, weight, enable — as
//! `lbconsole server …` and the console's keys do them: the override is
//! recorded in the state dir and the running kernel changed at once, as one
//! transaction. The file is written first, so that the daemon's checker,
//! which reads it, never undoes the change; should IPVS refuse, its changes are
//! undone and the previous overrides written back.

use std::collections::BTreeSet;

use crate::apply::{self, ApplyError};
use crate::config::diagnostic::did_you_mean;
use crate::config::model::LvsConfig;
use crate::config::model::lvs::Director;
use crate::config::parse::parse_lvs;
use crate::events::{self, Event, EventKind};
use crate::health::publish::HealthSource;
use crate::health::state::{self, with_reported_health};
use crate::kernel::{IpvsBackend, IpvsObservation, KernelError};
use crate::plan::ipvs::{IpvsOp, IpvsState, ServiceKey, desired, director_marks, service_key};
use crate::plan::overrides::{Hold, Override, Overrides};
use crate::store::versions::{current_user, unix_now};
use crate::store::{ConfigFiles, Locked, Store, StoreError, overrides};

#[derive(Debug, thiserror::Error)]
pub enum OperateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "nothing is applied yet: `lbconsole apply` first; overrides act on the running configuration"
    )]
    NotApplied,
    #[error("the running lvs.conf has no director `{director}`{}", with_hint(hint))]
    NoDirector {
        director: String,
        hint: Option<String>,
    },
    #[error("director `{director}` has no server `{server}`{}", with_hint(hint))]
    NoServer {
        director: String,
        server: String,
        hint: Option<String>,
    },
    #[error("`{0}` names no server: write DIRECTOR/SERVER, as in web/web1")]
    Target(String),
    #[error("the note has a control character (at character {0}); write it on one line")]
    Note(usize),
    #[error("{target}: {error}; the overrides were left as they were")]
    Kernel {
        target: String,
        error: Box<ApplyError>,
    },
    #[error(
        "{target}: {error}; writing back the previous overrides failed too ({restore}), so overrides.toml says more than the kernel does"
    )]
    Restore {
        target: String,
        error: Box<ApplyError>,
        restore: Box<StoreError>,
    },
}

fn with_hint(hint: &Option<String>) -> String {
    hint.as_ref().map(|h| format!("; {h}")).unwrap_or_default()
}

/// One server of one director, as `DIRECTOR/SERVER` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub director: String,
    pub server: String,
}

impl std::str::FromStr for Target {
    type Err = OperateError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once('/') {
            Some((director, server))
                if !director.is_empty() && !server.is_empty() && !server.contains('/') =>
            {
                Ok(Target {
                    director: director.to_owned(),
                    server: server.to_owned(),
                })
            }
            _ => Err(OperateError::Target(text.to_owned())),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.director, self.server)
    }
}

/// What an operator asks of one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub target: Target,
    /// `None`: enable, that is remove the override.
    pub hold: Option<Hold>,
    pub note: Option<String>,
}

/// What a change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub previous: Option<Override>,
    /// The override in force now; `None` after an enable.
    pub now: Option<Override>,
    /// The IPVS operations carried out.
    pub ops: Vec<IpvsOp>,
}

/// Records `change` and carries it out on the running kernel, all or nothing.
pub async fn change<I: IpvsBackend>(
    store: &Store,
    ipvs: &mut I,
    change: &Change,
) -> Result<Changed, OperateError> {
    if let Some(note) = &change.note
        && let Some(at) = note.chars().position(crate::text::is_unsafe)
    {
        return Err(OperateError::Note(at + 1));
    }
    let locked = store.lock()?;
    let config = running_lvs(store)?;
    let Target { director, server } = &change.target;
    let service = service_key(find(&config, director, server)?, &director_marks(&config));
    let old = overrides::read(store.state_dir())?;
    let previous = old.get(director, server).cloned();
    let mut new = old.clone();
    let now = change.hold.map(|hold| Override {
        director: director.clone(),
        server: server.clone(),
        hold,
        by: current_user(),
        at: unix_now(),
        note: change.note.clone(),
    });
    let text = match (&now, &previous) {
        (Some(o), _) => {
            new.set(o.clone());
            o.to_string()
        }
        (None, None) => {
            return Ok(Changed {
                previous,
                now,
                ops: Vec::new(),
            });
        }
        (None, Some(was)) => {
            new.remove(director, server);
            format!(
                "server {server} of {director} enabled: back to its configured weight and to health control (was {})",
                was.hold.name()
            )
        }
    };
    let services = BTreeSet::from([service]);
    let ops = commit(store, &locked, ipvs, &config, &old, &new, &services)
        .await
        .map_err(|failure| failure.about(&change.target))?;
    events::record(
        store.state_dir(),
        &Event::new(EventKind::Override, text)
            .by(current_user())
            .server(director, server),
    );
    Ok(Changed { previous, now, ops })
}

/// The daemon, each second while a server drains: a draining server with no
/// active connection left, or whose deadline has passed, becomes disabled.
/// `observed` is the table as read now. Returns the overrides it changed.
pub async fn finish_drains<I: IpvsBackend>(
    store: &Store,
    ipvs: &mut I,
    observed: &IpvsObservation,
) -> Result<Vec<Override>, OperateError> {
    let locked = store.lock()?;
    let old = overrides::read(store.state_dir())?;
    let config = running_lvs(store)?;
    let members = state::roster(&config).members;
    let now = unix_now();
    let mut new = old.clone();
    let mut finished = Vec::new();
    let mut services = BTreeSet::new();
    for o in &old.servers {
        let Hold::Drain { deadline } = o.hold else {
            continue;
        };
        let Some(member) = members
            .iter()
            .find(|m| m.director == o.director && m.server == o.server)
        else {
            continue;
        };
        let active = observed
            .dest(&member.service, &member.dest)
            .map_or(0, |d| d.active_connections);
        if active == 0 || deadline.is_some_and(|deadline| now >= deadline) {
            let disabled = Override {
                hold: Hold::Disable,
                ..o.clone()
            };
            new.set(disabled.clone());
            finished.push(disabled);
            services.insert(member.service);
        }
    }
    if finished.is_empty() {
        return Ok(finished);
    }
    commit(store, &locked, ipvs, &config, &old, &new, &services)
        .await
        .map_err(|failure| {
            let first = &finished[0];
            failure.about(&Target {
                director: first.director.clone(),
                server: first.server.clone(),
            })
        })?;
    for o in &finished {
        let text = format!(
            "server {} of {} drained (drain by {}): no active connection left or its deadline passed; disabled",
            o.server, o.director, o.by
        );
        events::record(
            store.state_dir(),
            &Event::new(EventKind::Override, text).server(&o.director, &o.server),
        );
    }
    Ok(finished)
}

/// Whether any override drains a server.
pub fn draining(overrides: &Overrides) -> bool {
    overrides
        .servers
        .iter()
        .any(|o| matches!(o.hold, Hold::Drain { .. }))
}

/// The running `lvs.conf`, which passed validation when it was applied.
fn running_lvs(store: &Store) -> Result<LvsConfig, OperateError> {
    let running = ConfigFiles::read_running(store.state_dir())?.ok_or(OperateError::NotApplied)?;
    Ok(parse_lvs(&running.lvs).0)
}

fn find<'a>(
    config: &'a LvsConfig,
    director: &str,
    server: &str,
) -> Result<&'a Director, OperateError> {
    let names = config.directors.iter().map(|d| d.name.as_str());
    let Some(found) = config
        .directors
        .iter()
        .find(|d| d.name.as_str() == director)
    else {
        return Err(OperateError::NoDirector {
            director: director.to_owned(),
            hint: did_you_mean(director, names),
        });
    };
    if found.servers.iter().any(|s| s.name.as_str() == server) {
        return Ok(found);
    }
    Err(OperateError::NoServer {
        director: director.to_owned(),
        server: server.to_owned(),
        hint: did_you_mean(server, found.servers.iter().map(|s| s.name.as_str())),
    })
}

/// Why a commit failed, before it is told which server it was about.
enum Failure {
    Store(StoreError),
    Kernel(Box<ApplyError>),
    Restore(Box<ApplyError>, Box<StoreError>),
}

impl Failure {
    fn about(self, target: &Target) -> OperateError {
        match self {
            Failure::Store(error) => OperateError::Store(error),
            Failure::Kernel(error) => OperateError::Kernel {
                target: target.to_string(),
                error,
            },
            Failure::Restore(error, restore) => OperateError::Restore {
                target: target.to_string(),
                error,
                restore,
            },
        }
    }
}

/// Writes `new` in place of `old`, then takes the real servers of `services`
/// to what the configuration, the daemon's health and `new` ask for; the
/// operations carried out.
async fn commit<I: IpvsBackend>(
    store: &Store,
    locked: &Locked,
    ipvs: &mut I,
    config: &LvsConfig,
    old: &Overrides,
    new: &Overrides,
    services: &BTreeSet<ServiceKey>,
) -> Result<Vec<IpvsOp>, Failure> {
    let health = HealthSource::Daemon.reports(store.state_dir());
    let wanted = with_reported_health(&desired(config), config, &health, new);
    let observed = ipvs
        .observe_services(services)
        .await
        .map_err(|e| Failure::Kernel(Box::new(e.into())))?;
    let wanted = IpvsState {
        services: wanted
            .services
            .into_iter()
            .filter(|(key, _)| services.contains(key))
            .collect(),
    };
    let ops = state::dest_ops(&observed, &wanted);
    if draining(new) {
        ipvs.expire_quiescent_templates()
            .await
            .map_err(|e: KernelError| Failure::Kernel(Box::new(e.into())))?;
    }
    let written = Overrides {
        version: old.version,
        servers: new.servers.clone(),
    };
    overrides::write(store, locked, &written).map_err(Failure::Store)?;
    if let Err(error) = apply::execute_ipvs(ipvs, &ops).await {
        let back = Overrides {
            version: old.version + 1,
            servers: old.servers.clone(),
        };
        return Err(match overrides::write(store, locked, &back) {
            Ok(_) => Failure::Kernel(Box::new(error)),
            Err(restore) => Failure::Restore(Box::new(error), Box::new(restore)),
        });
    }
    Ok(ops)
}

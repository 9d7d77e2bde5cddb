//! ldirectord.cf: global `key=value` lines, and `virtual=` sections whose
//! indented lines describe one virtual service, its check and its `real=`
//! servers. Each virtual service becomes a director with its check written
//! out in full, ldirectord's own defaults included (those of its code, where
//! its man page differs).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::ipvsadm::{Real, fwmark_flow, is_link_local, place_servers, well_known_port};
use super::{
    Conversion, Converted, Names, NoteKind, Place, ignored_weights, ipvs_scheduler, service_name,
    sorry_server,
};
use crate::config::model::lvs::{
    CheckMethod, Director, ForwardMode, HttpCheck, Persistence, Scheduler, ServiceProtocol,
    VirtualService,
};
use crate::config::model::types::{Family, Port, Spanned, mask_to_prefix};

const DEFAULT_SCHEDULER: &str = "wrr";
const DEFAULT_CHECKTIMEOUT_S: u32 = 5;
const DEFAULT_NEGOTIATETIMEOUT_S: u32 = 30;
const DEFAULT_CHECKINTERVAL_S: u32 = 10;
/// The longest interval, timeout and persistence `lvs.conf` takes.
const MAX_SECONDS: u32 = 86_400;
/// The longest run of failed checks `lvs.conf` counts.
const MAX_FALL: u32 = 1000;
/// The most servers one `real=A->B` range may stand for.
const MAX_RANGE: u32 = 256;

/// The settings of a virtual section the converter maps.
const VIRTUAL_KEYS: &[&str] = &[
    "checkcommand",
    "checkcount",
    "checkinterval",
    "checkport",
    "checktimeout",
    "checktype",
    "connecttimeout",
    "failurecount",
    "fallback",
    "fallback6",
    "httpmethod",
    "negotiatetimeout",
    "netmask",
    "ops",
    "persistent",
    "protocol",
    "quiescent",
    "receive",
    "request",
    "scheduler",
    "service",
    "servicename",
    "virtualhost",
];

/// The global settings the converter maps; the virtual sections inherit them.
const GLOBAL_KEYS: &[&str] = &[
    "checkcount",
    "checkinterval",
    "checktimeout",
    "connecttimeout",
    "failurecount",
    "fallback",
    "fallback6",
    "fork",
    "negotiatetimeout",
    "quiescent",
];

const NO_MAIL: &str = "lbconsole sends no mail; the daemon logs every state change";

/// Settings lbconsole has no place for, and why.
const DROPPED: &[(&str, &str)] = &[
    (
        "autoreload",
        "lbconsole reads its files at apply, not when they change",
    ),
    (
        "callback",
        "lbconsole reads its files at apply, not when they change",
    ),
    (
        "cleanstop",
        "apply owns the IPVS table: it removes what lvs.conf lacks",
    ),
    ("comment", "a note for ldirectord's mail alerts"),
    ("database", "lbconsole's checks do not log in"),
    ("emailalert", NO_MAIL),
    ("emailalertfreq", NO_MAIL),
    ("emailalertfrom", NO_MAIL),
    ("emailalertstatus", NO_MAIL),
    ("execute", "lbconsole runs one configuration"),
    (
        "fallbackcommand",
        "lbconsole runs no command when a director's servers are all down",
    ),
    ("load", "lbconsole's checks do not measure load"),
    ("logfile", "the daemon logs to standard error (the journal)"),
    ("login", "lbconsole's checks do not log in"),
    (
        "maintenancedir",
        "`lbconsole disable` takes a server out instead",
    ),
    ("monitorfile", "the daemon logs every state change"),
    ("passwd", "lbconsole's checks do not log in"),
    (
        "readdquiescent",
        "the checker puts back a server the table lost",
    ),
    ("schedflags", "lbconsole sets no scheduler flags"),
    ("secret", "lbconsole's checks do not log in"),
    ("smtp", NO_MAIL),
    (
        "supervised",
        "lbconsole's daemon runs in the foreground under its service manager",
    ),
];

/// Settings whose value is a secret, kept out of the report.
const SECRETS: &[&str] = &["passwd", "secret"];

pub fn convert(file: &str, text: &str) -> Conversion {
    let mut reader = Reader::default();
    for (index, line) in text.lines().enumerate() {
        let place = Place {
            file: file.to_owned(),
            line: u32::try_from(index + 1).unwrap_or(u32::MAX),
        };
        reader.read_line(&place, line);
    }
    reader.finish()
}

/// One `key=value` line, where it was written.
#[derive(Debug, Clone)]
struct Setting {
    value: String,
    place: Place,
}

/// The last value of each key, as ldirectord keeps it.
#[derive(Debug, Default)]
struct Settings(BTreeMap<&'static str, Setting>);

impl Settings {
    fn set(&mut self, key: &'static str, value: &str, place: &Place) {
        self.0.insert(
            key,
            Setting {
                value: value.to_owned(),
                place: place.clone(),
            },
        );
    }

    fn get(&self, key: &str) -> Option<&Setting> {
        self.0.get(key)
    }

    fn value(&self, key: &str) -> Option<&str> {
        self.get(key).map(|s| s.value.as_str())
    }
}

/// What a `virtual=` line names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Vip { address: IpAddr, port: u16 },
    Mark { mark: u32, family: Family },
}

struct Virtual {
    place: Place,
    what: String,
    target: Target,
    settings: Settings,
    reals: Vec<Real>,
}

#[derive(Default, PartialEq, Eq)]
enum Section {
    #[default]
    Global,
    /// The last of `virtuals`.
    Virtual,
    /// A virtual section left out, whose lines go with it.
    LeftOut,
}

#[derive(Default)]
struct Reader {
    globals: Settings,
    virtuals: Vec<Virtual>,
    section: Section,
    conversion: Conversion,
}

impl Reader {
    fn read_line(&mut self, place: &Place, line: &str) {
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            return;
        }
        if !line.starts_with([' ', '\t']) {
            self.section = Section::Global;
            let (key, value) = key_value(text);
            match key {
                "virtual" | "virtual6" => self.start_virtual(place, key, value, text),
                _ => self.global(place, key, value),
            }
            return;
        }
        // Inside a section ldirectord cuts a comment wherever it starts.
        let text = text.split('#').next().unwrap_or_default().trim();
        match self.section {
            Section::Global => self.conversion.note(
                place,
                NoteKind::Error,
                format!("`{text}`: an indented line outside a virtual section; ignored"),
            ),
            Section::LeftOut => {}
            Section::Virtual if text.is_empty() => {}
            Section::Virtual => {
                let (key, value) = key_value(text);
                self.virtual_line(place, key, value);
            }
        }
    }

    fn global(&mut self, place: &Place, key: &str, value: &str) {
        if let Some(known) = GLOBAL_KEYS.iter().find(|k| **k == key) {
            self.globals.set(known, value, place);
        } else if key == "timeout" {
            self.conversion.note(
                place,
                NoteKind::Error,
                "`timeout`: ldirectord refuses it (checktimeout and negotiatetimeout replace it); ignored",
            );
        } else {
            self.not_mapped(place, key, value);
        }
    }

    fn virtual_line(&mut self, place: &Place, key: &str, value: &str) {
        let Some(current) = self.virtuals.last_mut() else {
            return;
        };
        if key == "real" || key == "real6" {
            let vip_port = match current.target {
                Target::Vip { port, .. } => port,
                Target::Mark { .. } => 0,
            };
            match reals(&mut self.conversion, place, value, vip_port) {
                Ok(mut reals) => current.reals.append(&mut reals),
                Err(why) => {
                    self.conversion
                        .note(place, NoteKind::Error, format!("{why}; left out"))
                }
            }
        } else if let Some(known) = VIRTUAL_KEYS.iter().find(|k| **k == key) {
            current.settings.set(known, value, place);
        } else {
            self.not_mapped(place, key, value);
        }
    }

    /// A setting lbconsole has no place for, or one the converter does not know.
    fn not_mapped(&mut self, place: &Place, key: &str, value: &str) {
        match DROPPED.iter().find(|(known, _)| *known == key) {
            Some((_, why)) => {
                let shown = if SECRETS.contains(&key) {
                    format!("{key}=…")
                } else {
                    format!("{key}={value}")
                };
                self.conversion
                    .note(place, NoteKind::Dropped, format!("{shown}: {why}"));
            }
            None => self
                .conversion
                .note(place, NoteKind::Unknown, format!("`{key}`, ignored")),
        }
    }

    fn start_virtual(&mut self, place: &Place, key: &str, value: &str, text: &str) {
        let ipv6 = key == "virtual6";
        match target(value, ipv6) {
            Ok(target) => {
                self.virtuals.push(Virtual {
                    place: place.clone(),
                    what: text.to_owned(),
                    target,
                    settings: Settings::default(),
                    reals: Vec::new(),
                });
                self.section = Section::Virtual;
            }
            Err(why) => {
                self.conversion.note(
                    place,
                    NoteKind::Error,
                    format!("{why}; the section is left out"),
                );
                self.section = Section::LeftOut;
            }
        }
    }

    fn finish(mut self) -> Conversion {
        let mut director_names = Names::default();
        let mut flow_names = Names::default();
        let mut seen: Vec<(Target, ServiceProtocol, u32)> = Vec::new();
        for virtual_ in std::mem::take(&mut self.virtuals) {
            let protocol = self.protocol(&virtual_);
            if let Some((_, _, line)) = seen
                .iter()
                .find(|(target, p, _)| *target == virtual_.target && *p == protocol)
            {
                self.conversion.note(
                    &virtual_.place,
                    NoteKind::Error,
                    format!(
                        "the virtual service of line {line} again: ldirectord refuses it; left out"
                    ),
                );
                continue;
            }
            seen.push((virtual_.target, protocol, virtual_.place.line));
            if let Target::Vip { address, .. } = virtual_.target
                && is_link_local(address)
            {
                self.conversion.note(
                    &virtual_.place,
                    NoteKind::Dropped,
                    format!("{address}: lbconsole takes no link-local VIP"),
                );
                continue;
            }
            let director = self.director(&mut director_names, &virtual_, protocol);
            if let Target::Mark { mark, .. } = virtual_.target {
                fwmark_flow(
                    &mut self.conversion,
                    &mut flow_names,
                    mark,
                    &director,
                    &virtual_.place,
                    &virtual_.what,
                );
            }
            self.conversion.directors.push(Converted {
                from: virtual_.place,
                what: virtual_.what,
                value: director,
            });
        }
        self.conversion
    }

    /// `protocol=`, or ldirectord's default: UDP for port 53, else TCP.
    fn protocol(&mut self, virtual_: &Virtual) -> ServiceProtocol {
        let default = match virtual_.target {
            Target::Vip { port: 53, .. } => ServiceProtocol::Udp,
            Target::Vip { .. } | Target::Mark { .. } => ServiceProtocol::Tcp,
        };
        let Some(setting) = virtual_.settings.get("protocol") else {
            return default;
        };
        match (setting.value.as_str(), virtual_.target) {
            ("tcp", Target::Vip { .. }) => ServiceProtocol::Tcp,
            ("udp", Target::Vip { .. }) => ServiceProtocol::Udp,
            ("fwm", Target::Mark { .. }) => default,
            (other, _) => {
                let expected = match virtual_.target {
                    Target::Vip { .. } => "tcp or udp for an address",
                    Target::Mark { .. } => "fwm for a firewall mark",
                };
                self.conversion.note(
                    &setting.place,
                    NoteKind::Error,
                    format!("protocol={other}: ldirectord takes {expected}; ignored"),
                );
                default
            }
        }
    }

    fn director(
        &mut self,
        names: &mut Names,
        virtual_: &Virtual,
        protocol: ServiceProtocol,
    ) -> Director {
        let settings = &virtual_.settings;
        let wanted = match (settings.value("servicename"), virtual_.target) {
            (Some(name), _) if !name.is_empty() => name.to_owned(),
            (_, Target::Vip { address, port }) => {
                service_name(protocol, address, (port != 0).then_some(port))
            }
            (_, Target::Mark { mark, family }) => match family {
                Family::Ipv4 => format!("fwmark-{mark}"),
                Family::Ipv6 => format!("fwmark-{mark}-ipv6"),
            },
        };
        let mut director = Director::new(Spanned::unplaced(names.director(&wanted)));
        let family = match virtual_.target {
            Target::Vip { address, port } => {
                director.service = Some(Spanned::unplaced(VirtualService {
                    address,
                    port: Port::new(port),
                    protocol: Some(protocol),
                }));
                Family::of(address)
            }
            Target::Mark { family, .. } => family,
        };
        place_servers(
            &mut self.conversion,
            &mut director,
            family,
            &virtual_.reals,
            method_word,
            &virtual_.what,
        );
        self.sorry_server(&mut director, virtual_, family);
        let scheduler = settings.get("scheduler");
        let scheduler_name = scheduler.map_or(DEFAULT_SCHEDULER, |s| s.value.as_str());
        let balance = ipvs_scheduler(scheduler_name).unwrap_or_else(|| {
            let place = scheduler.map_or(&virtual_.place, |s| &s.place);
            self.conversion.note(
                place,
                NoteKind::Unknown,
                format!("scheduler={scheduler_name}: not an IPVS scheduler lbconsole knows; balance leastconn (wlc)"),
            );
            Scheduler::LeastConn
        });
        director.balance = Some(Spanned::unplaced(balance));
        if let Some(scheduler) = scheduler
            && let Some(text) = ignored_weights(
                scheduler_name,
                &format!("scheduler={scheduler_name}"),
                &director,
            )
        {
            self.conversion
                .note(&scheduler.place, NoteKind::Approximated, text);
        }
        director.persistence = self.persistence(settings, family);
        // A director without VIP takes its family from its first server: with
        // none, an IPv6 prefix length would read as an IPv4 netmask.
        if director.family() != family
            && let Some(persistence) = &mut director.persistence
            && persistence.netmask.take().is_some()
            && let Some(netmask) = settings.get("netmask")
        {
            self.conversion.note(
                &netmask.place,
                NoteKind::Dropped,
                format!(
                    "netmask={}: a director without VIP and without servers is IPv4",
                    netmask.value
                ),
            );
        }
        director.onepacket = self.onepacket(settings, protocol);
        self.check(&mut director, virtual_, protocol);
        director
    }

    /// `fallback=` of the section, else the global one of its family: a
    /// server that takes the traffic while the real servers are all down.
    fn sorry_server(&mut self, director: &mut Director, virtual_: &Virtual, family: Family) {
        let (own, global) = match family {
            Family::Ipv4 => ("fallback", "fallback"),
            Family::Ipv6 => ("fallback6", "fallback6"),
        };
        let (setting, vip_port) = match virtual_.settings.get(own) {
            Some(setting) => (setting.clone(), virtual_port(virtual_.target)),
            None => match self.globals.get(global) {
                Some(setting) => (setting.clone(), None),
                None => return,
            },
        };
        let (address, port, forward) = match fallback(&setting.value) {
            Ok(found) => found,
            Err(why) => {
                self.conversion
                    .note(&setting.place, NoteKind::Error, format!("{why}; left out"));
                return;
            }
        };
        let mode = director.forward_mode();
        let shown = format!("fallback={}", setting.value);
        if Family::of(address) != family && mode != ForwardMode::Tunnel {
            self.conversion.note(
                &setting.place,
                NoteKind::Error,
                format!("{shown}: not of the virtual service's family ({family}); left out"),
            );
            return;
        }
        if is_link_local(address) {
            self.conversion.note(
                &setting.place,
                NoteKind::Dropped,
                format!("{shown}: lbconsole takes no link-local server"),
            );
            return;
        }
        let port = match mode {
            ForwardMode::Nat => port.or(vip_port).and_then(Port::new),
            ForwardMode::Gateway | ForwardMode::Tunnel => None,
        };
        let vip = director.service.as_ref().and_then(|s| s.port);
        if director
            .servers
            .iter()
            .any(|s| s.address == address && s.port.or(vip) == port.or(vip))
        {
            self.conversion.note(
                &setting.place,
                NoteKind::Dropped,
                format!(
                    "{shown}: already a real server of `{}`",
                    director.name.value
                ),
            );
            return;
        }
        if let Some(forward) = forward
            && director.mode.is_some_and(|mode| mode != forward)
        {
            self.conversion.note(
                &setting.place,
                NoteKind::Approximated,
                format!(
                    "{shown}: `{}` forwards its sorry server like its other servers ({})",
                    director.name.value,
                    method_word(mode)
                ),
            );
        }
        let mut names = Names::default();
        for server in &director.servers {
            names.server(server.name.as_str());
        }
        director
            .servers
            .push(sorry_server(&mut names, address, port));
        if director.mode.is_none() {
            director.mode = Some(forward.unwrap_or(ForwardMode::Gateway));
        }
    }

    fn persistence(&mut self, settings: &Settings, family: Family) -> Option<Persistence> {
        let netmask = settings.get("netmask");
        let Some(persistent) = settings.get("persistent") else {
            if let Some(netmask) = netmask {
                self.conversion.note(
                    &netmask.place,
                    NoteKind::Dropped,
                    format!(
                        "netmask={}: without persistent= ldirectord does not use it",
                        netmask.value
                    ),
                );
            }
            return None;
        };
        let timeout = match persistent.value.parse::<u32>() {
            Ok(timeout) if timeout > 0 => timeout,
            _ => {
                self.conversion.note(
                    &persistent.place,
                    NoteKind::Error,
                    format!(
                        "persistent={}: not a number of seconds; not persistent",
                        persistent.value
                    ),
                );
                return None;
            }
        };
        let timeout = if timeout > MAX_SECONDS {
            self.conversion.note(
                &persistent.place,
                NoteKind::Approximated,
                format!("persistent={timeout}: lbconsole persists at most {MAX_SECONDS} s (a day)"),
            );
            MAX_SECONDS
        } else {
            timeout
        };
        let netmask = netmask.and_then(|netmask| {
            let prefix = match family {
                Family::Ipv4 => netmask.value.parse::<Ipv4Addr>().ok().map(mask_to_prefix),
                Family::Ipv6 => Some(
                    netmask
                        .value
                        .parse::<u8>()
                        .ok()
                        .filter(|p| (1..=128).contains(p)),
                ),
            };
            match prefix {
                Some(Some(prefix)) => (prefix != family.max_prefix()).then_some(prefix),
                Some(None) => {
                    self.conversion.note(
                        &netmask.place,
                        NoteKind::Dropped,
                        format!(
                            "netmask={}: a netmask with holes; lbconsole takes a prefix, so persistence is per client address",
                            netmask.value
                        ),
                    );
                    None
                }
                None => {
                    self.conversion.note(
                        &netmask.place,
                        NoteKind::Error,
                        format!(
                            "netmask={}: not a {} netmask; persistence is per client address",
                            netmask.value,
                            match family {
                                Family::Ipv4 => "dotted",
                                Family::Ipv6 => "prefix length 1-128 as",
                            }
                        ),
                    );
                    None
                }
            }
        });
        Some(Persistence {
            timeout: Some(timeout),
            netmask,
            ..Persistence::default()
        })
    }

    /// `ops=yes`: ldirectord passes `-o` for UDP services only.
    fn onepacket(&mut self, settings: &Settings, protocol: ServiceProtocol) -> bool {
        let Some(ops) = settings.get("ops") else {
            return false;
        };
        match (ops.value.as_str(), protocol) {
            ("yes", ServiceProtocol::Udp) => true,
            ("yes", ServiceProtocol::Tcp) => {
                self.conversion.note(
                    &ops.place,
                    NoteKind::Dropped,
                    "ops=yes: ldirectord schedules one packet at a time for UDP services only",
                );
                false
            }
            ("no", _) => false,
            (other, _) => {
                self.conversion.note(
                    &ops.place,
                    NoteKind::Error,
                    format!("ops={other}: ldirectord takes yes or no; ignored"),
                );
                false
            }
        }
    }

    /// A section's setting, else the global one.
    fn inherited<'a>(&'a self, settings: &'a Settings, key: &str) -> Option<&'a Setting> {
        settings.get(key).or_else(|| self.globals.get(key))
    }

    /// A number of seconds or a count: a positive whole number, at most a day.
    fn positive(&mut self, setting: &Setting, key: &str) -> Option<u32> {
        match setting.value.parse::<u32>() {
            Ok(0) | Err(_) => {
                self.conversion.note(
                    &setting.place,
                    NoteKind::Error,
                    format!(
                        "{key}={}: ldirectord takes a positive number; ignored",
                        setting.value
                    ),
                );
                None
            }
            Ok(value) if value > MAX_SECONDS => {
                self.conversion.note(
                    &setting.place,
                    NoteKind::Approximated,
                    format!("{key}={value}: lbconsole takes at most {MAX_SECONDS}"),
                );
                Some(MAX_SECONDS)
            }
            Ok(value) => Some(value),
        }
    }

    /// The section's check, with ldirectord's defaults: `checktype=negotiate`
    /// of the service its port names.
    fn check(&mut self, director: &mut Director, virtual_: &Virtual, protocol: ServiceProtocol) {
        let settings = &virtual_.settings;
        let udp = protocol == ServiceProtocol::Udp;
        let service = match settings.value("service") {
            Some(service) => service.to_owned(),
            None => match virtual_.target {
                Target::Vip { port, .. } => port_service(port).to_owned(),
                Target::Mark { .. } => "none".to_owned(),
            },
        };
        let checktype = settings.get("checktype");
        let checktype_place = checktype.map_or(&virtual_.place, |c| &c.place).clone();
        let checktype = checktype.map_or("negotiate", |c| c.value.as_str());
        let probe = match checktype {
            "negotiate" => self.negotiate(&service, udp, &checktype_place),
            "connect" | "ping" if udp || checktype == "ping" => Probe::Ping,
            "connect" => Probe::Method(CheckMethod::Tcp, Timeout::Check),
            "on" => Probe::AlwaysUp,
            "off" => Probe::Never,
            "external" | "external-perl" => {
                let command = settings.value("checkcommand").map_or("/bin/true", unquote);
                let (method, kind) = if udp {
                    (Probe::Ping, "ping")
                } else {
                    (
                        Probe::Method(CheckMethod::Tcp, Timeout::Check),
                        "TCP connect",
                    )
                };
                self.conversion.note(
                    &checktype_place,
                    NoteKind::Approximated,
                    format!("checktype={checktype}: lbconsole runs no check command ({command}); a {kind} check instead"),
                );
                method
            }
            number if number.parse::<u32>().is_ok() => {
                let probe = self.negotiate(&service, udp, &checktype_place);
                if matches!(probe, Probe::Method(..)) {
                    self.conversion.note(
                        &checktype_place,
                        NoteKind::Approximated,
                        format!("checktype={number}: lbconsole runs the negotiate check every time, not after {number} connects"),
                    );
                }
                probe
            }
            other => {
                self.conversion.note(
                    &checktype_place,
                    NoteKind::Error,
                    format!("checktype={other}: ldirectord refuses it; checktype=negotiate"),
                );
                self.negotiate(&service, udp, &checktype_place)
            }
        };
        if let Some(command) = settings.get("checkcommand")
            && !matches!(checktype, "external" | "external-perl")
        {
            self.conversion.note(
                &command.place,
                NoteKind::Dropped,
                format!(
                    "checkcommand={}: used by external checks only",
                    command.value
                ),
            );
        }
        let http = matches!(&probe, Probe::Method(CheckMethod::Http(_), _));
        for key in ["request", "receive", "virtualhost", "httpmethod"] {
            if !http && let Some(setting) = settings.get(key) {
                self.conversion.note(
                    &setting.place,
                    NoteKind::Dropped,
                    format!(
                        "{key}={}: only an HTTP check uses it, and this one is not",
                        setting.value
                    ),
                );
            }
        }
        match probe {
            Probe::AlwaysUp => {}
            Probe::Never => {
                for server in director.servers.iter_mut().filter(|s| !s.sorry) {
                    server.weight = Some(0);
                }
                self.conversion.note(
                    &checktype_place,
                    NoteKind::Approximated,
                    "checktype=off: ldirectord never adds the servers; lbconsole keeps them at weight 0",
                );
            }
            Probe::Ping => {
                self.apply_check(director, virtual_, CheckMethod::Icmp, Timeout::Check, true);
            }
            Probe::Method(method, timeout) => {
                let method = match method {
                    CheckMethod::Http(_) => CheckMethod::Http(self.http(settings)),
                    other => other,
                };
                self.apply_check(director, virtual_, method, timeout, false);
            }
        }
        if !probe_is_ping(checktype, udp)
            && let Some(count) = settings.get("checkcount")
        {
            self.conversion.note(
                &count.place,
                NoteKind::Dropped,
                format!(
                    "checkcount={}: ldirectord uses it for ping checks only",
                    count.value
                ),
            );
        }
    }

    /// `checktype=negotiate`: ldirectord speaks the service's protocol.
    fn negotiate(&mut self, service: &str, udp: bool, place: &Place) -> Probe {
        let fallback = |service: &str, why: &str| (service.to_owned(), why.to_owned());
        let (shown, why) = match service {
            "http" => {
                return Probe::Method(CheckMethod::Http(HttpCheck::default()), Timeout::Negotiate);
            }
            "none" => return Probe::AlwaysUp,
            "https" => fallback(
                service,
                "lbconsole's httpcheck speaks plain HTTP, which a TLS port refuses",
            ),
            "http_proxy" => fallback(service, "lbconsole does not check through a proxy"),
            other => fallback(other, "lbconsole has no check of that protocol"),
        };
        let (probe, kind) = if udp {
            (Probe::Ping, "ping")
        } else {
            (
                Probe::Method(CheckMethod::Tcp, Timeout::Negotiate),
                "TCP connect",
            )
        };
        self.conversion.note(
            place,
            NoteKind::Approximated,
            format!("negotiate check of service={shown}: {why}; a {kind} check instead"),
        );
        probe
    }

    /// `request`, `receive`, `virtualhost` and `httpmethod` of an HTTP check.
    fn http(&mut self, settings: &Settings) -> HttpCheck {
        let mut http = HttpCheck::default();
        if let Some(request) = settings.get("request") {
            let text = unquote(&request.value);
            let path = match text.split_once("://") {
                // An absolute URL sends ldirectord's check elsewhere than the
                // server; lbconsole asks each server for the path.
                Some((_, rest)) => {
                    let path = rest.find('/').map_or("/", |slash| &rest[slash..]);
                    self.conversion.note(
                        &request.place,
                        NoteKind::Approximated,
                        format!(
                            "request={}: lbconsole asks each real server for {path}",
                            request.value
                        ),
                    );
                    path.to_owned()
                }
                // ldirectord makes a relative request absolute.
                None if text.starts_with('/') => text.to_owned(),
                None => format!("/{text}"),
            };
            http.uri = Some(uri_token(&path));
        }
        if let Some(host) = settings.get("virtualhost") {
            let name = unquote(&host.value);
            if name.contains(|c: char| c.is_whitespace() || c.is_control() || c == '#') {
                self.conversion.note(
                    &host.place,
                    NoteKind::Error,
                    format!("virtualhost={}: not a host name; left out", host.value),
                );
            } else if !name.is_empty() {
                http.vhost = Some(name.to_owned());
            }
        }
        if let Some(receive) = settings.get("receive") {
            self.conversion.note(
                &receive.place,
                NoteKind::Approximated,
                format!(
                    "receive={}: lbconsole's httpcheck wants status {}, it does not search the body",
                    receive.value,
                    http.statuscode()
                ),
            );
        }
        if let Some(method) = settings.get("httpmethod")
            && !method.value.eq_ignore_ascii_case("GET")
        {
            self.conversion.note(
                &method.place,
                NoteKind::Approximated,
                format!(
                    "httpmethod={}: lbconsole's httpcheck sends GET",
                    method.value
                ),
            );
        }
        http
    }

    fn apply_check(
        &mut self,
        director: &mut Director,
        virtual_: &Virtual,
        method: CheckMethod,
        timeout_kind: Timeout,
        ping: bool,
    ) {
        let settings = &virtual_.settings;
        let timeout = self.timeout(settings, timeout_kind);
        let interval = match settings.get("checkinterval") {
            Some(own) if self.globals.value("fork") == Some("yes") => {
                self.positive(own, "checkinterval")
            }
            Some(own) => {
                self.conversion.note(
                    &own.place,
                    NoteKind::Dropped,
                    format!(
                        "checkinterval={}: ldirectord ignores it without fork=yes",
                        own.value
                    ),
                );
                None
            }
            None => None,
        };
        let global_interval = self.globals.get("checkinterval").cloned();
        let interval = interval
            .or_else(|| {
                global_interval
                    .as_ref()
                    .and_then(|g| self.positive(g, "checkinterval"))
            })
            .unwrap_or(DEFAULT_CHECKINTERVAL_S);
        // ldirectord waits the interval after each check; lbconsole starts one
        // every interval, cut at the timeout.
        let interval = if timeout >= interval {
            let spaced = (interval + timeout).min(MAX_SECONDS);
            let written = settings.get("checkinterval").or(global_interval.as_ref());
            let (place, interval_words) = match written {
                Some(setting) => (&setting.place, format!("checkinterval={interval}")),
                None => (
                    &virtual_.place,
                    format!("ldirectord's default checkinterval={interval}"),
                ),
            };
            self.conversion.note(
                place,
                NoteKind::Approximated,
                format!(
                    "{interval_words} with a {timeout} s timeout: ldirectord sleeps {interval} s after each check, which may take {timeout} s; `{}` checks every {spaced} s",
                    director.name.value
                ),
            );
            spaced
        } else {
            interval
        };
        let failures = self
            .inherited(settings, "failurecount")
            .cloned()
            .and_then(|s| self.positive(&s, "failurecount"))
            .unwrap_or(1);
        let count = self.inherited(settings, "checkcount").cloned();
        let fall = match count {
            Some(count) if ping => {
                let pings = self.positive(&count, "checkcount").unwrap_or(1);
                if pings > 1 {
                    self.conversion.note(
                        &count.place,
                        NoteKind::Approximated,
                        format!("checkcount={pings}: ldirectord pings {pings} times per check; lbconsole pings once per check and counts failed checks"),
                    );
                }
                failures.saturating_mul(pings)
            }
            _ => failures,
        };
        let fall = if fall > MAX_FALL {
            let place = self
                .inherited(settings, "failurecount")
                .map_or(&virtual_.place, |s| &s.place)
                .clone();
            self.conversion.note(
                &place,
                NoteKind::Approximated,
                format!("{fall} failed checks in a row: lbconsole counts at most {MAX_FALL}"),
            );
            MAX_FALL
        } else {
            fall
        };
        let check = &mut director.check;
        check.timeout = Some(timeout);
        check.interval = Some(interval);
        if fall != 1 {
            check.fall = Some(fall);
        }
        check.inhibit = self
            .inherited(settings, "quiescent")
            .is_some_and(|q| q.value == "yes");
        let port = match settings.get("checkport") {
            Some(port) if method.uses_port() => {
                match port.value.parse::<u16>().ok().and_then(Port::new) {
                    Some(port) => Some(port),
                    None => {
                        self.conversion.note(
                            &port.place,
                            NoteKind::Error,
                            format!("checkport={}: not a port 1-65535; ignored", port.value),
                        );
                        None
                    }
                }
            }
            Some(port) => {
                self.conversion.note(
                    &port.place,
                    NoteKind::Dropped,
                    format!(
                        "checkport={}: a {} check uses no port",
                        port.value,
                        method.keyword()
                    ),
                );
                None
            }
            // ldirectord checks a server without port on its service's port.
            None if method.uses_port()
                && director.service.as_ref().and_then(|s| s.port).is_none()
                && director.servers.iter().any(|s| s.port.is_none()) =>
            {
                let service = settings.value("service").unwrap_or("none");
                service_port(service).and_then(Port::new)
            }
            None => None,
        };
        check.port = port.map(Spanned::unplaced);
        director.adv_check = Some(Spanned::unplaced(method));
        for server in director.servers.iter_mut().filter(|s| !s.sorry) {
            server.check = true;
        }
    }

    /// ldirectord's timeouts stand in for each other: a negotiate check takes
    /// `negotiatetimeout`, else `checktimeout` (the section's, then the
    /// global ones), else 30 s; the other checks the other way round, else 5 s.
    fn timeout(&mut self, settings: &Settings, kind: Timeout) -> u32 {
        let negotiate = settings
            .get("negotiatetimeout")
            .or_else(|| settings.get("connecttimeout"));
        let order = match kind {
            Timeout::Negotiate => [
                negotiate,
                settings.get("checktimeout"),
                self.globals.get("negotiatetimeout"),
                self.globals.get("checktimeout"),
            ],
            Timeout::Check => [
                settings.get("checktimeout"),
                negotiate,
                self.globals.get("checktimeout"),
                self.globals.get("negotiatetimeout"),
            ],
        };
        let chosen = order.into_iter().flatten().next().cloned();
        if let Some(connect) = settings.get("connecttimeout").cloned() {
            self.conversion.note(
                &connect.place,
                NoteKind::Approximated,
                format!("connecttimeout={}: ldirectord refuses it (negotiatetimeout replaced it); read as negotiatetimeout", connect.value),
            );
        }
        let default = match kind {
            Timeout::Negotiate => DEFAULT_NEGOTIATETIMEOUT_S,
            Timeout::Check => DEFAULT_CHECKTIMEOUT_S,
        };
        chosen
            .and_then(|setting| self.positive(&setting, "timeout"))
            .unwrap_or(default)
    }
}

/// Which of ldirectord's timeouts a check takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timeout {
    /// `negotiatetimeout`: checks that speak the service's protocol.
    Negotiate,
    /// `checktimeout`: connect, ping and external checks.
    Check,
}

/// What becomes of the servers' check.
enum Probe {
    /// No check: the servers are always up (`checktype=on`, `service=none`).
    AlwaysUp,
    /// `checktype=off`: the servers never come up.
    Never,
    /// ICMP echo, as ldirectord's ping and its UDP connect check.
    Ping,
    Method(CheckMethod, Timeout),
}

/// Whether ldirectord pings for this check type: `checkcount` applies then.
fn probe_is_ping(checktype: &str, udp: bool) -> bool {
    checktype == "ping" || (checktype == "connect" && udp)
}

/// A path as one `lvs.conf` word: blanks and control characters
/// percent-encoded, as ldirectord's HTTP client sends them.
fn uri_token(path: &str) -> String {
    let mut token = String::with_capacity(path.len());
    for c in path.chars() {
        if c.is_whitespace() || c.is_control() || c == '#' {
            let mut bytes = [0; 4];
            for byte in c.encode_utf8(&mut bytes).bytes() {
                token.push_str(&format!("%{byte:02X}"));
            }
        } else {
            token.push(c);
        }
    }
    token
}

/// `key = value`, both trimmed; a line without `=` is all key.
fn key_value(text: &str) -> (&str, &str) {
    match text.split_once('=') {
        Some((key, value)) => (key.trim(), value.trim()),
        None => (text.trim(), ""),
    }
}

fn unquote(text: &str) -> &str {
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
}

fn virtual_port(target: Target) -> Option<u16> {
    match target {
        Target::Vip { port, .. } => Some(port),
        Target::Mark { .. } => None,
    }
}

/// ldirectord's service for a port (`ld_port_to_service`).
fn port_service(port: u16) -> &'static str {
    SERVICE_PORTS
        .iter()
        .find(|(_, known)| *known == port)
        .map_or("none", |(service, _)| service)
}

/// The port ldirectord checks a service on (`ld_service_to_port`).
fn service_port(service: &str) -> Option<u16> {
    SERVICE_PORTS
        .iter()
        .find(|(known, _)| *known == service)
        .map(|(_, port)| *port)
}

const SERVICE_PORTS: &[(&str, u16)] = &[
    ("ftp", 21),
    ("smtp", 25),
    ("dns", 53),
    ("http", 80),
    ("pop", 110),
    ("nntp", 119),
    ("imap", 143),
    ("ldap", 389),
    ("https", 443),
    ("submission", 587),
    ("ldaps", 636),
    ("imaps", 993),
    ("pops", 995),
    ("oracle", 1521),
    ("radius", 1812),
    ("http_proxy", 3128),
    ("mysql", 3306),
    ("sip", 5060),
    ("pgsql", 5432),
];

fn method_word(mode: ForwardMode) -> &'static str {
    match mode {
        ForwardMode::Gateway => "gate",
        ForwardMode::Nat => "masq",
        ForwardMode::Tunnel => "ipip",
    }
}

fn method(word: &str) -> Option<ForwardMode> {
    match word {
        "gate" => Some(ForwardMode::Gateway),
        "masq" => Some(ForwardMode::Nat),
        "ipip" => Some(ForwardMode::Tunnel),
        _ => None,
    }
}

/// `virtual=IP:PORT`, `virtual6=[IP]:PORT` or `virtual=MARK`.
fn target(value: &str, ipv6: bool) -> Result<Target, String> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return match value.parse::<u32>() {
            Ok(mark) if mark > 0 => Ok(Target::Mark {
                mark,
                family: if ipv6 { Family::Ipv6 } else { Family::Ipv4 },
            }),
            _ => Err(format!("`{value}`: a firewall mark is 1-4294967295")),
        };
    }
    match address_port(value)? {
        (address, Some(port)) => Ok(Target::Vip { address, port }),
        (_, None) => Err(format!("`{value}`: a virtual service needs a port")),
    }
}

/// `IP`, `IP:PORT`, `[IPV6]` or `[IPV6]:PORT`; ports may be service names.
fn address_port(text: &str) -> Result<(IpAddr, Option<u16>), String> {
    let (host, port) = if let Some(bracketed) = text.strip_prefix('[') {
        let Some((host, rest)) = bracketed.split_once(']') else {
            return Err(format!("`{text}`: no `]` after the IPv6 address"));
        };
        let port = match rest.strip_prefix(':') {
            Some(port) => Some(port),
            None if rest.is_empty() => None,
            None => return Err(format!("`{text}`: `{rest}` after the IPv6 address")),
        };
        (host, port)
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let address = address(host)?;
    let port = match port {
        None => None,
        Some(port) => Some(
            port.parse::<u16>()
                .ok()
                .or_else(|| well_known_port(port))
                .ok_or_else(|| {
                    format!("port `{port}`: not a number nor a service name the converter knows")
                })?,
        ),
    };
    Ok((address, port))
}

fn address(host: &str) -> Result<IpAddr, String> {
    if let Ok(v4) = host.parse::<Ipv4Addr>() {
        return Ok(IpAddr::V4(v4));
    }
    if let Ok(v6) = host.parse::<Ipv6Addr>() {
        return Ok(IpAddr::V6(v6));
    }
    if host.is_empty() {
        return Err("no address".to_owned());
    }
    Err(format!(
        "host name `{host}`: the converter resolves no names; write its address"
    ))
}

/// `fallback=IP[:PORT] [gate|masq|ipip]`.
fn fallback(value: &str) -> Result<(IpAddr, Option<u16>, Option<ForwardMode>), String> {
    let mut words = value.split_whitespace();
    let endpoint = words.next().unwrap_or_default();
    let forward = match words.next() {
        None => None,
        Some(word) => Some(method(word).ok_or_else(|| {
            format!("fallback={value}: the forwarding method is gate, masq or ipip")
        })?),
    };
    let (address, port) = address_port(endpoint)?;
    Ok((address, port, forward))
}

/// `real=IP[->IP][:PORT] gate|masq|ipip [WEIGHT] ["REQUEST", "RECEIVE"] [l:N] [u:N]`:
/// one server, or one per IPv4 address of a range.
fn reals(
    conversion: &mut Conversion,
    place: &Place,
    value: &str,
    vip_port: u16,
) -> Result<Vec<Real>, String> {
    let (endpoint, flags) = match value.split_once(char::is_whitespace) {
        Some((endpoint, flags)) => (endpoint, flags.trim()),
        None => (value, ""),
    };
    let (first, last, port) = match endpoint.split_once("->") {
        Some((first, rest)) => {
            let (last, port) = address_port(rest)?;
            (address(first)?, Some(last), port)
        }
        None => {
            let (address, port) = address_port(endpoint)?;
            (address, None, port)
        }
    };
    let mut words = flags.split_whitespace();
    let word = words.next().unwrap_or_default();
    let forward = method(word)
        .ok_or_else(|| format!("real={value}: the forwarding method is gate, masq or ipip"))?;
    let mut rest: Vec<&str> = words.collect();
    let mut weight = 1;
    if let Some(number) = rest
        .first()
        .filter(|w| w.bytes().all(|b| b.is_ascii_digit()))
    {
        weight = number
            .parse::<u16>()
            .map_err(|_| format!("weight {number}: a weight is 0-65535"))?;
        rest.remove(0);
    }
    let rest = rest.join(" ");
    let mut leftover = rest.as_str();
    if let (Some(open), Some(close)) = (leftover.find('"'), leftover.rfind('"'))
        && open < close
    {
        conversion.note(
            place,
            NoteKind::Dropped,
            format!(
                "{}: lbconsole checks every server of a director alike",
                &leftover[open..=close]
            ),
        );
        leftover = leftover.get(close + 1..).unwrap_or_default();
    }
    let mut thresholds = Vec::new();
    let mut unread = Vec::new();
    for word in leftover.split_whitespace() {
        if word.starts_with("l:") || word.starts_with("u:") {
            thresholds.push(word);
        } else {
            unread.push(word);
        }
    }
    if !thresholds.is_empty() {
        conversion.note(
            place,
            NoteKind::Dropped,
            format!(
                "{} (connection thresholds): lbconsole has no thresholds",
                thresholds.join(" ")
            ),
        );
    }
    if !unread.is_empty() {
        conversion.note(
            place,
            NoteKind::Error,
            format!("`{}`: ldirectord refuses it; ignored", unread.join(" ")),
        );
    }
    let addresses = match (first, last) {
        (first, None) => vec![first],
        (IpAddr::V4(first), Some(IpAddr::V4(last))) => {
            let (first, last) = (u32::from(first), u32::from(last));
            if first > last || last - first >= MAX_RANGE {
                return Err(format!(
                    "real={value}: a range goes from the lower address to the higher, {MAX_RANGE} at most"
                ));
            }
            (first..=last)
                .map(|a| IpAddr::V4(Ipv4Addr::from(a)))
                .collect()
        }
        _ => return Err(format!("real={value}: ranges are of IPv4 addresses only")),
    };
    // A server without port takes the service's in IPVS (0: ldirectord's
    // "none", for fwmark services).
    let port = port.filter(|p| *p != 0).unwrap_or(vip_port);
    Ok(addresses
        .into_iter()
        .map(|address| Real {
            place: place.clone(),
            address,
            port,
            forward,
            weight,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lvs(text: &str) -> String {
        convert("ldirectord.cf", text).lvs_text("test")
    }

    fn report(text: &str) -> Vec<String> {
        convert("ldirectord.cf", text).report_lines()
    }

    #[test]
    fn a_connect_check_keeps_ldirectords_defaults() {
        let text = "virtual=192.0.2.10:25\n\treal=10.0.0.1:25 masq\n\tchecktype=connect\n";
        assert_eq!(
            lvs(text),
            "# test\n\n# ldirectord.cf:1: virtual=192.0.2.10:25\n\
             director tcp-192.0.2.10-25 192.0.2.10:25 TCP\n    balance roundrobin\n    mode nat\n    \
             check timeout 5 interval 10\n    option tcpcheck\n    \
             server 10.0.0.1-25 10.0.0.1:25 weight 1 check\n"
        );
        assert!(report(text).is_empty(), "{:?}", report(text));
    }

    #[test]
    fn a_range_is_one_server_per_address() {
        let text =
            "virtual=192.0.2.10:80\n    real=10.0.0.1->10.0.0.3:80 gate 2\n    checktype=on\n";
        let conversion = convert("f", text);
        let servers = &conversion.directors[0].value.servers;
        let addresses: Vec<String> = servers.iter().map(|s| s.address.to_string()).collect();
        assert_eq!(addresses, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
        assert!(servers.iter().all(|s| s.weight == Some(2) && !s.check));
    }

    #[test]
    fn a_password_stays_out_of_the_report() {
        let text = "virtual=192.0.2.10:3306\n    real=10.0.0.1:3306 gate\n    passwd=\"hunter2\"\n";
        assert!(report(text).iter().all(|line| !line.contains("hunter2")));
    }

    const VIRTUALS: &[&str] = &[
        "virtual=192.0.2.1:80",
        "virtual=192.0.2.1:53",
        "virtual=192.0.2.1:443",
        "virtual6=[2001:db8::1]:80",
        "virtual=1",
        "virtual6=2",
        "virtual=0",
        "virtual=[fe80::1]:80",
        "virtual=www.example.com:80",
    ];
    const REALS: &[&str] = &[
        "real=10.0.0.1:80 masq",
        "real=10.0.0.1:8080 masq 3",
        "real=10.0.0.1->10.0.0.3:80 gate 2",
        "real=10.0.0.2 gate",
        "real=10.0.0.2:81 ipip 0 \"/x\", \"y\" l:1 u:5",
        "real6=[2001:db8::2]:80 masq",
        "real6=[fe80::2]:80 gate",
        "real=10.0.0.9:80 bogus",
    ];
    /// Settings, right and wrong, for a section or the globals.
    const SETTINGS: &[&str] = &[
        "fallback=127.0.0.1:80 gate",
        "fallback=10.0.0.1:80 masq",
        "fallback6=[2001:db8::99]:80",
        "checktype=negotiate",
        "checktype=connect",
        "checktype=ping",
        "checktype=on",
        "checktype=off",
        "checktype=external",
        "checktype=3",
        "checktype=bogus",
        "service=http",
        "service=https",
        "service=none",
        "service=dns",
        "scheduler=rr",
        "scheduler=bogus",
        "persistent=600",
        "persistent=100000",
        "persistent=0",
        "netmask=255.255.255.0",
        "netmask=255.0.255.0",
        "netmask=64",
        "protocol=udp",
        "protocol=fwm",
        "ops=yes",
        "request=\"/a b\"",
        "request=\"http://example.com/health\"",
        "receive=\"OK\"",
        "virtualhost=www.example.com",
        "virtualhost=\"a b\"",
        "checkport=8080",
        "checkport=0",
        "checkinterval=1",
        "checkinterval=86400",
        "checktimeout=86400",
        "negotiatetimeout=7",
        "connecttimeout=3",
        "failurecount=999",
        "checkcount=5",
        "quiescent=yes",
        "fork=yes",
        "servicename=Web Site",
        "httpmethod=HEAD",
        "checkcommand=/bin/check",
        "passwd=secret",
        "bogus=1",
    ];

    /// Global settings, then sections of settings, and noise.
    fn text() -> impl Strategy<Value = String> {
        let settings = || proptest::collection::vec(proptest::sample::select(SETTINGS), 0..8);
        let reals = proptest::collection::vec(proptest::sample::select(REALS), 0..4);
        let section = (proptest::sample::select(VIRTUALS), reals, settings()).prop_map(
            |(virtual_, reals, settings)| {
                let mut text = format!("{virtual_}\n");
                for setting in reals.into_iter().chain(settings) {
                    text.push_str(&format!("\t{setting}\n"));
                }
                text
            },
        );
        let noise = proptest::collection::vec("[ \t]{0,2}[ -~]{0,30}", 0..3);
        (settings(), proptest::collection::vec(section, 0..4), noise).prop_map(
            |(globals, sections, noise)| {
                let mut text = globals.join("\n");
                text.push('\n');
                text.push_str(&sections.concat());
                text.push_str(&noise.join("\n"));
                text
            },
        )
    }

    proptest! {
        #[test]
        fn random_lines_never_panic_and_convert_into_files_check_accepts(
            text in text()
        ) {
            let conversion = convert("f", &text);
            let lvs = conversion.lvs_text("x");
            let flows = conversion.flows_text("x");
            let checked = crate::config::check(crate::config::Sources {
                network: b"",
                flows: flows.as_deref().unwrap_or_default().as_bytes(),
                lvs: lvs.as_bytes(),
            });
            prop_assert!(!checked.has_errors(), "{lvs}\n{:?}", checked.diagnostics);
        }
    }
}

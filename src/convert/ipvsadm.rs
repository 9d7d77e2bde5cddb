//! `ipvsadm -S` / `-Sn` dumps (and `ipvsadm-restore` input): each `-A` line
//! becomes a director, each `-a` line a server of the director its service
//! names. Only `-A`/`--add-service` and `-a`/`--add-server` lines are read; the
//! dump has no others.
//!
//! For a dump of `wrr`/`wlc` services whose servers share one forwarding
//! method, `ipvsadm -Sn` after applying the result gives the dump back.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{
    Conversion, Converted, Names, NoteKind, Place, ignored_weights, ipvs_scheduler, server_name,
    service_name,
};
use crate::config::model::flows::{Direction, Flow, Policy};
use crate::config::model::lvs::{
    Director, ForwardMode, Persistence, Scheduler, Server, ServiceProtocol, VirtualService,
};
use crate::config::model::types::{Family, Port, Spanned, mask_to_prefix};

/// ipvsadm's own defaults: `-s wlc`, `-p` alone means 300 s, `-w 1`, and a
/// server without `-g`/`-m`/`-i` is routed directly.
const DEFAULT_SCHEDULER: &str = "wlc";
const DEFAULT_PERSISTENCE_S: u32 = 300;
const DEFAULT_WEIGHT: u16 = 1;
const DEFAULT_FORWARD: ForwardMode = ForwardMode::Gateway;
/// ipvsadm's `MAX_TIMEOUT`: 31 days.
const MAX_IPVSADM_TIMEOUT_S: u32 = 86_400 * 31;
/// The longest persistence `lvs.conf` takes.
const MAX_LVS_TIMEOUT_S: u32 = 86_400;

/// The port names `ipvsadm -S` prints (from /etc/services) that the converter
/// knows without reading that file.
const PORT_NAMES: &[(&str, u16)] = &[
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("domain", 53),
    ("http", 80),
    ("www", 80),
    ("pop3", 110),
    ("ntp", 123),
    ("imap", 143),
    ("imap2", 143),
    ("snmp", 161),
    ("ldap", 389),
    ("https", 443),
    ("submissions", 465),
    ("smtps", 465),
    ("syslog", 514),
    ("submission", 587),
    ("ldaps", 636),
    ("imaps", 993),
    ("pop3s", 995),
    ("ms-sql-s", 1433),
    ("radius", 1812),
    ("mysql", 3306),
    ("ms-wbt-server", 3389),
    ("sip", 5060),
    ("postgresql", 5432),
    ("http-alt", 8080),
];

pub fn convert(file: &str, text: &str) -> Conversion {
    let mut dump = Dump::default();
    for (index, line) in text.lines().enumerate() {
        let place = Place {
            file: file.to_owned(),
            line: u32::try_from(index + 1).unwrap_or(u32::MAX),
        };
        dump.read_line(&place, line);
    }
    dump.finish()
}

/// An ipvsadm option, by what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    AddService,
    AddServer,
    Tcp,
    Udp,
    Sctp,
    Fwmark,
    Ipv6,
    Scheduler,
    Persistent,
    Netmask,
    OnePacket,
    PersistenceEngine,
    SchedFlags,
    Real,
    Forward(ForwardMode),
    Weight,
    UpperThreshold,
    LowerThreshold,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arg {
    No,
    Required,
    /// `-p [timeout]`: popt takes the next word unless it is an option.
    Optional,
}

const OPTIONS: &[(Option<char>, &str, Opt, Arg)] = &[
    (Some('A'), "add-service", Opt::AddService, Arg::No),
    (Some('a'), "add-server", Opt::AddServer, Arg::No),
    (Some('t'), "tcp-service", Opt::Tcp, Arg::Required),
    (Some('u'), "udp-service", Opt::Udp, Arg::Required),
    (None, "sctp-service", Opt::Sctp, Arg::Required),
    (Some('f'), "fwmark-service", Opt::Fwmark, Arg::Required),
    (Some('6'), "ipv6", Opt::Ipv6, Arg::No),
    (Some('s'), "scheduler", Opt::Scheduler, Arg::Required),
    (Some('p'), "persistent", Opt::Persistent, Arg::Optional),
    (Some('M'), "netmask", Opt::Netmask, Arg::Required),
    (Some('o'), "ops", Opt::OnePacket, Arg::No),
    (None, "pe", Opt::PersistenceEngine, Arg::Required),
    (Some('b'), "sched-flags", Opt::SchedFlags, Arg::Required),
    (Some('r'), "real-server", Opt::Real, Arg::Required),
    (
        Some('g'),
        "gatewaying",
        Opt::Forward(ForwardMode::Gateway),
        Arg::No,
    ),
    (
        Some('m'),
        "masquerading",
        Opt::Forward(ForwardMode::Nat),
        Arg::No,
    ),
    (
        Some('i'),
        "ipip",
        Opt::Forward(ForwardMode::Tunnel),
        Arg::No,
    ),
    (Some('w'), "weight", Opt::Weight, Arg::Required),
    (Some('x'), "u-threshold", Opt::UpperThreshold, Arg::Required),
    (Some('y'), "l-threshold", Opt::LowerThreshold, Arg::Required),
];

impl Opt {
    /// The command the option belongs to; `None` for the service options
    /// both commands take.
    fn command(self) -> Option<Self> {
        match self {
            Self::Scheduler
            | Self::Persistent
            | Self::Netmask
            | Self::OnePacket
            | Self::PersistenceEngine
            | Self::SchedFlags => Some(Self::AddService),
            Self::Real
            | Self::Forward(_)
            | Self::Weight
            | Self::UpperThreshold
            | Self::LowerThreshold => Some(Self::AddServer),
            Self::AddService
            | Self::AddServer
            | Self::Tcp
            | Self::Udp
            | Self::Sctp
            | Self::Fwmark
            | Self::Ipv6 => None,
        }
    }
}

/// One option as written: what it is, its value, and its words for the report.
struct Given<'a> {
    opt: Opt,
    value: Option<&'a str>,
    written: String,
}

/// The words of one line, read as ipvsadm's popt reads them.
#[derive(Default)]
struct Words<'a> {
    given: Vec<Given<'a>>,
    /// Options ipvsadm does not have (or that take no part in a dump), with
    /// their values.
    unknown: Vec<String>,
    /// Options whose value is missing.
    missing: Vec<&'a str>,
}

fn read_words(line: &str) -> Words<'_> {
    let mut words = Words::default();
    let mut tokens = line.split_whitespace().peekable();
    // A script's `ipvsadm -A …` reads like the dump's `-A …`.
    if tokens
        .peek()
        .is_some_and(|first| *first == "ipvsadm" || first.ends_with("/ipvsadm"))
    {
        tokens.next();
    }
    while let Some(token) = tokens.next() {
        let (spec, attached) = if let Some(long) = token.strip_prefix("--") {
            let (name, attached) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (long, None),
            };
            (OPTIONS.iter().find(|o| o.1 == name), attached)
        } else if let Some(short) = token.strip_prefix('-') {
            let mut chars = short.chars();
            let letter = chars.next();
            let rest = chars.as_str();
            let spec = OPTIONS.iter().find(|o| o.0.is_some() && o.0 == letter);
            match spec {
                Some(spec) if rest.is_empty() => (Some(spec), None),
                // `-w1`: popt takes a value glued to its option.
                Some(spec) if spec.3 != Arg::No => (Some(spec), Some(rest)),
                _ => (None, None),
            }
        } else {
            (None, None)
        };
        let Some(&(_, _, opt, arg)) = spec else {
            // An unknown option's values go with it: `--tos 16` is one option.
            let mut unknown = token.to_owned();
            while let Some(value) = tokens.next_if(|next| !next.starts_with('-')) {
                unknown.push(' ');
                unknown.push_str(value);
            }
            words.unknown.push(unknown);
            continue;
        };
        let value = match arg {
            Arg::No => attached,
            Arg::Required => attached.or_else(|| tokens.next()),
            Arg::Optional => attached.or_else(|| tokens.next_if(|next| !next.starts_with('-'))),
        };
        if arg == Arg::Required && value.is_none() {
            words.missing.push(token);
            continue;
        }
        let written = match (attached, value) {
            (None, Some(value)) => format!("{token} {value}"),
            _ => token.to_owned(),
        };
        words.given.push(Given {
            opt,
            value,
            written,
        });
    }
    words
}

/// A service as IPVS keys it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Vip {
        protocol: ServiceProtocol,
        address: IpAddr,
        port: u16,
    },
    Mark {
        mark: u32,
        family: Family,
    },
}

impl Key {
    fn family(self) -> Family {
        match self {
            Self::Vip { address, .. } => Family::of(address),
            Self::Mark { family, .. } => family,
        }
    }

    fn describe(self) -> String {
        match self {
            Self::Vip {
                protocol,
                address,
                port,
            } => format!(
                "{} {}",
                protocol.keyword(),
                std::net::SocketAddr::new(address, port)
            ),
            Self::Mark { mark, family } => match family {
                Family::Ipv4 => format!("fwmark {mark}"),
                Family::Ipv6 => format!("fwmark {mark} IPv6"),
            },
        }
    }
}

/// A service read from an `-A` line.
struct Service {
    place: Place,
    what: String,
    key: Key,
    /// As written (or ipvsadm's default), for the notes on `rr` and `lc`.
    scheduler_name: String,
    scheduler: Scheduler,
    persistence: Option<Persistence>,
    onepacket: bool,
    reals: Vec<Real>,
}

/// A real server read from the source.
pub(super) struct Real {
    pub(super) place: Place,
    pub(super) address: IpAddr,
    /// As IPVS keeps it: 0 for none.
    pub(super) port: u16,
    pub(super) forward: ForwardMode,
    pub(super) weight: u16,
}

impl Real {
    fn endpoint(&self) -> String {
        std::net::SocketAddr::new(self.address, self.port).to_string()
    }
}

#[derive(Default)]
struct Dump {
    services: Vec<Service>,
    /// Services whose `-A` line was left out, so their servers say why.
    left_out: Vec<(Key, u32)>,
    conversion: Conversion,
}

impl Dump {
    fn read_line(&mut self, place: &Place, line: &str) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return;
        }
        let words = read_words(line);
        let command = words
            .given
            .iter()
            .map(|g| g.opt)
            .find(|opt| matches!(opt, Opt::AddService | Opt::AddServer));
        let Some(command) = command else {
            self.conversion.note(
                place,
                NoteKind::Unknown,
                format!("`{line}`: only -A and -a lines are converted"),
            );
            return;
        };
        for unknown in &words.unknown {
            self.conversion.note(
                place,
                NoteKind::Unknown,
                format!("option `{unknown}`, ignored"),
            );
        }
        for missing in &words.missing {
            self.conversion.note(
                place,
                NoteKind::Error,
                format!("`{missing}` without its value, ignored"),
            );
        }
        for given in &words.given {
            if given.opt.command().is_some_and(|c| c != command) {
                let (own, other) = match command {
                    Opt::AddService => ("-A", "-a"),
                    _ => ("-a", "-A"),
                };
                self.conversion.note(
                    place,
                    NoteKind::Error,
                    format!(
                        "`{}` belongs on {other} lines, not {own}; ignored",
                        given.written
                    ),
                );
            }
        }
        let Some(key) = self.service_key(place, &words) else {
            return;
        };
        let value = |opt: Opt| {
            words
                .given
                .iter()
                .rev()
                .find(|g| g.opt == opt)
                .map(|g| (g.value, g.written.as_str()))
        };
        match command {
            Opt::AddService => self.add_service(place, line, key, &value),
            _ => {
                // popt: the last of -g, -m and -i wins.
                let forward = words.given.iter().rev().find_map(|g| match g.opt {
                    Opt::Forward(mode) => Some(mode),
                    _ => None,
                });
                self.add_server(place, key, forward, &value);
            }
        }
    }

    /// The service a line names with `-t`, `-u` or `-f` (and `-6`).
    fn service_key(&mut self, place: &Place, words: &Words<'_>) -> Option<Key> {
        let conversion = &mut self.conversion;
        let ipv6 = words.given.iter().any(|g| g.opt == Opt::Ipv6);
        let services: Vec<&Given<'_>> = words
            .given
            .iter()
            .filter(|g| matches!(g.opt, Opt::Tcp | Opt::Udp | Opt::Sctp | Opt::Fwmark))
            .collect();
        let [service] = services.as_slice() else {
            let text = if services.is_empty() {
                "no service (-t, -u or -f); line ignored"
            } else {
                "more than one service (-t, -u, -f); line ignored"
            };
            conversion.note(place, NoteKind::Error, text);
            return None;
        };
        let value = service.value.unwrap_or_default();
        if ipv6 && service.opt != Opt::Fwmark {
            conversion.note(
                place,
                NoteKind::Error,
                "-6 goes with -f only (an address says its own family); ignored",
            );
        }
        let protocol = match service.opt {
            Opt::Tcp => ServiceProtocol::Tcp,
            Opt::Udp => ServiceProtocol::Udp,
            Opt::Fwmark => {
                let Some(mark) = value.parse::<u32>().ok().filter(|m| *m > 0) else {
                    conversion.note(
                        place,
                        NoteKind::Error,
                        format!(
                            "`{}`: a firewall mark is 1-4294967295; line ignored",
                            service.written
                        ),
                    );
                    return None;
                };
                let family = if ipv6 { Family::Ipv6 } else { Family::Ipv4 };
                return Some(Key::Mark { mark, family });
            }
            _ => {
                conversion.note(
                    place,
                    NoteKind::Error,
                    format!(
                        "`{}`: lbconsole has no SCTP services; line ignored",
                        service.written
                    ),
                );
                return None;
            }
        };
        match endpoint(value, protocol) {
            Ok((address, port)) => Some(Key::Vip {
                protocol,
                address,
                port: port.unwrap_or(0),
            }),
            Err(why) => {
                conversion.note(place, NoteKind::Error, format!("{why}; line ignored"));
                None
            }
        }
    }

    fn add_service<'a>(
        &mut self,
        place: &Place,
        line: &str,
        key: Key,
        value: &dyn Fn(Opt) -> Option<(Option<&'a str>, &'a str)>,
    ) {
        let conversion = &mut self.conversion;
        if let Some(first) = self.services.iter().find(|s| s.key == key) {
            conversion.note(
                place,
                NoteKind::Error,
                format!(
                    "{} is added again (first on line {}); ipvsadm refuses this line",
                    key.describe(),
                    first.place.line
                ),
            );
            return;
        }
        if let Key::Vip { address, .. } = key
            && is_link_local(address)
        {
            conversion.note(
                place,
                NoteKind::Dropped,
                format!("{}: lbconsole takes no link-local VIP", key.describe()),
            );
            self.left_out.push((key, place.line));
            return;
        }
        let scheduler_name = value(Opt::Scheduler)
            .and_then(|(v, _)| v)
            .unwrap_or(DEFAULT_SCHEDULER);
        let scheduler = ipvs_scheduler(scheduler_name);
        let scheduler = scheduler.unwrap_or_else(|| {
            conversion.note(
                place,
                NoteKind::Unknown,
                format!("scheduler `{scheduler_name}`: not an IPVS scheduler lbconsole knows; balance leastconn (wlc)"),
            );
            Scheduler::LeastConn
        });
        let persistence = value(Opt::Persistent)
            .and_then(|(timeout, written)| persistence(conversion, place, key, timeout, written))
            .map(|mut persistence| {
                persistence.netmask = value(Opt::Netmask).and_then(|(mask, written)| {
                    persistence_netmask(conversion, place, key.family(), mask, written)
                });
                persistence
            });
        if persistence.is_none()
            && let Some((_, written)) = value(Opt::Netmask)
        {
            conversion.note(
                place,
                NoteKind::Dropped,
                format!("`{written}` without -p: the netmask serves persistence only"),
            );
        }
        let mut onepacket = value(Opt::OnePacket).is_some();
        if onepacket
            && let Key::Vip {
                protocol: ServiceProtocol::Tcp,
                ..
            } = key
        {
            conversion.note(
                place,
                NoteKind::Error,
                "-o on a TCP service: one-packet scheduling is for UDP; left out",
            );
            onepacket = false;
        }
        if let Some((_, written)) = value(Opt::PersistenceEngine) {
            conversion.note(
                place,
                NoteKind::Dropped,
                format!(
                    "`{written}` (persistence engine): lbconsole persists by client address only"
                ),
            );
        }
        if let Some((_, written)) = value(Opt::SchedFlags) {
            conversion.note(
                place,
                NoteKind::Dropped,
                format!("`{written}` (scheduler flags): lbconsole sets none"),
            );
        }
        self.services.push(Service {
            place: place.clone(),
            what: line.to_owned(),
            key,
            scheduler_name: scheduler_name.to_owned(),
            scheduler,
            persistence,
            onepacket,
            reals: Vec::new(),
        });
    }

    fn add_server<'a>(
        &mut self,
        place: &Place,
        key: Key,
        forward: Option<ForwardMode>,
        value: &dyn Fn(Opt) -> Option<(Option<&'a str>, &'a str)>,
    ) {
        let conversion = &mut self.conversion;
        let Some(service) = self.services.iter_mut().find(|s| s.key == key) else {
            let text = match self.left_out.iter().find(|(k, _)| *k == key) {
                Some((_, line)) => format!(
                    "server of {}, which line {line} left out; left out",
                    key.describe()
                ),
                None => format!(
                    "server of {}, which no -A line before it adds; left out",
                    key.describe()
                ),
            };
            conversion.note(place, NoteKind::Error, text);
            return;
        };
        let Some((Some(real), _)) = value(Opt::Real) else {
            conversion.note(place, NoteKind::Error, "-a without -r; line ignored");
            return;
        };
        let protocol = match key {
            Key::Vip { protocol, .. } => protocol,
            Key::Mark { .. } => ServiceProtocol::Tcp,
        };
        let (address, port) = match endpoint(real, protocol) {
            Ok(found) => found,
            Err(why) => {
                conversion.note(place, NoteKind::Error, format!("{why}; server left out"));
                return;
            }
        };
        let forward = forward.unwrap_or(DEFAULT_FORWARD);
        let service_port = match key {
            Key::Vip { port, .. } => port,
            Key::Mark { .. } => 0,
        };
        // ipvsadm: a server without a port takes the service's, and direct
        // routing and tunnels always deliver to the service's port.
        let port = match (forward, port) {
            (ForwardMode::Nat, Some(port)) => port,
            _ if matches!(key, Key::Mark { .. }) => port.unwrap_or(0),
            _ => service_port,
        };
        let weight = match value(Opt::Weight) {
            None | Some((None, _)) => DEFAULT_WEIGHT,
            Some((Some(weight), written)) => match weight.parse::<u16>() {
                Ok(weight) => weight,
                Err(_) => {
                    conversion.note(
                        place,
                        NoteKind::Error,
                        format!("`{written}`: a weight is 0-65535; server left out"),
                    );
                    return;
                }
            },
        };
        let thresholds: Vec<&str> = [Opt::UpperThreshold, Opt::LowerThreshold]
            .into_iter()
            .filter_map(value)
            .filter(|(limit, _)| *limit != Some("0"))
            .map(|(_, written)| written)
            .collect();
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
        let real = Real {
            place: place.clone(),
            address,
            port,
            forward,
            weight,
        };
        if let Some(first) = service
            .reals
            .iter()
            .find(|r| r.address == real.address && r.port == real.port)
        {
            conversion.note(
                place,
                NoteKind::Error,
                format!(
                    "server {} is already in {} (line {}); ipvsadm refuses this line",
                    real.endpoint(),
                    key.describe(),
                    first.place.line
                ),
            );
            return;
        }
        service.reals.push(real);
    }

    fn finish(mut self) -> Conversion {
        let mut director_names = Names::default();
        let mut flow_names = Names::default();
        for service in std::mem::take(&mut self.services) {
            let director = self.director(&mut director_names, &service);
            if let Key::Mark { mark, .. } = service.key {
                fwmark_flow(
                    &mut self.conversion,
                    &mut flow_names,
                    mark,
                    &director,
                    &service.place,
                    &service.what,
                );
            }
            self.conversion.directors.push(Converted {
                from: service.place,
                what: service.what,
                value: director,
            });
        }
        self.conversion
    }

    fn director(&mut self, names: &mut Names, service: &Service) -> Director {
        let conversion = &mut self.conversion;
        let wanted = match service.key {
            Key::Vip {
                protocol,
                address,
                port,
            } => service_name(protocol, address, (port != 0).then_some(port)),
            Key::Mark { mark, family } => match family {
                Family::Ipv4 => format!("fwmark-{mark}"),
                Family::Ipv6 => format!("fwmark-{mark}-ipv6"),
            },
        };
        let mut director = Director::new(Spanned::unplaced(names.director(&wanted)));
        if let Key::Vip {
            protocol,
            address,
            port,
        } = service.key
        {
            director.service = Some(Spanned::unplaced(VirtualService {
                address,
                port: Port::new(port),
                protocol: Some(protocol),
            }));
        }
        let family = service.key.family();
        place_servers(
            conversion,
            &mut director,
            family,
            &service.reals,
            forward_switch,
            &service.key.describe(),
        );
        director.balance = Some(Spanned::unplaced(service.scheduler));
        self.note_ignored_weights(service, &director);
        director.persistence = service.persistence;
        // A director without VIP takes its family from its first server: with
        // none, an IPv6 prefix length would be read as an IPv4 netmask.
        let family_unknown = director.family() != family;
        if let Some(persistence) = &mut director.persistence
            && family_unknown
            && persistence.netmask.take().is_some()
        {
            self.conversion.note(
                &service.place,
                NoteKind::Dropped,
                "-M: a director without VIP and without servers is IPv4, too short for an IPv6 netmask",
            );
        }
        director.onepacket = service.onepacket;
        director
    }

    fn note_ignored_weights(&mut self, service: &Service, director: &Director) {
        if let Some(text) = ignored_weights(
            &service.scheduler_name,
            &format!("-s {}", service.scheduler_name),
            director,
        ) {
            self.conversion
                .note(&service.place, NoteKind::Approximated, text);
        }
    }
}

/// Puts `reals` in `director`, which forwards them all by the method most of
/// them use (lbconsole's mode is per director): the others are noted, and
/// left out when, their port lost, they become a server already there.
/// `spelling` writes a method as the source does; `service` names the
/// source's service in notes.
pub(super) fn place_servers(
    conversion: &mut Conversion,
    director: &mut Director,
    family: Family,
    reals: &[Real],
    spelling: fn(ForwardMode) -> &'static str,
    service: &str,
) {
    let Some(mode) = most_common(reals.iter().map(|r| r.forward)) else {
        return;
    };
    let vip_port = director.service.as_ref().and_then(|s| s.port);
    let mut server_names = Names::default();
    // Where each server sits, to catch two that become one endpoint once
    // the director's mode drops their ports.
    let mut taken: Vec<(IpAddr, Option<Port>, u32)> = Vec::new();
    for real in reals {
        let name = &director.name.value;
        if Family::of(real.address) != family && mode != ForwardMode::Tunnel {
            conversion.note(
                    &real.place,
                    NoteKind::Error,
                    format!(
                        "server {} is {} but {} is {family}: IPVS mixes families only with {}; left out",
                        real.endpoint(),
                        Family::of(real.address),
                        service,
                        spelling(ForwardMode::Tunnel)
                    ),
                );
            continue;
        }
        if is_link_local(real.address) {
            conversion.note(
                &real.place,
                NoteKind::Dropped,
                format!(
                    "server {}: lbconsole takes no link-local server",
                    real.endpoint()
                ),
            );
            continue;
        }
        let port = match mode {
            ForwardMode::Nat => Port::new(real.port),
            ForwardMode::Gateway | ForwardMode::Tunnel => None,
        };
        let delivered = port.or(vip_port);
        if let Some((_, _, line)) = taken
            .iter()
            .find(|(address, port, _)| *address == real.address && *port == delivered)
        {
            conversion.note(
                    &real.place,
                    NoteKind::Dropped,
                    format!(
                        "server {} ({}): the director forwards by {} ({}), which makes it the server of line {line}",
                        real.endpoint(),
                        spelling(real.forward),
                        mode_words(mode),
                        spelling(mode)
                    ),
                );
            continue;
        }
        taken.push((real.address, delivered, real.place.line));
        if real.forward != mode {
            let port_lost = match vip_port {
                Some(vip_port) if mode != ForwardMode::Nat && real.port != vip_port.get() => {
                    format!(", which delivers to the VIP's port {vip_port}")
                }
                _ => String::new(),
            };
            conversion.note(
                    &real.place,
                    NoteKind::Approximated,
                    format!(
                        "server {} is forwarded by {} ({}); director `{name}` forwards all its servers by {} ({}){port_lost}",
                        real.endpoint(),
                        mode_words(real.forward),
                        spelling(real.forward),
                        mode_words(mode),
                        spelling(mode),
                    ),
                );
        }
        director.servers.push(Server {
            name: Spanned::unplaced(
                server_names.server(&server_name(real.address, port.map(Port::get))),
            ),
            address: real.address,
            port,
            weight: Some(real.weight),
            check: false,
            sorry: false,
            loc: Default::default(),
        });
    }
    if !director.servers.is_empty() {
        director.mode = Some(mode);
    }
}

/// The value that comes most often; on a tie, the first of them.
pub(super) fn most_common<T: Copy + PartialEq>(values: impl IntoIterator<Item = T>) -> Option<T> {
    let mut counts: Vec<(T, usize)> = Vec::new();
    for value in values {
        match counts.iter_mut().find(|(seen, _)| *seen == value) {
            Some((_, count)) => *count += 1,
            None => counts.push((value, 1)),
        }
    }
    counts
        .iter()
        .fold(
            None,
            |best: Option<(T, usize)>, &(value, count)| match best {
                Some((_, most)) if most >= count => best,
                _ => Some((value, count)),
            },
        )
        .map(|(value, _)| value)
}

/// A director without VIP takes the traffic the source marked with `mark`
/// through a flow of its own, which the administrator fills in: the rules that
/// set the mark are out of the converter's sight.
pub(super) fn fwmark_flow(
    conversion: &mut Conversion,
    flow_names: &mut Names,
    mark: u32,
    director: &Director,
    place: &Place,
    what: &str,
) {
    let flow = flow_names.flow(director.name.as_str());
    conversion.note(
        place,
        NoteKind::ToDo,
        format!(
            "fwmark {mark} comes from iptables/nft rules lbconsole cannot see: \
             write a `match` for that traffic in flow `{flow}` (director `{}`)",
            director.name.value
        ),
    );
    conversion.flows.push(Converted {
        from: place.clone(),
        what: what.to_owned(),
        value: Flow {
            direction: Direction::In,
            name: Spanned::unplaced(flow),
            policy: Spanned::unplaced(Policy::Director(director.name.value.clone())),
            rules: Vec::new(),
        },
    });
}

fn mode_words(mode: ForwardMode) -> &'static str {
    match mode {
        ForwardMode::Gateway => "direct routing",
        ForwardMode::Nat => "masquerading",
        ForwardMode::Tunnel => "tunnelling",
    }
}

fn forward_switch(mode: ForwardMode) -> &'static str {
    match mode {
        ForwardMode::Gateway => "-g",
        ForwardMode::Nat => "-m",
        ForwardMode::Tunnel => "-i",
    }
}

fn persistence(
    conversion: &mut Conversion,
    place: &Place,
    key: Key,
    timeout: Option<&str>,
    written: &str,
) -> Option<Persistence> {
    let timeout = match timeout {
        None => DEFAULT_PERSISTENCE_S,
        Some(text) => match text.parse::<u32>() {
            Ok(timeout) if (1..=MAX_IPVSADM_TIMEOUT_S).contains(&timeout) => timeout,
            _ => {
                conversion.note(
                    place,
                    NoteKind::Error,
                    format!(
                        "`{written}`: a persistence timeout is 1-{MAX_IPVSADM_TIMEOUT_S} s; {} not persistent",
                        key.describe()
                    ),
                );
                return None;
            }
        },
    };
    let timeout = if timeout > MAX_LVS_TIMEOUT_S {
        conversion.note(
            place,
            NoteKind::Approximated,
            format!("`{written}`: lbconsole persists at most {MAX_LVS_TIMEOUT_S} s (a day)"),
        );
        MAX_LVS_TIMEOUT_S
    } else {
        timeout
    };
    Some(Persistence {
        timeout: Some(timeout),
        ..Persistence::default()
    })
}

/// `-M`: a dotted netmask for IPv4, a prefix length 1-128 for IPv6. A host
/// mask is the default and is left unwritten.
fn persistence_netmask(
    conversion: &mut Conversion,
    place: &Place,
    family: Family,
    mask: Option<&str>,
    written: &str,
) -> Option<u8> {
    let text = mask.unwrap_or_default();
    let prefix = match family {
        Family::Ipv4 => match text.parse::<Ipv4Addr>() {
            Ok(mask) => match mask_to_prefix(mask) {
                Some(prefix) => Some(prefix),
                None => {
                    conversion.note(
                        place,
                        NoteKind::Dropped,
                        format!("`{written}`: a netmask with holes; lbconsole takes a prefix, so persistence is per client address"),
                    );
                    return None;
                }
            },
            Err(_) => None,
        },
        Family::Ipv6 => text.parse::<u8>().ok().filter(|p| (1..=128).contains(p)),
    };
    let Some(prefix) = prefix else {
        let expected = match family {
            Family::Ipv4 => "a dotted netmask",
            Family::Ipv6 => "a prefix length 1-128",
        };
        conversion.note(
            place,
            NoteKind::Error,
            format!("`{written}`: not {expected}; persistence is per client address"),
        );
        return None;
    };
    (prefix != family.max_prefix()).then_some(prefix)
}

/// `ADDRESS[:PORT]` or `[IPV6]:PORT`, as ipvsadm writes a service or a real
/// server; ports may be /etc/services names, host names are refused (the
/// converter resolves nothing).
fn endpoint(text: &str, protocol: ServiceProtocol) -> Result<(IpAddr, Option<u16>), String> {
    let (host, port) = if let Some(bracketed) = text.strip_prefix('[') {
        let Some((host, rest)) = bracketed.split_once(']') else {
            return Err(format!("`{text}`: no `]` after the IPv6 address"));
        };
        let port = match rest.strip_prefix(':') {
            Some(port) => Some(port),
            None if rest.is_empty() => None,
            None => return Err(format!("`{text}`: `{rest}` after the IPv6 address")),
        };
        match host.parse::<Ipv6Addr>() {
            Ok(address) => (IpAddr::V6(address), port),
            Err(_) => return Err(format!("`{host}` is not an IPv6 address")),
        }
    } else if let Ok(address) = text.parse::<Ipv6Addr>() {
        (IpAddr::V6(address), None)
    } else {
        let (host, port) = match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        };
        match host.parse::<Ipv4Addr>() {
            Ok(address) => (IpAddr::V4(address), port),
            Err(_) if host.is_empty() => return Err(format!("`{text}`: no address")),
            Err(_) => {
                return Err(format!(
                    "host name `{host}`: the converter resolves no names (convert `ipvsadm -Sn`)"
                ));
            }
        }
    };
    let port = match port {
        None => None,
        Some(port) => Some(port_number(port, protocol)?),
    };
    Ok((host, port))
}

fn port_number(text: &str, protocol: ServiceProtocol) -> Result<u16, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(port);
    }
    well_known_port(text).ok_or_else(|| {
            format!(
                "port `{text}`: not a number nor a {} service name the converter knows (convert `ipvsadm -Sn`)",
                protocol.keyword()
            )
        })
}

/// The port of an /etc/services name the converter knows.
pub(super) fn well_known_port(name: &str) -> Option<u16> {
    PORT_NAMES
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, port)| *port)
}

pub(super) fn is_link_local(address: IpAddr) -> bool {
    matches!(address, IpAddr::V6(v6) if v6.is_unicast_link_local())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lvs(text: &str) -> String {
        convert("ipvsadm.txt", text).lvs_text("test")
    }

    fn report(text: &str) -> Vec<String> {
        convert("ipvsadm.txt", text).report_lines()
    }

    #[test]
    fn a_nat_service_becomes_a_director_with_its_servers() {
        let text = "-A -t 10.0.0.1:80 -s wrr\n-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -m -w 2\n";
        assert_eq!(
            lvs(text),
            "# test\n\n# ipvsadm.txt:1: -A -t 10.0.0.1:80 -s wrr\n\
             director tcp-10.0.0.1-80 10.0.0.1:80 TCP\n    balance roundrobin\n    mode nat\n    \
             server 10.0.1.1-8080 10.0.1.1:8080 weight 2\n"
        );
        assert!(report(text).is_empty());
    }

    #[test]
    fn long_options_and_glued_values_read_like_short_ones() {
        let short = "-A -t 10.0.0.1:80 -s wlc -p 60\n-a -t 10.0.0.1:80 -r 10.0.1.1 -g -w 3\n";
        let long = "--add-service --tcp-service=10.0.0.1:80 --scheduler wlc --persistent=60\n\
                    ipvsadm --add-server -t 10.0.0.1:80 --real-server 10.0.1.1 --gatewaying -w3\n";
        assert_eq!(
            convert("f", short).lvs(),
            convert("f", long).lvs(),
            "{:?}",
            report(long)
        );
    }

    #[test]
    fn the_persistence_timeout_is_optional_and_the_next_option_is_not_it() {
        let text = "-A -u 10.0.0.1:53 -s sh -p -M 255.255.255.0 -o\n";
        let conversion = convert("f", text);
        let director = &conversion.directors[0].value;
        assert_eq!(
            director.persistence.map(|p| (p.timeout, p.netmask)),
            Some((Some(300), Some(24)))
        );
        assert!(director.onepacket);
    }

    #[test]
    fn rr_becomes_wrr_which_follows_weights_only_when_they_differ() {
        let equal = "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 2\n\
                     -a -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 2\n-a -t 10.0.0.1:80 -r 10.0.1.3:80 -m -w 0\n";
        assert_eq!(
            report(equal),
            [
                "ipvsadm.txt:1: approximated: -s rr: lbconsole's roundrobin is wrr, which with these equal weights picks as rr does; `ipvsadm -Ln` shows wrr"
            ]
        );
        let differ = equal.replace("10.0.1.2:80 -m -w 2", "10.0.1.2:80 -m -w 5");
        assert_eq!(
            report(&differ),
            [
                "ipvsadm.txt:1: approximated: -s rr ignores the weights (2, 5); lbconsole's roundrobin is wrr, which follows them"
            ]
        );
    }

    #[test]
    fn names_are_refused_unless_they_are_well_known_ports() {
        let text = "-A -t 10.0.0.1:https -s wlc\n-A -t www.example.com:http -s wlc\n";
        assert_eq!(convert("f", text).directors.len(), 1);
        assert_eq!(
            report(text),
            [
                "ipvsadm.txt:2: error: host name `www.example.com`: the converter resolves no names (convert `ipvsadm -Sn`); line ignored"
            ]
        );
    }

    /// `ipvsadm -Sn` of the table a configuration asks for, for VIP services,
    /// in the table's order.
    fn save(lvs_text: &str) -> String {
        use crate::plan::ipvs::{self, FLAG_ONEPACKET, FLAG_PERSISTENT, Forward, Netmask};
        let checked = crate::config::check(crate::config::Sources {
            network: b"",
            flows: b"",
            lvs: lvs_text.as_bytes(),
        });
        assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
        let mut out = String::new();
        for (key, service) in ipvs::desired(&checked.config.lvs).services {
            let ipvs::ServiceKey::Vip {
                protocol,
                address,
                port,
            } = key
            else {
                continue;
            };
            let switch = if protocol == 17 { "-u" } else { "-t" };
            let vip = std::net::SocketAddr::new(address, port);
            let settings = &service.settings;
            out.push_str(&format!("-A {switch} {vip} -s {}", settings.scheduler));
            if settings.flags & FLAG_PERSISTENT != 0 {
                out.push_str(&format!(" -p {}", settings.timeout));
                match settings.netmask {
                    Netmask::Ipv4(mask) if mask != Ipv4Addr::BROADCAST => {
                        out.push_str(&format!(" -M {mask}"));
                    }
                    Netmask::Ipv6(prefix) if prefix != 128 => {
                        out.push_str(&format!(" -M {prefix}"));
                    }
                    _ => {}
                }
            }
            if settings.flags & FLAG_ONEPACKET != 0 {
                out.push_str(" -o");
            }
            out.push('\n');
            for (dest, settings) in &service.destinations {
                let forward = match settings.forward {
                    Forward::Masquerade => "-m",
                    Forward::Route => "-g",
                    Forward::Tunnel => "-i",
                };
                out.push_str(&format!(
                    "-a {switch} {vip} -r {dest} {forward} -w {}\n",
                    settings.weight
                ));
            }
        }
        out
    }

    #[test]
    fn a_numeric_dump_of_wrr_and_wlc_services_comes_back_unchanged() {
        let dump = "-A -t 192.0.2.10:80 -s wlc\n\
                    -a -t 192.0.2.10:80 -r 10.0.1.11:8080 -m -w 1\n\
                    -a -t 192.0.2.10:80 -r 10.0.1.12:8080 -m -w 3\n\
                    -A -t 192.0.2.11:443 -s wrr -p 1800 -M 255.255.255.0\n\
                    -a -t 192.0.2.11:443 -r 10.0.2.11:443 -g -w 1\n\
                    -a -t 192.0.2.11:443 -r 10.0.2.12:443 -g -w 0\n\
                    -A -t 192.0.2.12:0 -s wlc -p 300\n\
                    -a -t 192.0.2.12:0 -r 10.0.4.11:0 -g -w 1\n\
                    -A -t [2001:db8::10]:80 -s wrr -p 600 -M 64\n\
                    -a -t [2001:db8::10]:80 -r [2001:db8:1::11]:8080 -m -w 2\n\
                    -A -u 192.0.2.53:53 -s wlc -o\n\
                    -a -u 192.0.2.53:53 -r 10.0.3.11:53 -i -w 1\n";
        let conversion = convert("ipvsadm.txt", dump);
        assert!(conversion.report.is_empty(), "{:?}", conversion.report);
        assert_eq!(save(&conversion.lvs_text("round trip")), dump);
    }

    const SERVICES: &[&str] = &[
        "-t 10.0.0.1:80",
        "-u 10.0.0.1:53",
        "-t [2001:db8::1]:80",
        "-f 1",
        "-f 1 -6",
        "-t 10.0.0.1:0",
        "-t fe80::1",
        "-t www.example.com:http",
        "--sctp-service 10.0.0.1:80",
    ];
    const SERVICE_OPTIONS: &[&str] = &[
        "-s rr",
        "-s sh",
        "-s bogus",
        "-p",
        "-p 300",
        "-p 99999999",
        "-M 255.255.255.0",
        "-M 255.0.255.0",
        "-M 64",
        "-o",
        "--pe sip",
        "-b sh-port",
        "-w 2",
        "--foo 1",
    ];
    const SERVERS: &[&str] = &[
        "10.0.0.2",
        "10.0.0.2:8080",
        "10.0.0.3:80",
        "[2001:db8::2]:80",
        "2001:db8::3",
        "fe80::5",
        "[fe80::6]:80",
        "10.0.0.2:0",
        "web.example.com:http",
    ];
    const SERVER_OPTIONS: &[&str] = &[
        "-g", "-m", "-i", "-w 0", "-w 3", "-w 70000", "-x 10", "-y 5", "-s wlc",
    ];

    fn options(choices: &'static [&'static str]) -> impl Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(choices), 0..4)
            .prop_map(|options| options.join(" "))
    }

    /// Services, each an `-A` line and its `-a` lines, right and wrong, then
    /// noise.
    fn text() -> impl Strategy<Value = String> {
        let server = (proptest::sample::select(SERVERS), options(SERVER_OPTIONS));
        let service = (
            proptest::sample::select(SERVICES),
            options(SERVICE_OPTIONS),
            proptest::collection::vec(server, 0..5),
        )
            .prop_map(|(service, options, servers)| {
                let mut text = format!("-A {service} {options}\n");
                for (server, options) in servers {
                    text.push_str(&format!("-a {service} -r {server} {options}\n"));
                }
                text
            });
        let noise = proptest::collection::vec("[-a-zA-Z0-9:.\\[\\]= ]{0,30}", 0..3);
        (proptest::collection::vec(service, 0..4), noise)
            .prop_map(|(services, noise)| services.concat() + &noise.join("\n"))
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

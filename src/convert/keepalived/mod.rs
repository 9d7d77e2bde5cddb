//! keepalived.conf(5) as `lvs.conf` and `flows.conf`: each `virtual_server`
//! a director, each `virtual_server_group` a flow to its director; VRRP and
//! keepalived's own settings are reported as what they are not.

mod checks;
mod group;
mod lexer;
mod vrrp;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::IpAddr;
use std::path::Path;

use crate::config::model::flows::{
    Condition, Conditions, Direction, Flow, Policy, Rule, RuleAction,
};
use crate::config::model::lvs::{
    CheckParams, Director, ForwardMode, Persistence, Scheduler, Server, ServiceProtocol,
    VirtualService,
};
use crate::config::model::types::{DirectorName, Family, Loc, Port, PortRange, Protocol, Spanned};

use super::{
    Conversion, Converted, Files, Names, NoteKind, Options, Place, ignored_weights, ipvs_scheduler,
    server_name, service_name, sorry_server,
};

use checks::{Checked, Inherited, bad_value, missing_value};
use group::Group;
use lexer::Node;

/// Converts the keepalived configuration at `path` and what it includes.
pub fn convert(path: &Path, files: &dyn Files, options: &Options) -> io::Result<Conversion> {
    let mut conversion = Conversion::default();
    let nodes = lexer::read(path, files, options, &mut conversion)?;
    let mut converter = Converter {
        out: &mut conversion,
        groups: BTreeMap::new(),
        used_groups: Vec::new(),
        directors: Names::default(),
        flows: Names::default(),
        services: HashMap::new(),
        vrrp: vrrp::Vrrp::default(),
    };
    converter.run(&nodes);
    Ok(conversion)
}

struct Converter<'a> {
    out: &'a mut Conversion,
    groups: BTreeMap<String, Group>,
    used_groups: Vec<String>,
    directors: Names,
    flows: Names,
    /// Each virtual service converted, and where: a second is left out.
    services: HashMap<(IpAddr, Option<Port>, ServiceProtocol), Place>,
    vrrp: vrrp::Vrrp,
}

/// Top-level blocks that are not lvs.conf's, and why.
const OTHER_BLOCKS: &[(&str, &str)] = &[
    (
        "vrrp_sync_group",
        "lbconsole puts all VRRP instances of a box in one sync group (network.conf)",
    ),
    (
        "vrrp_script",
        "lbconsole tracks the directors' servers itself (`track-health on` in network.conf's `service vrrp`)",
    ),
    (
        "vrrp_track_process",
        "lbconsole tracks the directors' servers itself (`track-health on` in network.conf's `service vrrp`)",
    ),
    (
        "vrrp_track_file",
        "lbconsole tracks the directors' servers itself (`track-health on` in network.conf's `service vrrp`)",
    ),
    (
        "track_file",
        "lbconsole tracks the directors' servers itself (`track-health on` in network.conf's `service vrrp`)",
    ),
    (
        "static_ipaddress",
        "addresses belong in network.conf (`ip address`)",
    ),
    ("static_routes", "routes belong in network.conf (`route`)"),
    (
        "static_rules",
        "policy rules belong in network.conf and flows.conf (`table`)",
    ),
    (
        "linkbeat_interfaces",
        "lbconsole's VRRP follows network.conf",
    ),
    ("garp_group", "lbconsole's VRRP follows network.conf"),
    ("bfd_instance", "lbconsole runs no BFD sessions"),
    (
        "SSL",
        "the client certificate of SSL_GET; lbconsole's checks do not speak TLS",
    ),
    (
        "net_namespace",
        "lbconsole runs in the namespace it is started in",
    ),
    (
        "net_namespace_ipvs",
        "lbconsole runs in the namespace it is started in",
    ),
    (
        "namespace_with_ipsets",
        "lbconsole runs in the namespace it is started in",
    ),
    ("instance", "lbconsole runs one instance per appliance"),
    ("use_symlink_paths", "a setting of keepalived's own"),
];

/// What a `virtual_server` line names.
enum Target {
    Service(IpAddr, Option<Port>),
    Fwmark(u32),
    Group(String),
}

impl Converter<'_> {
    fn run(&mut self, nodes: &[Node]) {
        for node in nodes
            .iter()
            .filter(|n| n.keyword() == "virtual_server_group")
        {
            self.read_group(node);
        }
        for node in nodes {
            match node.keyword() {
                "virtual_server" => self.virtual_server(node),
                "virtual_server_group" => {}
                "vrrp_instance" => self.vrrp.instance(node, self.out),
                "global_defs" => self.global_defs(node),
                keyword => match OTHER_BLOCKS.iter().find(|(name, _)| *name == keyword) {
                    Some((_, reason)) => {
                        self.out.note(
                            &node.place,
                            NoteKind::Dropped,
                            format!("{}: {reason}", node.text()),
                        );
                    }
                    None => self.unknown(node, "at the top level"),
                },
            }
        }
        for (name, group) in &self.groups {
            if !self.used_groups.contains(name) {
                self.out.note(
                    &group.place,
                    NoteKind::Dropped,
                    format!("virtual_server_group {name}: no virtual_server uses it"),
                );
            }
        }
    }

    fn unknown(&mut self, node: &Node, where_: &str) {
        self.out.note(
            &node.place,
            NoteKind::Unknown,
            format!("`{}` {where_}: unknown keyword; left out", node.keyword()),
        );
    }

    fn read_group(&mut self, node: &Node) {
        let Some(name) = node.arg(0) else {
            missing_value(node, self.out);
            return;
        };
        if node.block.is_none() {
            self.no_block(node);
            return;
        }
        if self.groups.contains_key(name) {
            self.out.note(
                &node.place,
                NoteKind::Error,
                format!("virtual_server_group {name} is defined twice; the first is kept"),
            );
            return;
        }
        let group = group::read(node, self.out);
        self.groups.insert(name.to_owned(), group);
    }

    fn no_block(&mut self, node: &Node) {
        self.out.note(
            &node.place,
            NoteKind::Error,
            format!("`{}` needs a {{ }} block; left out", node.text()),
        );
    }

    /// keepalived's own settings, but for the connection sync's interface.
    fn global_defs(&mut self, node: &Node) {
        self.out.note(
            &node.place,
            NoteKind::Dropped,
            format!(
                "{}: keepalived's own settings (router_id, mail, scripts); lbconsole has none of them",
                node.text()
            ),
        );
        for sync in node
            .children()
            .iter()
            .filter(|c| c.keyword() == "lvs_sync_daemon")
        {
            let mut service = crate::config::model::network::VrrpService::default();
            vrrp::sync_interface(sync, &mut service, self.out);
            if let Some(interface) = service.sync_iface.clone() {
                let converted = self.out.vrrp_service.get_or_insert_with(|| Converted {
                    from: sync.place.clone(),
                    what: sync.text(),
                    value: service,
                });
                converted.value.sync_iface = Some(interface);
            }
        }
    }

    fn target(&mut self, node: &Node) -> Option<Target> {
        let target = match node.args() {
            [fwmark, mark] if fwmark == "fwmark" => mark.parse().ok().map(Target::Fwmark),
            [group, name] if group == "group" => Some(Target::Group(name.clone())),
            [address] => address.parse().ok().map(|a| Target::Service(a, None)),
            [address, port] => match (address.parse(), port.parse::<u16>()) {
                (Ok(address), Ok(port)) => Some(Target::Service(address, Port::new(port))),
                _ => None,
            },
            _ => None,
        };
        if target.is_none() {
            self.out.note(
                &node.place,
                NoteKind::Error,
                format!(
                    "`{}`: not an address and port, `fwmark N` or `group NAME`; left out",
                    node.text()
                ),
            );
        }
        target
    }

    fn virtual_server(&mut self, node: &Node) {
        let Some(target) = self.target(node) else {
            return;
        };
        if node.block.is_none() {
            self.no_block(node);
            return;
        }
        // A fwmark has no protocol; a group has one when it has addresses.
        let needs_protocol = match &target {
            Target::Service(..) => true,
            Target::Fwmark(_) => false,
            Target::Group(group) => match self.groups.get(group) {
                Some(entries) => !entries.addresses.is_empty(),
                None => {
                    self.out.note(
                        &node.place,
                        NoteKind::Error,
                        format!(
                            "`{}`: no virtual_server_group {group}; left out",
                            node.text()
                        ),
                    );
                    return;
                }
            },
        };
        let Some(settings) = Settings::read(node, needs_protocol, self.out) else {
            return;
        };
        let protocol = settings.protocol;
        let mut grouped = None;
        let (name, service) = match &target {
            Target::Service(address, port) => {
                if let Some(first) = self.services.get(&(*address, *port, protocol)) {
                    self.out.note(
                        &node.place,
                        NoteKind::Error,
                        format!("`{}`: the same service as {first}; left out", node.text()),
                    );
                    return;
                }
                self.services
                    .insert((*address, *port, protocol), node.place.clone());
                let name =
                    self.directors
                        .director(&service_name(protocol, *address, port.map(Port::get)));
                let service = VirtualService {
                    address: *address,
                    port: *port,
                    protocol: Some(protocol),
                };
                (name, Some(Spanned::unplaced(service)))
            }
            Target::Fwmark(mark) => {
                let name = self.directors.director(&format!("fwmark-{mark}"));
                self.out.note(
                    &node.place,
                    NoteKind::ToDo,
                    format!(
                        "fwmark {mark}: the mark comes from firewall rules keepalived does not own; write a flow in flows.conf that directs that traffic to director `{name}` (`flow NAME director {name}`)"
                    ),
                );
                (name, None)
            }
            Target::Group(group) => {
                let entries = self.groups[group].clone();
                if !self.used_groups.contains(group) {
                    self.used_groups.push(group.clone());
                }
                let name = self.directors.director(group);
                grouped = Some((group.clone(), entries));
                (name, None)
            }
        };
        let director = self.director(node, name, service, &settings);
        if let Some((group, entries)) = grouped {
            self.group_flow(node, &group, &entries, &director, protocol);
        }
        self.out.directors.push(Converted {
            from: node.place.clone(),
            what: node.text(),
            value: director,
        });
    }

    /// `flow GROUP director NAME` with a rule per address of the group.
    fn group_flow(
        &mut self,
        node: &Node,
        group: &str,
        entries: &Group,
        director: &Director,
        protocol: ServiceProtocol,
    ) {
        let family = director.family();
        let director = &director.name.value;
        let proto = match protocol {
            ServiceProtocol::Tcp => Protocol::Tcp,
            ServiceProtocol::Udp => Protocol::Udp,
        };
        for (_, _, place) in entries
            .addresses
            .iter()
            .filter(|(nets, _, _)| nets.iter().any(|n| n.family() != family))
        {
            self.out.note(
                place,
                NoteKind::Dropped,
                format!("this {} address of virtual_server_group {group} is left out: director `{director}` serves {family} (its servers'), and IPVS never takes another family's packets", other_family(family)),
            );
        }
        let rules: Vec<Rule> = entries
            .addresses
            .iter()
            .flat_map(|(nets, port, _)| nets.iter().map(move |net| (*net, *port)))
            .filter(|(net, _)| net.family() == family)
            .map(|(net, port)| Rule {
                action: RuleAction::Match,
                conditions: Conditions {
                    proto: Some(condition(proto)),
                    dst: Some(condition(net)),
                    dstport: port.map(|port| condition(PortRange::single(port))),
                    ..Conditions::default()
                },
                loc: Loc::default(),
            })
            .collect();
        let flow_name = (!rules.is_empty()).then(|| self.flows.flow(group));
        for (mark, place) in &entries.fwmarks {
            let what_to_do = match &flow_name {
                Some(flow) => format!(
                    "add rules for that traffic to flow `{flow}`, which directs to `{director}`"
                ),
                None => format!(
                    "write a flow in flows.conf that directs that traffic to director `{director}` (`flow NAME director {director}`)"
                ),
            };
            self.out.note(
                place,
                NoteKind::ToDo,
                format!(
                    "fwmark {mark} in virtual_server_group {group}: the mark comes from firewall rules keepalived does not own; {what_to_do}"
                ),
            );
        }
        let Some(flow_name) = flow_name else {
            return;
        };
        self.out.flows.push(Converted {
            from: node.place.clone(),
            what: format!("{} (virtual_server_group {group})", node.text()),
            value: Flow {
                direction: Direction::In,
                name: Spanned::unplaced(flow_name),
                policy: Spanned::unplaced(Policy::Director(director.clone())),
                rules,
            },
        });
    }

    fn director(
        &mut self,
        node: &Node,
        name: DirectorName,
        service: Option<Spanned<VirtualService>>,
        settings: &Settings,
    ) -> Director {
        let mut director = Director::new(Spanned::unplaced(name));
        director.service = service;
        director.balance = Some(Spanned::unplaced(settings.scheduler));
        director.mode = Some(settings.mode);
        director.persistence = settings.persistence;
        director.onepacket = settings.onepacket;
        let mut servers = Names::default();
        let mut checked: Vec<(String, Checked)> = Vec::new();
        let mut inhibited = Vec::new();
        let mut not_inhibited = Vec::new();
        for real in node
            .children()
            .iter()
            .filter(|n| n.keyword() == "real_server")
        {
            let Some(real) = self.real_server(real, settings, &mut servers) else {
                continue;
            };
            if !self.fits(&director, &real.server, real.place) {
                continue;
            }
            // inhibit_on_failure means something only for a checked server.
            if let Some(check) = real.check {
                let server_name = real.server.name.value.to_string();
                if real.inhibit {
                    inhibited.push(server_name.clone());
                } else {
                    not_inhibited.push(server_name.clone());
                }
                checked.push((server_name, check));
            }
            director.servers.push(real.server);
        }
        self.weights_note(settings, &director);
        if let Some((_, first)) = checked.first() {
            director.check = CheckParams {
                timeout: Some(first.check.timeout),
                interval: Some(first.check.interval),
                source: first.check.source.map(Spanned::unplaced),
                port: first.check.port.map(Spanned::unplaced),
                rise: None,
                fall: Some(first.check.fall),
                inhibit: !inhibited.is_empty(),
                loc: Loc::default(),
            };
            director.adv_check = Some(Spanned::unplaced(first.check.method.clone()));
            if first.retry > 0 && first.retry_delay != first.check.interval {
                let retries = if first.retry == 1 {
                    "1 retry".to_owned()
                } else {
                    format!("{} retries", first.retry)
                };
                self.out.note(
                    &first.place,
                    NoteKind::Approximated,
                    format!(
                        "check fall {} (the failed check and {retries}): keepalived retries {}s after a failure (delay_before_retry); lbconsole checks again at the next interval, {}s later",
                        first.check.fall, first.retry_delay, first.check.interval
                    ),
                );
            }
            if first.check.timeout >= first.check.interval {
                director.check.timeout =
                    (first.check.interval > 1).then(|| first.check.interval - 1);
                self.out.note(
                    &first.place,
                    NoteKind::Approximated,
                    format!(
                        "connect_timeout {}s is not shorter than delay_loop {}s: keepalived waits for a check to end before the next, lbconsole checks at a fixed interval; timeout {}s",
                        first.check.timeout,
                        first.check.interval,
                        director.check.timeout()
                    ),
                );
            }
            for (server, other) in checked.iter().skip(1) {
                let differences = other.check.differences(&first.check);
                if !differences.is_empty() {
                    self.out.note(
                        &other.place,
                        NoteKind::Approximated,
                        format!(
                            "the check of server {server} differs from the director's ({}): lbconsole checks every server of a director alike, as the first checked one",
                            differences.join("; ")
                        ),
                    );
                }
            }
            if !inhibited.is_empty() && !not_inhibited.is_empty() {
                self.out.note(
                    &node.place,
                    NoteKind::Approximated,
                    format!(
                        "inhibit_on_failure is set for {} but not {}; lbconsole's `check inhibit` is the director's: every server down stays at weight 0",
                        inhibited.join(", "),
                        not_inhibited.join(", ")
                    ),
                );
            }
        }
        if let Some(sorry) = &settings.sorry {
            self.sorry_server(sorry, settings, &mut servers, &mut director);
        }
        director
    }

    /// rr and lc ignore weights; lbconsole's roundrobin and leastconn are wrr and wlc.
    fn weights_note(&mut self, settings: &Settings, director: &Director) {
        let Some((algorithm, place)) = &settings.weightless else {
            return;
        };
        if let Some(text) = ignored_weights(algorithm, &format!("lb_algo {algorithm}"), director) {
            self.out.note(place, NoteKind::Approximated, text);
        }
    }

    fn sorry_server(
        &mut self,
        node: &Node,
        settings: &Settings,
        names: &mut Names,
        director: &mut Director,
    ) {
        let Some((address, port)) = address_and_port(node, self.out) else {
            return;
        };
        if let Some((method, place)) = &settings.sorry_mode
            && *method != settings.mode
        {
            self.out.note(
                place,
                NoteKind::Approximated,
                format!(
                    "sorry_server_lvs_method: lbconsole forwards to every server of a director alike (mode {})",
                    settings.mode.keyword()
                ),
            );
        }
        let server = sorry_server(names, address, port);
        if self.fits(director, &server, &node.place) {
            director.servers.push(server);
        }
    }

    fn real_server<'n>(
        &mut self,
        node: &'n Node,
        settings: &Settings,
        names: &mut Names,
    ) -> Option<RealServer<'n>> {
        let (address, port) = address_and_port(node, self.out)?;
        let mut inherited = settings.inherited.clone();
        let mut weight = None;
        let mut inhibit = settings.inhibit;
        let mut checkers = Vec::new();
        for child in node.children() {
            if inherited.read(child, self.out) {
                continue;
            }
            let keyword = child.keyword();
            if checks::CHECKERS.contains(&keyword) {
                checkers.push(child);
                continue;
            }
            match keyword {
                "weight" => match child.arg(0).and_then(|w| w.parse::<u16>().ok()) {
                    Some(value) => weight = Some(value),
                    None => bad_value(child, self.out, "a weight (0-65535)"),
                },
                "inhibit_on_failure" => inhibit = on_off(child),
                "lvs_method" => {
                    if let Some(mode) = forward_mode(child, self.out)
                        && mode != settings.mode
                    {
                        self.out.note(
                            &child.place,
                            NoteKind::Approximated,
                            format!(
                                "`{}`: lbconsole forwards to every server of a director alike (mode {})",
                                child.text(),
                                settings.mode.keyword()
                            ),
                        );
                    }
                }
                "uthreshold" | "lthreshold" => {
                    self.dropped(child, "lbconsole sets no connection thresholds");
                }
                "notify_up" | "notify_down" => self.dropped(
                    child,
                    "lbconsole runs no script on a change of state; each is a log line and an event",
                ),
                "smtp_alert" => self.dropped(child, "lbconsole sends no mail; each change of state is a log line and an event"),
                "snmp_name" => self.dropped(child, "lbconsole has no SNMP agent"),
                _ => self.unknown(child, "in real_server"),
            }
        }
        let mut check = None;
        let had_checkers = !checkers.is_empty();
        for checker in checkers {
            let Some(converted) = checks::checker(checker, port, &inherited, self.out) else {
                continue;
            };
            match &check {
                None => check = Some(converted),
                Some(first) => {
                    self.out.note(
                        &checker.place,
                        NoteKind::Approximated,
                        format!(
                            "{}: a server has one check in lbconsole; it keeps the {} before it",
                            checker.keyword(),
                            first.keyword
                        ),
                    );
                }
            }
        }
        if had_checkers && check.is_none() {
            self.out.note(
                &node.place,
                NoteKind::Dropped,
                format!(
                    "`{}`: none of its checkers converts, so lbconsole never checks it (it stays in)",
                    node.text()
                ),
            );
        }
        let server = Server {
            name: Spanned::unplaced(names.server(&server_name(address, port.map(Port::get)))),
            address,
            port,
            weight,
            check: check.is_some(),
            sorry: false,
            loc: Loc::default(),
        };
        Some(RealServer {
            place: &node.place,
            server,
            check,
            inhibit,
        })
    }

    /// Whether `server` can join `director`: a server already there, or of
    /// the other family outside tunnel mode, is an error keepalived's IPVS
    /// would refuse too.
    fn fits(&mut self, director: &Director, server: &Server, place: &Place) -> bool {
        let vip_port = director.service.as_ref().and_then(|s| s.port);
        let endpoint = |s: &Server| (s.address, s.port.or(vip_port));
        if director
            .servers
            .iter()
            .any(|other| endpoint(other) == endpoint(server))
        {
            self.out.note(
                place,
                NoteKind::Error,
                format!(
                    "{} is already a server of this virtual server; left out",
                    crate::config::model::types::endpoint(server.address, server.port.or(vip_port))
                ),
            );
            return false;
        }
        let family = Family::of(server.address);
        let director_family = match (&director.service, director.servers.first()) {
            (Some(service), _) => Family::of(service.address),
            (None, Some(first)) => Family::of(first.address),
            (None, None) => family,
        };
        if family != director_family && director.mode != Some(ForwardMode::Tunnel) {
            self.out.note(
                place,
                NoteKind::Error,
                format!(
                    "{} is {family} but the virtual server {director_family}; IPVS mixes families only in tunnel mode (TUN); left out",
                    server.address
                ),
            );
            return false;
        }
        true
    }

    fn dropped(&mut self, node: &Node, reason: &str) {
        self.out.note(
            &node.place,
            NoteKind::Dropped,
            format!("`{}`: {reason}", node.text()),
        );
    }
}

struct RealServer<'n> {
    place: &'n Place,
    server: Server,
    check: Option<Checked>,
    inhibit: bool,
}

/// A virtual server's own settings, read before its real servers.
struct Settings {
    protocol: ServiceProtocol,
    scheduler: Scheduler,
    /// `rr` or `lc`, which ignore weights, and where it was written.
    weightless: Option<(String, Place)>,
    mode: ForwardMode,
    persistence: Option<Persistence>,
    onepacket: bool,
    inherited: Inherited,
    inhibit: bool,
    sorry: Option<Node>,
    sorry_mode: Option<(ForwardMode, Place)>,
}

impl Settings {
    /// `None` when the virtual server cannot be converted (reported). A
    /// service that `needs_protocol` and has none is UDP, as in keepalived.
    fn read(node: &Node, needs_protocol: bool, out: &mut Conversion) -> Option<Self> {
        let mut settings = Self {
            protocol: ServiceProtocol::Tcp,
            scheduler: Scheduler::LeastConn,
            weightless: None,
            mode: ForwardMode::Nat,
            persistence: None,
            onepacket: false,
            inherited: Inherited::default(),
            inhibit: false,
            sorry: None,
            sorry_mode: None,
        };
        let mut granularity = None;
        let mut ops = None;
        let mut usable = true;
        let mut protocol_written = false;
        for child in node.children() {
            if settings.inherited.read(child, out) {
                continue;
            }
            let dropped = |out: &mut Conversion, reason: &str| {
                out.note(
                    &child.place,
                    NoteKind::Dropped,
                    format!("`{}`: {reason}", child.text()),
                );
            };
            match child.keyword() {
                "real_server" => {}
                "protocol" => {
                    protocol_written = true;
                    match child.arg(0).map(str::to_ascii_uppercase).as_deref() {
                        Some("TCP") => settings.protocol = ServiceProtocol::Tcp,
                        Some("UDP") => settings.protocol = ServiceProtocol::Udp,
                        Some("SCTP") => {
                            out.note(
                            &child.place,
                            NoteKind::Error,
                            format!(
                                "protocol SCTP: lbconsole balances TCP and UDP only; `{}` is left out",
                                node.text()
                            ),
                        );
                            usable = false;
                        }
                        _ => bad_value(child, out, "TCP, UDP or SCTP"),
                    }
                }
                "lb_algo" | "lvs_sched" => match child.arg(0) {
                    Some(name) if let Some(scheduler) = ipvs_scheduler(name) => {
                        settings.scheduler = scheduler;
                        settings.weightless = matches!(name, "rr" | "lc")
                            .then(|| (name.to_owned(), child.place.clone()));
                    }
                    _ => out.note(
                        &child.place,
                        NoteKind::Error,
                        format!(
                            "`{}`: not an IPVS scheduler; the director keeps leastconn",
                            child.text()
                        ),
                    ),
                },
                "lb_kind" | "lvs_method" => {
                    if let Some(mode) = forward_mode(child, out) {
                        settings.mode = mode;
                    }
                }
                "persistence_timeout" => {
                    let timeout = match child.arg(0) {
                        None => Some(IPVS_PERSISTENCE_S),
                        Some(_) => checks::count(child, out),
                    };
                    if let Some(timeout) = timeout {
                        settings
                            .persistence
                            .get_or_insert_with(Persistence::default)
                            .timeout = Some(timeout);
                    }
                }
                "persistence_granularity" => granularity = Some(child),
                "ops" => ops = Some(child),
                "sorry_server" => settings.sorry = Some(child.clone()),
                "sorry_server_lvs_method" => {
                    settings.sorry_mode =
                        forward_mode(child, out).map(|m| (m, child.place.clone()));
                }
                // lbconsole keeps sorry servers in IPVS at weight 0 while
                // unneeded, which is what this asks.
                "sorry_server_inhibit" => {}
                "inhibit_on_failure" => settings.inhibit = on_off(child),
                // The family follows from the VIP or the servers.
                "ip_family" => {}
                "hashed" | "flag-1" | "flag-2" | "flag-3" | "sh-port" | "sh-fallback"
                | "mh-port" | "mh-fallback" => {
                    dropped(out, "lbconsole sets no IPVS scheduler flags")
                }
                "persistence_engine" => dropped(out, "lbconsole sets no IPVS persistence engine"),
                "ha_suspend" => dropped(
                    out,
                    "lbconsole checks the servers whether or not this box holds the VIPs",
                ),
                "smtp_alert" => dropped(
                    out,
                    "lbconsole sends no mail; each change of state is a log line and an event",
                ),
                "snmp_name" => dropped(out, "lbconsole has no SNMP agent"),
                "quorum" | "hysteresis" | "weight" => dropped(
                    out,
                    "lbconsole has no quorum: a director whose servers are all down serves from its sorry servers",
                ),
                "quorum_up" | "quorum_down" | "omega" => {
                    dropped(
                        out,
                        "lbconsole has no quorum and runs no script on a change of state",
                    );
                }
                _ => {
                    out.note(
                        &child.place,
                        NoteKind::Unknown,
                        format!(
                            "`{}` in virtual_server: unknown keyword; left out",
                            child.keyword()
                        ),
                    );
                }
            }
        }
        // keepalived's own default, which it logs at start ("no protocol set -
        // defaulting to UDP"): the kernel takes protocol 0 as UDP.
        if !protocol_written && usable && needs_protocol {
            settings.protocol = ServiceProtocol::Udp;
            out.note(
                &node.place,
                NoteKind::ToDo,
                "no `protocol`: keepalived defaults to UDP (it says so when it starts), so the director is UDP, as keepalived programs it; write `TCP` on the director's line if TCP was meant",
            );
        }
        if let Some(child) = granularity {
            settings.granularity(child, node, out);
        }
        if let Some(child) = ops {
            if settings.protocol == ServiceProtocol::Udp {
                settings.onepacket = true;
            } else {
                out.note(
                    &child.place,
                    NoteKind::Dropped,
                    "ops: one-packet scheduling works for UDP only, and this virtual server is TCP",
                );
            }
        }
        usable.then_some(settings)
    }

    /// `persistence_granularity`: a dotted netmask, or an IPv6 prefix length.
    fn granularity(&mut self, child: &Node, node: &Node, out: &mut Conversion) {
        let prefix = child.arg(0).and_then(|text| {
            if text.contains('.') {
                let mask: std::net::Ipv4Addr = text.parse().ok()?;
                let bits = u32::from(mask);
                (bits.leading_ones() + bits.trailing_zeros() == 32)
                    .then(|| u8::try_from(bits.leading_ones()).unwrap_or(32))
            } else {
                text.parse::<u8>().ok().filter(|p| (1..=128).contains(p))
            }
        });
        let Some(prefix) = prefix else {
            bad_value(
                child,
                out,
                "a netmask (255.255.255.0) or an IPv6 prefix length",
            );
            return;
        };
        let ipv4 = match node.args() {
            [address, ..] => address
                .parse::<IpAddr>()
                .map_or(true, |a| Family::of(a) == Family::Ipv4),
            [] => true,
        };
        if ipv4 && prefix > 32 {
            bad_value(child, out, "an IPv4 netmask");
            return;
        }
        // keepalived turns persistence on with its default timeout.
        let persistence = self.persistence.get_or_insert_with(|| Persistence {
            timeout: Some(IPVS_PERSISTENCE_S),
            ..Persistence::default()
        });
        persistence.netmask = Some(prefix);
    }
}

fn other_family(family: Family) -> Family {
    match family {
        Family::Ipv4 => Family::Ipv6,
        Family::Ipv6 => Family::Ipv4,
    }
}

/// A condition as written, not negated.
fn condition<T>(value: T) -> Condition<T> {
    Condition {
        negated: false,
        value,
        loc: Loc::default(),
    }
}

/// IPVS's persistence timeout, which keepalived uses when none is written.
const IPVS_PERSISTENCE_S: u32 = 360;

/// `inhibit_on_failure` alone or with `true`/`on`/`yes`.
fn on_off(node: &Node) -> bool {
    !matches!(node.arg(0), Some("false" | "off" | "no" | "0"))
}

/// `lb_kind`/`lvs_method`: NAT, DR or TUN; others reported.
fn forward_mode(node: &Node, out: &mut Conversion) -> Option<ForwardMode> {
    let mode = match node.arg(0) {
        Some("NAT") => ForwardMode::Nat,
        Some("DR") => ForwardMode::Gateway,
        Some("TUN") => ForwardMode::Tunnel,
        Some("FNAT") => {
            out.note(
                &node.place,
                NoteKind::Dropped,
                format!(
                    "`{}`: full NAT is DPVS's, not an IPVS method; the director keeps nat",
                    node.text()
                ),
            );
            return None;
        }
        Some(other) => {
            out.note(
                &node.place,
                NoteKind::Unknown,
                format!(
                    "`{}`: unknown forwarding method {other}; the director keeps nat",
                    node.text()
                ),
            );
            return None;
        }
        None => {
            missing_value(node, out);
            return None;
        }
    };
    if node.args().len() > 1 {
        let (kind, reason) = match mode {
            ForwardMode::Tunnel => (
                NoteKind::Approximated,
                "lbconsole tunnels by IPIP, without options",
            ),
            _ => (
                NoteKind::Dropped,
                "the words after the method mean nothing to lbconsole",
            ),
        };
        out.note(&node.place, kind, format!("`{}`: {reason}", node.text()));
    }
    Some(mode)
}

/// `real_server IP PORT` / `sorry_server IP PORT`; port 0 or none keeps the
/// packet's own port.
fn address_and_port(node: &Node, out: &mut Conversion) -> Option<(IpAddr, Option<Port>)> {
    let address = node.arg(0).and_then(|a| a.parse::<IpAddr>().ok());
    let port = match node.arg(1) {
        None => Some(None),
        Some(port) => port.parse::<u16>().ok().map(Port::new),
    };
    match (address, port) {
        (Some(address), Some(port)) if node.args().len() <= 2 => Some((address, port)),
        _ => {
            out.note(
                &node.place,
                NoteKind::Error,
                format!("`{}`: not an address and a port; left out", node.text()),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// One file, and an include of it that loops.
    struct OneFile(String);

    impl Files for OneFile {
        fn read(&self, _: &Path) -> io::Result<Vec<u8>> {
            Ok(self.0.as_bytes().to_vec())
        }

        fn glob(&self, pattern: &Path) -> io::Result<Vec<PathBuf>> {
            Ok(vec![pattern.to_owned()])
        }
    }

    /// Pieces of real and broken keepalived.conf, strung together at random
    /// (a fixed sequence): each string converts without a panic.
    #[test]
    fn any_string_of_pieces_converts() {
        const PIECES: &[&str] = &[
            "virtual_server 10.0.0.1 80",
            "virtual_server fwmark 3",
            "virtual_server group g",
            "virtual_server_group g",
            "real_server 10.0.1.1 80",
            "real_server ::1 0",
            "sorry_server 10.0.1.9 80",
            "{",
            "}",
            "{ }",
            "\n",
            " ",
            "#",
            "!",
            "\\",
            "\"",
            "$A=",
            "$A",
            "${A}",
            "$B=$A $A",
            "@x ",
            "@^x ",
            "~SEQ(i, 1, 3) ",
            "~SEQ(i,",
            "$i",
            "include k.conf",
            "TCP_CHECK",
            "HTTP_GET",
            "url",
            "path /",
            "status_code 200-299",
            "lb_algo rr",
            "lb_kind FNAT",
            "protocol SCTP",
            "protocol UDP",
            "weight 3",
            "persistence_granularity 255.255.0.0",
            "persistence_granularity 64",
            "ops",
            "10.0.0.1-300 80",
            "10.0.0.0/8 80",
            "2001:db8::1-ffff 80",
            "fwmark 1",
            "delay_loop 0.5",
            "connect_timeout 99999999999",
            "retry 4294967295",
            "vrrp_instance v",
            "virtual_ipaddress",
            "global_defs",
        ];
        let next = |state: u64| {
            state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407)
        };
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..500 {
            let mut text = String::new();
            state = next(state);
            for _ in 0..((state >> 33) % 60) {
                state = next(state);
                let index = usize::try_from(state >> 33).unwrap_or(0) % PIECES.len();
                text.push_str(PIECES[index]);
                text.push(if state >> 41 & 1 == 0 { '\n' } else { ' ' });
            }
            let options = Options {
                instance: (state >> 40 & 1 == 0).then(|| "x".to_owned()),
            };
            let conversion = convert(Path::new("k.conf"), &OneFile(text.clone()), &options)
                .unwrap_or_else(|error| panic!("{error}: {text}"));
            let outcome = conversion.outcome(crate::convert::Source::Keepalived, "k.conf");
            assert!(
                !outcome.has_errors,
                "{text}\n{}\n{:?}",
                outcome.lvs, outcome.check
            );
        }
    }
}

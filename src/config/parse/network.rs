//! Parser for `network.conf`.

use crate::config::diagnostic::{ConfigFile, Diagnostic, Problem, Sink};
use crate::config::model::network::{
    Bond, BondMode, Interface, InterfaceVrrp, LacpRate, LinkKind, NetworkConfig, Route,
    RouteDestination, Vlan, VrrpService, XmitHashPolicy,
};
use crate::config::model::types::{IfName, Loc, Placeholder, Spanned, TableId};

use crate::config::keywords::network::{
    BONDING_OPTIONS, STATEMENTS, TYPES, VRRP_OPTIONS, VRRP_STATEMENTS,
};

use super::lexer::{Cursor, Lexer, Token, ip, ip_net, number, number_in, unknown};
use super::{Seen, name};

pub fn parse(source: &[u8]) -> (NetworkConfig, Vec<Diagnostic>) {
    let mut sink = Sink::new(ConfigFile::Network);
    let mut config = NetworkConfig::default();
    let mut section: Option<Section> = None;
    let mut lexer = Lexer::new(source, ConfigFile::Network);
    while let Some(line) = lexer.next_line() {
        let mut cursor = Cursor::new(line.tokens);
        let keyword = cursor.next_token();
        if line.unreadable || keyword.is_some_and(|k| k.text == "service") {
            if let Some(done) = section.take() {
                done.finish(&mut config, &mut sink);
            }
            // Under a header that cannot be read, statements are still checked,
            // against a scratch section that is then dropped.
            let header = keyword.filter(|_| !line.unreadable);
            let opened = header.map(|k| start_section(k, &mut cursor, &config, &mut sink));
            section = Some(match opened {
                Some(Ok(section)) => section,
                Some(Err(problem)) => {
                    sink.report(problem);
                    Section::Interface(Box::new(InterfaceSection::scratch()))
                }
                None => Section::Interface(Box::new(InterfaceSection::scratch())),
            });
            continue;
        }
        let Some(keyword) = keyword else {
            continue;
        };
        let Some(current) = section.as_mut() else {
            let problem = if STATEMENTS.contains(&keyword.text) {
                Problem::new(keyword.loc, format!("`{}` outside a section", keyword.text))
                    .with_hint(Some("start one with `service network NAME`".to_owned()))
            } else if VRRP_STATEMENTS.contains(&keyword.text) {
                Problem::new(keyword.loc, format!("`{}` outside a section", keyword.text))
                    .with_hint(Some("start one with `service vrrp`".to_owned()))
            } else {
                unknown(keyword, "keyword", STATEMENTS)
            };
            sink.report(problem);
            continue;
        };
        let read = match current {
            Section::Interface(section) => section.statement(keyword, &mut cursor),
            Section::Vrrp(section) => section.statement(keyword, &mut cursor),
        };
        if let Err(problem) = read {
            sink.report(problem);
        }
    }
    if let Some(done) = section.take() {
        done.finish(&mut config, &mut sink);
    }
    (config, lexer.diagnostics_then(sink.diagnostics))
}

/// The section a `service` line opens. A second `service vrrp` is reported and
/// read into a scratch section, so its lines are still checked.
fn start_section(
    service: Token<'_>,
    cursor: &mut Cursor<'_, '_>,
    config: &NetworkConfig,
    sink: &mut Sink,
) -> Result<Section, Problem> {
    let kind = cursor.value("service", "`network` and an interface name, or `vrrp`")?;
    match kind.text {
        "network" => {
            let interface = name::<IfName>(cursor.value("service network", "an interface name")?)?;
            cursor.finish("service network NAME")?;
            Ok(Section::Interface(Box::new(InterfaceSection::new(
                interface,
            ))))
        }
        "vrrp" => {
            cursor.finish("service vrrp")?;
            let mut section = VrrpSection::new(service.loc);
            if let Some(first) = &config.vrrp {
                sink.error_hint(
                    service.loc,
                    format!(
                        "`service vrrp` is already defined on line {}",
                        first.loc.line
                    ),
                    Some("merge the two sections into one".to_owned()),
                );
                section.scratch = true;
            }
            Ok(Section::Vrrp(section))
        }
        _ => Err(Problem::new(
            kind.loc,
            format!(
                "unknown service `{}`; network.conf holds `service network NAME` and `service vrrp` sections",
                kind.text
            ),
        )),
    }
}

enum Section {
    /// Boxed: an interface section is several times the size of `service vrrp`.
    Interface(Box<InterfaceSection>),
    Vrrp(VrrpSection),
}

impl Section {
    fn finish(self, config: &mut NetworkConfig, sink: &mut Sink) {
        match self {
            Self::Interface(section) => config.interfaces.extend(section.finish(sink)),
            Self::Vrrp(section) => section.finish(config),
        }
    }
}

/// The `service vrrp` section as it is read.
struct VrrpSection {
    service: VrrpService,
    seen: Seen<'static>,
    /// A second `service vrrp` (reported): read, checked, then dropped.
    scratch: bool,
}

impl VrrpSection {
    fn new(loc: Loc) -> Self {
        Self {
            service: VrrpService {
                loc,
                ..VrrpService::default()
            },
            seen: Seen::default(),
            scratch: false,
        }
    }

    fn statement(
        &mut self,
        keyword: Token<'_>,
        cursor: &mut Cursor<'_, '_>,
    ) -> Result<(), Problem> {
        match keyword.text {
            "sync-iface" => {
                let interface = name::<IfName>(cursor.value("sync-iface", "an interface name")?)?;
                self.seen.once("sync-iface", keyword)?;
                self.service.sync_iface = Some(interface);
            }
            "peer" => {
                let token = cursor.value("peer", "the other appliance's address")?;
                let address = ip(token)?;
                self.service.peers.push(Spanned::new(address, token.loc));
            }
            "track-health" => {
                let on = on_off(cursor, "track-health")?;
                self.seen.once("track-health", keyword)?;
                self.service.track_health = Some(on);
            }
            "advert" => {
                let token = cursor.value("advert", "an interval in ms")?;
                let interval = number(token, "advertisement interval")?;
                self.seen.once("advert", keyword)?;
                self.service.advert_ms = Some(Spanned::new(interval, token.loc));
            }
            "preempt" => {
                let on = on_off(cursor, "preempt")?;
                self.seen.once("preempt", keyword)?;
                self.service.preempt = Some(on);
            }
            _ if STATEMENTS.contains(&keyword.text) => {
                return Err(Problem::new(
                    keyword.loc,
                    format!(
                        "`{}` belongs in a `service network` section, not in `service vrrp`",
                        keyword.text
                    ),
                ));
            }
            _ => return Err(unknown(keyword, "keyword", VRRP_STATEMENTS)),
        }
        cursor.finish(keyword.text)
    }

    fn finish(self, config: &mut NetworkConfig) {
        if !self.scratch {
            config.vrrp = Some(self.service);
        }
    }
}

/// `on` or `off` (also `yes` or `no`) after `keyword`.
fn on_off(cursor: &mut Cursor<'_, '_>, keyword: &str) -> Result<bool, Problem> {
    let value = cursor.value(keyword, "on or off")?;
    match value.text {
        "on" | "yes" => Ok(true),
        "off" | "no" => Ok(false),
        _ => Err(unknown(
            value,
            &format!("value for `{keyword}`"),
            &["on", "off"],
        )),
    }
}

/// One interface section as it is read; statements may come in any order.
struct InterfaceSection {
    interface: Interface,
    kind: Option<Spanned<&'static str>>,
    bond: Bond,
    bond_seen: Option<Loc>,
    vlan_id: Option<Spanned<u16>>,
    vlan_parent: Option<Spanned<IfName>>,
    vlan_seen: Option<Loc>,
    /// The `vlan` line was wrong (and reported); the section cannot become a VLAN.
    vlan_failed: bool,
    seen: Seen<'static>,
    /// Stands in for a section whose header could not be read; never becomes an interface.
    scratch: bool,
}

impl InterfaceSection {
    fn new(name: Spanned<IfName>) -> Self {
        Self {
            interface: Interface::new(name),
            kind: None,
            bond: Bond::default(),
            bond_seen: None,
            vlan_id: None,
            vlan_parent: None,
            vlan_seen: None,
            vlan_failed: false,
            seen: Seen::default(),
            scratch: false,
        }
    }

    fn scratch() -> Self {
        Self {
            scratch: true,
            ..Self::new(Spanned::unplaced(IfName::placeholder()))
        }
    }

    fn statement(
        &mut self,
        keyword: Token<'_>,
        cursor: &mut Cursor<'_, '_>,
    ) -> Result<(), Problem> {
        match keyword.text {
            "type" => {
                let value = cursor.value("type", "ethernet, bonding or vlan")?;
                let kind = TYPES
                    .iter()
                    .find(|&&t| t == value.text)
                    .ok_or_else(|| unknown(value, "interface type", TYPES))?;
                self.seen.once("type", keyword)?;
                self.kind = Some(Spanned::new(kind, value.loc));
            }
            "bonding" => self.bonding(cursor)?,
            "slave" | "slaves" => {
                let mut any = false;
                while let Some(token) = cursor.next_token() {
                    self.bond.slaves.push(name::<IfName>(token)?);
                    any = true;
                }
                if !any {
                    return Err(Problem::new(
                        cursor.end_loc(),
                        "`slave` needs one or more interface names",
                    ));
                }
                self.bond_seen.get_or_insert(keyword.loc);
            }
            "vlan" => {
                if let Err(problem) = self.vlan(keyword, cursor) {
                    self.vlan_failed = true;
                    return Err(problem);
                }
            }
            "mtu" => {
                let token = cursor.value("mtu", "a size in bytes")?;
                let loc = token.loc;
                let mtu = number_in(token, "MTU", 68..=65535)?;
                self.seen.once("mtu", keyword)?;
                self.interface.mtu = Some(Spanned::new(mtu, loc));
            }
            "auto" => {
                let on = on_off(cursor, "auto")?;
                self.seen.once("auto", keyword)?;
                self.interface.auto = Some(on);
            }
            "ip" => self.ip(cursor)?,
            "vrrp" => self.vrrp(keyword, cursor)?,
            _ if VRRP_STATEMENTS.contains(&keyword.text) => {
                return Err(Problem::new(
                    keyword.loc,
                    format!(
                        "`{}` belongs in the `service vrrp` section, not in `service network`",
                        keyword.text
                    ),
                ));
            }
            _ => return Err(unknown(keyword, "keyword", STATEMENTS)),
        }
        cursor.finish(keyword.text)
    }

    fn bonding(&mut self, cursor: &mut Cursor<'_, '_>) -> Result<(), Problem> {
        let option = cursor.value("bonding", "an option (mode, miimon, primary, …)")?;
        let needs = match option.text {
            "mode" => "a bonding mode",
            "miimon" => "an interval in ms",
            "updelay" | "downdelay" => "a delay in ms",
            "primary" => "a slave interface",
            "xmit-hash-policy" => "a transmit hash policy",
            "lacp-rate" => "slow or fast",
            _ => return Err(unknown(option, "bonding option", BONDING_OPTIONS)),
        };
        let token = cursor.value(&format!("bonding {}", option.text), needs)?;
        let milliseconds = |token| number_in(token, "delay", 0..=i32::MAX as u32);
        match option.text {
            "mode" => {
                let mode = BondMode::from_keyword(token.text).ok_or_else(|| {
                    unknown(token, "bonding mode", &BondMode::ALL.map(BondMode::keyword))
                })?;
                self.bond.mode = Some(mode);
            }
            "miimon" => self.bond.miimon = Some(milliseconds(token)?),
            "updelay" => self.bond.updelay = Some(milliseconds(token)?),
            "downdelay" => self.bond.downdelay = Some(milliseconds(token)?),
            "primary" => self.bond.primary = Some(name::<IfName>(token)?),
            "xmit-hash-policy" => {
                let policy = XmitHashPolicy::from_keyword(token.text).ok_or_else(|| {
                    unknown(
                        token,
                        "transmit hash policy",
                        &XmitHashPolicy::ALL.map(XmitHashPolicy::keyword),
                    )
                })?;
                self.bond.xmit_hash_policy = Some(policy);
            }
            _ => {
                let rate = LacpRate::from_keyword(token.text)
                    .ok_or_else(|| unknown(token, "LACP rate", &["slow", "fast"]))?;
                self.bond.lacp_rate = Some(rate);
            }
        }
        self.seen
            .once_named(format!("bonding {}", option.text), option.loc)?;
        self.bond_seen.get_or_insert(option.loc);
        Ok(())
    }

    fn vlan(&mut self, keyword: Token<'_>, cursor: &mut Cursor<'_, '_>) -> Result<(), Problem> {
        let mut id = None;
        let mut parent = None;
        while let Some(word) = cursor.next_token() {
            match word.text {
                "id" => {
                    let token = cursor.value("vlan id", "a VLAN id 1-4094")?;
                    let value = number_in(token, "VLAN id", 1..=4094)?;
                    id = Some(Spanned::new(value as u16, token.loc));
                }
                "parent" => {
                    parent = Some(name::<IfName>(
                        cursor.value("vlan parent", "an interface name")?,
                    )?)
                }
                _ => return Err(unknown(word, "vlan option", &["id", "parent"])),
            }
        }
        if id.is_none() && parent.is_none() {
            return Err(Problem::new(
                cursor.end_loc(),
                "`vlan` needs `id N parent IF`",
            ));
        }
        self.seen.once("vlan", keyword)?;
        self.vlan_id = id;
        self.vlan_parent = parent;
        self.vlan_seen = Some(keyword.loc);
        Ok(())
    }

    fn ip(&mut self, cursor: &mut Cursor<'_, '_>) -> Result<(), Problem> {
        let what = cursor.value("ip", "`address` or `route`")?;
        match what.text {
            "address" => {
                let token = cursor.value("ip address", "an address such as 192.168.0.10/24")?;
                let net = ip_net(token, false)?;
                self.interface.addresses.push(Spanned::new(net, token.loc));
            }
            "route" => {
                let dest_token =
                    cursor.value("ip route", "a destination (`default` or NET/PREFIX)")?;
                let destination = if dest_token.text == "default" {
                    RouteDestination::Default
                } else {
                    RouteDestination::Net(ip_net(dest_token, true)?)
                };
                let gateway = ip(cursor.value("ip route DEST", "a gateway address")?)?;
                let table = if cursor.eat("table") {
                    let token = cursor.value("table", "a routing table id")?;
                    let id = TableId::new(number(token, "routing table id")?)
                        .map_err(|message| Problem::new(token.loc, message))?;
                    Some(Spanned::new(id, token.loc))
                } else {
                    None
                };
                self.interface.routes.push(Route {
                    destination,
                    gateway,
                    table,
                    loc: dest_token.loc,
                });
            }
            _ => return Err(unknown(what, "`ip` statement", &["address", "route"])),
        }
        Ok(())
    }

    /// `vrrp id N`, `vrrp prio N` or `vrrp address A/P`; ranges are the validator's.
    fn vrrp(&mut self, keyword: Token<'_>, cursor: &mut Cursor<'_, '_>) -> Result<(), Problem> {
        let option = cursor.value("vrrp", "`id`, `prio` or `address`")?;
        match option.text {
            "id" => {
                let token = cursor.value("vrrp id", "a virtual router id 1-255")?;
                let id = number(token, "VRRP id")?;
                self.seen.once_named("vrrp id", option.loc)?;
                self.vrrp_lines(keyword).id = Some(Spanned::new(id, token.loc));
            }
            "prio" => {
                let token = cursor.value("vrrp prio", "a priority 1-254")?;
                let prio = number(token, "VRRP priority")?;
                self.seen.once_named("vrrp prio", option.loc)?;
                self.vrrp_lines(keyword).prio = Some(Spanned::new(prio, token.loc));
            }
            "address" => {
                let token = cursor.value("vrrp address", "an address such as 10.0.0.100/24")?;
                let net = ip_net(token, false)?;
                let line = Spanned::new(net, token.loc);
                self.vrrp_lines(keyword).addresses.push(line);
            }
            _ => return Err(unknown(option, "vrrp option", VRRP_OPTIONS)),
        }
        Ok(())
    }

    /// The interface's `vrrp` lines, started at `keyword` if this is the first.
    fn vrrp_lines(&mut self, keyword: Token<'_>) -> &mut InterfaceVrrp {
        self.interface.vrrp.get_or_insert_with(|| InterfaceVrrp {
            loc: keyword.loc,
            ..InterfaceVrrp::default()
        })
    }

    /// Settles the interface's kind once the whole section has been read.
    fn finish(self, sink: &mut Sink) -> Option<Interface> {
        let Self {
            mut interface,
            kind,
            mut bond,
            bond_seen,
            vlan_id,
            vlan_parent,
            vlan_seen,
            vlan_failed,
            scratch,
            ..
        } = self;
        if scratch {
            return None;
        }
        let kind_word = kind.as_ref().map_or("ethernet", |k| k.value);
        if let Some(loc) = bond_seen
            && kind_word != "bonding"
        {
            sink.error_hint(
                loc,
                format!(
                    "bonding settings on `{}`, which is not a bond",
                    interface.name.value
                ),
                Some("add `type bonding` to the section".to_owned()),
            );
        }
        if let Some(loc) = vlan_seen
            && kind_word != "vlan"
        {
            sink.error_hint(
                loc,
                format!("`vlan` on `{}`, which is not a VLAN", interface.name.value),
                Some("add `type vlan` to the section".to_owned()),
            );
        }
        interface.kind = match kind_word {
            "bonding" => {
                bond.loc = kind.map_or(interface.name.loc, |k| k.loc);
                LinkKind::Bonding(bond)
            }
            "vlan" => match (vlan_id, vlan_parent) {
                (Some(id), Some(parent)) => LinkKind::Vlan(Vlan { id, parent }),
                _ if vlan_failed => return None,
                _ => {
                    let loc = vlan_seen
                        .or(kind.map(|k| k.loc))
                        .unwrap_or(interface.name.loc);
                    sink.error(
                        loc,
                        format!(
                            "VLAN `{}` needs `vlan id N parent IF`",
                            interface.name.value
                        ),
                    );
                    return None;
                }
            },
            _ => LinkKind::Ethernet,
        };
        Some(interface)
    }
}

//! PURE: `flows.conf` as one nftables ruleset in our own table, and the policy
//! routing rules that send `table N` marks to their table.
//!
//! The ruleset is built here as data (the `nftables` crate's JSON schema) and
//! sent as one atomic batch by `kernel::nft`; building it needs no kernel, so
//! it is tested and benchmarked on its own.
//!
//! Layout of `table inet lbconsole`:
//! - `incoming` (prerouting, before routing and IPVS): loopback, IPv6
//!   neighbour discovery and packets of known connections pass (the latter get their connection's mark
//!   back, so a whole connection follows its first packet's `table N`); so do
//!   IPVS NAT replies from real servers, which conntrack cannot place. Every
//!   other packet jumps to each flow's chain in file order, or finds it in a
//!   verdict map when the flow is simple (`plan::flow_match`).
//! - `outgoing` (a `route` chain on output, so a changed mark re-routes the
//!   packet): IPVS's own forwarded packets, health checks and neighbour
//!   discovery pass; every other
//!   locally sent packet — replies included — jumps to each outflow's chain.
//! - one chain per flow (`in-NAME`) or outflow (`out-NAME`): `ignore` returns,
//!   `match` applies the policy. A counter on every rule.
//! - `deny`: drops new traffic; a packet of a known connection is let through,
//!   so `alltherest deny` never cuts a permitted connection's replies.
//! - IPv4 and IPv6 are judged alike; a rule that names addresses or an ICMP
//!   protocol matches only its family.
//! - an empty chain whose name carries the ruleset's fingerprint, so
//!   `nft list` shows which ruleset is loaded.
//!
//! Changing the flows changes only what differs: every named object (chain,
//! set, map) has a hash of its declaration and of its content (rules,
//! elements); against the hashes of the last apply the planner flushes and
//! refills, adds or deletes just the objects that differ, in one batch, so the
//! counters of the others carry on. Those hashes are only trusted while the
//! kernel's ruleset generation is the one our last apply left (see
//! `kernel::nft`): any other change, a hand edit included, means a full
//! replace.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use nftables::expr::{Expression, Meta, MetaKey, NamedExpression, Payload, PayloadField, Prefix};
use nftables::schema::{
    Chain, Element, FlushObject, Map, NfCmd, NfListObject, NfObject, Nftables, Rule, Set, SetType,
    SetTypeValue, Table,
};
use nftables::stmt::{Counter, JumpTarget, Mangle, Match, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use crate::config::model::flows::{Conditions, Direction, Flow, FlowsConfig, Policy, RuleAction};
use crate::config::model::lvs::{ForwardMode, LvsConfig, ServiceProtocol};
use crate::config::model::types::{Family, IpNet, PortRange, Protocol, TableId};
use crate::plan::flow_match::{self, Matching, Step};
use crate::plan::ipvs::director_marks;
use crate::plan::nft_text;

/// Our table; nothing else in the kernel's ruleset is ever touched.
pub const TABLE: &str = "lbconsole";
/// Marks that send a packet to routing table N are `TABLE_MARK_BASE + N`.
pub const TABLE_MARK_BASE: u32 = 0x0002_0000;
/// The socket mark the health checker sends with; outflows never judge it.
pub const HEALTH_CHECK_MARK: u32 = 0x0004_0000;
/// Priority of our `ip rule fwmark … lookup N` rules: before `main` (32766).
pub const RULE_PRIORITY: u32 = 1000;

const INCOMING: &str = "incoming";
const OUTGOING: &str = "outgoing";
const DENY: &str = "deny";
const FINGERPRINT_PREFIX: &str = "ruleset-";
/// nft's priority name `mangle`: before routing and before IPVS (LOCAL_IN).
const MANGLE_PRIORITY: i32 = -150;

/// The mark a `table N` policy sets.
pub fn table_mark(table: TableId) -> u32 {
    TABLE_MARK_BASE + table.get()
}

/// An `ip [-6] rule fwmark MARK lookup TABLE`, tagged with our protocol number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct MarkRule {
    pub family: Family,
    pub mark: u32,
    pub table: u32,
}

impl fmt::Display for MarkRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let six = if self.family == Family::Ipv6 {
            "-6 "
        } else {
            ""
        };
        write!(
            f,
            "{six}rule fwmark {:#x} lookup {} priority {RULE_PRIORITY}",
            self.mark, self.table
        )
    }
}

/// The routing rules the flows need: per table a flow or outflow routes to, one
/// for each family, since a mark is set on IPv4 and IPv6 packets alike.
pub fn mark_rules(flows: &FlowsConfig) -> BTreeSet<MarkRule> {
    flows
        .flows
        .iter()
        .filter(|flow| !flow.rules.is_empty())
        .filter_map(|flow| match &flow.policy.value {
            Policy::Table(table) => Some(*table),
            _ => None,
        })
        .flat_map(|table| {
            [Family::Ipv4, Family::Ipv6].map(|family| MarkRule {
                family,
                mark: table_mark(table),
                table: table.get(),
            })
        })
        .collect()
}

/// The whole table as one batch, as typed commands (sent as nft text, `plan::nft_text`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    pub batch: Nftables<'static>,
    /// What the marker chain's name says; equal fingerprints, equal rulesets.
    pub fingerprint: String,
    /// How many rules each chain has.
    pub rule_counts: BTreeMap<String, usize>,
    /// Each named object's hashes, which the next apply compares with.
    pub objects: ObjectHashes,
}

/// A named object of our table as `chain NAME`, `set NAME` or `map NAME`;
/// anything else the batch adds is under [`OTHER_OBJECTS`].
pub type ObjectHashes = BTreeMap<String, ObjectHash>;

/// Objects the diff does not know how to change one by one: when they differ,
/// the table is replaced whole.
pub const OTHER_OBJECTS: &str = "other";

/// Hashes of one named object: of its declaration (a chain's hook, a set's
/// type) and of what it holds (a chain's rules in order, a set's elements).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectHash {
    pub declaration: u64,
    pub content: u64,
}

/// What the kernel's `table inet lbconsole` holds, as far as planning cares:
/// its chains (`nft list chains` is cheap, where listing 10,000 flows' rules
/// takes seconds), among them the fingerprint chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableState {
    pub fingerprint: Option<String>,
    pub chains: BTreeSet<String>,
    /// Each object's hashes, only when it is certain the table holds exactly
    /// what our last apply put there (the kernel's ruleset generation has not
    /// moved since); `None` otherwise, and then only a full replace is safe.
    pub objects: Option<ObjectHashes>,
    /// The kernel's ruleset generation the observation was made at.
    pub generation: Option<u32>,
}

impl TableState {
    /// Reads our table's chains out of an `nft -j list chains` (or `list
    /// table`) listing; `None` when our table has none, so is not there.
    pub fn from_listing(listing: &Nftables<'_>) -> Option<Self> {
        let chains = listing.objects.iter().filter_map(|object| match object {
            NfObject::ListObject(NfListObject::Chain(chain))
                if chain.table == TABLE && chain.family == NfFamily::INet =>
            {
                Some(chain.name.to_string())
            }
            _ => None,
        });
        let state = Self::from_chains(chains);
        (!state.chains.is_empty()).then_some(state)
    }

    /// A table known to hold exactly `objects` (the record of our last apply,
    /// at an unchanged ruleset `generation`).
    pub fn known(objects: ObjectHashes, generation: u32) -> Self {
        let chains = objects
            .keys()
            .filter_map(|key| key.strip_prefix(CHAIN_KEY))
            .map(str::to_owned);
        Self {
            objects: Some(objects.clone()),
            generation: Some(generation),
            ..Self::from_chains(chains)
        }
    }

    fn from_chains(chains: impl Iterator<Item = String>) -> Self {
        let mut state = Self::default();
        for chain in chains {
            if let Some(fingerprint) = chain.strip_prefix(FINGERPRINT_PREFIX) {
                state.fingerprint = Some(fingerprint.to_owned());
            }
            state.chains.insert(chain);
        }
        state
    }
}

/// The change to our nft table one apply makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirewallOp {
    /// Replaces the whole table (creating it if needed) in one transaction.
    Install(Ruleset),
    /// Changes only the objects that differ, in one transaction.
    Update(Update),
    Remove,
}

impl fmt::Display for FirewallOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Install(ruleset) => {
                let chains = ruleset.rule_counts.len();
                let rules: usize = ruleset.rule_counts.values().sum();
                write!(
                    f,
                    "install nftables table inet {TABLE} ({chains} chains, {rules} rules)"
                )
            }
            Self::Update(update) => write!(f, "update nftables table inet {TABLE} ({update})"),
            Self::Remove => write!(f, "remove nftables table inet {TABLE}"),
        }
    }
}

/// A change to some of the table's objects, leaving the others (and their
/// counters) as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The whole table afterwards: what the kernel's record will say.
    pub ruleset: Ruleset,
    /// The commands: new objects, then the changed ones flushed and refilled,
    /// then the removed ones flushed and deleted, so that no jump or set
    /// reference ever points at something missing.
    pub batch: Nftables<'static>,
    /// The ruleset generation the plan was made at: should the kernel's have
    /// moved by the time the batch goes, the plan is stale.
    pub generation: u32,
    /// `replace chain in-web`, `add set x`, `remove chain out-y`, in that order.
    pub changes: Vec<String>,
}

impl fmt::Display for Update {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 5;
        let shown = self.changes.iter().take(SHOWN).cloned().collect::<Vec<_>>();
        write!(f, "{}", shown.join(", "))?;
        if self.changes.len() > SHOWN {
            write!(f, " and {} more", self.changes.len() - SHOWN)?;
        }
        Ok(())
    }
}

/// Whether the kernel's table must change to become `desired`; `None` when the
/// flows would produce no table at all and none is there, or when the table is
/// known to be `desired` already.
pub fn diff(observed: Option<&TableState>, desired: Option<&Ruleset>) -> Option<FirewallOp> {
    match (observed, desired) {
        (None, None) => None,
        (Some(_), None) => Some(FirewallOp::Remove),
        (Some(state), Some(ruleset)) => match (&state.objects, state.generation) {
            (Some(known), _) if *known == ruleset.objects => None,
            (Some(known), Some(generation)) => Some(
                update(known, ruleset, generation)
                    .map_or_else(|| FirewallOp::Install(ruleset.clone()), FirewallOp::Update),
            ),
            // Not known for certain (a hand edit, another program's change, no
            // record): only a full replace is sure to end as `desired`.
            _ => Some(FirewallOp::Install(ruleset.clone())),
        },
        (None, Some(ruleset)) => Some(FirewallOp::Install(ruleset.clone())),
    }
}

const CHAIN_KEY: &str = "chain ";
const SET_KEY: &str = "set ";
const MAP_KEY: &str = "map ";

/// What an update does to one object of the desired table.
#[derive(Debug, PartialEq, Eq)]
enum Change {
    Same,
    Added,
    Refilled,
}

/// An update's commands in the order they must run.
#[derive(Default)]
struct Commands {
    declared: Vec<NfObject<'static>>,
    flushed: Vec<NfObject<'static>>,
    filled: Vec<NfObject<'static>>,
    changes: Vec<String>,
}

impl Commands {
    /// A set's or map's part: a new one is added with its elements; a changed
    /// one is flushed and given its elements again.
    fn set(
        &mut self,
        key: &str,
        change: Change,
        object: &NfListObject<'static>,
        flush: FlushObject<'static>,
        elements: Option<&Cow<'static, [Expression<'static>]>>,
    ) {
        match change {
            Change::Same => {}
            Change::Added => {
                self.declared.push(add(object.clone()));
                self.changes.push(format!("add {key}"));
            }
            Change::Refilled => {
                let name = key.split_once(' ').map_or(key, |(_, name)| name);
                self.flushed.push(NfObject::CmdObject(NfCmd::Flush(flush)));
                if let Some(elements) = elements.filter(|elements| !elements.is_empty()) {
                    self.filled.push(add(NfListObject::Element(Element {
                        family: NfFamily::INet,
                        table: TABLE.into(),
                        name: name.to_owned().into(),
                        elem: elements.clone(),
                    })));
                }
                self.changes.push(format!("replace {key}"));
            }
        }
    }
}

/// The commands that turn the table `known` describes into `desired`, object
/// by object; `None` when only a full replace can do it (a base chain's hook or
/// a set's type changed, or an object the diff does not know).
fn update(known: &ObjectHashes, desired: &Ruleset, generation: u32) -> Option<Update> {
    let change = |key: &str| -> Option<Change> {
        match (known.get(key), desired.objects.get(key)) {
            (Some(old), Some(new)) if old == new => Some(Change::Same),
            (Some(old), Some(new)) if old.declaration == new.declaration => Some(Change::Refilled),
            (None, Some(_)) => Some(Change::Added),
            _ => None,
        }
    };
    if known.get(OTHER_OBJECTS) != desired.objects.get(OTHER_OBJECTS) {
        return None;
    }
    let mut commands = Commands::default();
    for object in desired.batch.objects.iter() {
        let NfObject::CmdObject(NfCmd::Add(object)) = object else {
            continue;
        };
        match object {
            NfListObject::Table(_) => {}
            NfListObject::Chain(chain) => {
                let key = object_key(CHAIN_KEY, &chain.name);
                match change(&key)? {
                    Change::Same => {}
                    Change::Added => {
                        commands.declared.push(add(object.clone()));
                        commands.changes.push(format!("add {key}"));
                    }
                    Change::Refilled => {
                        commands.flushed.push(NfObject::CmdObject(NfCmd::Flush(
                            FlushObject::Chain(name_only_chain(&chain.name)),
                        )));
                        commands.changes.push(format!("replace {key}"));
                    }
                }
            }
            NfListObject::Rule(rule) => {
                if change(&object_key(CHAIN_KEY, &rule.chain))? != Change::Same {
                    commands.filled.push(add(object.clone()));
                }
            }
            NfListObject::Set(set) => {
                let key = object_key(SET_KEY, &set.name);
                let flush = FlushObject::Set(Box::new(Set {
                    elem: None,
                    ..(**set).clone()
                }));
                commands.set(&key, change(&key)?, object, flush, set.elem.as_ref());
            }
            NfListObject::Map(map) => {
                let key = object_key(MAP_KEY, &map.name);
                let flush = FlushObject::Map(Box::new(Map {
                    elem: None,
                    ..(**map).clone()
                }));
                commands.set(&key, change(&key)?, object, flush, map.elem.as_ref());
            }
            _ => return None,
        }
    }
    // Flushed first, so that a removed chain's jumps and set references are
    // gone before anything is deleted.
    let mut emptied = Vec::new();
    let mut deleted = Vec::new();
    for key in known
        .keys()
        .filter(|key| !desired.objects.contains_key(*key))
    {
        let removed = if let Some(name) = key.strip_prefix(CHAIN_KEY) {
            emptied.push(NfObject::CmdObject(NfCmd::Flush(FlushObject::Chain(
                name_only_chain(name),
            ))));
            NfListObject::Chain(name_only_chain(name))
        } else if let Some(name) = key.strip_prefix(SET_KEY) {
            NfListObject::Set(Box::new(Set {
                family: NfFamily::INet,
                table: TABLE.into(),
                name: name.to_owned().into(),
                ..Set::default()
            }))
        } else if let Some(name) = key.strip_prefix(MAP_KEY) {
            NfListObject::Map(Box::new(Map {
                family: NfFamily::INet,
                table: TABLE.into(),
                name: name.to_owned().into(),
                ..Map::default()
            }))
        } else {
            return None;
        };
        deleted.push(NfObject::CmdObject(NfCmd::Delete(removed)));
        commands.changes.push(format!("remove {key}"));
    }
    let batch = [
        commands.declared,
        commands.flushed,
        commands.filled,
        emptied,
        deleted,
    ]
    .concat();
    Some(Update {
        ruleset: desired.clone(),
        batch: Nftables {
            objects: batch.into(),
        },
        generation,
        changes: commands.changes,
    })
}

fn object_key(kind: &str, name: &str) -> String {
    format!("{kind}{name}")
}

fn name_only_chain(name: &str) -> Chain<'static> {
    Chain {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: name.to_owned().into(),
        ..Chain::default()
    }
}

fn add(object: NfListObject<'static>) -> NfObject<'static> {
    NfObject::CmdObject(NfCmd::Add(object))
}

/// The comment on a flow's jump (`flow NAME`) and on each of its rules
/// (`flow NAME rule K`), by which `status` puts counters back on the file.
pub fn rule_comment(direction: Direction, name: &str, rule: Option<usize>) -> String {
    match rule {
        Some(index) => format!("{} {name} rule {index}", direction.keyword()),
        None => format!("{} {name}", direction.keyword()),
    }
}

/// The counter of one flow (`rule: None`, every packet that entered the flow)
/// or of one of its rules, read back from the rule's comment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FlowCounter {
    pub direction: Direction,
    pub flow: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<usize>,
    pub packets: u64,
    pub bytes: u64,
}

/// Every counter of our table's listing that carries a flow's comment, in the
/// listing's order (file order). A batch of `add` commands reads as all zeros.
pub fn counters(listing: &Nftables<'_>) -> Vec<FlowCounter> {
    let mut found = Vec::new();
    for object in listing.objects.iter() {
        let (NfObject::ListObject(NfListObject::Rule(rule))
        | NfObject::CmdObject(NfCmd::Add(NfListObject::Rule(rule)))) = object
        else {
            continue;
        };
        let Some((direction, flow, index)) = rule.comment.as_deref().and_then(parse_comment) else {
            continue;
        };
        let counted = rule.expr.iter().find_map(|statement| match statement {
            Statement::Counter(Counter::Anonymous(counter)) => {
                Some(counter.clone().unwrap_or_default())
            }
            _ => None,
        });
        if let Some(counter) = counted {
            found.push(FlowCounter {
                direction,
                flow: flow.to_owned(),
                rule: index,
                packets: counter.packets.unwrap_or(0) as u64,
                bytes: counter.bytes.unwrap_or(0) as u64,
            });
        }
    }
    found
}

/// The inverse of [`rule_comment`].
fn parse_comment(comment: &str) -> Option<(Direction, &str, Option<usize>)> {
    let (keyword, rest) = comment.split_once(' ')?;
    let direction = match keyword {
        "flow" => Direction::In,
        "outflow" => Direction::Out,
        _ => return None,
    };
    match rest.split_once(" rule ") {
        Some((name, index)) => Some((direction, name, Some(index.parse().ok()?))),
        None => Some((direction, rest, None)),
    }
}

/// Renders the flows: `None` when no flow or outflow takes part (all `skip`),
/// so an unused feature leaves no table behind. Simple flows are looked up
/// (see [`flow_match`]).
pub fn render(flows: &FlowsConfig, lvs: &LvsConfig) -> Option<Ruleset> {
    render_with(flows, lvs, Matching::Lookup)
}

/// Renders the flows with the base chains reaching them as `matching` says:
/// [`Matching::Walk`] is the plain rendering lookups are checked against.
pub fn render_with(flows: &FlowsConfig, lvs: &LvsConfig, matching: Matching) -> Option<Ruleset> {
    let active: Vec<&Flow> = flows.active().collect();
    if active.is_empty() {
        return None;
    }
    let marks = director_marks(lvs);
    let mut builder = Builder::default();
    builder.add(NfListObject::Table(Table {
        family: NfFamily::INet,
        name: TABLE.into(),
        handle: None,
    }));
    let (nat_services, nat_hosts) = nat_replies(lvs);
    for family in [Family::Ipv4, Family::Ipv6] {
        let address_type = match family {
            Family::Ipv4 => SetType::Ipv4Addr,
            Family::Ipv6 => SetType::Ipv6Addr,
        };
        builder.add(set(
            &nat_set(NAT_REPLIES, family),
            SetTypeValue::Concatenated(Cow::Owned(vec![
                address_type,
                SetType::InetProto,
                SetType::InetService,
            ])),
            nat_services
                .iter()
                .filter(|(addr, _, _)| Family::of(*addr) == family)
                .map(|&(addr, proto, port)| {
                    Expression::Named(NamedExpression::Concat(vec![
                        address(addr),
                        Expression::String(proto.into()),
                        Expression::Number(port.into()),
                    ]))
                })
                .collect(),
        ));
        builder.add(set(
            &nat_set(NAT_REPLY_HOSTS, family),
            SetTypeValue::Single(address_type),
            nat_hosts
                .iter()
                .filter(|addr| Family::of(**addr) == family)
                .map(|&addr| address(addr))
                .collect(),
        ));
    }

    builder.base_chain(INCOMING, NfChainType::Filter, NfHook::Prerouting);
    builder.base_chain(OUTGOING, NfChainType::Route, NfHook::Output);
    builder.chain(DENY);

    builder.rule(
        INCOMING,
        vec![equals(meta(MetaKey::Iifname), string("lo")), accept()],
        "loopback",
    );
    builder.rule(INCOMING, neighbour_discovery(), "IPv6 neighbour discovery");
    let mut restore_mark = vec![is_in(ct_state(), established_or_related())];
    restore_mark.extend(set_mark_from_connection());
    builder.rule(
        INCOMING,
        [restore_mark.clone(), vec![accept()]].concat(),
        "known connections with a mark",
    );
    builder.rule(
        INCOMING,
        vec![is_in(ct_state(), established_or_related()), accept()],
        "known connections",
    );
    for family in [Family::Ipv4, Family::Ipv6] {
        let source = payload(address_protocol(family), "saddr");
        builder.rule(
            INCOMING,
            vec![
                equals(
                    Expression::Named(NamedExpression::Concat(vec![
                        source.clone(),
                        meta(MetaKey::L4proto),
                        payload("th", "sport"),
                    ])),
                    string(&format!("@{}", nat_set(NAT_REPLIES, family))),
                ),
                accept(),
            ],
            &format!("IPVS NAT replies ({family})"),
        );
        builder.rule(
            INCOMING,
            vec![
                equals(
                    source,
                    string(&format!("@{}", nat_set(NAT_REPLY_HOSTS, family))),
                ),
                accept(),
            ],
            &format!("IPVS NAT replies, any port ({family})"),
        );
    }
    builder.rule(
        OUTGOING,
        vec![equals(ct_state(), string("untracked")), accept()],
        "IPVS forwarding",
    );
    builder.rule(
        OUTGOING,
        vec![
            equals(
                Expression::BinaryOperation(Box::new(nftables::expr::BinaryOperation::AND(
                    meta(MetaKey::Mark),
                    Expression::Number(HEALTH_CHECK_MARK),
                ))),
                Expression::Number(HEALTH_CHECK_MARK),
            ),
            accept(),
        ],
        "health checks",
    );
    builder.rule(OUTGOING, neighbour_discovery(), "IPv6 neighbour discovery");
    builder.rule(OUTGOING, restore_mark, "known connections keep their mark");
    builder.rule(
        DENY,
        vec![is_in(ct_state(), established_or_related()), accept()],
        "known connections are never cut",
    );
    builder.rule(DENY, vec![Statement::Drop(None)], "new traffic");

    for step in flow_match::steps(active, matching) {
        match step {
            Step::Walk(flow) => {
                let chain = flow_match::flow_chain(flow);
                builder.chain(&chain);
                builder.rule(
                    base_chain(flow.direction),
                    vec![
                        Statement::Counter(Counter::Anonymous(None)),
                        Statement::Jump(JumpTarget {
                            target: chain.clone().into(),
                        }),
                    ],
                    &rule_comment(flow.direction, flow.name.as_str(), None),
                );
                flow_rules(&mut builder, flow, &chain, &marks);
            }
            Step::Lookup(flows) => {
                for flow in &flows {
                    let chain = flow_match::flow_chain(flow);
                    builder.chain(&chain);
                    // What the map sent here: the flow's counter, which the
                    // jump carries when flows are walked.
                    builder.rule(
                        &chain,
                        vec![Statement::Counter(Counter::Anonymous(None))],
                        &rule_comment(flow.direction, flow.name.as_str(), None),
                    );
                    flow_rules(&mut builder, flow, &chain, &marks);
                }
                for family in [Family::Ipv4, Family::Ipv6] {
                    if let Some(lookup) = flow_match::dispatch(&flows, family) {
                        builder.rule(
                            base_chain(flows[0].direction),
                            vec![lookup],
                            &flow_match::dispatch_comment(&flows, family),
                        );
                    }
                }
            }
        }
    }
    Some(builder.finish())
}

fn base_chain(direction: Direction) -> &'static str {
    match direction {
        Direction::In => INCOMING,
        Direction::Out => OUTGOING,
    }
}

/// A flow's rules in its chain: `ignore` returns, `match` applies the policy.
fn flow_rules(builder: &mut Builder, flow: &Flow, chain: &str, marks: &BTreeMap<String, u32>) {
    let verdict = verdict(flow, marks);
    for (index, rule) in flow.rules.iter().enumerate() {
        let mut statements = conditions(&rule.conditions, flow.direction);
        statements.push(Statement::Counter(Counter::Anonymous(None)));
        match rule.action {
            RuleAction::Ignore => statements.push(Statement::Return(None)),
            RuleAction::Match => statements.extend(verdict.iter().cloned()),
        }
        builder.rule(
            chain,
            statements,
            &rule_comment(flow.direction, flow.name.as_str(), Some(index + 1)),
        );
    }
}

/// The statements a `match` ends with.
fn verdict(flow: &Flow, marks: &BTreeMap<String, u32>) -> Vec<Statement<'static>> {
    let mark = match &flow.policy.value {
        Policy::Permit => return vec![accept()],
        Policy::Deny => {
            return vec![Statement::Jump(JumpTarget {
                target: DENY.into(),
            })];
        }
        Policy::Skip => return Vec::new(),
        // Validation guarantees the director exists and has a mark; should the
        // config not have been validated, the packet is simply not marked.
        Policy::Director(name) => match marks.get(name.as_str()) {
            Some(mark) => *mark,
            None => return vec![accept()],
        },
        Policy::Table(table) => table_mark(*table),
    };
    let mut statements = vec![Statement::Mangle(Mangle {
        key: meta(MetaKey::Mark),
        value: Expression::Number(mark),
    })];
    if flow.direction == Direction::In {
        // The connection remembers the mark for its later packets and replies.
        statements.push(Statement::Mangle(Mangle {
            key: ct("mark"),
            value: meta(MetaKey::Mark),
        }));
    }
    statements.push(accept());
    statements
}

fn conditions(conditions: &Conditions, direction: Direction) -> Vec<Statement<'static>> {
    let mut statements = Vec::new();
    let known = conditions.known_protocol();
    if let Some(iface) = &conditions.iface {
        let key = match direction {
            Direction::In => MetaKey::Iifname,
            Direction::Out => MetaKey::Oifname,
        };
        statements.push(compare(
            iface.negated,
            meta(key),
            string(iface.value.as_str()),
        ));
    }
    let named_addresses = conditions.src.is_some() || conditions.dst.is_some();
    // `proto icmp` alone must not match IPv6 packets, nor `icmpv6` IPv4 ones
    // (an address brings its family with it). `not proto icmp` is no family's:
    // an IPv6 packet is not ICMP either.
    if let Some(family) = known.and_then(Protocol::family)
        && !named_addresses
    {
        statements.push(equals(meta(MetaKey::Nfproto), string(nfproto(family))));
    }
    if let Some(proto) = &conditions.proto {
        statements.push(compare(
            proto.negated,
            meta(MetaKey::L4proto),
            string(l4proto(proto.value)),
        ));
    }
    for (condition, field) in [(&conditions.src, "saddr"), (&conditions.dst, "daddr")] {
        if let Some(net) = condition {
            statements.push(compare(
                net.negated,
                payload(address_protocol(net.value.family()), field),
                network(net.value),
            ));
        }
    }
    // Ports only come with a known tcp or udp (validation); `th` reads the
    // transport header of either.
    let transport = match known {
        Some(Protocol::Tcp) => "tcp",
        Some(Protocol::Udp) => "udp",
        _ => "th",
    };
    for (condition, field) in [
        (&conditions.srcport, "sport"),
        (&conditions.dstport, "dport"),
    ] {
        if let Some(range) = condition {
            statements.push(compare(
                range.negated,
                payload(transport, field),
                ports(range.value),
            ));
        }
    }
    if let Some(icmptype) = &conditions.icmptype {
        statements.push(compare(
            icmptype.negated,
            payload(
                if known == Some(Protocol::Icmpv6) {
                    "icmpv6"
                } else {
                    "icmp"
                },
                "type",
            ),
            Expression::Number(icmptype.value.into()),
        ));
    }
    statements
}

/// Real servers of NAT directors, whose replies come back through us: with a
/// port as (address, protocol, port), without one (the packet's own port is
/// kept) as bare addresses.
type NatReplies = (BTreeSet<(IpAddr, &'static str, u16)>, BTreeSet<IpAddr>);

const NAT_REPLIES: &str = "nat-replies";
const NAT_REPLY_HOSTS: &str = "nat-reply-hosts";

/// One set per family: an nft set holds addresses of one type.
fn nat_set(base: &str, family: Family) -> String {
    match family {
        Family::Ipv4 => base.to_owned(),
        Family::Ipv6 => format!("{base}6"),
    }
}

/// Neighbour solicitations and advertisements, router ones and redirects
/// (ICMPv6 133-137): without them a `deny` cuts the box off its own IPv6 link.
fn neighbour_discovery() -> Vec<Statement<'static>> {
    vec![
        equals(meta(MetaKey::L4proto), string(l4proto(Protocol::Icmpv6))),
        is_in(
            payload("icmpv6", "type"),
            Expression::Named(NamedExpression::Set(
                [
                    "nd-router-solicit",
                    "nd-router-advert",
                    "nd-neighbor-solicit",
                    "nd-neighbor-advert",
                    "nd-redirect",
                ]
                .into_iter()
                .map(|t| nftables::expr::SetItem::Element(string(t)))
                .collect(),
            )),
        ),
        accept(),
    ]
}

/// nft's name of the network-layer payload: `ip` or `ip6`.
pub(super) fn address_protocol(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "ip",
        Family::Ipv6 => "ip6",
    }
}

/// `meta nfproto`'s value for a family.
fn nfproto(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "ipv4",
        Family::Ipv6 => "ipv6",
    }
}

/// `meta l4proto`'s value: `/etc/protocols` calls ICMPv6 `ipv6-icmp`.
pub(super) fn l4proto(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Icmpv6 => "ipv6-icmp",
        other => other.keyword(),
    }
}

fn nat_replies(lvs: &LvsConfig) -> NatReplies {
    let mut services = BTreeSet::new();
    let mut hosts = BTreeSet::new();
    for director in &lvs.directors {
        if director.forward_mode() != ForwardMode::Nat {
            continue;
        }
        let service = director.service.as_ref().map(|s| &s.value);
        let protocols: &[&str] = match service.map(|s| s.protocol()) {
            Some(ServiceProtocol::Udp) => &["udp"],
            Some(ServiceProtocol::Tcp) => &["tcp"],
            None => &["tcp", "udp"],
        };
        for server in &director.servers {
            match server.port.or(service.and_then(|s| s.port)) {
                Some(port) => {
                    for protocol in protocols {
                        services.insert((server.address, *protocol, port.get()));
                    }
                }
                None => {
                    hosts.insert(server.address);
                }
            }
        }
    }
    (services, hosts)
}

#[derive(Default)]
struct Builder {
    objects: Vec<NfObject<'static>>,
    rule_counts: BTreeMap<String, usize>,
}

impl Builder {
    fn add(&mut self, object: NfListObject<'static>) {
        self.objects.push(NfObject::CmdObject(NfCmd::Add(object)));
    }

    fn chain(&mut self, name: &str) {
        self.rule_counts.insert(name.to_owned(), 0);
        self.add(NfListObject::Chain(Chain {
            family: NfFamily::INet,
            table: TABLE.into(),
            name: name.to_owned().into(),
            ..Chain::default()
        }));
    }

    fn base_chain(&mut self, name: &str, kind: NfChainType, hook: NfHook) {
        self.rule_counts.insert(name.to_owned(), 0);
        self.add(NfListObject::Chain(Chain {
            family: NfFamily::INet,
            table: TABLE.into(),
            name: name.to_owned().into(),
            _type: Some(kind),
            hook: Some(hook),
            prio: Some(MANGLE_PRIORITY),
            policy: Some(NfChainPolicy::Accept),
            ..Chain::default()
        }));
    }

    fn rule(&mut self, chain: &str, statements: Vec<Statement<'static>>, comment: &str) {
        *self.rule_counts.entry(chain.to_owned()).or_default() += 1;
        self.add(NfListObject::Rule(Rule {
            family: NfFamily::INet,
            table: TABLE.into(),
            chain: chain.to_owned().into(),
            expr: statements.into(),
            comment: Some(comment.to_owned().into()),
            ..Rule::default()
        }));
    }

    /// Prefixes the batch with a replace of the whole table and appends the
    /// fingerprint chain.
    fn finish(mut self) -> Ruleset {
        let mut hasher = CommandHasher::default();
        let mut command_hashes: Vec<u64> = self
            .objects
            .iter()
            .map(|object| hasher.hash(object))
            .collect();
        let body = command_hashes.iter().fold(FNV_OFFSET, |hash, command| {
            fnv1a64(hash, &command.to_le_bytes())
        });
        let fingerprint = format!("{body:016x}");
        self.chain(&format!("{FINGERPRINT_PREFIX}{fingerprint}"));
        if let Some(chain) = self.objects.last() {
            command_hashes.push(hasher.hash(chain));
        }
        let objects = object_hashes(&self.objects, &command_hashes, &mut hasher);
        let mut batch = replace_table();
        batch.extend(self.objects);
        Ruleset {
            batch: Nftables {
                objects: batch.into(),
            },
            fingerprint,
            rule_counts: self.rule_counts,
            objects,
        }
    }
}

/// Hashes a command as the nft text it is sent as (its JSON, should the
/// printer not know it), reusing its buffers from one command to the next.
#[derive(Default)]
struct CommandHasher {
    text: String,
    json: Vec<u8>,
}

impl CommandHasher {
    fn hash(&mut self, object: &NfObject<'_>) -> u64 {
        self.text.clear();
        if nft_text::print_command(&mut self.text, object).is_ok() {
            return fnv1a64(FNV_OFFSET, self.text.as_bytes());
        }
        self.json.clear();
        serde_json::to_writer(&mut self.json, object).unwrap_or_default();
        fnv1a64(FNV_OFFSET, &self.json)
    }

    /// A set's or map's declaration: the command without its elements.
    fn declaration(&mut self, declared: NfListObject<'_>) -> u64 {
        self.hash(&NfObject::CmdObject(NfCmd::Add(declared)))
    }
}

/// Each named object's declaration and content hashes, from the hash of
/// each command (`command_hashes`, in the order of `objects`). A chain's
/// content is its rules in order; a set's or map's, its elements.
fn object_hashes(
    objects: &[NfObject<'static>],
    command_hashes: &[u64],
    hasher: &mut CommandHasher,
) -> ObjectHashes {
    let mut hashes = ObjectHashes::new();
    for (object, &command_hash) in objects.iter().zip(command_hashes) {
        let NfObject::CmdObject(NfCmd::Add(object)) = object else {
            continue;
        };
        match object {
            NfListObject::Table(_) => {}
            NfListObject::Chain(chain) => {
                hashes
                    .entry(object_key(CHAIN_KEY, &chain.name))
                    .or_default()
                    .declaration = command_hash;
            }
            NfListObject::Rule(rule) => {
                let entry = hashes
                    .entry(object_key(CHAIN_KEY, &rule.chain))
                    .or_default();
                entry.content = fnv1a64(entry.content, &command_hash.to_le_bytes());
            }
            NfListObject::Set(set) => {
                let declared = Set {
                    elem: None,
                    ..(**set).clone()
                };
                let hash = ObjectHash {
                    declaration: hasher.declaration(NfListObject::Set(Box::new(declared))),
                    content: command_hash,
                };
                hashes.insert(object_key(SET_KEY, &set.name), hash);
            }
            NfListObject::Map(map) => {
                let declared = Map {
                    elem: None,
                    ..(**map).clone()
                };
                let hash = ObjectHash {
                    declaration: hasher.declaration(NfListObject::Map(Box::new(declared))),
                    content: command_hash,
                };
                hashes.insert(object_key(MAP_KEY, &map.name), hash);
            }
            _ => {
                let entry = hashes.entry(OTHER_OBJECTS.to_owned()).or_default();
                entry.content = fnv1a64(entry.content, &command_hash.to_le_bytes());
            }
        }
    }
    hashes
}

/// `add table` then `delete table`: the table is gone afterwards whether or not
/// it was there, all inside the batch's one transaction.
pub fn replace_table() -> Vec<NfObject<'static>> {
    let table = || {
        NfListObject::Table(Table {
            family: NfFamily::INet,
            name: TABLE.into(),
            handle: None,
        })
    };
    vec![
        NfObject::CmdObject(NfCmd::Add(table())),
        NfObject::CmdObject(NfCmd::Delete(table())),
    ]
}

fn set(
    name: &str,
    set_type: SetTypeValue<'static>,
    elements: Vec<Expression<'static>>,
) -> NfListObject<'static> {
    NfListObject::Set(Box::new(Set {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: name.to_owned().into(),
        set_type,
        elem: (!elements.is_empty()).then(|| elements.into()),
        ..Set::default()
    }))
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a over `bytes`, continuing from `hash` (start with [`FNV_OFFSET`]).
fn fnv1a64(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub(super) fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

fn ct(key: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::CT(nftables::expr::CT {
        key: key.into(),
        family: None,
        dir: None,
    }))
}

fn ct_state() -> Expression<'static> {
    ct("state")
}

fn established_or_related() -> Expression<'static> {
    Expression::List(vec![string("established"), string("related")])
}

pub(super) fn payload(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: protocol.into(),
            field: field.into(),
        },
    )))
}

pub(super) fn string(value: &str) -> Expression<'static> {
    Expression::String(value.to_owned().into())
}

fn address(addr: IpAddr) -> Expression<'static> {
    string(&addr.to_string())
}

pub(super) fn network(net: IpNet) -> Expression<'static> {
    if net.is_host() {
        address(net.addr)
    } else {
        Expression::Named(NamedExpression::Prefix(Prefix {
            addr: Box::new(address(net.addr)),
            len: net.prefix.into(),
        }))
    }
}

pub(super) fn ports(range: PortRange) -> Expression<'static> {
    let (first, last) = (range.first().get(), range.last().get());
    if first == last {
        Expression::Number(first.into())
    } else {
        Expression::Range(Box::new(nftables::expr::Range {
            range: [
                Expression::Number(first.into()),
                Expression::Number(last.into()),
            ],
        }))
    }
}

fn compare(
    negated: bool,
    left: Expression<'static>,
    right: Expression<'static>,
) -> Statement<'static> {
    Statement::Match(Match {
        left,
        right,
        op: if negated { Operator::NEQ } else { Operator::EQ },
    })
}

fn equals(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    compare(false, left, right)
}

fn not_equals(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    compare(true, left, right)
}

fn is_in(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    Statement::Match(Match {
        left,
        right,
        op: Operator::IN,
    })
}

/// Gives a packet its connection's mark, when the connection has one: a mark
/// the sender set itself (`SO_MARK`) is left alone otherwise.
fn set_mark_from_connection() -> [Statement<'static>; 2] {
    [
        not_equals(ct("mark"), Expression::Number(0)),
        Statement::Mangle(Mangle {
            key: meta(MetaKey::Mark),
            value: ct("mark"),
        }),
    ]
}

fn accept() -> Statement<'static> {
    Statement::Accept(None)
}

//! Parser for `flows.conf` (the flowmgr syntax).

use crate::config::diagnostic::{ConfigFile, Diagnostic, Problem, Sink};
use crate::config::model::flows::{
    Condition, Conditions, Direction, Flow, FlowsConfig, ICMP_TYPE_NAMES, ICMPV6_TYPE_NAMES,
    Policy, Rule, RuleAction,
};
use crate::config::model::types::{
    DirectorName, FlowName, IfName, Loc, PortRange, Protocol, Spanned, TableId,
};

use crate::config::keywords::flows::{CONDITIONS, POLICIES, PROTOCOLS, STATEMENTS};

use super::lexer::{Cursor, Lexer, Token, ip_net, number, port, unknown};
use super::name;

pub fn parse(source: &[u8]) -> (FlowsConfig, Vec<Diagnostic>) {
    let mut sink = Sink::new(ConfigFile::Flows);
    let mut config = FlowsConfig::default();
    // A flow whose header failed to parse still owns the rules below it; they are
    // checked but dropped, instead of being reported as outside a flow.
    let mut in_broken_flow = false;
    let mut lexer = Lexer::new(source, ConfigFile::Flows);
    while let Some(line) = lexer.next_line() {
        if line.unreadable {
            in_broken_flow = true;
            continue;
        }
        let mut cursor = Cursor::new(line.tokens);
        let Some(keyword) = cursor.next_token() else {
            continue;
        };
        let result = match keyword.text {
            "flow" | "outflow" => match header(keyword, &mut cursor) {
                Ok(flow) => {
                    config.flows.push(flow);
                    in_broken_flow = false;
                    Ok(())
                }
                Err(problem) => {
                    in_broken_flow = true;
                    Err(problem)
                }
            },
            "match" | "ignore" => rule(keyword, &mut cursor).and_then(|rule| {
                match config.flows.last_mut() {
                    _ if in_broken_flow => {}
                    Some(flow) => flow.rules.push(rule),
                    None => {
                        return Err(Problem::new(
                            keyword.loc,
                            format!("`{}` outside a flow", keyword.text),
                        )
                        .with_hint(Some("start one with `flow NAME POLICY`".to_owned())));
                    }
                }
                Ok(())
            }),
            _ => Err(unknown(keyword, "keyword", STATEMENTS)),
        };
        if let Err(problem) = result {
            sink.report(problem);
        }
    }
    (config, lexer.diagnostics_then(sink.diagnostics))
}

/// `flow|outflow NAME [POLICY] [match|ignore CONDITIONS]`
fn header(keyword: Token<'_>, cursor: &mut Cursor<'_, '_>) -> Result<Flow, Problem> {
    let direction = if keyword.text == "flow" {
        Direction::In
    } else {
        Direction::Out
    };
    let flow_name = name::<FlowName>(cursor.value(keyword.text, "a name")?)?;
    let policy = match cursor.peek() {
        None => Spanned::new(Policy::Skip, cursor.end_loc()),
        Some(t) if t.text == "match" || t.text == "ignore" => Spanned::new(Policy::Skip, t.loc),
        Some(_) => policy(cursor)?,
    };
    let mut rules = Vec::new();
    if let Some(action) = cursor.next_token() {
        if action.text != "match" && action.text != "ignore" {
            return Err(Problem::new(
                action.loc,
                format!("unexpected `{}` after the policy", action.text),
            )
            .with_hint(Some(
                "a rule on the header's line starts with `match` or `ignore`".to_owned(),
            )));
        }
        rules.push(rule(action, cursor)?);
    }
    Ok(Flow {
        direction,
        name: flow_name,
        policy,
        rules,
    })
}

fn policy(cursor: &mut Cursor<'_, '_>) -> Result<Spanned<Policy>, Problem> {
    let word = cursor.value("flow NAME", "a policy")?;
    let policy = match word.text {
        "permit" => Spanned::new(Policy::Permit, word.loc),
        "deny" => Spanned::new(Policy::Deny, word.loc),
        "skip" => Spanned::new(Policy::Skip, word.loc),
        "director" => {
            let director = name::<DirectorName>(cursor.value("director", "a director name")?)?;
            Spanned::new(Policy::Director(director.value), director.loc)
        }
        "table" => {
            let token = cursor.value("table", "a routing table id")?;
            let id = TableId::new(number(token, "routing table id")?)
                .map_err(|message| Problem::new(token.loc, message))?;
            Spanned::new(Policy::Table(id), token.loc)
        }
        _ => return Err(unknown(word, "policy", POLICIES)),
    };
    Ok(policy)
}

/// `match|ignore [[not] KEY VALUE]...`; the cursor stands after the action word.
fn rule(action: Token<'_>, cursor: &mut Cursor<'_, '_>) -> Result<Rule, Problem> {
    let action_kind = if action.text == "match" {
        RuleAction::Match
    } else {
        RuleAction::Ignore
    };
    let mut conditions = Conditions::default();
    // Its names and numbers depend on `proto`, which may come later in the line.
    let mut icmptype = None;
    while let Some(first) = cursor.next_token() {
        let negated = first.text == "not";
        let key = if negated {
            cursor.value("not", "a condition (iface, proto, src, …)")?
        } else {
            first
        };
        let value = cursor.value(key.text, "a value").map_err(|p| {
            if CONDITIONS.contains(&key.text) {
                p
            } else {
                unknown(key, "condition", CONDITIONS)
            }
        })?;
        let loc = first.loc;
        match key.text {
            "iface" => set(
                &mut conditions.iface,
                key,
                negated,
                name::<IfName>(value)?.value,
                loc,
            )?,
            "proto" => {
                let proto = match value.text.to_ascii_lowercase().as_str() {
                    "tcp" => Protocol::Tcp,
                    "udp" => Protocol::Udp,
                    "icmp" => Protocol::Icmp,
                    "icmpv6" => Protocol::Icmpv6,
                    _ => return Err(unknown(value, "protocol", PROTOCOLS)),
                };
                set(&mut conditions.proto, key, negated, proto, loc)?;
            }
            "src" => set(&mut conditions.src, key, negated, ip_net(value, true)?, loc)?,
            "dst" => set(&mut conditions.dst, key, negated, ip_net(value, true)?, loc)?,
            "srcport" => set(
                &mut conditions.srcport,
                key,
                negated,
                port_range(value)?,
                loc,
            )?,
            "dstport" => set(
                &mut conditions.dstport,
                key,
                negated,
                port_range(value)?,
                loc,
            )?,
            "icmptype" => {
                set(&mut conditions.icmptype, key, negated, 0, loc)?;
                icmptype = Some(value);
            }
            _ => return Err(unknown(key, "condition", CONDITIONS)),
        }
    }
    if let (Some(token), Some(condition)) = (icmptype, conditions.icmptype.as_mut()) {
        condition.value = icmp_type(token, conditions.proto.as_ref().map(|p| p.value))?;
    }
    Ok(Rule {
        action: action_kind,
        conditions,
        loc: action.loc,
    })
}

fn set<T>(
    slot: &mut Option<Condition<T>>,
    key: Token<'_>,
    negated: bool,
    value: T,
    loc: Loc,
) -> Result<(), Problem> {
    if slot.is_some() {
        return Err(
            Problem::new(key.loc, format!("`{}` appears twice in one rule", key.text)).with_hint(
                Some("write a second `match` line to match either value".to_owned()),
            ),
        );
    }
    *slot = Some(Condition {
        negated,
        value,
        loc,
    });
    Ok(())
}

fn port_range(token: Token<'_>) -> Result<PortRange, Problem> {
    match token.text.split_once(':') {
        None => port(token.text, token.loc).map(PortRange::single),
        Some((a, b)) => {
            let second_loc = Loc::new(token.loc.line, token.loc.col + a.chars().count() as u32 + 1);
            let first = port(a, token.loc)?;
            let last = port(b, second_loc)?;
            PortRange::new(first, last).ok_or_else(|| {
                Problem::new(
                    token.loc,
                    format!("port range `{}` ends before it starts", token.text),
                )
                .with_hint(Some(format!("write `{b}:{a}`")))
            })
        }
    }
}

/// An ICMP type by name or number, in the table of the rule's protocol: ICMPv6's
/// under `proto icmpv6`, ICMP's otherwise. A type of the other family is refused with
/// the number meant.
fn icmp_type(token: Token<'_>, proto: Option<Protocol>) -> Result<u8, Problem> {
    let (table, other, this_name, other_name) = if proto == Some(Protocol::Icmpv6) {
        (ICMPV6_TYPE_NAMES, ICMP_TYPE_NAMES, "ICMPv6", "ICMP (IPv4)")
    } else {
        (ICMP_TYPE_NAMES, ICMPV6_TYPE_NAMES, "ICMP", "ICMPv6")
    };
    let name_of = |table: &[(&'static str, u8)], code: u8| {
        table.iter().find(|&&(_, c)| c == code).map(|&(n, _)| n)
    };
    let code_of =
        |table: &[(&str, u8)], name: &str| table.iter().find(|&&(n, _)| n == name).map(|&(_, c)| c);
    let other_family = |what: String, name: Option<&str>| {
        let hint = match name.and_then(|n| code_of(table, n)) {
            Some(code) => format!(
                "{this_name}'s `{}` is type {code}",
                name.unwrap_or_default()
            ),
            None if proto == Some(Protocol::Icmpv6) => {
                "write `proto icmp` for an IPv4 type".to_owned()
            }
            None => "write `proto icmpv6` for an ICMPv6 type".to_owned(),
        };
        Problem::new(
            token.loc,
            format!("{what} is an {other_name} type, not an {this_name} one"),
        )
        .with_hint(Some(hint))
    };
    if let Some(code) = code_of(table, token.text) {
        return Ok(code);
    }
    if code_of(other, token.text).is_some() {
        return Err(other_family(format!("`{}`", token.text), Some(token.text)));
    }
    if token.text.chars().all(|c| c.is_ascii_digit()) {
        let code: u8 = token.text.parse().map_err(|_| {
            Problem::new(
                token.loc,
                format!("{this_name} type {} is out of range 0-255", token.text),
            )
        })?;
        if name_of(table, code).is_none()
            && let Some(name) = name_of(other, code)
        {
            return Err(other_family(format!("type {code} ({name})"), Some(name)));
        }
        return Ok(code);
    }
    let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
    Err(unknown(token, &format!("{this_name} type"), &names))
}

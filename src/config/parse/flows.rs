//! Parser for `flows.conf` (the flowmgr syntax).

use crate::config::diagnostic::{ConfigFile, Diagnostic, Problem, Sink};
use crate::config::model::flows::{
    Condition, Conditions, Direction, Flow, FlowsConfig, ICMP_TYPE_NAMES, Policy, Rule, RuleAction,
};
use crate::config::model::types::{
    DirectorName, FlowName, IfName, Loc, PortRange, Protocol, Spanned, TableId,
};

use crate::config::keywords::flows::{CONDITIONS, POLICIES, PROTOCOLS, STATEMENTS};

use super::lexer::{Cursor, Lexer, Token, ipv4_net, number, port, unknown};
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
                    _ => return Err(unknown(value, "protocol", PROTOCOLS)),
                };
                set(&mut conditions.proto, key, negated, proto, loc)?;
            }
            "src" => set(
                &mut conditions.src,
                key,
                negated,
                ipv4_net(value, true)?,
                loc,
            )?,
            "dst" => set(
                &mut conditions.dst,
                key,
                negated,
                ipv4_net(value, true)?,
                loc,
            )?,
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
            "icmptype" => set(
                &mut conditions.icmptype,
                key,
                negated,
                icmp_type(value)?,
                loc,
            )?,
            _ => return Err(unknown(key, "condition", CONDITIONS)),
        }
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

fn icmp_type(token: Token<'_>) -> Result<u8, Problem> {
    if let Some(&(_, code)) = ICMP_TYPE_NAMES.iter().find(|(n, _)| *n == token.text) {
        return Ok(code);
    }
    if token.text.chars().all(|c| c.is_ascii_digit()) {
        return token.text.parse().map_err(|_| {
            Problem::new(
                token.loc,
                format!("ICMP type {} is out of range 0-255", token.text),
            )
        });
    }
    let names: Vec<&str> = ICMP_TYPE_NAMES.iter().map(|(n, _)| *n).collect();
    Err(unknown(token, "ICMP type", &names))
}

//! PURE: a batch of the `nftables` crate's typed commands as nft's own text
//! syntax, which is how our batches reach the kernel (`nft -f -`): nft's text
//! parser takes our tables in about two thirds of the time of its JSON one
//! (BENCHMARKS.md). The same text, object by object, is what the planner
//! hashes to tell which objects changed.
//!
//! Only what `plan::flows` builds is printed; anything else is
//! [`Unprintable`], and the caller sends the JSON instead. Names (flows,
//! chains, sets) are validated to `[A-Za-z0-9_.-]`, comments are made of them,
//! and interface names are always quoted, so nothing here can read as nft
//! syntax it was not meant to be.

use std::fmt::Write;

use nftables::expr::{BinaryOperation, Expression, NamedExpression, Payload, SetItem, Verdict};
use nftables::schema::{
    Chain, FlushObject, NfCmd, NfListObject, NfObject, Nftables, Rule, Set, SetTypeValue,
};
use nftables::stmt::{Counter, Mangle, Match, Operator, Statement, VerdictMap};

/// Something the printer does not know how to write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("nft text cannot carry {0}")]
pub struct Unprintable(pub String);

type Printed = Result<(), Unprintable>;

/// The whole batch as an `nft -f` script, one command a line.
pub fn print(batch: &Nftables<'_>) -> Result<String, Unprintable> {
    let mut out = String::with_capacity(batch.objects.len() * 96);
    for object in batch.objects.iter() {
        print_command(&mut out, object)?;
        out.push('\n');
    }
    Ok(out)
}

/// One command of a batch, appended to `out` without its newline.
pub fn print_command(out: &mut String, object: &NfObject<'_>) -> Result<(), Unprintable> {
    let NfObject::CmdObject(command) = object else {
        return Err(unprintable("a listing object"));
    };
    command_line(out, command)
}

fn command_line(out: &mut String, command: &NfCmd<'_>) -> Printed {
    match command {
        NfCmd::Add(object) => {
            out.push_str("add ");
            object_text(out, object, true)
        }
        NfCmd::Delete(object) => {
            out.push_str("delete ");
            object_text(out, object, false)
        }
        NfCmd::Flush(FlushObject::Chain(chain)) => {
            write_name(out, "flush chain", chain.family, &chain.table, &chain.name)
        }
        NfCmd::Flush(FlushObject::Set(set)) => {
            write_name(out, "flush set", set.family, &set.table, &set.name)
        }
        NfCmd::Flush(FlushObject::Map(map)) => {
            write_name(out, "flush map", map.family, &map.table, &map.name)
        }
        _ => Err(unprintable("a command other than add, delete and flush")),
    }
}

/// `object` after `add ` (`whole`: with its body) or `delete `.
fn object_text(out: &mut String, object: &NfListObject<'_>, whole: bool) -> Printed {
    match object {
        NfListObject::Table(table) => {
            write!(out, "table {} {}", keyword(&table.family)?, table.name).map_err(fmt_error)
        }
        NfListObject::Chain(chain) => {
            write_name(out, "chain", chain.family, &chain.table, &chain.name)?;
            if whole {
                chain_body(out, chain)?;
            }
            Ok(())
        }
        NfListObject::Set(set) => {
            write_name(out, "set", set.family, &set.table, &set.name)?;
            if whole {
                set_body(out, set)?;
            }
            Ok(())
        }
        NfListObject::Map(map) if !whole => {
            write_name(out, "map", map.family, &map.table, &map.name)
        }
        NfListObject::Rule(rule) if whole => rule_text(out, rule),
        NfListObject::Element(element) if whole => {
            write_name(
                out,
                "element",
                element.family,
                &element.table,
                &element.name,
            )?;
            out.push_str(" { ");
            list(out, &element.elem, ", ", expression)?;
            out.push_str(" }");
            Ok(())
        }
        _ => Err(unprintable(
            "an object other than a table, chain, set, rule or element",
        )),
    }
}

fn write_name(
    out: &mut String,
    what: &str,
    family: nftables::types::NfFamily,
    table: &str,
    name: &str,
) -> Printed {
    write!(out, "{what} {} {table} {name}", keyword(&family)?).map_err(fmt_error)
}

fn chain_body(out: &mut String, chain: &Chain<'_>) -> Printed {
    if chain.newname.is_some() || chain.dev.is_some() {
        return Err(unprintable("a chain with a new name or a device"));
    }
    let (Some(kind), Some(hook)) = (&chain._type, &chain.hook) else {
        return if chain._type.is_none() && chain.hook.is_none() && chain.policy.is_none() {
            Ok(())
        } else {
            Err(unprintable("a base chain without a type or hook"))
        };
    };
    write!(
        out,
        " {{ type {} hook {} priority {};",
        keyword(kind)?,
        keyword(hook)?,
        chain.prio.unwrap_or(0)
    )
    .map_err(fmt_error)?;
    if let Some(policy) = &chain.policy {
        write!(out, " policy {};", keyword(policy)?).map_err(fmt_error)?;
    }
    out.push_str(" }");
    Ok(())
}

fn set_body(out: &mut String, set: &Set<'_>) -> Printed {
    if set.policy.is_some()
        || set.flags.is_some()
        || set.timeout.is_some()
        || set.gc_interval.is_some()
        || set.size.is_some()
        || set.comment.is_some()
    {
        return Err(unprintable(
            "a set with flags, a policy, a size or a comment",
        ));
    }
    out.push_str(" { type ");
    match &set.set_type {
        SetTypeValue::Single(single) => out.push_str(&keyword(single)?),
        SetTypeValue::Concatenated(types) => {
            list(out, types, " . ", |out, single| {
                out.push_str(&keyword(single)?);
                Ok(())
            })?;
        }
    }
    out.push(';');
    if let Some(elements) = set.elem.as_ref().filter(|elements| !elements.is_empty()) {
        out.push_str(" elements = { ");
        list(out, elements, ", ", expression)?;
        out.push_str(" };");
    }
    out.push_str(" }");
    Ok(())
}

fn rule_text(out: &mut String, rule: &Rule<'_>) -> Printed {
    if rule.handle.is_some() || rule.index.is_some() {
        return Err(unprintable("a rule with a position"));
    }
    write_name(out, "rule", rule.family, &rule.table, &rule.chain)?;
    for statement in rule.expr.iter() {
        out.push(' ');
        statement_text(out, statement)?;
    }
    if let Some(comment) = &rule.comment {
        if comment.contains(['"', '\n', '\\']) {
            return Err(unprintable("a comment with a quote or a line break"));
        }
        write!(out, " comment \"{comment}\"").map_err(fmt_error)?;
    }
    Ok(())
}

fn statement_text(out: &mut String, statement: &Statement<'_>) -> Printed {
    match statement {
        Statement::Accept(None) => out.push_str("accept"),
        Statement::Drop(None) => out.push_str("drop"),
        Statement::Return(None) => out.push_str("return"),
        Statement::Jump(target) => write!(out, "jump {}", target.target).map_err(fmt_error)?,
        Statement::Goto(target) => write!(out, "goto {}", target.target).map_err(fmt_error)?,
        Statement::Counter(Counter::Anonymous(None)) => out.push_str("counter"),
        Statement::Counter(Counter::Anonymous(Some(counter))) => write!(
            out,
            "counter packets {} bytes {}",
            counter.packets.unwrap_or(0),
            counter.bytes.unwrap_or(0)
        )
        .map_err(fmt_error)?,
        Statement::Match(Match { left, right, op }) => {
            expression(out, left)?;
            out.push_str(match op {
                Operator::EQ => " == ",
                Operator::NEQ => " != ",
                // A list on the right of `in` is a bitmask (`ct state
                // established,related`), a set is a set: either way nft's
                // text has no operator there.
                Operator::IN => " ",
                _ => return Err(unprintable("a comparison other than ==, != and in")),
            });
            if is_interface_name(left) {
                quoted(out, right)?;
            } else {
                expression(out, right)?;
            }
        }
        Statement::Mangle(Mangle { key, value }) => {
            expression(out, key)?;
            out.push_str(" set ");
            expression(out, value)?;
        }
        Statement::VerdictMap(VerdictMap { key, data }) => {
            expression(out, key)?;
            out.push_str(" vmap ");
            expression(out, data)?;
        }
        _ => {
            return Err(unprintable(
                "a statement other than a verdict, counter, match, mangle or verdict map",
            ));
        }
    }
    Ok(())
}

fn expression(out: &mut String, expression_: &Expression<'_>) -> Printed {
    match expression_ {
        Expression::String(text) => {
            if !text.chars().all(is_symbol_char) {
                return Err(unprintable(&format!("the value `{text}`")));
            }
            out.push_str(text);
        }
        Expression::Number(number) => write!(out, "{number}").map_err(fmt_error)?,
        Expression::List(items) => list(out, items, ",", expression)?,
        Expression::Range(range) => {
            expression(out, &range.range[0])?;
            out.push('-');
            expression(out, &range.range[1])?;
        }
        Expression::BinaryOperation(operation) => match &**operation {
            BinaryOperation::AND(left, right) => {
                expression(out, left)?;
                out.push_str(" & ");
                expression(out, right)?;
            }
            _ => return Err(unprintable("a binary operation other than &")),
        },
        Expression::Named(named) => match named {
            NamedExpression::Concat(parts) => list(out, parts, " . ", expression)?,
            NamedExpression::Set(items) => {
                out.push_str("{ ");
                list(out, items, ", ", |out, item| match item {
                    SetItem::Element(element) => expression(out, element),
                    SetItem::Mapping(key, value) => {
                        expression(out, key)?;
                        out.push_str(" : ");
                        expression(out, value)
                    }
                    SetItem::MappingStatement(..) => {
                        Err(unprintable("a statement as a map's value"))
                    }
                })?;
                out.push_str(" }");
            }
            NamedExpression::Prefix(prefix) => {
                expression(out, &prefix.addr)?;
                write!(out, "/{}", prefix.len).map_err(fmt_error)?;
            }
            NamedExpression::Payload(Payload::PayloadField(field)) => {
                write!(out, "{} {}", field.protocol, field.field).map_err(fmt_error)?;
            }
            NamedExpression::Meta(meta) => {
                write!(out, "meta {}", keyword(&meta.key)?).map_err(fmt_error)?;
            }
            NamedExpression::CT(ct) if ct.family.is_none() && ct.dir.is_none() => {
                write!(out, "ct {}", ct.key).map_err(fmt_error)?;
            }
            _ => {
                return Err(unprintable(
                    "an expression other than a payload field, meta, ct, set, concatenation or prefix",
                ));
            }
        },
        Expression::Verdict(Verdict::Jump(target)) => {
            write!(out, "jump {}", target.target).map_err(fmt_error)?;
        }
        _ => {
            return Err(unprintable(
                "a boolean, or a verdict other than jump, as a value",
            ));
        }
    }
    Ok(())
}

/// An interface name, always as a quoted string: a name may be a word nft
/// knows (`tcp`, `accept`).
fn quoted(out: &mut String, value: &Expression<'_>) -> Printed {
    match value {
        Expression::String(name) if name.chars().all(is_name_char) => {
            write!(out, "\"{name}\"").map_err(fmt_error)
        }
        _ => Err(unprintable("an interface name that is not a plain name")),
    }
}

fn is_interface_name(left: &Expression<'_>) -> bool {
    use nftables::expr::MetaKey;
    matches!(
        left,
        Expression::Named(NamedExpression::Meta(meta))
            if matches!(meta.key, MetaKey::Iifname | MetaKey::Oifname)
    )
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// What may stand unquoted as a value: names, numbers, addresses (`:`), set
/// references (`@`).
fn is_symbol_char(c: char) -> bool {
    is_name_char(c) || matches!(c, ':' | '@')
}

fn list<T>(
    out: &mut String,
    items: &[T],
    separator: &str,
    mut each: impl FnMut(&mut String, &T) -> Printed,
) -> Printed {
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            out.push_str(separator);
        }
        each(out, item)?;
    }
    Ok(())
}

/// The word nft uses for one of the crate's enums: its JSON name.
fn keyword(value: &impl serde::Serialize) -> Result<String, Unprintable> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(word)) if word.chars().all(is_name_char) => Ok(word),
        _ => Err(unprintable("a keyword that is not a plain word")),
    }
}

fn unprintable(what: &str) -> Unprintable {
    Unprintable(what.to_owned())
}

fn fmt_error(_: std::fmt::Error) -> Unprintable {
    unprintable("text the formatter refused")
}

//! Parser for `lvs.conf` (director sections).

use crate::config::diagnostic::{ConfigFile, Diagnostic, Problem, Sink};
use crate::config::model::lvs::{
    CheckMethod, Director, ForwardMode, HttpCheck, LvsConfig, Persistence, Scheduler, Server,
    ServiceProtocol, VirtualService,
};
use crate::config::model::types::{DirectorName, Family, IfName, Placeholder, ServerName, Spanned};

use crate::config::keywords::lvs::{CHECK_PARAMS, OPTIONS, SERVER_FLAGS, STATEMENTS};

use super::lexer::{Cursor, Lexer, Token, ip, ip_and_port, netmask, number_in, port, unknown};
use super::{Seen, name};

/// Seconds for intervals and timeouts: at least one, at most a day.
const SECONDS: std::ops::RangeInclusive<u32> = 1..=86_400;

pub fn parse(source: &[u8]) -> (LvsConfig, Vec<Diagnostic>) {
    let mut sink = Sink::new(ConfigFile::Lvs);
    let mut config = LvsConfig::default();
    let mut seen = Seen::default();
    // Statements under a header whose name is unusable are still checked, against
    // a throwaway director, instead of being reported as outside a director.
    let mut scratch: Option<Director> = None;
    let scratch_director = || Director::new(Spanned::unplaced(DirectorName::placeholder()));
    let mut lexer = Lexer::new(source, ConfigFile::Lvs);
    while let Some(line) = lexer.next_line() {
        if line.unreadable {
            seen = Seen::default();
            scratch = Some(scratch_director());
            continue;
        }
        let mut cursor = Cursor::new(line.tokens);
        let Some(keyword) = cursor.next_token() else {
            continue;
        };
        if keyword.text == "director" {
            seen = Seen::default();
            scratch = None;
            if let Some(finished) = config.directors.last_mut() {
                // Growth leaves up to half of a server list unused; a large
                // file has thousands of them.
                finished.servers.shrink_to_fit();
            }
            match cursor
                .value("director", "a name")
                .and_then(name::<DirectorName>)
            {
                Ok(director_name) => {
                    let mut director = Director::new(director_name);
                    if let Err(problem) = service(&mut director, &mut cursor) {
                        sink.report(problem);
                    }
                    config.directors.push(director);
                }
                Err(problem) => {
                    sink.report(problem);
                    scratch = Some(scratch_director());
                }
            }
            continue;
        }
        let director = match (scratch.as_mut(), config.directors.last_mut()) {
            (Some(director), _) | (None, Some(director)) => director,
            (None, None) => {
                let problem = if STATEMENTS.contains(&keyword.text) {
                    Problem::new(
                        keyword.loc,
                        format!("`{}` outside a director", keyword.text),
                    )
                    .with_hint(Some(
                        "start one with `director NAME [IP[:PORT] [TCP|UDP]]`".to_owned(),
                    ))
                } else {
                    unknown(keyword, "keyword", STATEMENTS)
                };
                sink.report(problem);
                continue;
            }
        };
        if let Err(problem) = statement(director, &mut seen, keyword, &mut cursor) {
            sink.report(problem);
        }
    }
    (config, lexer.diagnostics_then(sink.diagnostics))
}

/// The rest of `director NAME [IP[:PORT] [TCP|UDP]]`, after the name.
fn service(director: &mut Director, cursor: &mut Cursor<'_, '_>) -> Result<(), Problem> {
    if let Some(address) = cursor.next_token() {
        let (ip, port) = ip_and_port(address)?;
        let protocol = match cursor.next_token() {
            None => None,
            Some(t) => Some(match t.text.to_ascii_uppercase().as_str() {
                "TCP" => ServiceProtocol::Tcp,
                "UDP" => ServiceProtocol::Udp,
                _ => return Err(unknown(t, "protocol", &["TCP", "UDP"])),
            }),
        };
        director.service = Some(Spanned::new(
            VirtualService {
                address: ip,
                port,
                protocol,
            },
            address.loc,
        ));
    }
    cursor.finish("director NAME IP[:PORT] PROTOCOL")
}

fn statement(
    director: &mut Director,
    seen: &mut Seen<'_>,
    keyword: Token<'_>,
    cursor: &mut Cursor<'_, '_>,
) -> Result<(), Problem> {
    match keyword.text {
        "balance" => {
            let scheduler = scheduler(cursor)?;
            seen.once("balance", keyword)?;
            director.balance = Some(scheduler);
        }
        "mode" => {
            let token = cursor.value("mode", "gateway, nat or tunnel")?;
            let mode = ForwardMode::ALL
                .into_iter()
                .find(|m| m.keyword() == token.text)
                .ok_or_else(|| {
                    unknown(token, "mode", &ForwardMode::ALL.map(ForwardMode::keyword))
                })?;
            seen.once("mode", keyword)?;
            director.mode = Some(mode);
        }
        "check" => check(director, seen, keyword, cursor)?,
        "option" => option(director, seen, cursor)?,
        "server" => director.servers.push(server(cursor)?),
        _ => return Err(unknown(keyword, "keyword", STATEMENTS)),
    }
    cursor.finish(keyword.text)
}

/// `balance NAME`, where `leastconn localitybased [replication]` takes several words.
fn scheduler(cursor: &mut Cursor<'_, '_>) -> Result<Spanned<Scheduler>, Problem> {
    let first = cursor.value("balance", "a scheduler such as roundrobin or leastconn")?;
    let word = first.text.to_ascii_lowercase();
    let scheduler = if word == "leastconn" && cursor.eat("localitybased") {
        if cursor.eat("replication") {
            Scheduler::LocalityBasedReplication
        } else {
            Scheduler::LocalityBased
        }
    } else {
        Scheduler::NAMES
            .iter()
            .find(|(n, _)| *n == word)
            .map(|&(_, s)| s)
            .ok_or_else(|| {
                let names: Vec<&str> = Scheduler::NAMES.iter().map(|(n, _)| *n).collect();
                unknown(first, "scheduler", &names)
            })?
    };
    Ok(Spanned::new(scheduler, first.loc))
}

/// `check [timeout S] [interval S] [source IP] [port P] [rise N] [fall N] [inhibit]`;
/// several `check` lines add up.
fn check(
    director: &mut Director,
    seen: &mut Seen<'_>,
    keyword: Token<'_>,
    cursor: &mut Cursor<'_, '_>,
) -> Result<(), Problem> {
    if cursor.peek().is_none() {
        return Err(Problem::new(
            cursor.end_loc(),
            "`check` needs a parameter (timeout, interval, source, port, rise, fall or inhibit)",
        ));
    }
    let params = &mut director.check;
    if params.is_unset() {
        params.loc = keyword.loc;
    }
    while let Some(param) = cursor.next_token() {
        let setting = format!("check {}", param.text);
        let mut value = |what: &str| cursor.value(&setting, what);
        match param.text {
            "timeout" => {
                params.timeout = Some(number_in(value("seconds")?, "check timeout", SECONDS)?)
            }
            "interval" => {
                params.interval = Some(number_in(value("seconds")?, "check interval", SECONDS)?)
            }
            "source" => {
                let token = value("an IP address")?;
                params.source = Some(Spanned::new(ip(token)?, token.loc));
            }
            "port" => {
                let token = value("a port")?;
                params.port = Some(Spanned::new(port(token.text, token.loc)?, token.loc));
            }
            "rise" => params.rise = Some(number_in(value("a count")?, "rise count", 1..=1000)?),
            "fall" => params.fall = Some(number_in(value("a count")?, "fall count", 1..=1000)?),
            "inhibit" => params.inhibit = true,
            _ => return Err(unknown(param, "check parameter", CHECK_PARAMS)),
        }
        seen.once_named(setting, param.loc)?;
    }
    Ok(())
}

fn option(
    director: &mut Director,
    seen: &mut Seen<'_>,
    cursor: &mut Cursor<'_, '_>,
) -> Result<(), Problem> {
    let kind = cursor.value(
        "option",
        "persistence, httpcheck, tcpcheck, arpcheck, icmpcheck or onepacket",
    )?;
    let method = match kind.text {
        "persistence" => {
            let mut persistence = Persistence::default();
            while let Some(param) = cursor.next_token() {
                match param.text {
                    "timeout" => {
                        let token = cursor.value("persistence timeout", "seconds")?;
                        persistence.timeout =
                            Some(number_in(token, "persistence timeout", SECONDS)?);
                    }
                    "netmask" => {
                        let token = cursor.value(
                            "persistence netmask",
                            "a netmask such as 255.255.255.0, or a prefix length such as 64",
                        )?;
                        persistence.netmask = Some(persistence_netmask(token, director.family())?);
                        persistence.netmask_loc = token.loc;
                    }
                    _ => {
                        return Err(unknown(
                            param,
                            "persistence parameter",
                            &["timeout", "netmask"],
                        ));
                    }
                }
            }
            seen.once_named("option persistence", kind.loc)?;
            director.persistence = Some(persistence);
            return Ok(());
        }
        "onepacket" => {
            seen.once_named("option onepacket", kind.loc)?;
            director.onepacket = true;
            director.onepacket_loc = kind.loc;
            return Ok(());
        }
        "httpcheck" => {
            let mut http = HttpCheck::default();
            while let Some(param) = cursor.next_token() {
                match param.text {
                    "uri" => {
                        let token = cursor.value("httpcheck uri", "a path such as /health")?;
                        if !token.text.starts_with('/') {
                            return Err(Problem::new(
                                token.loc,
                                format!("uri `{}` must start with `/`", token.text),
                            ));
                        }
                        http.uri = Some(token.text.to_owned());
                    }
                    "statuscode" => {
                        let token = cursor.value("httpcheck statuscode", "an HTTP status code")?;
                        http.statuscode =
                            Some(number_in(token, "HTTP status code", 100..=599)? as u16);
                    }
                    "vhost" => {
                        let token = cursor.value("httpcheck vhost", "a host name")?;
                        http.vhost = Some(token.text.to_owned());
                    }
                    _ => {
                        return Err(unknown(
                            param,
                            "httpcheck parameter",
                            &["uri", "statuscode", "vhost"],
                        ));
                    }
                }
            }
            CheckMethod::Http(http)
        }
        "tcpcheck" => CheckMethod::Tcp,
        "icmpcheck" => CheckMethod::Icmp,
        "arpcheck" => {
            let iface = if cursor.eat("iface") {
                Some(name::<IfName>(cursor.value("arpcheck iface", "an interface name")?)?.value)
            } else {
                None
            };
            CheckMethod::Arp { iface }
        }
        _ => return Err(unknown(kind, "option", OPTIONS)),
    };
    if let Some(previous) = &director.adv_check {
        return Err(Problem::new(
            kind.loc,
            format!(
                "a second check method; `option {}` is already set on line {}",
                previous.keyword(),
                previous.loc.line
            ),
        )
        .with_hint(Some("a director has one check method".to_owned())));
    }
    director.adv_check = Some(Spanned::new(method, kind.loc));
    Ok(())
}

/// `server NAME IP[:PORT] [weight N] [check] [sorry]`
fn server(cursor: &mut Cursor<'_, '_>) -> Result<Server, Problem> {
    let server_name = name::<ServerName>(cursor.value("server", "a name")?)?;
    let address = cursor.value("server NAME", "an address IP[:PORT]")?;
    let (ip, port) = ip_and_port(address)?;
    let mut server = Server {
        name: server_name,
        address: ip,
        port,
        weight: None,
        check: false,
        sorry: false,
        loc: address.loc,
    };
    let mut seen = Seen::default();
    while let Some(flag) = cursor.next_token() {
        match flag.text {
            "weight" => {
                let token = cursor.value("weight", "a weight 0-65535")?;
                let weight = if token.text.starts_with('-') {
                    return Err(Problem::new(
                        token.loc,
                        format!("weight {} is negative; weights are 0-65535", token.text),
                    ));
                } else {
                    number_in(token, "weight", 0..=65535)?
                };
                server.weight = Some(weight as u16);
            }
            "check" => server.check = true,
            "sorry" => server.sorry = true,
            _ => return Err(unknown(flag, "server parameter", SERVER_FLAGS)),
        }
        seen.once(flag.text, flag)?;
    }
    Ok(server)
}

/// A dotted netmask (IPv4) or a prefix length 0-128; the validator holds the prefix
/// to the director's family.
fn persistence_netmask(token: Token<'_>, family: Family) -> Result<u8, Problem> {
    if token.text.contains('.') {
        if family == Family::Ipv6 {
            return Err(Problem::new(
                token.loc,
                format!(
                    "`{}` is an IPv4 netmask; an IPv6 director takes a prefix length",
                    token.text
                ),
            )
            .with_hint(Some(
                "write `netmask 64` to keep a /64 of clients on one server".to_owned(),
            )));
        }
        return netmask(token.text, token.loc);
    }
    number_in(token, "persistence prefix length", 0..=128).map(|prefix| prefix as u8)
}

//! keepalived's checkers, one or more per real server, as the check of one
//! lbconsole server: its method (`option tcpcheck|httpcheck|icmpcheck`) and
//! its `check` parameters. The director takes the first checked server's.

use std::net::IpAddr;

use crate::config::model::lvs::{CheckMethod, HttpCheck};
use crate::config::model::types::Port;
use crate::convert::{Conversion, NoteKind, Place};

use super::lexer::Node;

/// keepalived's `delay_loop` when none is written.
const DEFAULT_DELAY_LOOP_S: u32 = 60;
/// keepalived's `connect_timeout` when none is written.
const DEFAULT_CONNECT_TIMEOUT_S: u32 = 5;

/// Every checker keyword of a real server.
pub const CHECKERS: &[&str] = &[
    "TCP_CHECK",
    "HTTP_GET",
    "SSL_GET",
    "SMTP_CHECK",
    "PING_CHECK",
    "DNS_CHECK",
    "UDP_CHECK",
    "MISC_CHECK",
    "BFD_CHECK",
    "FILE_CHECK",
];

/// The settings a virtual server and a real server pass down to their
/// checkers, each as written (`None`: the checker's default).
#[derive(Debug, Clone, Default)]
pub struct Inherited {
    pub delay_loop: Option<u32>,
    pub connect_timeout: Option<u32>,
    pub retry: Option<u32>,
    pub delay_before_retry: Option<u32>,
    pub virtualhost: Option<String>,
}

impl Inherited {
    /// Takes `node` when it is one of the inherited settings (or `warmup`,
    /// `alpha`, reported here as they are at every level); false otherwise.
    pub fn read(&mut self, node: &Node, out: &mut Conversion) -> bool {
        match node.keyword() {
            "delay_loop" => self.delay_loop = seconds(node, out).or(self.delay_loop),
            "connect_timeout" => self.connect_timeout = seconds(node, out).or(self.connect_timeout),
            "retry" | "nb_get_retry" => self.retry = count(node, out).or(self.retry),
            "delay_before_retry" => {
                self.delay_before_retry = seconds(node, out).or(self.delay_before_retry);
            }
            "virtualhost" => match node.arg(0) {
                Some(host) => self.virtualhost = Some(host.to_owned()),
                None => missing_value(node, out),
            },
            "warmup" => out.note(
                &node.place,
                NoteKind::Approximated,
                format!(
                    "`{}`: lbconsole spreads the checks over the interval by a stable offset, not by a random delay of up to warmup",
                    node.text()
                ),
            ),
            "alpha" => out.note(
                &node.place,
                NoteKind::Approximated,
                format!(
                    "`{}`: keepalived starts the server down until a check succeeds; lbconsole starts every server up",
                    node.text()
                ),
            ),
            _ => return false,
        }
        true
    }
}

/// One real server's check, as lbconsole would write it for its director.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCheck {
    pub method: CheckMethod,
    pub interval: u32,
    pub timeout: u32,
    pub fall: u32,
    /// `None`: the server's own port.
    pub port: Option<Port>,
    pub source: Option<IpAddr>,
}

/// A converted checker and what the report says of it.
#[derive(Debug, Clone)]
pub struct Checked {
    pub check: ServerCheck,
    pub place: Place,
    pub keyword: String,
    /// keepalived's retries of a failed check, and the seconds between them.
    pub retry: u32,
    pub retry_delay: u32,
}

impl ServerCheck {
    /// How `self` differs from `other`, as the report says it: `interval
    /// 10s, not 60s`.
    pub fn differences(&self, other: &Self) -> Vec<String> {
        let mut out = Vec::new();
        if self.method != other.method {
            out.push(format!(
                "{}, not {}",
                describe(&self.method),
                describe(&other.method)
            ));
        }
        for (what, mine, theirs) in [
            ("interval", self.interval, other.interval),
            ("timeout", self.timeout, other.timeout),
        ] {
            if mine != theirs {
                out.push(format!("{what} {mine}s, not {theirs}s"));
            }
        }
        if self.fall != other.fall {
            out.push(format!("fall {}, not {}", self.fall, other.fall));
        }
        if self.port != other.port {
            let port = |p: Option<Port>| p.map_or("the server's own".to_owned(), |p| p.to_string());
            out.push(format!(
                "port {}, not {}",
                port(self.port),
                port(other.port)
            ));
        }
        if self.source != other.source {
            let source = |s: Option<IpAddr>| s.map_or("any".to_owned(), |s| s.to_string());
            out.push(format!(
                "source {}, not {}",
                source(self.source),
                source(other.source)
            ));
        }
        out
    }
}

fn describe(method: &CheckMethod) -> String {
    match method {
        CheckMethod::Http(http) => {
            let mut text = format!(
                "httpcheck uri {} statuscode {}",
                http.uri(),
                http.statuscode()
            );
            if let Some(vhost) = &http.vhost {
                text.push_str(&format!(" vhost {vhost}"));
            }
            text
        }
        other => other.keyword().to_owned(),
    }
}

/// What each kind of checker becomes.
struct Kind {
    method: CheckMethod,
    /// keepalived's `retry` and `delay_before_retry` defaults for it.
    default_retry: u32,
    default_retry_delay: Option<u32>,
    /// The note on how lbconsole's check differs, if it does.
    approximation: Option<&'static str>,
    /// Its own keywords, which the approximation note covers.
    own_keywords: &'static [&'static str],
}

fn kind(keyword: &str) -> Result<Kind, &'static str> {
    let base = Kind {
        method: CheckMethod::Tcp,
        default_retry: 1,
        default_retry_delay: Some(1),
        approximation: None,
        own_keywords: &[],
    };
    Ok(match keyword {
        "TCP_CHECK" => base,
        "HTTP_GET" => Kind {
            method: CheckMethod::Http(HttpCheck::default()),
            default_retry_delay: Some(3),
            ..base
        },
        "SSL_GET" => Kind {
            default_retry_delay: Some(3),
            approximation: Some(
                "lbconsole's checks do not speak TLS: the port is checked by a TCP connect (tcpcheck), so an error page or a bad certificate passes",
            ),
            own_keywords: &[
                "url",
                "http_protocol",
                "enable_sni",
                "sni_name",
                "fast_recovery",
                "tls_compliant",
            ],
            ..base
        },
        "SMTP_CHECK" => Kind {
            approximation: Some(
                "lbconsole connects to the port (tcpcheck); it reads no 220 greeting and sends no HELO",
            ),
            own_keywords: &["helo_name", "host"],
            ..base
        },
        "PING_CHECK" => Kind {
            method: CheckMethod::Icmp,
            ..base
        },
        "DNS_CHECK" => Kind {
            method: CheckMethod::Icmp,
            default_retry: 3,
            default_retry_delay: None,
            approximation: Some(
                "lbconsole has no DNS check: the server is pinged (icmpcheck), so a host whose DNS service is down stays in",
            ),
            own_keywords: &["type", "name"],
        },
        "UDP_CHECK" => Kind {
            method: CheckMethod::Icmp,
            approximation: Some(
                "lbconsole has no UDP check: the server is pinged (icmpcheck), so a host whose service is down stays in",
            ),
            own_keywords: &[
                "payload",
                "require_reply",
                "min_reply_length",
                "max_reply_length",
            ],
            ..base
        },
        "MISC_CHECK" => return Err("lbconsole runs no check scripts"),
        "BFD_CHECK" => return Err("lbconsole runs no BFD sessions"),
        "FILE_CHECK" => {
            return Err(
                "lbconsole sets no weight from a file; use `lbconsole server weight` or `drain`",
            );
        }
        _ => return Err("not a checker"),
    })
}

/// Converts one checker of a real server whose port is `server_port`;
/// `None` when lbconsole has nothing like it (reported).
pub fn checker(
    node: &Node,
    server_port: Option<Port>,
    inherited: &Inherited,
    out: &mut Conversion,
) -> Option<Checked> {
    let keyword = node.keyword();
    let kind = match kind(keyword) {
        Ok(kind) => kind,
        Err(reason) => {
            out.note(
                &node.place,
                NoteKind::Dropped,
                format!("{keyword}: {reason}; this checker is left out"),
            );
            return None;
        }
    };
    if let Some(approximation) = kind.approximation {
        out.note(
            &node.place,
            NoteKind::Approximated,
            format!("{keyword}: {approximation}"),
        );
    }
    let mut settings = inherited.clone();
    let mut port = None;
    let mut source = None;
    let mut urls = Vec::new();
    let is_http = matches!(kind.method, CheckMethod::Http(_));
    for child in node.children() {
        if settings.read(child, out) || kind.own_keywords.contains(&child.keyword()) {
            continue;
        }
        let dropped = |reason: &str| (NoteKind::Dropped, format!("`{}`: {reason}", child.text()));
        let note = match child.keyword() {
            "connect_port" => {
                match child
                    .arg(0)
                    .and_then(|p| p.parse::<u16>().ok())
                    .and_then(Port::new)
                {
                    Some(connect_port) => port = Some(connect_port),
                    None => bad_value(child, out, "a port"),
                }
                None
            }
            "bindto" => {
                match child.arg(0).and_then(|a| a.parse::<IpAddr>().ok()) {
                    Some(address) => source = Some(address),
                    None => bad_value(child, out, "an address"),
                }
                None
            }
            "url" if is_http => {
                urls.push(child);
                None
            }
            "connect_ip" => Some(dropped("lbconsole checks each server at its own address")),
            "bind_port" => Some(dropped("lbconsole's checks leave from any source port")),
            "bind_if" => Some(dropped(
                "lbconsole's checks leave by the route to the server",
            )),
            "fwmark" => Some(dropped(
                "lbconsole marks its check sockets 0x40000, the mark the flows let through",
            )),
            "log_all_failures" => Some(dropped(
                "lbconsole logs every change of state, not every failure",
            )),
            "http_protocol" if is_http => Some(dropped("lbconsole's httpcheck speaks HTTP/1.1")),
            "enable_sni" | "sni_name" | "tls_compliant" if is_http => {
                Some(dropped("lbconsole's httpcheck does not speak TLS"))
            }
            "fast_recovery" if is_http => Some((
                NoteKind::Approximated,
                format!(
                    "`{}`: lbconsole brings a server back after `check rise` successes (1)",
                    child.text()
                ),
            )),
            other => Some((
                NoteKind::Unknown,
                format!("`{other}` in {keyword}: unknown keyword; left out"),
            )),
        };
        if let Some((kind, text)) = note {
            out.note(&child.place, kind, text);
        }
    }
    let method = match kind.method {
        CheckMethod::Http(_) => CheckMethod::Http(http_check(node, &urls, &settings, out)),
        other => other,
    };
    if !method.uses_port() || port == server_port {
        port = None;
    }
    let retry = settings.retry.unwrap_or(kind.default_retry);
    let interval = settings.delay_loop.unwrap_or(DEFAULT_DELAY_LOOP_S);
    Some(Checked {
        check: ServerCheck {
            method,
            interval,
            timeout: settings
                .connect_timeout
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT_S),
            fall: retry.saturating_add(1),
            port,
            source,
        },
        place: node.place.clone(),
        keyword: keyword.to_owned(),
        retry,
        retry_delay: settings
            .delay_before_retry
            .or(kind.default_retry_delay)
            .unwrap_or(interval),
    })
}

/// The first `url` of an HTTP_GET as lbconsole's one uri, status code and
/// virtual host.
fn http_check(
    node: &Node,
    urls: &[&Node],
    settings: &Inherited,
    out: &mut Conversion,
) -> HttpCheck {
    let mut http = HttpCheck {
        vhost: settings
            .virtualhost
            .clone()
            .filter(|host| !host.contains(['#', ' ', '\t'])),
        ..HttpCheck::default()
    };
    let Some(first) = urls.first() else {
        out.note(
            &node.place,
            NoteKind::Error,
            "HTTP_GET without a `url` block: keepalived refuses it; lbconsole's httpcheck asks for /",
        );
        return http;
    };
    if let Some(second) = urls.get(1) {
        out.note(
            &second.place,
            NoteKind::Approximated,
            format!(
                "HTTP_GET checks {} urls; lbconsole's httpcheck asks for one, the first",
                urls.len()
            ),
        );
    }
    let mut has_status = false;
    for child in first.children() {
        match child.keyword() {
            "path" => match child.arg(0) {
                Some(path) => http.uri = Some(writable(child, path, out)),
                None => missing_value(child, out),
            },
            "virtualhost" => match child.arg(0) {
                Some(host) => http.vhost = Some(writable(child, host, out)),
                None => missing_value(child, out),
            },
            "status_code" => {
                has_status = true;
                http.statuscode = status_code(child, out);
            }
            "digest" => out.note(
                &child.place,
                NoteKind::Dropped,
                "digest: lbconsole's httpcheck matches the status code, not a digest of the body",
            ),
            "regex" | "regex_no_match" | "regex_options" | "regex_min_offset"
            | "regex_max_offset" | "regex_stack" => out.note(
                &child.place,
                NoteKind::Dropped,
                format!(
                    "{}: lbconsole's httpcheck matches the status code, not the body",
                    child.keyword()
                ),
            ),
            "tls_compliant" => out.note(
                &child.place,
                NoteKind::Dropped,
                "tls_compliant: lbconsole's httpcheck does not speak TLS",
            ),
            other => out.note(
                &child.place,
                NoteKind::Unknown,
                format!("`{other}` in url: unknown keyword; left out"),
            ),
        }
    }
    if !has_status {
        out.note(
            &first.place,
            NoteKind::Approximated,
            "url without status_code: keepalived accepts any 2xx; lbconsole's httpcheck expects 200",
        );
    }
    http
}

/// `value` as lvs.conf can write it: a word without blanks, cut at a `#`
/// (where lvs.conf's comments start).
fn writable(node: &Node, value: &str, out: &mut Conversion) -> String {
    let Some(end) = value.find(['#', ' ', '\t']) else {
        return value.to_owned();
    };
    let cut = &value[..end];
    out.note(
        &node.place,
        NoteKind::Approximated,
        format!(
            "`{}`: lvs.conf cannot write `#` or a blank in a value; lbconsole's httpcheck uses `{cut}`",
            node.text()
        ),
    );
    cut.to_owned()
}

/// `status_code 200`, or a list or ranges (`200-299 301`) of which lbconsole
/// takes the first code.
fn status_code(node: &Node, out: &mut Conversion) -> Option<u16> {
    let first = node
        .arg(0)
        .and_then(|text| text.split('-').next())
        .and_then(|code| code.parse::<u16>().ok())
        .filter(|code| (100..=599).contains(code));
    let Some(code) = first else {
        bad_value(node, out, "an HTTP status code");
        return None;
    };
    if node.args().len() > 1 || node.arg(0).is_some_and(|text| text.contains('-')) {
        out.note(
            &node.place,
            NoteKind::Approximated,
            format!(
                "`{}`: lbconsole's httpcheck expects one status code; it takes {code}",
                node.text()
            ),
        );
    }
    Some(code)
}

/// A keepalived timer (seconds, possibly with decimals) in whole seconds,
/// rounded up to at least 1.
pub fn seconds(node: &Node, out: &mut Conversion) -> Option<u32> {
    let Some(text) = node.arg(0) else {
        missing_value(node, out);
        return None;
    };
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let valid = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit());
    let Some(whole) = whole.parse::<u32>().ok().filter(|_| valid) else {
        bad_value(node, out, "a number of seconds");
        return None;
    };
    let has_fraction = fraction.bytes().any(|b| b != b'0');
    let rounded = whole.saturating_add(u32::from(has_fraction)).max(1);
    if rounded.to_string() != text {
        out.note(
            &node.place,
            NoteKind::Approximated,
            format!(
                "`{}`: lbconsole counts whole seconds; {rounded}",
                node.text()
            ),
        );
    }
    Some(rounded)
}

/// A whole number.
pub fn count(node: &Node, out: &mut Conversion) -> Option<u32> {
    let value = node.arg(0).and_then(|text| text.parse::<u32>().ok());
    if value.is_none() {
        bad_value(node, out, "a whole number");
    }
    value
}

pub fn missing_value(node: &Node, out: &mut Conversion) {
    out.note(
        &node.place,
        NoteKind::Error,
        format!("`{}` needs a value; left out", node.text()),
    );
}

pub fn bad_value(node: &Node, out: &mut Conversion, what: &str) {
    out.note(
        &node.place,
        NoteKind::Error,
        format!("`{}`: not {what}; left out", node.text()),
    );
}

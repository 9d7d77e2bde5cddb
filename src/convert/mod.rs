//! `lbconsole convert`: an existing load balancer's configuration (keepalived,
//! an `ipvsadm -S` dump, ldirectord) as lbconsole's `lvs.conf` and
//! `flows.conf`, with a report line for every source construct that has no
//! exact equivalent: what is approximated and how, what is dropped and why, and
//! every keyword the converter does not know, by name.
//!
//! Pure: the caller reads the files. keepalived's `include` reaches further
//! files through [`Files`].

mod disk;
pub mod ipvsadm;
pub mod keepalived;
pub mod ldirectord;

pub use disk::DiskFiles;

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::config::model::flows::Flow;
use crate::config::model::lvs::{Director, LvsConfig, Scheduler, Server, ServiceProtocol};
use crate::config::model::network::{Interface, VrrpService};
use crate::config::model::types::{DirectorName, FlowName, Loc, Port, ServerName, Spanned};
use crate::config::print;

/// The load balancers whose configuration lbconsole converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// keepalived.conf(5), with its `include`s.
    Keepalived,
    /// The output of `ipvsadm -S` or `ipvsadm -Sn`.
    Ipvsadm,
    /// ldirectord.cf.
    Ldirectord,
}

/// Reads the files a configuration includes. The converter itself does no I/O.
pub trait Files {
    /// The bytes of `path`; an unreadable file is an error, never empty text.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// The files `pattern` (a shell glob, as keepalived's `include` takes)
    /// names, sorted; none is an empty list.
    fn glob(&self, pattern: &Path) -> io::Result<Vec<PathBuf>>;
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Self::Keepalived => "keepalived",
            Self::Ipvsadm => "ipvsadm",
            Self::Ldirectord => "ldirectord",
        }
    }
}

/// How to read the source.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// keepalived's `--config-id`: the `@NAME` lines that apply are those of
    /// this instance; without it, they are reported and left out.
    pub instance: Option<String>,
}

/// Converts the configuration at `path`. An unreadable `path` is an error; an
/// unreadable `include` is a report line.
pub fn convert(
    source: Source,
    path: &Path,
    files: &dyn Files,
    options: &Options,
) -> io::Result<Conversion> {
    let name = path.display().to_string();
    Ok(match source {
        Source::Keepalived => keepalived::convert(path, files, options)?,
        Source::Ipvsadm | Source::Ldirectord => {
            let mut notes = Conversion::default();
            let text = text_of(files.read(path)?, &name, &mut notes);
            let mut conversion = if source == Source::Ipvsadm {
                ipvsadm::convert(&name, &text)
            } else {
                ldirectord::convert(&name, &text)
            };
            conversion.report.extend(notes.report);
            conversion
        }
    })
}

/// The text of a source file. A file that is not UTF-8 (a Latin-1 page
/// copied from the web) is still read: each byte that is not UTF-8 becomes
/// U+FFFD, and the report says where the first one is, so that a keyword or
/// value reported as unknown because of it is explained.
pub fn text_of(bytes: Vec<u8>, file: &str, out: &mut Conversion) -> String {
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => {
            let bytes = error.into_bytes();
            let first = std::str::from_utf8(&bytes)
                .err()
                .map_or(0, |error| error.valid_up_to());
            let line = bytes[..first].iter().filter(|&&b| b == b'\n').count() + 1;
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let replaced = text
                .chars()
                .filter(|&c| c == char::REPLACEMENT_CHARACTER)
                .count();
            out.note(
                &Place {
                    file: file.to_owned(),
                    line: u32::try_from(line).unwrap_or(u32::MAX),
                },
                NoteKind::Error,
                format!(
                    "not UTF-8 text: {} of its bytes, the first on this line, are read as U+FFFD; a word with one is not understood",
                    replaced
                ),
            );
            text
        }
    }
}

/// What `lbconsole convert` writes and says: the files, the report, and what
/// `lbconsole check` says of the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub lvs: String,
    /// `None` when the source needs no flows.
    pub flows: Option<String>,
    /// `None` when the source runs no VRRP.
    pub vrrp: Option<String>,
    /// The report, in the order of the sources.
    pub report: Vec<String>,
    /// `lbconsole check` of the files, one line per diagnostic.
    pub check: Vec<String>,
    pub has_errors: bool,
}

impl Conversion {
    /// The files, printed, then checked as `lbconsole check` checks them.
    pub fn outcome(&self, source: Source, path: &str) -> Outcome {
        let header = |file: &str| {
            format!(
                "{file} converted by `lbconsole convert --from {}` from {}",
                source.name(),
                crate::text::printable(path)
            )
        };
        let lvs = self.lvs_text(&header("lvs.conf"));
        let flows = self.flows_text(&header("flows.conf"));
        let vrrp = self.vrrp_text(&header("vrrp.conf"));
        let checked = crate::config::check(crate::config::Sources {
            network: b"",
            flows: flows.as_deref().unwrap_or("").as_bytes(),
            lvs: lvs.as_bytes(),
        });
        Outcome {
            report: self.report_lines(),
            check: checked
                .diagnostics
                .iter()
                .map(ToString::to_string)
                .collect(),
            has_errors: checked.has_errors(),
            lvs,
            flows,
            vrrp,
        }
    }
}

/// Where a construct was written: `FILE:LINE`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Place {
    pub file: String,
    pub line: u32,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// What happened to a source construct that has no exact equivalent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NoteKind {
    /// Converted to something close; the note says how it differs.
    Approximated,
    /// Left out; the note says why.
    Dropped,
    /// A keyword the converter does not know: left out, named.
    Unknown,
    /// Converted, and the administrator has something to do (write a flow…).
    ToDo,
    /// The source itself is wrong (a bad address, a missing file): the
    /// construct is left out.
    Error,
}

impl NoteKind {
    pub fn word(self) -> &'static str {
        match self {
            Self::Approximated => "approximated",
            Self::Dropped => "dropped",
            Self::Unknown => "unknown",
            Self::ToDo => "to do",
            Self::Error => "error",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Note {
    pub place: Place,
    pub kind: NoteKind,
    pub text: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.place, self.kind.word(), self.text)
    }
}

/// A converted section and the source construct it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted<T> {
    pub from: Place,
    /// The construct's own words (`virtual_server 10.0.0.1 80`), for the
    /// comment above the section.
    pub what: String,
    pub value: T,
}

/// The result of a conversion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conversion {
    pub directors: Vec<Converted<Director>>,
    pub flows: Vec<Converted<Flow>>,
    /// keepalived's `vrrp_instance`s: interfaces with only their `vrrp` lines.
    pub vrrp: Vec<Converted<Interface>>,
    pub vrrp_service: Option<Converted<VrrpService>>,
    pub report: Vec<Note>,
}

impl Conversion {
    /// Adds a report line.
    pub fn note(&mut self, place: &Place, kind: NoteKind, text: impl Into<String>) {
        self.report.push(Note {
            place: place.clone(),
            kind,
            text: text.into(),
        });
    }

    pub fn lvs(&self) -> LvsConfig {
        LvsConfig {
            directors: self.directors.iter().map(|d| d.value.clone()).collect(),
        }
    }

    /// `lvs.conf`: each director under a comment that names its source.
    pub fn lvs_text(&self, header: &str) -> String {
        sections(header, &self.directors, print::director)
    }

    /// `flows.conf`, or `None` when the source needs no flows.
    pub fn flows_text(&self, header: &str) -> Option<String> {
        (!self.flows.is_empty()).then(|| sections(header, &self.flows, print::flow))
    }

    /// `vrrp.conf`, the `vrrp` lines `lbconsole import` merges into
    /// network.conf, or `None` when the source runs no VRRP.
    pub fn vrrp_text(&self, header: &str) -> Option<String> {
        if self.vrrp.is_empty() && self.vrrp_service.is_none() {
            return None;
        }
        let header = format!(
            "{header}\n# `lbconsole import` adds each interface's `vrrp` lines to its section of\n# the saved network.conf, and `service vrrp` at its end; the interfaces and\n# their `ip address` are the appliance's own, as network.conf has them."
        );
        let mut out = sections(&header, &self.vrrp, print::interface);
        if let Some(service) = &self.vrrp_service {
            out.push('\n');
            print::vrrp_service(&mut out, &service.value);
        }
        Some(out)
    }

    /// The report, in the order of the sources (file, then line), a line each.
    pub fn report_lines(&self) -> Vec<String> {
        let mut report: Vec<&Note> = self.report.iter().collect();
        report.sort();
        report.into_iter().map(Note::to_string).collect()
    }
}

fn sections<T>(header: &str, items: &[Converted<T>], print: fn(&mut String, &T)) -> String {
    let mut out = format!("# {header}\n");
    for item in items {
        out.push('\n');
        out.push_str(&format!(
            "# {}: {}\n",
            item.from,
            crate::text::printable(&item.what)
        ));
        print(&mut out, &item.value);
    }
    out
}

/// The schedulers of the kernel's IPVS, as `-s` names them.
const IPVS_SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf", "twos",
];

/// The lbconsole scheduler of an IPVS scheduler name (ipvsadm's `-s`,
/// keepalived's `lb_algo`, ldirectord's `scheduler`), if lbconsole programs it.
pub fn ipvs_scheduler(name: &str) -> Option<Scheduler> {
    if !IPVS_SCHEDULERS.contains(&name) {
        return None;
    }
    Scheduler::NAMES
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, scheduler)| *scheduler)
}

/// `rr` and `lc` become lbconsole's roundrobin and leastconn, which IPVS runs
/// as `wrr` and `wlc`: with equal weights they pick as `rr` and `lc` do, but
/// the table says `wrr`/`wlc`, and with unequal weights they follow them.
/// `written` is the source's own words for the scheduler.
pub fn ignored_weights(scheduler: &str, written: &str, director: &Director) -> Option<String> {
    let (lbconsole, kernel) = match scheduler {
        "rr" => ("roundrobin", "wrr"),
        "lc" => ("leastconn", "wlc"),
        _ => return None,
    };
    let mut weights: Vec<u16> = director
        .servers
        .iter()
        .filter(|s| !s.sorry)
        .map(Server::weight)
        .filter(|w| *w > 0)
        .collect();
    weights.sort_unstable();
    weights.dedup();
    let listed: Vec<String> = weights.iter().map(u16::to_string).collect();
    Some(if weights.len() > 1 {
        format!(
            "{written} ignores the weights ({}); lbconsole's {lbconsole} is {kernel}, which follows them",
            listed.join(", ")
        )
    } else {
        format!(
            "{written}: lbconsole's {lbconsole} is {kernel}, which with these equal weights picks as {scheduler} does; `ipvsadm -Ln` shows {kernel}"
        )
    })
}

/// Hands out valid names, unique among those it gave: a wanted name's other
/// characters become `-`, and a taken one gets `-2`, `-3`….
#[derive(Debug, Default)]
pub struct Names {
    taken: BTreeSet<String>,
}

impl Names {
    fn unique(&mut self, wanted: &str, allows_dot: bool, max_len: Option<usize>) -> String {
        let mut base: String = wanted
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || (c == '.' && allows_dot) {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        if base.is_empty() || base == "." || base == ".." {
            base = "x".to_owned();
        }
        let fit = |text: &str, suffix: &str| {
            let room = max_len.map_or(usize::MAX, |max| max - suffix.len());
            format!("{}{suffix}", &text[..text.len().min(room)])
        };
        let mut name = fit(&base, "");
        let mut n = 2;
        while self.taken.contains(&name) {
            name = fit(&base, &format!("-{n}"));
            n += 1;
        }
        self.taken.insert(name.clone());
        name
    }

    pub fn director(&mut self, wanted: &str) -> DirectorName {
        let rules = DirectorName::RULES;
        DirectorName::new(&self.unique(wanted, rules.allows_dot, rules.max_len))
            .expect("a name made of the director charset")
    }

    pub fn server(&mut self, wanted: &str) -> ServerName {
        let rules = ServerName::RULES;
        ServerName::new(&self.unique(wanted, rules.allows_dot, rules.max_len))
            .expect("a name made of the server charset")
    }

    pub fn flow(&mut self, wanted: &str) -> FlowName {
        let rules = FlowName::RULES;
        FlowName::new(&self.unique(wanted, rules.allows_dot, rules.max_len))
            .expect("a name made of the flow charset")
    }
}

/// A sorry server at `address` (and `port`), named after them among `names`:
/// at weight 0 until every other server of its director is down.
pub fn sorry_server(names: &mut Names, address: IpAddr, port: Option<Port>) -> Server {
    Server {
        name: Spanned::unplaced(names.server(&server_name(address, port.map(Port::get)))),
        address,
        port,
        weight: None,
        check: false,
        sorry: true,
        loc: Loc::default(),
    }
}

/// `tcp-10.0.0.1-80`, `udp-2001-db8--1-53`: a director named after its
/// virtual service.
pub fn service_name(protocol: ServiceProtocol, address: IpAddr, port: Option<u16>) -> String {
    let protocol = match protocol {
        ServiceProtocol::Tcp => "tcp",
        ServiceProtocol::Udp => "udp",
    };
    match port {
        Some(port) => format!("{protocol}-{}-{port}", address_words(address)),
        None => format!("{protocol}-{}", address_words(address)),
    }
}

/// `10.0.0.2-8080`, `2001-db8--2-8080`: a real server named after its address.
pub fn server_name(address: IpAddr, port: Option<u16>) -> String {
    match port {
        Some(port) => format!("{}-{port}", address_words(address)),
        None => address_words(address),
    }
}

fn address_words(address: IpAddr) -> String {
    address.to_string().replace(':', "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_and_unique() {
        let mut names = Names::default();
        assert_eq!(
            names.director("tcp-10.0.0.1-80").as_str(),
            "tcp-10.0.0.1-80"
        );
        assert_eq!(
            names.director("tcp-10.0.0.1-80").as_str(),
            "tcp-10.0.0.1-80-2"
        );
        assert_eq!(names.director("web farm/1").as_str(), "web-farm-1");
        assert_eq!(names.director("").as_str(), "x");
        let mut flows = Names::default();
        let long = "a.very.long.group.name.of.more.than.27";
        let first = flows.flow(long);
        let second = flows.flow(long);
        assert_eq!(first.as_str(), "a-very-long-group-name-of-m");
        assert_eq!(second.as_str(), "a-very-long-group-name-of-2");
    }

    #[test]
    fn services_and_servers_are_named_after_their_addresses() {
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            service_name(ServiceProtocol::Udp, v6, Some(53)),
            "udp-2001-db8--1-53"
        );
        assert_eq!(
            server_name("10.0.0.2".parse().unwrap(), Some(8080)),
            "10.0.0.2-8080"
        );
        assert_eq!(server_name("10.0.0.2".parse().unwrap(), None), "10.0.0.2");
    }
}

//! The sandbox's configuration: `examples/`, which is IPv4 only (other tests
//! hold it as it is), with the sandbox's IPv6 on top, so that the demo is dual
//! stack. The additions are placed by an anchor line of the example each; a
//! host test holds every anchor to the example and the result to `check`.

use crate::config::ConfigFile;

const EXAMPLES: [(ConfigFile, &str); 3] = [
    (
        ConfigFile::Network,
        include_str!("../../examples/network.conf"),
    ),
    (ConfigFile::Flows, include_str!("../../examples/flows.conf")),
    (ConfigFile::Lvs, include_str!("../../examples/lvs.conf")),
];

/// Where an addition goes in its file.
#[derive(Debug, Clone, Copy)]
enum Place {
    /// After the first line that reads exactly this.
    After(&'static str),
    /// Before the first line that reads exactly this.
    Before(&'static str),
    /// At the end of the file.
    End,
}

/// The sandbox's IPv6, file by file.
const ADDITIONS: [(ConfigFile, Place, &str); 5] = [
    // The appliance's own IPv6 address and the IPv6 web VIP, beside the
    // IPv4 ones; the demo client is at 2001:db8::fe.
    (
        ConfigFile::Network,
        Place::After("    ip address 192.168.0.12/24"),
        "    ip address 2001:db8::1/64\n\
         \x20   ip address 2001:db8::10/64\n",
    ),
    // The real servers' VLAN carries IPv6 too: the director's address there
    // (its NAT servers' gateway), and a route through the switch's router.
    (
        ConfigFile::Network,
        Place::After("    ip address 10.0.0.1/16"),
        "    ip address 2001:db8:100::1/64\n",
    ),
    (
        ConfigFile::Network,
        Place::After("    ip route 10.200.0.0/16 10.0.0.254"),
        "    ip route 2001:db8:200::/48 2001:db8:100::fe\n",
    ),
    // Before `alltherest deny`: neighbour discovery needs no flow.
    (
        ConfigFile::Flows,
        Place::Before("# Block unpermitted traffic."),
        "# The IPv6 web VIP (the sandbox's addition to the example).\n\
         flow web6 permit\n\
         \x20   match proto tcp dst 2001:db8::10 dstport 80\n\n",
    ),
    (
        ConfigFile::Lvs,
        Place::End,
        "\n# The web farm over IPv6, added by the sandbox: two of its servers,\n\
         # by their IPv6 addresses on the VLAN, checked over IPv6.\n\
         director web6 [2001:db8::10]:80 TCP\n\
         \x20   balance roundrobin\n\
         \x20   mode nat\n\
         \x20   check interval 5\n\
         \x20   option httpcheck uri /health statuscode 200 vhost www.example.com\n\
         \x20   server web1 [2001:db8:100::2:11]:8080 check\n\
         \x20   server sorry1 [2001:db8:100::2:99]:8080 check\n",
    ),
];

/// The sandbox's text of `file`: the example with the sandbox's additions.
/// Fails only when the example no longer has an addition's anchor line.
pub fn text(file: ConfigFile) -> Result<String, String> {
    let example = EXAMPLES
        .iter()
        .find(|(f, _)| *f == file)
        .map_or("", |(_, text)| *text);
    let mut text = example.to_owned();
    for (_, place, addition) in ADDITIONS.iter().filter(|(f, _, _)| *f == file) {
        let anchored = |text: &str, anchor: &str| {
            line_start(text, anchor).ok_or_else(|| {
                format!(
                    "examples/{} has no line `{}` to add the sandbox's IPv6 at",
                    file.file_name(),
                    anchor.trim()
                )
            })
        };
        let at = match *place {
            Place::Before(anchor) => anchored(&text, anchor)?,
            Place::After(anchor) => {
                let end = anchored(&text, anchor)? + anchor.len();
                if text[end..].starts_with('\n') {
                    end + 1
                } else {
                    // The last line, without its newline.
                    text.push('\n');
                    text.len()
                }
            }
            Place::End => {
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push('\n');
                }
                text.len()
            }
        };
        text.insert_str(at, addition);
    }
    Ok(text)
}

/// Where the first line that reads exactly `line` starts in `text`.
fn line_start(text: &str, line: &str) -> Option<usize> {
    let mut start = 0;
    for candidate in text.split_inclusive('\n') {
        if candidate.strip_suffix('\n').unwrap_or(candidate) == line {
            return Some(start);
        }
        start += candidate.len();
    }
    None
}

/// Every file of the sandbox's configuration.
pub fn files() -> Result<Vec<(ConfigFile, String)>, String> {
    EXAMPLES
        .iter()
        .map(|(file, _)| text(*file).map(|text| (*file, text)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Severity, Sources, check};

    #[test]
    fn every_addition_finds_its_place_and_the_result_is_valid() {
        let files = files().expect("every anchor is in the example");
        let get = |file| {
            files
                .iter()
                .find(|(f, _)| *f == file)
                .map(|(_, text)| text.as_str())
                .unwrap_or_default()
        };
        for (file, _, addition) in ADDITIONS {
            assert!(get(file).contains(addition), "{addition}");
        }
        let checked = check(Sources {
            network: get(ConfigFile::Network).as_bytes(),
            flows: get(ConfigFile::Flows).as_bytes(),
            lvs: get(ConfigFile::Lvs).as_bytes(),
        });
        assert!(checked.diagnostics.is_empty(), "{:#?}", checked.diagnostics);
        assert_eq!(checked.count(Severity::Error), 0);
        // What the demo relies on: the IPv6 director with two servers, and
        // its flow before the one that denies the rest.
        let web6 = checked.config.lvs.director("web6").expect("web6");
        assert_eq!(web6.servers.len(), 2);
        let order: Vec<&str> = checked
            .config
            .flows
            .flows
            .iter()
            .map(|flow| flow.name.as_str())
            .collect();
        let at = |name: &str| order.iter().position(|n| *n == name);
        assert!(at("web6") < at("alltherest"), "{order:?}");
        assert!(at("web6").is_some());
    }

    #[test]
    fn places_are_lines_not_substrings() {
        assert_eq!(line_start("a\n  ab\nab\n", "ab"), Some(7));
        assert_eq!(line_start("a\nab", "ab"), Some(2));
        assert_eq!(line_start("a\nabc\n", "ab"), None);
    }
}

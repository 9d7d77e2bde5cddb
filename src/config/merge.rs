//! Merging VRRP lines into a network.conf: what `lbconsole import` does with
//! the `vrrp.conf` that `lbconsole convert` writes from keepalived's
//! `vrrp_instance` blocks. Each interface's `vrrp` lines join the section of
//! that interface, after its last statement, and `service vrrp` is added at
//! the end. The rest of network.conf, comments included, is kept as it is.

use super::Diagnostic;
use super::model::network::{Interface, LinkKind, NetworkConfig};
use super::parse::parse_network;
use super::print;

/// Why the lines cannot be merged: where in the VRRP file, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeError {
    pub line: u32,
    pub message: String,
}

/// `network` with the `vrrp` lines and the `service vrrp` section of
/// `vrrp_text` merged in. An interface network.conf lacks, one that already
/// has `vrrp` lines, a second `service vrrp`, or anything but VRRP in
/// `vrrp_text` is refused: nothing the administrator wrote is replaced.
pub fn merge_vrrp(network: &str, vrrp_text: &str) -> Result<String, MergeError> {
    let (fragment, diagnostics) = parse_network(vrrp_text.as_bytes());
    if let Some(error) = diagnostics.iter().find(|d| d.is_error()) {
        return Err(at(error.line, describe(error)));
    }
    let (base, _) = parse_network(network.as_bytes());
    let mut lines: Vec<String> = network.lines().map(str::to_owned).collect();
    let mut insertions: Vec<(usize, Vec<String>)> = Vec::new();
    for interface in &fragment.interfaces {
        let line = interface.name.loc.line;
        let name = &interface.name.value;
        let Some(vrrp) = interface.vrrp.as_ref().filter(|_| only_vrrp(interface)) else {
            return Err(at(
                line,
                format!("`service network {name}` may hold only `vrrp` lines here"),
            ));
        };
        let Some(target) = base.interfaces.iter().find(|i| &i.name.value == name) else {
            return Err(at(
                line,
                format!(
                    "network.conf has no `service network {name}`; add the interface (its `ip address`) first"
                ),
            ));
        };
        if let Some(existing) = &target.vrrp {
            return Err(at(
                line,
                format!(
                    "network.conf already has `vrrp` lines for `{name}` (line {}); change them there",
                    existing.loc.line
                ),
            ));
        }
        let (after, indent) = section_end(&lines, &base, target.name.loc.line);
        let mut text = String::new();
        print::vrrp_lines(&mut text, vrrp, &indent);
        insertions.push((after, text.lines().map(str::to_owned).collect()));
    }
    insertions.sort_by_key(|(after, _)| std::cmp::Reverse(*after));
    for (after, block) in insertions {
        lines.splice(after..after, block);
    }
    let mut merged = lines.join("\n");
    if !merged.is_empty() {
        merged.push('\n');
    }
    if let Some(service) = &fragment.vrrp {
        if let Some(existing) = &base.vrrp {
            return Err(at(
                service.loc.line,
                format!(
                    "network.conf already has `service vrrp` (line {}); change it there",
                    existing.loc.line
                ),
            ));
        }
        if !merged.is_empty() {
            merged.push('\n');
        }
        print::vrrp_service(&mut merged, service);
    }
    Ok(merged)
}

fn at(line: u32, message: String) -> MergeError {
    MergeError { line, message }
}

fn describe(diagnostic: &Diagnostic) -> String {
    format!("column {}: {}", diagnostic.col, diagnostic.message)
}

/// The section holds nothing but its name and `vrrp` lines.
fn only_vrrp(interface: &Interface) -> bool {
    matches!(interface.kind, LinkKind::Ethernet)
        && interface.mtu.is_none()
        && interface.auto.is_none()
        && interface.addresses.is_empty()
        && interface.routes.is_empty()
}

/// Where lines added to the section that starts on `header` (1-based) go (an
/// index into `lines`, after its last statement, before the comments and
/// blank lines that lead to the next section), and the indentation of its
/// statements.
fn section_end(lines: &[String], network: &NetworkConfig, header: u32) -> (usize, String) {
    let next = network
        .interfaces
        .iter()
        .map(|i| i.name.loc.line)
        .chain(network.vrrp.iter().map(|v| v.loc.line))
        .filter(|&line| line > header)
        .min()
        .map_or(lines.len(), |line| line as usize - 1);
    let header = header as usize - 1;
    let statement = |line: &String| {
        let text = line.trim();
        !text.is_empty() && !text.starts_with('#')
    };
    let last = (header..next)
        .rev()
        .find(|&index| statement(&lines[index]))
        .unwrap_or(header);
    let indent = lines[header + 1..next]
        .iter()
        .find(|line| statement(line))
        .map_or("    ".to_owned(), |line| {
            line[..line.len() - line.trim_start().len()].to_owned()
        });
    (last + 1, indent)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NETWORK: &str = "\
# the box's own links
service network eth0
    ip address 10.0.0.2/24
    # the default route
    ip route default 10.0.0.1

service network eth1
\tip address 192.168.1.2/24
";

    #[test]
    fn vrrp_lines_join_their_interface_and_service_vrrp_goes_last() {
        let vrrp = "\
service network eth1
    vrrp id 52
    vrrp address 192.168.1.100/24

service network eth0
    vrrp id 51
    vrrp prio 150
    vrrp address 10.0.0.100/24

service vrrp
    peer 10.0.0.3
    preempt off
";
        let merged = merge_vrrp(NETWORK, vrrp).unwrap();
        assert_eq!(
            merged,
            "\
# the box's own links
service network eth0
    ip address 10.0.0.2/24
    # the default route
    ip route default 10.0.0.1
    vrrp id 51
    vrrp prio 150
    vrrp address 10.0.0.100/24

service network eth1
\tip address 192.168.1.2/24
\tvrrp id 52
\tvrrp address 192.168.1.100/24

service vrrp
    peer 10.0.0.3
    preempt off
"
        );
        let checked = crate::config::check(crate::config::Sources {
            network: merged.as_bytes(),
            ..Default::default()
        });
        assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    }

    #[test]
    fn nothing_the_administrator_wrote_is_replaced() {
        let missing = merge_vrrp(NETWORK, "service network eth7\n    vrrp id 1\n").unwrap_err();
        assert_eq!(missing.line, 1);
        assert!(
            missing.message.contains("no `service network eth7`"),
            "{missing:?}"
        );

        let with_vrrp = format!("{NETWORK}    vrrp id 9\n");
        let twice = merge_vrrp(&with_vrrp, "service network eth1\n    vrrp id 1\n").unwrap_err();
        assert!(
            twice
                .message
                .contains("already has `vrrp` lines for `eth1` (line 9)"),
            "{twice:?}"
        );

        let service = format!("{NETWORK}\nservice vrrp\n    preempt on\n");
        let second = merge_vrrp(&service, "service vrrp\n    preempt off\n").unwrap_err();
        assert!(
            second
                .message
                .contains("already has `service vrrp` (line 10)"),
            "{second:?}"
        );

        let address = merge_vrrp(
            NETWORK,
            "service network eth0\n    ip address 10.0.0.9/24\n",
        )
        .unwrap_err();
        assert!(address.message.contains("only `vrrp` lines"), "{address:?}");

        let broken = merge_vrrp(NETWORK, "service network eth0\n    vrrp idd 1\n").unwrap_err();
        assert_eq!(broken.line, 2);
    }

    #[test]
    fn an_empty_section_gets_its_lines_after_the_header() {
        let merged = merge_vrrp(
            "service network eth0\n",
            "service network eth0\n    vrrp id 3\n",
        )
        .unwrap();
        assert_eq!(merged, "service network eth0\n    vrrp id 3\n");
    }
}

//! The Network tab's live pane: the HA pair's VRRP instances, the links, their
//! addresses and the bonds' slaves, then the routes through a gateway. Addresses of either family, as
//! wide as the pane allows ([`head_and_tail`]).

use ratatui::style::Style;
use ratatui::text::{Line, Span, Text};

use super::head_and_tail;
use super::vrrp::vrrp_lines;
use crate::config::model::types::TableId;
use crate::kernel::{LinkStatus, RouteStatus};
use crate::tui::address;
use crate::tui::engine::Live;
use crate::tui::theme::Styles;

fn state_style(state: &str, styles: &Styles) -> Style {
    match state {
        "up" | "active" | "unknown" => styles.ok,
        _ => styles.warning,
    }
}

/// The pane, `width` columns wide.
pub fn links_text<'a>(live: &Live, styles: &Styles, width: usize) -> Text<'a> {
    // First: whether this box holds the virtual addresses matters most.
    let mut lines = vrrp_lines(&live.vrrp, styles, width);
    let links = match &live.links {
        Ok(links) => links,
        Err(error) => {
            lines.push(Line::styled(error.clone(), styles.error));
            return Text::from(lines);
        }
    };
    for link in links.iter().filter(|l| l.master.is_none()) {
        let state = link_state(link);
        let kind = match (&link.bond, &link.vlan) {
            (Some(bond), _) => format!("bond {}", bond.mode),
            (_, Some(vlan)) => format!("vlan {} on {}", vlan.id, vlan.parent),
            _ if link.kind.is_empty() => "ethernet".to_owned(),
            _ => link.kind.clone(),
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{:<8} ", link.name), styles.name),
            Span::styled(format!("{state:<5}"), state_style(state, styles)),
            Span::raw(format!(" {kind}")),
        ]));
        for address in &link.addresses {
            let address = address.to_string();
            let address = address::fit(&address, width.saturating_sub(2));
            lines.push(Line::styled(format!("  {address}"), styles.address));
        }
        let slaves = links
            .iter()
            .filter(|l| l.master.as_deref() == Some(link.name.as_str()));
        for slave in slaves {
            let status = link
                .bond
                .as_ref()
                .and_then(|bond| bond.slaves.iter().find(|s| s.name == slave.name));
            let (role, mii) = status
                .map(|s| (s.state.as_str(), s.mii_status.as_str()))
                .unwrap_or(("slave", link_state(slave)));
            lines.push(Line::from(vec![
                Span::raw(format!("  `-{:<6} ", slave.name)),
                Span::styled(format!("{role:<7}"), state_style(role, styles)),
                Span::styled(format!(" mii {mii}"), state_style(mii, styles)),
            ]));
        }
    }
    if links.iter().all(|l| l.master.is_some()) {
        lines.push(Line::raw("no links"));
    }
    lines.extend(route_lines(&live.routes, styles, width));
    Text::from(lines)
}

/// The routes through a gateway, main table first (a link's own prefixes are
/// its addresses above): `default via 2001:db8::1`, `… table 200`.
fn route_lines<'a>(routes: &[RouteStatus], styles: &Styles, width: usize) -> Vec<Line<'a>> {
    let mut routes: Vec<&RouteStatus> = routes.iter().filter(|r| r.gateway.is_some()).collect();
    if routes.is_empty() {
        return Vec::new();
    }
    routes.sort_by_key(|r| (r.table != TableId::MAIN, r.table));
    let mut lines = vec![Line::styled("routes", styles.name)];
    for route in routes {
        let destination = if route.destination.prefix == 0 {
            "default".to_owned()
        } else {
            route.destination.to_string()
        };
        let mut via = route
            .gateway
            .map(|gateway| format!(" via {gateway}"))
            .unwrap_or_default();
        if route.table != TableId::MAIN {
            via.push_str(&format!(" table {}", route.table));
        }
        lines.extend(head_and_tail(
            Span::raw("  "),
            (destination, styles.address),
            (via, Style::new()),
            4,
            width,
        ));
    }
    lines
}

fn link_state(link: &LinkStatus) -> &str {
    if link.admin_up {
        &link.oper_state
    } else {
        "down"
    }
}

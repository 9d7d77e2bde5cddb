//! The Network tab's live pane: the links, their addresses and the bonds' slaves.

use ratatui::style::Style;
use ratatui::text::{Line, Span, Text};

use crate::kernel::LinkStatus;
use crate::tui::engine::Live;
use crate::tui::theme::Styles;

fn state_style(state: &str, styles: &Styles) -> Style {
    match state {
        "up" | "active" | "unknown" => styles.ok,
        _ => styles.warning,
    }
}

pub fn links_text<'a>(live: &Live, styles: &Styles) -> Text<'a> {
    let links = match &live.links {
        Ok(links) => links,
        Err(error) => return Text::styled(error.clone(), styles.error),
    };
    let mut lines = Vec::new();
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
    if lines.is_empty() {
        lines.push(Line::raw("no links"));
    }
    Text::from(lines)
}

fn link_state(link: &LinkStatus) -> &str {
    if link.admin_up {
        &link.oper_state
    } else {
        "down"
    }
}

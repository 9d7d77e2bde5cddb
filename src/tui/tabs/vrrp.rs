//! The HA pair in the Network tab's live pane: one row per VRRP instance
//! (interface, vrid, family, state, priority), its virtual addresses, and the
//! peer's state as far as this box can tell. Nothing when no `vrrp` line is
//! configured; one line saying why when keepalived is down.

use ratatui::style::Style;
use ratatui::text::{Line, Span};

use crate::ha::status::{InstanceStatus, Keepalived, VrrpState, VrrpStatus};
use crate::tui::address;
use crate::tui::pair;
use crate::tui::theme::Styles;

/// The block, `width` columns wide, with its heading; empty when this box is
/// not one of a pair.
pub fn vrrp_lines<'a>(
    vrrp: &Result<Option<VrrpStatus>, String>,
    styles: &Styles,
    width: usize,
) -> Vec<Line<'a>> {
    let status = match vrrp {
        Ok(Some(status)) => status,
        Ok(None) => return Vec::new(),
        Err(error) => return vec![Line::styled(format!("vrrp: {error}"), styles.error)],
    };
    let pid = match &status.keepalived {
        Keepalived::NotConfigured => return Vec::new(),
        Keepalived::Down { reason } => {
            return vec![Line::styled(
                format!("vrrp: keepalived down: {reason}"),
                styles.error,
            )];
        }
        Keepalived::Running { pid } => pid,
    };
    if status.instances.is_empty() {
        return vec![Line::styled(
            format!("vrrp: keepalived {pid} starting"),
            styles.comment,
        )];
    }
    let mut lines = vec![Line::styled("vrrp", styles.name)];
    if status.healthy == Some(false) {
        lines.push(Line::styled("  prio lowered: servers down", styles.warning));
    }
    let name_width = status
        .instances
        .iter()
        .map(|instance| instance.name.chars().count())
        .max()
        .unwrap_or(0);
    for instance in &status.instances {
        lines.extend(instance_rows(instance, name_width, styles, width));
        lines.push(Line::from(vec![
            Span::raw("  peer "),
            Span::styled(pair::peer_state(instance), styles.comment),
        ]));
        for vip in &instance.addresses {
            let vip = vip.to_string();
            let vip = address::fit(&vip, width.saturating_sub(2));
            lines.push(Line::styled(format!("  {vip}"), styles.address));
        }
    }
    lines
}

/// `eth0-6  51 IPv6 MASTER 150/150`: the instance's name (its interface, with
/// `-6` for the IPv6 one), MASTER highlighted, a lowered prio as a warning.
/// Wider than `width`, the state and prio go on a line of their own.
fn instance_rows<'a>(
    instance: &InstanceStatus,
    name_width: usize,
    styles: &Styles,
    width: usize,
) -> Vec<Line<'a>> {
    let state_style = match instance.state {
        VrrpState::Master => styles.tab_active,
        VrrpState::Backup => styles.text,
        VrrpState::Fault => styles.error,
        VrrpState::Init | VrrpState::Stop => styles.warning,
    };
    let prio_style = if instance.priority < instance.configured_priority {
        styles.warning
    } else {
        styles.text
    };
    let head = vec![
        Span::styled(format!("{:<name_width$}", instance.name), styles.name),
        Span::raw(format!(" {:>3} {}", instance.vrid, instance.family.name())),
    ];
    let tail = vec![
        Span::styled(instance.state.name(), state_style),
        Span::raw(" "),
        Span::styled(
            format!("{}/{}", instance.priority, instance.configured_priority),
            prio_style,
        ),
    ];
    let head_width: usize = head.iter().map(Span::width).sum();
    let tail_width: usize = tail.iter().map(Span::width).sum();
    if head_width + 1 + tail_width <= width {
        let mut spans = head;
        spans.push(Span::raw(" "));
        spans.extend(tail);
        return vec![Line::from(spans)];
    }
    let mut second = vec![Span::raw("  ")];
    second.extend(tail);
    vec![Line::from(head), Line::from(second)]
}

/// keepalived in one phrase for the Setup tab: `running: MASTER`,
/// `running: eth0 MASTER, eth1 BACKUP` while the instances disagree, or why
/// it is down. `None` when this box is not one of a pair.
pub fn keepalived_summary(status: &VrrpStatus, styles: &Styles) -> Option<(String, Style)> {
    let pid = match &status.keepalived {
        Keepalived::NotConfigured => return None,
        Keepalived::Down { reason } => return Some((format!("down: {reason}"), styles.error)),
        Keepalived::Running { pid } => pid,
    };
    let Some(first) = status.instances.first() else {
        return Some((format!("running (pid {pid}), starting"), styles.comment));
    };
    let same = status.instances.iter().all(|i| i.state == first.state);
    let states = if same {
        format!(
            "{} ({} instances)",
            first.state.name(),
            status.instances.len()
        )
    } else {
        status
            .instances
            .iter()
            .map(|i| format!("{} {}", i.name, i.state.name()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let style = match pair::role(status) {
        Some(_) if same => styles.ok,
        _ => styles.warning,
    };
    Some((format!("running (pid {pid}): {states}"), style))
}

//! One module per tab's live pane, and the events pane under any tab; the
//! editor, problems and state line are shared and drawn by `ui`.

pub mod events;
pub mod flows;
pub mod lvs;
pub mod network;
pub mod rates;
pub mod setup;
pub mod vrrp;

use ratatui::style::Style;
use ratatui::text::{Line, Span};

use crate::tui::address;

/// `lead`, `head` and `tail` as one line when they fit in `width` columns.
/// Otherwise `tail` goes on a line of its own, indented by `indent`, and the
/// address in `head` or `tail` is shortened to its line ([`address::fit`]):
/// the pane an 80-column screen leaves shows an IPv6 server and its
/// counters without a line wrapped in the middle of either.
fn head_and_tail<'a>(
    lead: Span<'a>,
    head: (String, Style),
    tail: (String, Style),
    indent: usize,
    width: usize,
) -> Vec<Line<'a>> {
    let lead_width = lead.width();
    let (head, head_style) = head;
    let (tail, tail_style) = tail;
    let whole = lead_width + head.chars().count() + tail.chars().count();
    if whole <= width {
        return vec![Line::from(vec![
            lead,
            Span::styled(head, head_style),
            Span::styled(tail, tail_style),
        ])];
    }
    let head = address::fit(&head, width.saturating_sub(lead_width)).into_owned();
    let mut lines = vec![Line::from(vec![lead, Span::styled(head, head_style)])];
    let tail = tail.trim_start();
    if !tail.is_empty() {
        let tail = address::fit(tail, width.saturating_sub(indent)).into_owned();
        lines.push(Line::from(vec![
            Span::raw(" ".repeat(indent)),
            Span::styled(tail, tail_style),
        ]));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(lines: &[Line]) -> Vec<String> {
        lines.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn what_fits_stays_on_one_line() {
        let lines = head_and_tail(
            Span::raw("  up "),
            ("10.0.2.11:8080".to_owned(), Style::new()),
            (" w2 0/0 0c/s".to_owned(), Style::new()),
            4,
            40,
        );
        assert_eq!(text(&lines), ["  up 10.0.2.11:8080 w2 0/0 0c/s"]);
    }

    #[test]
    fn a_wide_server_puts_its_counters_under_it() {
        let lines = head_and_tail(
            Span::raw("  down "),
            ("[2001:db8:1::11]:8080".to_owned(), Style::new()),
            (" w2 0/0 0c/s".to_owned(), Style::new()),
            4,
            29,
        );
        assert_eq!(
            text(&lines),
            ["  down [2001:db8:1::11]:8080", "    w2 0/0 0c/s"]
        );
    }

    #[test]
    fn an_address_too_wide_for_its_line_loses_middle_groups() {
        let lines = head_and_tail(
            Span::raw("  "),
            (
                "2001:db8:1234:5678:9abc:def0:1234:5678/128".to_owned(),
                Style::new(),
            ),
            (" via 2001:db8:1234:5678::1".to_owned(), Style::new()),
            4,
            24,
        );
        assert_eq!(
            text(&lines),
            ["  2001:db8:…:5678/128", "    via 2001:db8:…:1"]
        );
    }
}

//! The events pane, under any tab while shown: the daemon's and the commands'
//! event log (health changes with their reasons, applies, confirms,
//! rollbacks, overrides, VRRP states), newest first, one line each, as
//! `lbconsole events` prints them. The engine reads the log with the live
//! panes, so a console started later shows the history.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Borders, Paragraph};

use crate::events::{Event, EventKind, Log};
use crate::store::versions::rfc3339;
use crate::text::printable;
use crate::tui::app::App;
use crate::tui::theme::Styles;
use crate::tui::ui::block;

/// The pane's height in a middle of `available` rows: two fifths, at least a
/// title and two events, never more than there is.
pub fn height(available: u16) -> u16 {
    (available * 2 / 5).max(3).min(available)
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    if area.height == 0 {
        return;
    }
    let styles = &app.theme.styles;
    let outer = block("Events, newest first", Borders::TOP, app);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let text = match app.live.as_ref().map(|live| &live.events) {
        None => Text::styled("reading the event log...", styles.comment),
        Some(Err(error)) => Text::styled(printable(error).into_owned(), styles.error),
        Some(Ok(log)) => log_text(log, styles, usize::from(inner.width)),
    };
    frame.render_widget(Paragraph::new(text), inner);
}

/// The damaged lines first (a few words), then the events, `width` columns
/// wide.
fn log_text<'a>(log: &Log, styles: &Styles, width: usize) -> Text<'a> {
    let mut lines = Vec::new();
    if let Some(first) = log.damaged.first() {
        lines.push(Line::styled(
            format!(
                "{} damaged line(s) skipped: {}",
                log.damaged.len(),
                printable(first)
            ),
            styles.warning,
        ));
    }
    if log.events.is_empty() {
        lines.push(Line::styled("no events yet", styles.comment));
    }
    for event in &log.events {
        lines.extend(event_lines(event, styles, width));
    }
    Text::from(lines)
}

/// Continuation lines of an event start this far in.
const INDENT: usize = 4;

/// Time, kind, who and text; a text too long for its line goes on over the
/// next ones, indented, so that the reason at its end is seen.
fn event_lines<'a>(event: &Event, styles: &Styles, width: usize) -> Vec<Line<'a>> {
    let kind_style = match event.kind {
        EventKind::Rollback => styles.warning,
        _ => styles.name,
    };
    let head = vec![
        Span::styled(rfc3339(event.at), styles.comment),
        Span::styled(format!(" {:<8}", event.kind.name()), kind_style),
        Span::styled(
            format!(" {} ", printable(event.by.as_deref().unwrap_or("-"))),
            styles.comment,
        ),
    ];
    let head_width: usize = head.iter().map(Span::width).sum();
    let text: Vec<char> = printable(&event.text).chars().collect();
    let first = width.saturating_sub(head_width).max(1).min(text.len());
    let mut lines = vec![Line::from(head)];
    lines[0].push_span(Span::raw(text[..first].iter().collect::<String>()));
    let rest = width.saturating_sub(INDENT).max(1);
    for chunk in text[first..].chunks(rest) {
        lines.push(Line::raw(format!(
            "{}{}",
            " ".repeat(INDENT),
            chunk.iter().collect::<String>()
        )));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pane_takes_two_fifths_but_never_more_than_there_is() {
        assert_eq!(height(16), 6);
        assert_eq!(height(5), 3);
        assert_eq!(height(2), 2);
        assert_eq!(height(0), 0);
    }
}

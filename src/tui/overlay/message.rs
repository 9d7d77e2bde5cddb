//! A message to read: an error, or settings that could not be used.

use ratatui::text::{Line, Span, Text};

use super::{Outcome, View, scroll_or_close};
use crate::tui::keymap::DialogCommand;
use crate::tui::theme::Styles;

pub fn key(scroll: &mut u16, command: Option<DialogCommand>) -> Outcome {
    scroll_or_close(scroll, command)
}

pub fn view<'a>(title: &str, text: &str, scroll: u16, styles: &Styles) -> View<'a> {
    View {
        title: title.to_owned(),
        body: Text::raw(text.to_owned()),
        footer: Line::from(vec![Span::styled("Esc", styles.key), Span::raw(" close")]),
        scroll,
        size: (72, 12),
        low: false,
    }
}

//! A change refused because the saved configuration changed since it was
//! read: reload, or go on editing.

use ratatui::text::{Line, Span, Text};

use super::{Outcome, View};
use crate::tui::keymap::DialogCommand;
use crate::tui::theme::Styles;

pub fn key(command: Option<DialogCommand>) -> Outcome {
    match command {
        Some(DialogCommand::Reload) => Outcome::Answer,
        Some(DialogCommand::Cancel) => Outcome::Close,
        _ => Outcome::Stay,
    }
}

pub fn view<'a>(text: &str, styles: &Styles) -> View<'a> {
    let key = |text: &str| Span::styled(text.to_owned(), styles.key);
    View {
        title: "Refused: the saved configuration changed".to_owned(),
        body: Text::styled(text.to_owned(), styles.warning),
        footer: Line::from(vec![
            key("r"),
            Span::raw(" reload  "),
            key("Esc"),
            Span::raw(" keep editing"),
        ]),
        scroll: 0,
        size: (60, 8),
        low: false,
    }
}

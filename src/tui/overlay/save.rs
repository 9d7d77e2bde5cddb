//! The diff of a save, waiting for yes.

use ratatui::text::{Line, Span, Text};

use super::diff::diff_text;
use super::{Outcome, View, ask_or_scroll};
use crate::tui::keymap::DialogCommand;
use crate::tui::theme::Styles;

pub fn key(scroll: &mut u16, command: Option<DialogCommand>) -> Outcome {
    ask_or_scroll(scroll, command)
}

pub fn view<'a>(diff: &str, errors: usize, scroll: u16, styles: &Styles) -> View<'a> {
    let key = |text: &str| Span::styled(text.to_owned(), styles.key);
    let mut lines: Vec<Line> = Vec::new();
    if errors > 0 {
        lines.push(Line::styled(
            format!("The configuration has {errors} error(s); it is saved as it is."),
            styles.error,
        ));
    }
    lines.extend(diff_text(diff, styles).lines);
    View {
        title: "Save these changes?".to_owned(),
        body: Text::from(lines),
        footer: Line::from(vec![
            key("y"),
            Span::raw(" save  "),
            key("n"),
            Span::raw(" cancel  "),
            key("up/down"),
            Span::raw(" scroll"),
        ]),
        scroll,
        size: (100, 30),
        low: false,
    }
}

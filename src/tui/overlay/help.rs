//! `?`: every key of the keymap, section by section.

use ratatui::text::{Line, Span, Text};

use super::{Outcome, View, scroll_or_close};
use crate::tui::keymap::{DialogCommand, Keymap, Section, keys_text};
use crate::tui::theme::Styles;

pub fn key(scroll: &mut u16, command: Option<DialogCommand>) -> Outcome {
    scroll_or_close(scroll, command)
}

pub fn view<'a>(scroll: u16, keymap: &Keymap, styles: &Styles) -> View<'a> {
    let key = |text: &str| Span::styled(text.to_owned(), styles.key);
    View {
        title: "Keys".to_owned(),
        body: text(keymap, styles),
        footer: Line::from(vec![
            key("Esc"),
            Span::raw(" close  "),
            key("up/down"),
            Span::raw(" scroll"),
        ]),
        scroll,
        size: (76, 40),
        low: false,
    }
}

fn text<'a>(keymap: &Keymap, styles: &Styles) -> Text<'a> {
    let mut lines = Vec::new();
    for section in Section::ALL {
        lines.push(Line::styled(section.title().to_owned(), styles.title));
        for binding in keymap.section(section) {
            lines.push(Line::from(vec![
                Span::styled(format!("  {:<18}", keys_text(&binding.on)), styles.key),
                Span::raw(binding.desc.clone()),
            ]));
        }
    }
    lines.push(Line::styled("In dialogs".to_owned(), styles.title));
    lines.push(Line::raw(
        "  y or Enter: yes, n or Esc: no, up down PgUp PgDn: scroll",
    ));
    Text::from(lines)
}

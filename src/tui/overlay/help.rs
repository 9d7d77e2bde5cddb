//! `?`: every key of the keymap, section by section.

use ratatui::text::{Line, Span, Text};

use super::{Outcome, SHOWING_KEYS, View, dialog_footer, scroll_or_close};
use crate::tui::keymap::{DialogCommand, Keymap};
use crate::tui::theme::Styles;

/// The keys its footer shows: those of every dialog that only shows.
pub const KEYS: &[DialogCommand] = SHOWING_KEYS;

pub fn key(scroll: &mut u16, command: Option<DialogCommand>) -> Outcome {
    scroll_or_close(scroll, command)
}

pub fn view<'a>(scroll: u16, keymap: &'a Keymap, styles: &Styles) -> View<'a> {
    View {
        title: "Keys".to_owned(),
        body: text(keymap, styles),
        footer: dialog_footer(keymap, KEYS, styles),
        scroll,
        size: (76, 40),
        low: false,
    }
}

fn text<'a>(keymap: &Keymap, styles: &Styles) -> Text<'a> {
    let mut lines = Vec::new();
    for (title, rows) in keymap.help() {
        lines.push(Line::styled(title, styles.title));
        for (keys, desc) in rows {
            lines.push(Line::from(vec![
                Span::styled(format!("  {keys:<18}"), styles.key),
                Span::raw(desc.to_owned()),
            ]));
        }
    }
    Text::from(lines)
}

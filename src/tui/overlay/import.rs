//! What an import would change, waiting for yes.

use ratatui::text::{Line, Text};

use super::diff::diff_text;
use super::{ASKING_KEYS, Outcome, View, ask_or_scroll, dialog_footer};
use crate::tui::engine::ImportPreview;
use crate::tui::keymap::{DialogCommand, Keymap};
use crate::tui::theme::Styles;

/// The keys its footer shows: those of every question over text to scroll.
pub const KEYS: &[DialogCommand] = ASKING_KEYS;

pub fn key(scroll: &mut u16, command: Option<DialogCommand>) -> Outcome {
    ask_or_scroll(scroll, command)
}

/// `discarded` names the files whose unsaved edits the import throws away.
pub fn view<'a>(
    preview: &ImportPreview,
    discarded: &str,
    scroll: u16,
    keymap: &'a Keymap,
    styles: &Styles,
) -> View<'a> {
    let mut lines = vec![Line::raw(format!(
        "It becomes the saved configuration as a new version after version {}; \
         nothing is applied until you apply it.",
        preview.replaces
    ))];
    if !discarded.is_empty() {
        lines.push(Line::styled(
            format!("Your unsaved edits of {discarded} are thrown away."),
            styles.error,
        ));
    }
    if preview.diff.text.is_empty() {
        lines.push(Line::raw("It holds the saved configuration as it is."));
    }
    lines.push(Line::raw(""));
    lines.extend(diff_text(&preview.diff.text, styles).lines);
    View {
        title: preview.diff.title.clone(),
        body: Text::from(lines),
        footer: dialog_footer(keymap, KEYS, styles),
        scroll,
        size: (100, 30),
        low: false,
    }
}

//! Configuration sync: the diff from the peer's saved `lvs.conf` and
//! `flows.conf` to this box's, waiting for yes before they are sent.

use ratatui::text::{Line, Text};

use super::diff::diff_text;
use super::{ASKING_KEYS, Outcome, View, ask_or_scroll, dialog_footer};
use crate::config::ConfigFile;
use crate::tui::engine::PeerComparison;
use crate::tui::keymap::{DialogCommand, Keymap};
use crate::tui::theme::Styles;

/// The keys its footer shows: those of every question over text to scroll.
pub const KEYS: &[DialogCommand] = ASKING_KEYS;

pub fn key(scroll: &mut u16, command: Option<DialogCommand>) -> Outcome {
    ask_or_scroll(scroll, command)
}

/// `unsent`: files with edits this box has not saved, which the sync leaves out.
pub fn view<'a>(
    comparison: &PeerComparison,
    unsent: &[ConfigFile],
    scroll: u16,
    keymap: &'a Keymap,
    styles: &Styles,
) -> View<'a> {
    let mut lines = vec![Line::styled(
        format!(
            "{} saves these as its next version (replacing its version {}) and keeps its own \
             network.conf; nothing is applied there.",
            comparison.peer, comparison.version
        ),
        styles.warning,
    )];
    if !unsent.is_empty() {
        let names: Vec<&str> = unsent.iter().map(|file| file.file_name()).collect();
        lines.push(Line::styled(
            format!(
                "Only saved files are sent: your unsaved edits of {} are not.",
                names.join(", ")
            ),
            styles.warning,
        ));
    }
    lines.push(Line::raw(""));
    lines.extend(diff_text(&comparison.diff, styles).lines);
    View {
        title: format!("Sync lvs.conf and flows.conf to {}?", comparison.peer),
        body: Text::from(lines),
        footer: dialog_footer(keymap, KEYS, styles),
        scroll,
        size: (100, 30),
        low: false,
    }
}

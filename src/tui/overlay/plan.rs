//! The plan of an apply: the kernel operations, waiting for yes.

use ratatui::text::{Line, Text};

use super::{ASKING_KEYS, Outcome, View, ask_or_scroll, dialog_footer};
use crate::tui::engine::{PairNote, PlanPreview};
use crate::tui::keymap::{DialogCommand, Keymap};
use crate::tui::theme::Styles;

/// The keys its footer shows: those of every question over text to scroll.
pub const KEYS: &[DialogCommand] = ASKING_KEYS;

pub fn key(scroll: &mut u16, command: Option<DialogCommand>) -> Outcome {
    ask_or_scroll(scroll, command)
}

pub fn view<'a>(
    preview: &PlanPreview,
    scroll: u16,
    keymap: &'a Keymap,
    styles: &Styles,
) -> View<'a> {
    let mut lines: Vec<Line> = Vec::new();
    // First, so that no length of plan scrolls them out of sight.
    if let Some(note) = preview.pair {
        lines.push(match note {
            PairNote::MasterChangesVrrp => Line::styled(
                "This box is MASTER: this change reloads keepalived and may move the virtual \
                 addresses to the peer.",
                styles.error,
            ),
            PairNote::Backup => Line::styled(
                "This box is BACKUP: the master keeps serving; apply here is normal.",
                styles.ok,
            ),
        });
        lines.push(Line::raw(""));
    }
    if preview.tears_down {
        lines.push(Line::styled(
            "This configuration has no service, flow or address: applying it \
             removes everything lbconsole runs.",
            styles.error,
        ));
        lines.push(Line::raw(""));
    }
    if preview.operations.is_empty() {
        lines.push(Line::raw(
            "No kernel operation: only the vrrp lines change, which keepalived runs.",
        ));
    }
    lines.extend(preview.operations.iter().map(|op| Line::raw(op.clone())));
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "A failed step undoes the whole apply. Once applied, confirm before the \
         countdown ends, or the previous configuration comes back.",
        styles.warning,
    ));
    View {
        title: format!("Apply {} kernel operation(s)?", preview.operations.len()),
        body: Text::from(lines),
        footer: dialog_footer(keymap, KEYS, styles),
        scroll,
        size: (100, 30),
        low: false,
    }
}

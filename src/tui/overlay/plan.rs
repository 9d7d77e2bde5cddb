//! The plan of an apply: the kernel operations, waiting for yes.

use ratatui::text::{Line, Span, Text};

use super::{Outcome, View, ask_or_scroll};
use crate::tui::engine::PlanPreview;
use crate::tui::keymap::DialogCommand;
use crate::tui::theme::Styles;

pub fn key(scroll: &mut u16, command: Option<DialogCommand>) -> Outcome {
    ask_or_scroll(scroll, command)
}

pub fn view<'a>(preview: &PlanPreview, scroll: u16, styles: &Styles) -> View<'a> {
    let key = |text: &str| Span::styled(text.to_owned(), styles.key);
    let mut lines: Vec<Line> = preview
        .operations
        .iter()
        .map(|op| Line::raw(op.clone()))
        .collect();
    lines.push(Line::raw(""));
    if preview.tears_down {
        lines.push(Line::styled(
            "This configuration has no service, flow or address: applying it \
             removes everything lbconsole runs.",
            styles.error,
        ));
    }
    lines.push(Line::styled(
        "A failed step undoes the whole apply. Once applied, confirm before the \
         countdown ends, or the previous configuration comes back.",
        styles.warning,
    ));
    View {
        title: format!("Apply {} kernel operation(s)?", preview.operations.len()),
        body: Text::from(lines),
        footer: Line::from(vec![
            key("y"),
            Span::raw(" apply  "),
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

//! The Flows tab's live pane: each flow's hit counters.

use ratatui::text::{Line, Span, Text};

use crate::tui::engine::FlowCounter;
use crate::tui::theme::Styles;

pub fn flows_text<'a>(flows: Option<&[FlowCounter]>, styles: &Styles) -> Text<'a> {
    let Some(flows) = flows else {
        return Text::styled(
            "flows not available yet: the console shows hit counters once the \
             firewall backend programs flows",
            styles.comment,
        );
    };
    if flows.is_empty() {
        return Text::raw("no flows in the kernel");
    }
    let mut lines = Vec::new();
    let mut previous: Option<&str> = None;
    for counter in flows {
        if previous != Some(counter.flow.as_str()) {
            lines.push(Line::styled(counter.flow.clone(), styles.name));
            previous = Some(&counter.flow);
        }
        lines.push(Line::from(vec![
            Span::raw(format!("  {} ", counter.rule)),
            Span::styled(
                format!("{} pkts {} bytes", counter.packets, counter.bytes),
                styles.number,
            ),
        ]));
    }
    Text::from(lines)
}

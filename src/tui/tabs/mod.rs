//! One module per tab's live pane; the editor, problems and state line are
//! shared and drawn by `ui`.

pub mod flows;
pub mod lvs;
pub mod network;
pub mod setup;

//! lbconsole: administration console for a Linux layer-4 load-balancer appliance.
//!
//! `config` is the pure core (model, parsers, printer, validator); `store` keeps
//! the config and state directories (versions, history, running, pending);
//! `apply` is the transaction; `confirm` guards an apply until it is confirmed;
//! `daemon` is the boot apply and the loop; `cli` is what the subcommands print,
//! through `text`, which escapes what a terminal would obey.

pub mod apply;
pub mod cli;
pub mod config;
pub mod confirm;
pub mod daemon;
pub mod health;
pub mod kernel;
pub mod plan;
pub mod sandbox;
pub mod store;
mod sys;
pub mod text;
pub mod tui;

//! lbconsole: administration console for a Linux layer-4 load-balancer appliance.
//!
//! `config` is the pure core (model, parsers, printer, validator); `store` reads
//! the config directory; `cli` is what the subcommands print.

pub mod apply;
pub mod cli;
pub mod config;
pub mod kernel;
pub mod plan;
pub mod sandbox;
pub mod store;
pub mod tui;

//! lbconsole: administration console for a Linux layer-4 load-balancer appliance.
//!
//! `config` is the pure core (model, parsers, printer, validator); `store` keeps
//! the config and state directories (versions, history, running, pending);
//! `apply` is the transaction; `confirm` guards an apply until it is confirmed;
//! `observe` reads what runs, for `status` and the console;
//! `daemon` is the boot apply and the loop; `events` the log of what they did; `cli` is what the subcommands print,
//! through `text`, which escapes what a terminal would obey.
//!
//! `unsafe` lives only in the `sys` modules, one per area (`sys` for the
//! process, `health::sys`, `store::sys`, `sandbox::sys`), each a set of safe
//! functions that no argument can make unsound; the lint holds everywhere else.

#![deny(unsafe_code)]

pub mod apply;
pub mod cli;
pub mod config;
pub mod confirm;
pub mod convert;
pub mod daemon;
pub mod events;
pub mod ha;
pub mod health;
pub mod kernel;
pub mod metrics;
pub mod notify;
pub mod observe;
pub mod operate;
pub mod plan;
pub mod sandbox;
pub mod store;
#[allow(unsafe_code)]
mod sys;
pub mod text;
pub mod tui;

//! The health checker: `state` decides (pure), `checks` probes the servers,
//! `run` drives both on tokio and changes IPVS.

pub mod checks;
pub mod run;
pub mod state;

//! The health checker: `state` decides (pure), `checks` probes the servers,
//! `run` drives both on tokio and changes IPVS, `publish` tells `status`.

pub mod checks;
pub mod publish;
pub mod run;
pub mod state;

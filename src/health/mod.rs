//! The health checker: `state` decides (pure), `checks` probes the servers (`arp`
//! asks who-has, `ndisc` solicits an IPv6 neighbour), `run` drives both on tokio
//! and changes IPVS, `record` keeps what the checks did, `publish` tells `status`. `sys` holds their raw sockets,
//! the checker's only `unsafe`.

mod arp;
pub mod checks;
mod ndisc;
pub mod publish;
pub mod record;
pub mod run;
pub mod state;
#[allow(unsafe_code)]
mod sys;

//! The daemon's Prometheus metrics: `exposition` writes the text format from
//! what the daemon knows (pure), `serve` answers scrapes on a thread of its own,
//! and `checker` tells `status` whether the checker is alive and what a
//! server's last checks found.

pub mod checker;
pub mod exposition;
pub mod gather;
pub mod gzip;
pub mod serve;

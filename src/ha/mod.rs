//! The HA pair: two appliances as one. keepalived runs VRRP from a file this
//! module generates, the kernel's IPVS sync daemon carries the connections,
//! and `ssh` carries `lvs.conf` and `flows.conf` to the peer. Nothing here
//! speaks a protocol of its own.

pub mod peer;
pub mod status;

//! The lab: kernel integration tests, run as root inside a VM booting Debian's kernel
//! (bonding, VLAN, IPVS), one boot for all of them: `tests/lab/run [FILTER]`.
//!
//! Every test here is `#[ignore]`d so that the host's `cargo test` lists them without
//! running them; `tests/lab/run` runs this binary in the VM with `--ignored
//! --test-threads=1`. Each test starts with [`support::Lab::new`], which gives it a
//! network namespace of its own.

mod apply_lvs;
mod apply_network;
mod bench;
mod confirm;
mod console_drain;
mod convert;
mod daemon;
mod dual_stack;
mod flow_match;
mod flows;
mod flows6;
mod ha;
mod health;
mod health6;
mod ipvs6;
mod ipvs_backend;
mod ipvs_sync;
mod isolation;
mod keepalived;
mod load;
mod metrics;
mod network;
mod network6;
mod safety;
mod sandbox;
mod support;
mod sync;

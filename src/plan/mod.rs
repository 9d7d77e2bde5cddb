//! PURE: the kernel state a configuration asks for, compared with the state the
//! kernel has, as an ordered list of operations that each know their inverse.

pub mod flows;
pub mod ipvs;
pub mod network;

pub use network::{NetOp, NetworkState, Step};

//! PURE: the kernel state a configuration asks for, compared with the state the
//! kernel has (with the operators' overrides), as an ordered list of operations that each know their inverse.

pub mod flow_match;
pub mod flows;
pub mod ipvs;
pub mod network;
pub mod nft_text;
pub mod overrides;

pub use network::{NetOp, NetworkState, Step};

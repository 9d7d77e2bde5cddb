//! The typed configuration: what the three files mean, independent of layout.

pub mod flows;
pub mod lvs;
pub mod network;
pub mod types;

use serde::{Deserialize, Serialize};

pub use flows::FlowsConfig;
pub use lvs::LvsConfig;
pub use network::NetworkConfig;

/// The whole appliance configuration: one part per tab and file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub network: NetworkConfig,
    pub flows: FlowsConfig,
    pub lvs: LvsConfig,
}

//! rtnetlink backend: see kernel/mod.rs for the contract.

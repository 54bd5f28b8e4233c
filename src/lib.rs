//! provision — early-boot provisioning agent for netbooted Linux nodes.
//!
//! Data flows one way: kernel cmdline + config + layout + observed state → plan → execution →
//! report. See DESIGN.md in the shared brief and the README.

pub mod cli;
pub mod cmdline;
pub mod config;
pub mod context;
pub mod disks;
pub mod exit;
pub mod keys;
pub mod layout;
pub mod metrics;
pub mod report;
pub mod secrets;
pub mod system;

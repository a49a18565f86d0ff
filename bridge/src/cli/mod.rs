//! Command-line front ends that are more than argument parsing.

pub mod certs;
pub mod device;
pub mod firmware;
pub mod health;
pub mod plugin;

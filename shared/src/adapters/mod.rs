//! Implementations of the ports: AWS (one file per service), EMF on stdout, and in-memory
//! twins of each.

#[cfg(feature = "sdk")]
pub mod aws;
pub mod emf;
pub mod memory;

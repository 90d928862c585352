//! Pure types and rules: no I/O, no AWS SDK.

pub mod alert;
pub mod connection;
pub mod health;
pub mod metric;
pub mod text;

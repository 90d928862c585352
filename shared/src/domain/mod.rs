//! Pure types and rules: no I/O, no AWS SDK.

pub mod alert;
pub mod audit;
pub mod connection;
pub mod diagnosis;
pub mod health;
pub mod inhibit;
pub mod inventory;
pub mod metric;
pub mod pipeline;
pub mod silence;
pub mod text;

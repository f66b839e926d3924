//! Tarn: a PostgreSQL-compatible analytical database.
//!
//! The path of a query follows the module order: [`wire`] (protocol) →
//! [`session`] (per-connection state) → [`sql`] (parse, classify) →
//! [`engine`] (DataFusion) → [`storage`] (WAL, delta, Lance). [`types`] holds
//! the Postgres ↔ Arrow type mapping and value codecs used along the way.
//! See `docs/ARCHITECTURE.md`.
#![recursion_limit = "256"]

pub mod engine;
pub mod error;
pub mod server;
pub mod session;
pub mod sql;
pub mod storage;
pub mod types;
pub mod wire;

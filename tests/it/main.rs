//! Tarn's integration tests: real `tarn` servers (started as processes on
//! ephemeral ports with temporary data directories) driven by real clients.
//! All in one test binary so DataFusion and Lance are linked once.

mod bulk_copy;
mod compaction;
mod copy;
mod ddl;
mod disk_full;
mod extended_client;
mod durability;
mod harness;
mod heap;
mod point_queries;
mod slt;
mod wire;
mod transactions;

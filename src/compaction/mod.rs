//! Compaction: merging segments into larger time blocks, rolling raw data
//! up into the rollup tiers, and deleting what the retention policy no
//! longer keeps.
//!
//! (Module documentation, invariants and the job list are completed with
//! the implementation.)

pub mod policy;

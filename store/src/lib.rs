//! Certscope's PostgreSQL system of record: connecting, the schema migrations, the
//! private cluster behind the embedded default, OSCAL catalog import, demo data,
//! and the database harness that tests share.

pub mod bootstrap;
pub mod catalogs;
pub mod cluster;
pub mod db;
pub mod organizations;
pub mod oscal;
pub mod seed;
#[cfg(feature = "testing")]
pub mod testing;

pub use cluster::{ClusterError, ClusterLifetime, PrivateCluster};
pub use db::{DbError, PoolOptions, connect, migrate};

//! Schema migrations for Latch, run at start-up by the `latch` binary.
//!
//! Each migration declares its own identifiers and never imports entity
//! code, so an old migration keeps describing the schema as it was.

pub use sea_orm_migration::prelude::*;

mod m20261204_000001_create_applications;

/// Applies every Latch migration in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20261204_000001_create_applications::Migration)]
    }
}

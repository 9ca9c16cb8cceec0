//! The audit trail's port.

use std::future::Future;

use crate::audit::{AuditEntry, AuditQuery, EntityType};
use crate::error::PortError;
use crate::project::ProjectId;

/// The audit trail: append-only. Entries written through a transaction
/// commit with it; nothing updates or deletes them (deleting a project or
/// a task leaves its entries).
pub trait Audit: Send {
    fn record(
        &mut self,
        entries: &[AuditEntry],
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// A project's entries (of every entity in it), newest first.
    fn activity(
        &mut self,
        project: ProjectId,
        query: &AuditQuery,
    ) -> impl Future<Output = Result<Vec<AuditEntry>, PortError>> + Send;
    /// One entity's entries, newest first.
    fn history(
        &mut self,
        entity_type: EntityType,
        entity_id: uuid::Uuid,
        query: &AuditQuery,
    ) -> impl Future<Output = Result<Vec<AuditEntry>, PortError>> + Send;
}

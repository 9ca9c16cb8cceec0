//! The event log's port.

use std::future::Future;

use time::OffsetDateTime;

use crate::error::PortError;
use crate::event::{Event, EventQuery, LogBounds, NewEvent};
use crate::project::ProjectId;

/// The per-project event log. Append-only but for retention; events
/// outlive their entities (and their project, until pruned).
pub trait Events: Send {
    /// Appends `events` to `project`'s log, numbered after its head in the
    /// order given, and answers them numbered. Called in the transaction
    /// that holds the project's row lock (every change takes it first), so
    /// numbers are given in commit order; a rolled-back transaction gives
    /// back the numbers it took.
    fn append(
        &mut self,
        project: ProjectId,
        events: &[NewEvent],
    ) -> impl Future<Output = Result<Vec<Event>, PortError>> + Send;
    /// Up to `query.limit + 1` events of `project` after `query.after`, in
    /// seq order.
    fn events(
        &mut self,
        project: ProjectId,
        query: &EventQuery,
    ) -> impl Future<Output = Result<Vec<Event>, PortError>> + Send;
    /// The project's head and oldest kept seq; `None` when there is no
    /// such project.
    fn log_bounds(
        &mut self,
        project: ProjectId,
    ) -> impl Future<Output = Result<Option<LogBounds>, PortError>> + Send;
    /// The head (last seq given) of each of `projects` that exists, in no
    /// particular order: one read for every project an instance follows,
    /// so its subscribers hear of events whose announcement was lost.
    fn heads(
        &mut self,
        projects: &[ProjectId],
    ) -> impl Future<Output = Result<Vec<(ProjectId, i64)>, PortError>> + Send;
    /// Removes every event older than `before`, of every project; answers
    /// how many. Safe to run from several instances at once. Events carry
    /// their instance's clock, so with clocks a little apart this may
    /// leave a kept event below a pruned one: delta sync treats any gap as
    /// pruned history.
    fn prune_events(
        &mut self,
        before: OffsetDateTime,
    ) -> impl Future<Output = Result<u64, PortError>> + Send;
}

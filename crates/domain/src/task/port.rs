//! The tasks aggregate's port.

use std::future::Future;

use crate::error::PortError;
use crate::task::{Task, TaskId, TaskQuery};
use crate::user::UserId;

/// The tasks aggregate.
///
/// Methods always take the owner: a task is only ever reached through its
/// owner, so another user's task is indistinguishable from a missing one.
/// Locking is explicit: only [`Tasks::task_for_update`] locks, and writes
/// wait for a row another transaction has locked.
pub trait Tasks: Send {
    fn insert_task(&mut self, task: &Task) -> impl Future<Output = Result<(), PortError>> + Send;
    /// The task as committed (or as this transaction left it); never waits.
    fn task(
        &mut self,
        owner: UserId,
        id: TaskId,
    ) -> impl Future<Output = Result<Option<Task>, PortError>> + Send;
    /// The task, locked against other writers until this transaction ends
    /// (waiting for one that holds it). Outside a transaction the lock ends
    /// with the call, so read-modify-write cycles belong in a transaction.
    fn task_for_update(
        &mut self,
        owner: UserId,
        id: TaskId,
    ) -> impl Future<Output = Result<Option<Task>, PortError>> + Send;
    /// Stores `task` over the row with its id and owner; false when there is none.
    fn update_task(&mut self, task: &Task) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// False when there was no such task.
    fn delete_task(
        &mut self,
        owner: UserId,
        id: TaskId,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// Up to `query.limit + 1` tasks of `owner` matching `query`, in its
    /// order, starting after `query.after` (the extra row tells whether
    /// there is a next page).
    fn list_tasks(
        &mut self,
        owner: UserId,
        query: &TaskQuery,
    ) -> impl Future<Output = Result<Vec<Task>, PortError>> + Send;
}

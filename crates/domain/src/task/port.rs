//! The tasks aggregate's port.

use std::future::Future;

use crate::error::PortError;
use crate::project::ProjectId;
use crate::task::{Task, TaskId, TaskQuery};
use crate::user::UserId;

/// The tasks aggregate. Every task is in one project; who may reach it is
/// the use cases' decision (the policy), so the port takes plain ids.
/// Locking is explicit: only the `_for_update` methods lock, and writes
/// wait for a row another transaction has locked. Deleting a project
/// deletes its tasks.
pub trait Tasks: Send {
    fn insert_task(&mut self, task: &Task) -> impl Future<Output = Result<(), PortError>> + Send;
    /// The task as committed (or as this transaction left it); never waits.
    fn task(&mut self, id: TaskId) -> impl Future<Output = Result<Option<Task>, PortError>> + Send;
    /// The task, locked against other writers until this transaction ends
    /// (waiting for one that holds it). Outside a transaction the lock ends
    /// with the call, so read-modify-write cycles belong in a transaction.
    fn task_for_update(
        &mut self,
        id: TaskId,
    ) -> impl Future<Output = Result<Option<Task>, PortError>> + Send;
    /// Stores `task` over the row with its id (its project included: a
    /// move); false when there is none.
    fn update_task(&mut self, task: &Task) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// False when there was no such task.
    fn delete_task(&mut self, id: TaskId) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// The tasks of `project` assigned to `user`, locked as by
    /// `task_for_update`, in id order.
    fn assigned_tasks_for_update(
        &mut self,
        project: ProjectId,
        user: UserId,
    ) -> impl Future<Output = Result<Vec<Task>, PortError>> + Send;
    /// Up to `query.limit + 1` tasks matching `query` in the projects
    /// `member` is a member of (only `query.project_id` when it is set), in
    /// its order, starting after `query.after` (the extra row tells whether
    /// there is a next page).
    fn list_tasks(
        &mut self,
        member: UserId,
        query: &TaskQuery,
    ) -> impl Future<Output = Result<Vec<Task>, PortError>> + Send;
}

//! The tasks context's use cases: create, read, change, delete and list
//! the caller's tasks, each with its errors.

use crate::app::TaskFlow;
use crate::auth::Principal;
use crate::error::ValidationErrors;
use crate::error::{DomainError, ErrorKind, PortError};
use crate::ports::{Clock, Ports, Store, Tasks, Transaction};
use crate::task::{NewTask, Page, Task, TaskId, TaskPatch, TaskQuery};

#[derive(Debug, thiserror::Error)]
pub enum CreateTaskError {
    #[error("invalid task: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Port(#[from] PortError),
}

impl DomainError for CreateTaskError {
    fn kind(&self) -> ErrorKind<'_> {
        match self {
            Self::Invalid(errors) => ErrorKind::Invalid(errors),
            Self::Port(e) => ErrorKind::Port(e),
        }
    }
}

/// Reading or deleting one task, and listing.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("No such task.")]
    NotFound,
    #[error("invalid query: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Port(#[from] PortError),
}

impl DomainError for TaskError {
    fn kind(&self) -> ErrorKind<'_> {
        match self {
            Self::NotFound => ErrorKind::NotFound,
            Self::Invalid(errors) => ErrorKind::Invalid(errors),
            Self::Port(e) => ErrorKind::Port(e),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateTaskError {
    #[error("No such task.")]
    NotFound,
    #[error("invalid change: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Port(#[from] PortError),
}

impl DomainError for UpdateTaskError {
    fn kind(&self) -> ErrorKind<'_> {
        match self {
            Self::NotFound => ErrorKind::NotFound,
            Self::Invalid(errors) => ErrorKind::Invalid(errors),
            Self::Port(e) => ErrorKind::Port(e),
        }
    }
}

impl<P: Ports> TaskFlow<P> {
    pub async fn create_task(
        &self,
        principal: Principal,
        input: NewTask,
    ) -> Result<Task, CreateTaskError> {
        let task = Task::create(principal.user_id, input, self.clock.now())
            .map_err(CreateTaskError::Invalid)?;
        let mut tx = self.store.begin().await?;
        tx.insert_task(&task).await?;
        tx.commit().await?;
        Ok(task)
    }

    pub async fn task(&self, principal: Principal, id: TaskId) -> Result<Task, TaskError> {
        self.store
            .connection()
            .await?
            .task(principal.user_id, id)
            .await?
            .ok_or(TaskError::NotFound)
    }

    /// Applies `patch` (a full replacement sets every field) in one
    /// transaction, so concurrent changes each bump the version once.
    pub async fn update_task(
        &self,
        principal: Principal,
        id: TaskId,
        patch: TaskPatch,
    ) -> Result<Task, UpdateTaskError> {
        let mut tx = self.store.begin().await?;
        let mut task = tx
            .task_for_update(principal.user_id, id)
            .await?
            .ok_or(UpdateTaskError::NotFound)?;
        let changed = task
            .apply(patch, self.clock.now())
            .map_err(UpdateTaskError::Invalid)?;
        if changed && !tx.update_task(&task).await? {
            return Err(UpdateTaskError::NotFound);
        }
        // Also when nothing changed: ends the transaction (and its row lock)
        // now rather than by rollback.
        tx.commit().await?;
        Ok(task)
    }

    pub async fn delete_task(&self, principal: Principal, id: TaskId) -> Result<(), TaskError> {
        let mut tx = self.store.begin().await?;
        if !tx.delete_task(principal.user_id, id).await? {
            return Err(TaskError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    /// One page of the caller's tasks.
    pub async fn list_tasks(
        &self,
        principal: Principal,
        query: TaskQuery,
    ) -> Result<Page<Task>, TaskError> {
        query.validate().map_err(TaskError::Invalid)?;
        let mut items = self
            .store
            .connection()
            .await?
            .list_tasks(principal.user_id, &query)
            .await?;
        let limit = query.limit as usize;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|t| t.cursor(query.sort))
        } else {
            None
        };
        Ok(Page { items, next })
    }
}

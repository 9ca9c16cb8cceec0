//! The tasks context's use cases: create, read, change, move, delete and
//! list tasks in the caller's projects, and read a task's history. Each
//! asks the policy for the task's project first (a task in a project the
//! caller is not a member of does not exist for them), then the project's
//! state; each change is written with its audit entry in one transaction.

use crate::app::TaskFlow;
use crate::auth::Principal;
use crate::error::{DomainError, ErrorKind, PortError, ValidationErrors};
use crate::journal::Journal;
use crate::ports::{EventBus, Events, Ports, Projects, Store, Tasks, Transaction};
use crate::project::policy::{Action, Denied, authorize};
use crate::project::use_cases::{ARCHIVED, lock_authorized, role_in};
use crate::project::{Project, ProjectId};
use crate::task::{NewTask, Page, Task, TaskId, TaskPatch, TaskQuery};
use crate::user::UserId;
use crate::version::IfMatch;

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("No such task.")]
    NotFound,
    /// The project named in the request: missing, or the caller is not a
    /// member.
    #[error("No such project.")]
    ProjectNotFound,
    #[error("Your role in this project does not allow this.")]
    Forbidden,
    #[error("{0}")]
    Conflict(&'static str),
    #[error(
        "The task has changed since the version given in If-Match: it is at version {current}."
    )]
    PreconditionFailed { current: i64 },
    #[error("invalid task: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Port(#[from] PortError),
}

impl DomainError for TaskError {
    fn kind(&self) -> ErrorKind<'_> {
        match self {
            Self::NotFound | Self::ProjectNotFound => ErrorKind::NotFound,
            Self::Forbidden => ErrorKind::Forbidden,
            Self::Conflict(_) => ErrorKind::Conflict,
            Self::PreconditionFailed { current } => ErrorKind::PreconditionFailed {
                current_version: *current,
            },
            Self::Invalid(errors) => ErrorKind::Invalid(errors),
            Self::Port(e) => ErrorKind::Port(e),
        }
    }
}

impl TaskError {
    /// A refusal about the task's own project (it then does not exist).
    pub(crate) fn about_task(denied: Denied) -> Self {
        match denied {
            Denied::NotFound => Self::NotFound,
            Denied::Forbidden => Self::Forbidden,
        }
    }

    /// A refusal about a project the request names.
    fn about_project(denied: Denied) -> Self {
        match denied {
            Denied::NotFound => Self::ProjectNotFound,
            Denied::Forbidden => Self::Forbidden,
        }
    }
}

const NOT_AN_ASSIGNEE: &str = "must be a member of the task's project";

/// How often a change retries when the task moved to another project
/// between reading it and locking its project.
const MOVE_RETRIES: usize = 3;

impl<P: Ports> TaskFlow<P> {
    /// A new task in `input.project_id` (the caller's Inbox when `None`).
    pub async fn create_task(
        &self,
        principal: Principal,
        input: NewTask,
    ) -> Result<Task, TaskError> {
        let mut tx = self.store.begin().await?;
        let project_id = match input.project_id {
            Some(id) => id,
            None => {
                tx.inbox_of(principal.user_id)
                    .await?
                    .ok_or_else(|| PortError::unexpected("database", "a user without an Inbox"))?
                    .id
            }
        };
        let (project, _) =
            lock_authorized(&mut tx, project_id, principal.user_id, Action::CreateTask)
                .await?
                .map_err(TaskError::about_project)?;
        let actor = self.actor(&principal);
        writable(&project)?;
        if let Some(assignee) = input.assignee_id {
            check_assignee(&mut tx, project_id, assignee).await?;
        }
        let task =
            Task::create(project_id, actor.user_id, input, actor.at).map_err(TaskError::Invalid)?;
        tx.insert_task(&task).await?;
        let mut journal = Journal::new(actor);
        journal.task_created(&task);
        let events = journal.write(&mut tx).await?;
        tx.commit().await?;
        self.bus.committed(events);
        Ok(task)
    }

    pub async fn task(&self, principal: Principal, id: TaskId) -> Result<Task, TaskError> {
        let mut conn = self.store.connection().await?;
        let task = conn.task(id).await?.ok_or(TaskError::NotFound)?;
        let role = role_in(&mut conn, task.project_id, principal.user_id).await?;
        authorize(role, Action::ViewTasks).map_err(TaskError::about_task)?;
        Ok(task)
    }

    /// Applies `patch` (a full replacement sets every field) in one
    /// transaction, so concurrent changes each bump the version once. A
    /// `project_id` moves the task: the caller must be a member (or higher)
    /// in both projects, and an assignee who is not a member of the target
    /// is unassigned.
    pub async fn update_task(
        &self,
        principal: Principal,
        id: TaskId,
        patch: TaskPatch,
    ) -> Result<Task, TaskError> {
        self.update_task_if(principal, id, patch, &IfMatch::Any)
            .await
    }

    /// As [`TaskFlow::update_task`], only if the task is at a version
    /// `if_match` allows (else `PreconditionFailed`, and nothing changes).
    pub async fn update_task_if(
        &self,
        principal: Principal,
        id: TaskId,
        patch: TaskPatch,
        if_match: &IfMatch,
    ) -> Result<Task, TaskError> {
        for _ in 0..MOVE_RETRIES {
            if let Some(task) = self
                .try_update_task(&principal, id, patch.clone(), if_match)
                .await?
            {
                return Ok(task);
            }
        }
        Err(PortError::unavailable("database", "the task kept moving between projects").into())
    }

    /// `None` when the task moved to another project before its project
    /// could be locked (the caller retries).
    async fn try_update_task(
        &self,
        principal: &Principal,
        id: TaskId,
        mut patch: TaskPatch,
        if_match: &IfMatch,
    ) -> Result<Option<Task>, TaskError> {
        let mut tx = self.store.begin().await?;
        let Some(seen) = tx.task(id).await? else {
            return Err(TaskError::NotFound);
        };
        let source_id = seen.project_id;
        let target_id = patch.project_id.unwrap_or(source_id);
        // The task's own project decides first: a caller who may not see
        // the task learns nothing, whatever target the patch names (the
        // check is repeated under lock below).
        let role = role_in(&mut tx, source_id, principal.user_id).await?;
        authorize(role, Action::EditTask).map_err(TaskError::about_task)?;
        // Projects are locked in id order, so two moves in opposite
        // directions cannot deadlock.
        let (first, second) = if source_id <= target_id {
            (source_id, target_id)
        } else {
            (target_id, source_id)
        };
        let mut locked = Vec::with_capacity(2);
        for (project, about_task) in [(first, first == source_id), (second, second == source_id)] {
            if locked.iter().any(|(p, _): &(Project, _)| p.id == project) {
                continue;
            }
            let action = if about_task {
                Action::EditTask
            } else {
                Action::CreateTask
            };
            let standing = lock_authorized(&mut tx, project, principal.user_id, action).await?;
            let map = if about_task {
                TaskError::about_task
            } else {
                TaskError::about_project
            };
            locked.push(standing.map_err(map)?);
        }
        let Some(mut task) = tx.task_for_update(id).await? else {
            return Err(TaskError::NotFound);
        };
        if task.project_id != source_id {
            return Ok(None);
        }
        let actor = self.actor(principal);
        for (project, _) in &locked {
            writable(project)?;
        }
        if target_id != source_id {
            match patch.assignee_id {
                Some(Some(assignee)) => check_assignee(&mut tx, target_id, assignee).await?,
                Some(None) => {}
                None => {
                    if let Some(assignee) = task.assignee_id
                        && role_in(&mut tx, target_id, assignee).await?.is_none()
                    {
                        patch.assignee_id = Some(None);
                    }
                }
            }
        } else if let Some(Some(assignee)) = patch.assignee_id
            && task.assignee_id != Some(assignee)
        {
            check_assignee(&mut tx, target_id, assignee).await?;
        }
        let before = task.clone();
        let changed = task.apply(patch, actor.at).map_err(TaskError::Invalid)?;
        // Checked after the change itself: a malformed one is refused as
        // such, whatever the version.
        if !if_match.allows(before.version) {
            return Err(TaskError::PreconditionFailed {
                current: before.version,
            });
        }
        let mut events = Vec::new();
        if changed {
            if !tx.update_task(&task).await? {
                return Err(TaskError::NotFound);
            }
            let mut journal = Journal::new(actor);
            journal.task_updated(&before, &task);
            events = journal.write(&mut tx).await?;
        }
        // Also when nothing changed: ends the transaction (and its locks)
        // now rather than by rollback.
        tx.commit().await?;
        self.bus.committed(events);
        Ok(Some(task))
    }

    pub async fn delete_task(&self, principal: Principal, id: TaskId) -> Result<(), TaskError> {
        self.delete_task_if(principal, id, &IfMatch::Any).await
    }

    /// As [`TaskFlow::delete_task`], only if the task is at a version
    /// `if_match` allows.
    pub async fn delete_task_if(
        &self,
        principal: Principal,
        id: TaskId,
        if_match: &IfMatch,
    ) -> Result<(), TaskError> {
        for _ in 0..MOVE_RETRIES {
            let mut tx = self.store.begin().await?;
            let Some(seen) = tx.task(id).await? else {
                return Err(TaskError::NotFound);
            };
            let (project, _) = lock_authorized(
                &mut tx,
                seen.project_id,
                principal.user_id,
                Action::DeleteTask,
            )
            .await?
            .map_err(TaskError::about_task)?;
            let Some(task) = tx.task_for_update(id).await? else {
                return Err(TaskError::NotFound);
            };
            if task.project_id != project.id {
                continue;
            }
            if !if_match.allows(task.version) {
                return Err(TaskError::PreconditionFailed {
                    current: task.version,
                });
            }
            let actor = self.actor(&principal);
            writable(&project)?;
            tx.delete_task(id).await?;
            let mut journal = Journal::new(actor);
            journal.task_deleted(&task);
            let events = journal.write(&mut tx).await?;
            tx.commit().await?;
            self.bus.committed(events);
            return Ok(());
        }
        Err(PortError::unavailable("database", "the task kept moving between projects").into())
    }

    /// One page of the caller's tasks: across their projects, or in
    /// `query.project_id` (which must be one of them), then with the head
    /// of that project's event log in the same snapshot, so a client can
    /// load the state and follow the log from exactly there.
    pub async fn list_tasks(
        &self,
        principal: Principal,
        query: TaskQuery,
    ) -> Result<TaskList, TaskError> {
        query.validate().map_err(TaskError::Invalid)?;
        let mut snapshot = self.store.snapshot().await?;
        let head_seq = match query.project_id {
            Some(project) => {
                let role = role_in(&mut snapshot, project, principal.user_id).await?;
                authorize(role, Action::ViewTasks).map_err(TaskError::about_project)?;
                let bounds = snapshot.log_bounds(project).await?;
                Some(bounds.ok_or(TaskError::ProjectNotFound)?.head)
            }
            None => None,
        };
        let rows = snapshot.list_tasks(principal.user_id, &query).await?;
        drop(snapshot);
        Ok(TaskList {
            page: Page::from_rows(rows, query.limit, |t| t.cursor(query.sort)),
            head_seq,
        })
    }
}

/// A page of tasks, and for one project's tasks the head of its event log
/// as of the page.
#[derive(Debug, Clone)]
pub struct TaskList {
    pub page: Page<Task>,
    pub head_seq: Option<i64>,
}

/// Tasks of an archived project cannot change.
fn writable(project: &Project) -> Result<(), TaskError> {
    if project.archived {
        Err(TaskError::Conflict(ARCHIVED))
    } else {
        Ok(())
    }
}

/// An assignee must be a member of the task's project (any role).
async fn check_assignee<C: Projects>(
    conn: &mut C,
    project: ProjectId,
    assignee: UserId,
) -> Result<(), TaskError> {
    match role_in(conn, project, assignee).await? {
        Some(_) => Ok(()),
        None => Err(TaskError::Invalid(ValidationErrors::single(
            "assigneeId",
            NOT_AN_ASSIGNEE,
        ))),
    }
}

//! The audit context's use cases: a project's activity and a task's
//! history, for anyone who may see the project.

use time::OffsetDateTime;

use crate::app::TaskFlow;
use crate::audit::{AuditEntry, AuditId, AuditQuery, EntityType};
use crate::auth::Principal;
use crate::ports::{Audit, Ports, Store, Tasks};
use crate::project::ProjectId;
use crate::project::policy::Action;
use crate::project::use_cases::{ProjectError, check_limit, read_authorized};
use crate::task::use_cases::TaskError;
use crate::task::{Page, TaskId};

impl<P: Ports> TaskFlow<P> {
    /// One page of the project's audit trail, newest first.
    pub async fn project_activity(
        &self,
        principal: Principal,
        id: ProjectId,
        query: AuditQuery,
    ) -> Result<Page<AuditEntry, (OffsetDateTime, AuditId)>, ProjectError> {
        check_limit(query.limit).map_err(ProjectError::Invalid)?;
        let mut conn = self.store.connection().await?;
        read_authorized(&mut conn, id, principal.user_id, Action::ViewActivity).await??;
        let rows = conn.activity(id, &query).await?;
        Ok(Page::from_rows(rows, query.limit, |e| (e.at, e.id)))
    }

    /// One page of the task's audit trail, newest first; 404 once the task
    /// is deleted (its entries stay in the project's activity).
    pub async fn task_history(
        &self,
        principal: Principal,
        id: TaskId,
        query: AuditQuery,
    ) -> Result<Page<AuditEntry, (OffsetDateTime, AuditId)>, TaskError> {
        check_limit(query.limit).map_err(TaskError::Invalid)?;
        let mut conn = self.store.connection().await?;
        let task = conn.task(id).await?.ok_or(TaskError::NotFound)?;
        read_authorized(
            &mut conn,
            task.project_id,
            principal.user_id,
            Action::ViewActivity,
        )
        .await?
        .map_err(TaskError::about_task)?;
        let rows = conn.history(EntityType::Task, id.0, &query).await?;
        Ok(Page::from_rows(rows, query.limit, |e| (e.at, e.id)))
    }
}

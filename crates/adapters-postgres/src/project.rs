//! The projects aggregate on PostgreSQL: projects and their members.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use domain::ports::{InsertMemberError, MemberDetails, MemberQuery, ProjectQuery};
use domain::{
    Email, Member, PortError, Project, ProjectDescription, ProjectId, ProjectName, ProjectRole,
    Projects, UserId, UserName,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::from_diesel;
use crate::rows::corrupt;
use crate::schema::{project_members, projects, users};
use crate::store::{PgHandle, decode};

#[derive(Debug, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = projects, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
struct ProjectRow {
    id: Uuid,
    name: String,
    name_key: String,
    description: Option<String>,
    archived: bool,
    personal: bool,
    owner_id: Uuid,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    version: i64,
}

impl From<&Project> for ProjectRow {
    fn from(p: &Project) -> Self {
        Self {
            id: p.id.0,
            name: p.name.as_str().to_owned(),
            name_key: p.sort_key(),
            description: p.description.as_ref().map(|d| d.as_str().to_owned()),
            archived: p.archived,
            personal: p.personal,
            owner_id: p.owner_id.0,
            created_at: p.created_at,
            updated_at: p.updated_at,
            version: p.version,
        }
    }
}

impl TryFrom<ProjectRow> for Project {
    type Error = PortError;

    fn try_from(row: ProjectRow) -> Result<Self, PortError> {
        Ok(Project {
            id: ProjectId(row.id),
            name: ProjectName::parse(&row.name).map_err(|e| corrupt("project name", e))?,
            description: row
                .description
                .map(ProjectDescription::parse)
                .transpose()
                .map_err(|e| corrupt("project description", e))?,
            archived: row.archived,
            personal: row.personal,
            owner_id: UserId(row.owner_id),
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        })
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = project_members, check_for_backend(diesel::pg::Pg))]
struct MemberRow {
    project_id: Uuid,
    user_id: Uuid,
    role: String,
    joined_at: OffsetDateTime,
}

impl From<&Member> for MemberRow {
    fn from(m: &Member) -> Self {
        Self {
            project_id: m.project_id.0,
            user_id: m.user_id.0,
            role: m.role.as_str().to_owned(),
            joined_at: m.joined_at,
        }
    }
}

impl TryFrom<MemberRow> for Member {
    type Error = PortError;

    fn try_from(row: MemberRow) -> Result<Self, PortError> {
        Ok(Member {
            project_id: ProjectId(row.project_id),
            user_id: UserId(row.user_id),
            role: role(&row.role)?,
            joined_at: row.joined_at,
        })
    }
}

fn role(raw: &str) -> Result<ProjectRole, PortError> {
    ProjectRole::parse(raw).ok_or_else(|| corrupt("project role", raw))
}

impl Projects for PgHandle {
    async fn insert_project(&mut self, project: &Project) -> Result<(), PortError> {
        diesel::insert_into(projects::table)
            .values(ProjectRow::from(project))
            .execute(self.conn())
            .await
            .map(drop)
            .map_err(from_diesel)
    }

    async fn project(&mut self, id: ProjectId) -> Result<Option<Project>, PortError> {
        let row = projects::table
            .find(id.0)
            .select(ProjectRow::as_select())
            .first(self.conn())
            .await;
        decode(row)
    }

    async fn project_for_update(&mut self, id: ProjectId) -> Result<Option<Project>, PortError> {
        let row = projects::table
            .find(id.0)
            .select(ProjectRow::as_select())
            .for_update()
            .first(self.conn())
            .await;
        decode(row)
    }

    async fn update_project(&mut self, project: &Project) -> Result<bool, PortError> {
        let updated = diesel::update(projects::table.find(project.id.0))
            .set(ProjectRow::from(project))
            .execute(self.conn())
            .await
            .map_err(from_diesel)?;
        Ok(updated > 0)
    }

    async fn delete_project(&mut self, id: ProjectId) -> Result<bool, PortError> {
        // Its memberships and tasks go with it (ON DELETE CASCADE); its audit
        // entries stay (they have no foreign key to it).
        let deleted = diesel::delete(projects::table.find(id.0))
            .execute(self.conn())
            .await
            .map_err(from_diesel)?;
        Ok(deleted > 0)
    }

    async fn insert_member(&mut self, member: &Member) -> Result<(), InsertMemberError> {
        // ON CONFLICT rather than catching the unique violation: a failed
        // statement would abort the caller's transaction.
        let inserted = diesel::insert_into(project_members::table)
            .values(MemberRow::from(member))
            .on_conflict((project_members::project_id, project_members::user_id))
            .do_nothing()
            .execute(self.conn())
            .await
            .map_err(from_diesel)?;
        if inserted == 0 {
            return Err(InsertMemberError::AlreadyMember);
        }
        Ok(())
    }

    async fn member(
        &mut self,
        project: ProjectId,
        user: UserId,
    ) -> Result<Option<Member>, PortError> {
        let row = project_members::table
            .find((project.0, user.0))
            .select(MemberRow::as_select())
            .first(self.conn())
            .await;
        decode(row)
    }

    async fn update_member_role(
        &mut self,
        project: ProjectId,
        user: UserId,
        role: ProjectRole,
    ) -> Result<bool, PortError> {
        let updated = diesel::update(project_members::table.find((project.0, user.0)))
            .set(project_members::role.eq(role.as_str()))
            .execute(self.conn())
            .await
            .map_err(from_diesel)?;
        Ok(updated > 0)
    }

    async fn delete_member(&mut self, project: ProjectId, user: UserId) -> Result<bool, PortError> {
        let deleted = diesel::delete(project_members::table.find((project.0, user.0)))
            .execute(self.conn())
            .await
            .map_err(from_diesel)?;
        Ok(deleted > 0)
    }

    async fn members(
        &mut self,
        project: ProjectId,
        query: &MemberQuery,
    ) -> Result<Vec<MemberDetails>, PortError> {
        // The page is one range of project_members_by_join; each member's
        // user is one primary-key lookup.
        let mut q = project_members::table
            .inner_join(users::table)
            .filter(project_members::project_id.eq(project.0))
            .select((MemberRow::as_select(), users::email, users::name))
            .order((project_members::joined_at, project_members::user_id))
            .limit(i64::from(query.limit) + 1)
            .into_boxed();
        if let Some((joined_at, user)) = query.after {
            // A row-value comparison, which bounds the index range (an OR
            // of the two cases would only filter it).
            q = q.filter(
                sql::<Bool>("(project_members.joined_at, project_members.user_id) > (")
                    .bind::<Timestamptz, _>(joined_at)
                    .sql(", ")
                    .bind::<SqlUuid, _>(user.0)
                    .sql(")"),
            );
        }
        let rows: Vec<(MemberRow, String, String)> =
            q.load(self.conn()).await.map_err(from_diesel)?;
        rows.into_iter()
            .map(|(member, email, name)| {
                Ok(MemberDetails {
                    member: Member::try_from(member)?,
                    email: Email::parse(&email).map_err(|e| corrupt("e-mail", e))?,
                    name: UserName::parse(&name).map_err(|e| corrupt("name", e))?,
                })
            })
            .collect()
    }

    async fn projects_of(
        &mut self,
        user: UserId,
        query: &ProjectQuery,
    ) -> Result<Vec<(Project, ProjectRole)>, PortError> {
        // Bounded by the user's memberships (project_members_by_user), then
        // sorted: a user belongs to few enough projects for that.
        let mut q = project_members::table
            .inner_join(projects::table)
            .filter(project_members::user_id.eq(user.0))
            .filter(projects::archived.eq(query.archived))
            .select((ProjectRow::as_select(), project_members::role))
            .order((projects::name_key, projects::id))
            .limit(i64::from(query.limit) + 1)
            .into_boxed();
        if let Some((key, id)) = &query.after {
            q = q.filter(
                projects::name_key.gt(key.clone()).or(projects::name_key
                    .eq(key.clone())
                    .and(projects::id.gt(id.0))),
            );
        }
        let rows: Vec<(ProjectRow, String)> = q.load(self.conn()).await.map_err(from_diesel)?;
        rows.into_iter()
            .map(|(project, raw)| Ok((Project::try_from(project)?, role(&raw)?)))
            .collect()
    }

    async fn inbox_of(&mut self, user: UserId) -> Result<Option<Project>, PortError> {
        let row = projects::table
            .filter(projects::owner_id.eq(user.0))
            .filter(projects::personal.eq(true))
            .select(ProjectRow::as_select())
            .first(self.conn())
            .await;
        decode(row)
    }
}

//! Users, projects, tasks, the audit trail and the event log in memory,
//! with PostgreSQL's behaviour where use cases can tell: a transaction's
//! writes are invisible to others until it commits (READ COMMITTED), the
//! `_for_update` reads and writes lock their rows until the transaction
//! ends, reads never wait, and an e-mail address or a membership is taken
//! as soon as a transaction inserts it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use domain::ports::{
    InsertMemberError, InsertUserError, MemberDetails, MemberQuery, ProjectQuery, UserQuery,
};
use domain::{
    Audit, AuditEntry, AuditId, AuditQuery, Email, EntityType, Event, EventQuery, Events,
    LogBounds, Member, NewEvent, PortError, Project, ProjectId, ProjectRole, Projects, Store, Task,
    TaskId, TaskQuery, Tasks, Transaction, User, UserId, Users,
};
use time::OffsetDateTime;
use tokio::sync::OwnedMutexGuard;

const WHAT: &str = "memory store";

/// Committed data.
#[derive(Debug, Default, Clone)]
struct State {
    /// By id: the order admins list them in.
    users: BTreeMap<UserId, User>,
    users_by_email: HashMap<Email, UserId>,
    /// Addresses inserted by transactions still open: taken, as a unique
    /// index entry is in PostgreSQL.
    reserved_emails: HashSet<Email>,
    tasks: HashMap<TaskId, Task>,
    /// Each project's tasks.
    tasks_by_project: HashMap<ProjectId, BTreeSet<TaskId>>,
    projects: HashMap<ProjectId, Project>,
    /// The last seq each project's log gave (0 before any): kept with the
    /// project (inserted and deleted with it, as a column of its row), so
    /// the project's row lock orders the numbering.
    heads: HashMap<ProjectId, i64>,
    /// Members by project, then user.
    members: HashMap<ProjectId, BTreeMap<UserId, Member>>,
    /// The projects each user is a member of.
    memberships: HashMap<UserId, BTreeSet<ProjectId>>,
    /// Memberships inserted by transactions still open (the primary key's
    /// entry, as for e-mails).
    reserved_members: HashSet<(ProjectId, UserId)>,
    /// Shared with the copies a transaction's reads work on, until one of
    /// them records an entry: the trail only grows, and copying it for
    /// every such read would cost the most.
    audit: Arc<AuditLog>,
    /// Shared with the copies as the trail is. Events outlive their
    /// project, until pruned.
    events: Arc<EventLog>,
}

/// Where an entry stands in the trail's order (newest first: descending).
type AuditKey = (OffsetDateTime, AuditId);

#[derive(Debug, Default, Clone)]
struct AuditLog {
    entries: HashMap<AuditId, AuditEntry>,
    by_project: HashMap<ProjectId, BTreeSet<AuditKey>>,
    by_entity: HashMap<(EntityType, uuid::Uuid), BTreeSet<AuditKey>>,
}

impl AuditLog {
    fn insert(&mut self, entry: AuditEntry) {
        if self.entries.contains_key(&entry.id) {
            return;
        }
        let key = (entry.at, entry.id);
        if let Some(project) = entry.project_id {
            self.by_project.entry(project).or_default().insert(key);
        }
        self.by_entity
            .entry((entry.entity_type, entry.entity_id))
            .or_default()
            .insert(key);
        self.entries.insert(entry.id, entry);
    }

    /// Up to `query.limit + 1` of the entries at `keys`, newest first,
    /// strictly after the cursor.
    fn page(&self, keys: Option<&BTreeSet<AuditKey>>, query: &AuditQuery) -> Vec<AuditEntry> {
        let Some(keys) = keys else {
            return Vec::new();
        };
        let older: Box<dyn DoubleEndedIterator<Item = &AuditKey>> = match query.after {
            Some(after) => Box::new(keys.range(..after)),
            None => Box::new(keys.iter()),
        };
        older
            .rev()
            .take(query.limit as usize + 1)
            .filter_map(|(_, id)| self.entries.get(id).cloned())
            .collect()
    }
}

/// Where an event stands in the order pruning goes by.
type EventKey = (OffsetDateTime, ProjectId, i64);

/// The first key of the events at `at` or later.
fn first_key_at(at: OffsetDateTime) -> EventKey {
    (at, ProjectId(uuid::Uuid::nil()), i64::MIN)
}

#[derive(Debug, Default, Clone)]
struct EventLog {
    /// Each project's events by seq.
    by_project: HashMap<ProjectId, BTreeMap<i64, Event>>,
    /// Every event, oldest first.
    by_time: BTreeSet<EventKey>,
}

impl EventLog {
    fn insert(&mut self, event: Event) {
        let key = (event.event.at, event.project_id, event.seq);
        self.by_time.insert(key);
        self.by_project
            .entry(event.project_id)
            .or_default()
            .insert(event.seq, event);
    }

    /// The project's events after `after`, in seq order.
    fn after(&self, project: ProjectId, after: i64) -> impl Iterator<Item = &Event> {
        self.by_project
            .get(&project)
            .into_iter()
            .flat_map(move |log| log.range((Bound::Excluded(after), Bound::Unbounded)))
            .map(|(_, event)| event)
    }

    /// The times of the events older than `before`.
    fn older_than(&self, before: OffsetDateTime) -> impl Iterator<Item = OffsetDateTime> + '_ {
        self.by_time
            .range(..first_key_at(before))
            .map(|(at, _, _)| *at)
    }

    /// Removes the events older than `before`; answers how many.
    fn prune(&mut self, before: OffsetDateTime) -> u64 {
        let newer = self.by_time.split_off(&first_key_at(before));
        let older = std::mem::replace(&mut self.by_time, newer);
        for (_, project, seq) in &older {
            if let Some(log) = self.by_project.get_mut(project) {
                log.remove(seq);
                if log.is_empty() {
                    self.by_project.remove(project);
                }
            }
        }
        older.len() as u64
    }
}

/// `user` with what `update_user` stores taken from `from`.
fn with_admin_fields(mut user: User, from: &User) -> User {
    user.name = from.name.clone();
    user.role = from.role;
    user.disabled = from.disabled;
    user
}

impl State {
    fn email_taken(&self, email: &Email) -> bool {
        self.users_by_email.contains_key(email) || self.reserved_emails.contains(email)
    }

    /// Stores `task` over the one with its id, moving it between projects'
    /// indexes when its project changed.
    fn put_task(&mut self, task: Task) {
        if let Some(old) = self.tasks.get(&task.id)
            && old.project_id != task.project_id
            && let Some(ids) = self.tasks_by_project.get_mut(&old.project_id)
        {
            ids.remove(&task.id);
        }
        self.tasks_by_project
            .entry(task.project_id)
            .or_default()
            .insert(task.id);
        self.tasks.insert(task.id, task);
    }

    fn remove_task(&mut self, id: TaskId) {
        if let Some(task) = self.tasks.remove(&id)
            && let Some(ids) = self.tasks_by_project.get_mut(&task.project_id)
        {
            ids.remove(&id);
        }
    }

    fn remove_member(&mut self, project: ProjectId, user: UserId) {
        if let Some(members) = self.members.get_mut(&project) {
            members.remove(&user);
        }
        if let Some(projects) = self.memberships.get_mut(&user) {
            projects.remove(&project);
        }
    }

    /// The tasks `member` may list under `query`'s project filter.
    fn tasks_of_member<'a>(
        &'a self,
        member: UserId,
        only: Option<ProjectId>,
    ) -> impl Iterator<Item = &'a Task> + 'a {
        self.memberships
            .get(&member)
            .into_iter()
            .flatten()
            .filter(move |project| only.is_none_or(|only| **project == only))
            .filter_map(|project| self.tasks_by_project.get(project))
            .flatten()
            .filter_map(|id| self.tasks.get(id))
    }

    fn apply(&mut self, write: Write) {
        match write {
            Write::InsertUser(user) => {
                self.reserved_emails.remove(&user.email);
                self.users_by_email.insert(user.email.clone(), user.id);
                self.users.insert(user.id, user);
            }
            Write::UpdateUser(user) => {
                if let Some(stored) = self.users.remove(&user.id) {
                    self.users.insert(user.id, with_admin_fields(stored, &user));
                }
            }
            // A task only lives in a project that is there (a foreign key,
            // in PostgreSQL); an update only changes a task that is there.
            Write::InsertTask(task) => {
                if self.projects.contains_key(&task.project_id) {
                    self.put_task(task);
                }
            }
            Write::UpdateTask(task) => {
                if self.tasks.contains_key(&task.id) && self.projects.contains_key(&task.project_id)
                {
                    self.put_task(task);
                }
            }
            Write::DeleteTask(id) => self.remove_task(id),
            Write::PutProject(project) => {
                self.heads.entry(project.id).or_insert(0);
                self.projects.insert(project.id, project);
            }
            Write::DeleteProject(id) => {
                self.projects.remove(&id);
                self.heads.remove(&id);
                for user in self
                    .members
                    .remove(&id)
                    .into_iter()
                    .flat_map(|m| m.into_keys())
                {
                    self.remove_member(id, user);
                }
                for task in self.tasks_by_project.remove(&id).into_iter().flatten() {
                    self.tasks.remove(&task);
                }
            }
            Write::PutMember(member) => {
                self.reserved_members
                    .remove(&(member.project_id, member.user_id));
                // A membership only lives with its project.
                if !self.projects.contains_key(&member.project_id) {
                    return;
                }
                self.memberships
                    .entry(member.user_id)
                    .or_default()
                    .insert(member.project_id);
                self.members
                    .entry(member.project_id)
                    .or_default()
                    .insert(member.user_id, member);
            }
            Write::DeleteMember(project, user) => self.remove_member(project, user),
            Write::Record(entries) => {
                let audit = Arc::make_mut(&mut self.audit);
                for entry in entries {
                    audit.insert(entry);
                }
            }
            // A log grows only with its project there (its numbers were
            // given under the project's lock, held until now).
            Write::Append(project, events) => {
                let Some(head) = self.heads.get_mut(&project) else {
                    return;
                };
                if let Some(last) = events.last() {
                    *head = last.seq;
                }
                let log = Arc::make_mut(&mut self.events);
                for event in events {
                    log.insert(event);
                }
            }
            Write::Prune(before) => {
                Arc::make_mut(&mut self.events).prune(before);
            }
        }
    }
}

/// Up to `query.limit + 1` of `tasks` matching `query`, in its order.
fn list<'a>(tasks: impl Iterator<Item = &'a Task>, query: &TaskQuery) -> Vec<Task> {
    let mut matching: Vec<&Task> = tasks
        .filter(|t| query.matches(t))
        .filter(|t| {
            query
                .after
                .as_ref()
                .is_none_or(|c| t.cmp_to_cursor(query.sort, c).is_gt())
        })
        .collect();
    let wanted = query.limit as usize + 1;
    let by_sort = |a: &&Task, b: &&Task| a.cmp_by(b, query.sort);
    if matching.len() > wanted {
        matching.select_nth_unstable_by(wanted - 1, by_sort);
        matching.truncate(wanted);
    }
    matching.sort_unstable_by(by_sort);
    matching.into_iter().cloned().collect()
}

/// A write a transaction will make at commit.
#[derive(Debug, Clone)]
enum Write {
    InsertUser(User),
    /// Stores the user's name, role and disabled flag.
    UpdateUser(User),
    InsertTask(Task),
    /// Replaces the task with its id, in whichever project it names.
    UpdateTask(Task),
    DeleteTask(TaskId),
    /// Inserts the project, or replaces the one with its id.
    PutProject(Project),
    /// Deletes the project, its memberships and its tasks.
    DeleteProject(ProjectId),
    /// Inserts the membership, or replaces the one of its project and user.
    PutMember(Member),
    DeleteMember(ProjectId, UserId),
    Record(Vec<AuditEntry>),
    /// Logs the project's events, numbered after its head, and moves the
    /// head to the last.
    Append(ProjectId, Vec<Event>),
    /// Removes the events older than this, of every project.
    Prune(OffsetDateTime),
}

impl Write {
    /// Whether the write changes the event log only, which the copies
    /// [`MemoryHandle::view`] makes are never asked about.
    fn logs_only(&self) -> bool {
        matches!(self, Write::Append(..) | Write::Prune(_))
    }
}

/// Whether an event at `at` is kept by `writes`: no prune among them
/// removes it.
fn kept_by(writes: &[Write], at: OffsetDateTime) -> bool {
    !writes
        .iter()
        .any(|write| matches!(write, Write::Prune(before) if at < *before))
}

/// What a row lock is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Row {
    User(UserId),
    Task(TaskId),
    Project(ProjectId),
    Member(ProjectId, UserId),
}

/// The row locks: one mutex per row some transaction has locked or waits
/// for, dropped from the map when nobody holds or wants it any more.
type RowLock = Arc<tokio::sync::Mutex<()>>;

#[derive(Debug)]
struct Shared {
    /// Never held across an await.
    state: Mutex<State>,
    rows: Mutex<HashMap<Row, RowLock>>,
    /// How long a call waits for a row lock before it fails, as a
    /// PostgreSQL statement does at its `statement_timeout`: two
    /// transactions locking rows in opposite orders end, rather than wait
    /// for each other forever.
    lock_timeout: Duration,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            rows: Mutex::default(),
            lock_timeout: MemoryStore::LOCK_TIMEOUT,
        }
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for the row's lock, as a locking read or a write would in
    /// PostgreSQL.
    async fn lock_row(&self, id: Row) -> Result<OwnedMutexGuard<()>, PortError> {
        let lock = Arc::clone(
            self.rows
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(id)
                .or_default(),
        );
        match tokio::time::timeout(self.lock_timeout, lock.lock_owned()).await {
            Ok(guard) => Ok(guard),
            Err(_elapsed) => {
                self.forget_unused(&[id]);
                Err(PortError::unavailable(
                    "memory store",
                    format!("a row lock was not granted within {:?}", self.lock_timeout),
                ))
            }
        }
    }

    /// Drops the map's entries for `ids` that nobody holds or waits for.
    fn forget_unused(&self, ids: &[Row]) {
        let mut rows = self.rows.lock().unwrap_or_else(PoisonError::into_inner);
        for id in ids {
            // Only the map's own reference left: nobody holds or waits.
            if rows
                .get(id)
                .is_some_and(|lock| Arc::strong_count(lock) == 1)
            {
                rows.remove(id);
            }
        }
    }

    fn release_rows(&self, held: Vec<(Row, OwnedMutexGuard<()>)>) {
        if held.is_empty() {
            return;
        }
        let ids: Vec<Row> = held.iter().map(|(id, _)| *id).collect();
        drop(held);
        self.forget_unused(&ids);
    }
}

/// Users, projects, tasks, the audit trail and the event log in memory,
/// shared by every clone.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

impl MemoryStore {
    /// How long a call waits for a row lock by default: `PgOptions`'
    /// default `statement_timeout`.
    pub const LOCK_TIMEOUT: Duration = Duration::from_secs(5);

    pub fn new() -> Self {
        Self::default()
    }

    /// A store whose calls wait at most `timeout` for a row lock.
    pub fn with_lock_timeout(timeout: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                lock_timeout: timeout,
                ..Shared::default()
            }),
        }
    }
}

impl Store for MemoryStore {
    type Connection = MemoryHandle;
    type Transaction = MemoryHandle;

    async fn connection(&self) -> Result<MemoryHandle, PortError> {
        Ok(MemoryHandle {
            shared: Arc::clone(&self.shared),
            tx: None,
        })
    }

    async fn begin(&self) -> Result<MemoryHandle, PortError> {
        Ok(MemoryHandle {
            shared: Arc::clone(&self.shared),
            tx: Some(Tx::default()),
        })
    }

    /// A transaction that refuses to lock or write; no true snapshot: each
    /// read sees what is committed when it runs (copying the whole store
    /// for each would cost more than it is worth). Safe for the use cases,
    /// which read a log's head before the state it numbers: the state read
    /// is then at least as new as the head.
    async fn snapshot(&self) -> Result<MemoryHandle, PortError> {
        Ok(MemoryHandle {
            shared: Arc::clone(&self.shared),
            tx: Some(Tx {
                read_only: true,
                ..Tx::default()
            }),
        })
    }

    async fn ping(&self) -> Result<(), PortError> {
        Ok(())
    }
}

/// A connection (every call commits at once) or a transaction (writes
/// staged until `commit`, dropped uncommitted: gone). Each port is
/// implemented once, for both.
#[derive(Debug)]
pub struct MemoryHandle {
    shared: Arc<Shared>,
    tx: Option<Tx>,
}

#[derive(Debug, Default)]
struct Tx {
    /// A snapshot's: refuses every lock and write.
    read_only: bool,
    /// In the order made; applied in that order at commit.
    writes: Vec<Write>,
    /// Row locks held until the transaction ends.
    rows: Vec<(Row, OwnedMutexGuard<()>)>,
    /// Addresses this transaction's user insertions took.
    reserved: Vec<Email>,
    /// Memberships this transaction's insertions took.
    reserved_members: Vec<(ProjectId, UserId)>,
}

impl Tx {
    fn holds(&self, id: Row) -> bool {
        self.rows.iter().any(|(held, _)| *held == id)
    }

    /// The id of the user this transaction inserted with `email`.
    fn own_user_with(&self, email: &Email) -> Option<UserId> {
        self.writes.iter().rev().find_map(|write| match write {
            Write::InsertUser(user) if user.email == *email => Some(user.id),
            _ => None,
        })
    }

    /// The project as this transaction's own writes left it.
    fn own_project(&self, id: ProjectId) -> Option<Option<&Project>> {
        self.writes.iter().rev().find_map(|write| match write {
            Write::PutProject(project) if project.id == id => Some(Some(project)),
            Write::DeleteProject(deleted) if *deleted == id => Some(None),
            _ => None,
        })
    }

    /// The membership as this transaction's own writes left it.
    fn own_member(&self, project: ProjectId, user: UserId) -> Option<Option<&Member>> {
        self.writes.iter().rev().find_map(|write| match write {
            Write::PutMember(m) if m.project_id == project && m.user_id == user => Some(Some(m)),
            Write::DeleteMember(p, u) if *p == project && *u == user => Some(None),
            Write::DeleteProject(p) if *p == project => Some(None),
            _ => None,
        })
    }

    /// Whether this transaction recorded an entry with this id.
    fn recorded(&self, id: AuditId) -> bool {
        self.writes.iter().any(|write| match write {
            Write::Record(entries) => entries.iter().any(|e| e.id == id),
            _ => false,
        })
    }
}

impl MemoryHandle {
    /// The user as this handle sees it: its transaction's own writes over
    /// the committed row.
    fn visible_user(&self, id: UserId) -> Option<User> {
        let committed = self.shared.state().users.get(&id).cloned();
        let Some(tx) = &self.tx else {
            return committed;
        };
        tx.writes.iter().fold(committed, |user, write| match write {
            Write::InsertUser(inserted) if inserted.id == id => Some(inserted.clone()),
            Write::UpdateUser(updated) if updated.id == id => {
                user.map(|user| with_admin_fields(user, updated))
            }
            _ => user,
        })
    }

    /// The task as this handle sees it.
    fn visible_task(&self, id: TaskId) -> Option<Task> {
        let committed = self.shared.state().tasks.get(&id).cloned();
        let Some(tx) = &self.tx else {
            return committed;
        };
        tx.writes.iter().fold(committed, |task, write| match write {
            Write::InsertTask(put) | Write::UpdateTask(put) if put.id == id => Some(put.clone()),
            Write::DeleteTask(deleted) if *deleted == id => None,
            Write::DeleteProject(project)
                if task.as_ref().is_some_and(|t| t.project_id == *project) =>
            {
                None
            }
            _ => task,
        })
    }

    fn visible_project(&self, id: ProjectId) -> Option<Project> {
        if let Some(own) = self.tx.as_ref().and_then(|tx| tx.own_project(id)) {
            return own.cloned();
        }
        self.shared.state().projects.get(&id).cloned()
    }

    fn visible_member(&self, project: ProjectId, user: UserId) -> Option<Member> {
        if let Some(own) = self.tx.as_ref().and_then(|tx| tx.own_member(project, user)) {
            return own.cloned();
        }
        let state = self.shared.state();
        state.members.get(&project)?.get(&user).cloned()
    }

    /// The data as this handle sees it, for the reads that scan it: the
    /// committed data, or (in a transaction that wrote) a copy with its
    /// writes applied. Use cases scan little after writing, so the copy
    /// costs only there.
    fn view<T>(&self, read: impl FnOnce(&State) -> T) -> T {
        let state = self.shared.state();
        // The event log is read without a copy (`visible_events`): its
        // writes are left out, so the copy never copies it.
        let mut writes = self
            .tx
            .iter()
            .flat_map(|tx| &tx.writes)
            .filter(|write| !write.logs_only())
            .peekable();
        if writes.peek().is_none() {
            return read(&state);
        }
        let mut view = state.clone();
        for write in writes {
            view.apply(write.clone());
        }
        read(&view)
    }

    /// Locks the row: until the transaction ends, or (outside one) returns
    /// the guard for the caller to drop when its write is done.
    async fn lock_row(&mut self, id: Row) -> Result<Option<CallLock>, PortError> {
        self.check_writable()?;
        if self.tx.as_ref().is_some_and(|tx| tx.holds(id)) {
            return Ok(None);
        }
        let guard = self.shared.lock_row(id).await?;
        Ok(match &mut self.tx {
            Some(tx) => {
                tx.rows.push((id, guard));
                None
            }
            None => Some(CallLock {
                shared: Arc::clone(&self.shared),
                held: Some((id, guard)),
            }),
        })
    }

    /// Locks the project as a foreign key to it does (waiting for a
    /// transaction that deletes it) and checks it is there. PostgreSQL's
    /// lock for a reference is shared; this one is not, so writers into
    /// one project queue here: slower, never wrong.
    async fn lock_existing_project(
        &mut self,
        id: ProjectId,
    ) -> Result<Option<CallLock>, PortError> {
        let lock = self.lock_row(Row::Project(id)).await?;
        if self.visible_project(id).is_none() {
            return Err(PortError::unexpected(WHAT, format!("no project {id}")));
        }
        Ok(lock)
    }

    /// Refuses a lock or a write in a snapshot, as PostgreSQL refuses
    /// them in a `READ ONLY` transaction.
    fn check_writable(&self) -> Result<(), PortError> {
        if self.tx.as_ref().is_some_and(|tx| tx.read_only) {
            return Err(PortError::unexpected(
                WHAT,
                "a snapshot reads only: it neither locks nor writes",
            ));
        }
        Ok(())
    }

    /// Stages `write` in the transaction, or applies it at once.
    fn write(&mut self, write: Write) -> Result<(), PortError> {
        self.check_writable()?;
        match &mut self.tx {
            Some(tx) => tx.writes.push(write),
            None => self.shared.state().apply(write),
        }
        Ok(())
    }

    /// The project's head as this handle sees it in `state` (the committed
    /// data): its transaction's own writes over the committed head; `None`
    /// when there is no such project.
    fn visible_head(&self, state: &State, id: ProjectId) -> Option<i64> {
        let committed = state.heads.get(&id).copied();
        let Some(tx) = &self.tx else {
            return committed;
        };
        // As `State::apply` would leave it.
        tx.writes.iter().fold(committed, |head, write| match write {
            Write::PutProject(project) if project.id == id => Some(head.unwrap_or(0)),
            Write::DeleteProject(deleted) if *deleted == id => None,
            Write::Append(project, events) if *project == id => {
                head.map(|head| events.last().map_or(head, |last| last.seq))
            }
            _ => head,
        })
    }

    /// Up to `take` of the project's events after `after`, in seq order,
    /// as this handle sees them in `state`: the committed ones, then its
    /// transaction's own (numbered after them, under the project's lock),
    /// less those its own prunes removed.
    fn visible_events(&self, state: &State, id: ProjectId, after: i64, take: usize) -> Vec<Event> {
        let writes = self.tx.as_ref().map_or(&[][..], |tx| &tx.writes[..]);
        let mut events: Vec<Event> = state
            .events
            .after(id, after)
            .filter(|event| kept_by(writes, event.event.at))
            .take(take)
            .cloned()
            .collect();
        for (i, write) in writes.iter().enumerate() {
            if let Write::Append(project, appended) = write
                && *project == id
            {
                let later = &writes[i + 1..];
                events.extend(
                    appended
                        .iter()
                        .filter(|e| e.seq > after && kept_by(later, e.event.at))
                        .cloned(),
                );
            }
        }
        events.sort_by_key(|event| event.seq);
        events.truncate(take);
        events
    }

    /// How many events older than `before` this handle sees in `state`.
    fn visible_older_than(&self, state: &State, before: OffsetDateTime) -> u64 {
        let writes = self.tx.as_ref().map_or(&[][..], |tx| &tx.writes[..]);
        let committed = state
            .events
            .older_than(before)
            .filter(|at| kept_by(writes, *at))
            .count();
        let own = writes.iter().enumerate().map(|(i, write)| match write {
            Write::Append(_, appended) => appended
                .iter()
                .filter(|e| e.event.at < before && kept_by(&writes[i + 1..], e.event.at))
                .count(),
            _ => 0,
        });
        (committed + own.sum::<usize>()) as u64
    }

    /// Ends the transaction: applies its writes when `commit`, and gives
    /// back its locks and reserved addresses either way.
    fn end(&mut self, commit: bool) {
        let Some(tx) = self.tx.take() else {
            return;
        };
        {
            let mut state = self.shared.state();
            for email in &tx.reserved {
                state.reserved_emails.remove(email);
            }
            for key in &tx.reserved_members {
                state.reserved_members.remove(key);
            }
            if commit {
                for write in tx.writes {
                    state.apply(write);
                }
            }
        }
        self.shared.release_rows(tx.rows);
    }
}

/// A row lock taken outside a transaction: released, and its map entry
/// dropped, when the call that took it ends.
#[derive(Debug)]
struct CallLock {
    shared: Arc<Shared>,
    held: Option<(Row, OwnedMutexGuard<()>)>,
}

impl Drop for CallLock {
    fn drop(&mut self) {
        self.shared
            .release_rows(self.held.take().into_iter().collect());
    }
}

impl Transaction for MemoryHandle {
    async fn commit(mut self) -> Result<(), PortError> {
        self.end(true);
        Ok(())
    }
}

impl Drop for MemoryHandle {
    fn drop(&mut self) {
        self.end(false);
    }
}

impl Users for MemoryHandle {
    async fn insert_user(&mut self, user: &User) -> Result<(), InsertUserError> {
        self.check_writable()?;
        // Checked and taken under one lock, so two callers cannot both pass.
        let mut state = self.shared.state();
        if state.email_taken(&user.email) {
            return Err(InsertUserError::EmailTaken);
        }
        match &mut self.tx {
            Some(tx) => {
                state.reserved_emails.insert(user.email.clone());
                tx.reserved.push(user.email.clone());
                tx.writes.push(Write::InsertUser(user.clone()));
            }
            None => state.apply(Write::InsertUser(user.clone())),
        }
        Ok(())
    }

    async fn user_by_email(&mut self, email: &Email) -> Result<Option<User>, PortError> {
        // Addresses never change, so the id is found where the user was
        // inserted.
        let id = self
            .tx
            .as_ref()
            .and_then(|tx| tx.own_user_with(email))
            .or_else(|| self.shared.state().users_by_email.get(email).copied());
        Ok(id.and_then(|id| self.visible_user(id)))
    }

    async fn user_by_id(&mut self, id: UserId) -> Result<Option<User>, PortError> {
        Ok(self.visible_user(id))
    }

    async fn user_for_update(&mut self, id: UserId) -> Result<Option<User>, PortError> {
        let _until_the_call_ends = self.lock_row(Row::User(id)).await?;
        Ok(self.visible_user(id))
    }

    async fn update_user(&mut self, user: &User) -> Result<bool, PortError> {
        let _until_the_write_is_done = self.lock_row(Row::User(user.id)).await?;
        if self.visible_user(user.id).is_none() {
            return Ok(false);
        }
        self.write(Write::UpdateUser(user.clone()))?;
        Ok(true)
    }

    async fn list_users(&mut self, query: &UserQuery) -> Result<Vec<User>, PortError> {
        // `q` is plain text (`%`, `_` and `\` included), found anywhere in
        // the e-mail or the name, both lower-cased.
        let q = query.q.as_ref().map(|q| q.to_lowercase());
        let matches = |user: &User| {
            q.as_ref().is_none_or(|q| {
                user.email.as_str().to_lowercase().contains(q)
                    || user.name.as_str().to_lowercase().contains(q)
            })
        };
        Ok(self.view(|state| {
            let after = match query.after {
                Some(after) => std::ops::Bound::Excluded(after),
                None => std::ops::Bound::Unbounded,
            };
            state
                .users
                .range((after, std::ops::Bound::Unbounded))
                .map(|(_, user)| user)
                .filter(|user| matches(user))
                .take(query.limit as usize + 1)
                .cloned()
                .collect()
        }))
    }
}

impl Tasks for MemoryHandle {
    async fn insert_task(&mut self, task: &Task) -> Result<(), PortError> {
        let _until_the_write_is_done = self.lock_existing_project(task.project_id).await?;
        self.write(Write::InsertTask(task.clone()))?;
        Ok(())
    }

    async fn task(&mut self, id: TaskId) -> Result<Option<Task>, PortError> {
        Ok(self.visible_task(id))
    }

    async fn task_for_update(&mut self, id: TaskId) -> Result<Option<Task>, PortError> {
        let _until_the_call_ends = self.lock_row(Row::Task(id)).await?;
        // Read once the lock is ours: whatever its last holder committed.
        Ok(self.visible_task(id))
    }

    async fn update_task(&mut self, task: &Task) -> Result<bool, PortError> {
        let _until_the_write_is_done = self.lock_row(Row::Task(task.id)).await?;
        let Some(current) = self.visible_task(task.id) else {
            return Ok(false);
        };
        let _moved_into = if current.project_id == task.project_id {
            None
        } else {
            self.lock_existing_project(task.project_id).await?
        };
        self.write(Write::UpdateTask(task.clone()))?;
        Ok(true)
    }

    async fn delete_task(&mut self, id: TaskId) -> Result<bool, PortError> {
        let _until_the_write_is_done = self.lock_row(Row::Task(id)).await?;
        if self.visible_task(id).is_none() {
            return Ok(false);
        }
        self.write(Write::DeleteTask(id))?;
        Ok(true)
    }

    async fn assigned_tasks_for_update(
        &mut self,
        project: ProjectId,
        user: UserId,
    ) -> Result<Vec<Task>, PortError> {
        let is_assigned =
            |task: &Task| task.project_id == project && task.assignee_id == Some(user);
        let ids: Vec<TaskId> = self.view(|state| {
            state
                .tasks_by_project
                .get(&project)
                .into_iter()
                .flatten()
                .filter(|id| state.tasks.get(id).is_some_and(is_assigned))
                .copied()
                .collect()
        });
        // In id order (the set's), as PostgreSQL's ORDER BY id FOR UPDATE
        // locks them; a task changed meanwhile is read as it is now, and
        // left out if it no longer qualifies.
        let mut locks = Vec::with_capacity(ids.len());
        let mut tasks = Vec::with_capacity(ids.len());
        for id in ids {
            locks.push(self.lock_row(Row::Task(id)).await?);
            tasks.extend(self.visible_task(id).filter(is_assigned));
        }
        Ok(tasks)
    }

    async fn list_tasks(
        &mut self,
        member: UserId,
        query: &TaskQuery,
    ) -> Result<Vec<Task>, PortError> {
        Ok(self.view(|state| list(state.tasks_of_member(member, query.project_id), query)))
    }
}

impl Projects for MemoryHandle {
    async fn insert_project(&mut self, project: &Project) -> Result<(), PortError> {
        self.write(Write::PutProject(project.clone()))?;
        Ok(())
    }

    async fn project(&mut self, id: ProjectId) -> Result<Option<Project>, PortError> {
        Ok(self.visible_project(id))
    }

    async fn project_for_update(&mut self, id: ProjectId) -> Result<Option<Project>, PortError> {
        let _until_the_call_ends = self.lock_row(Row::Project(id)).await?;
        Ok(self.visible_project(id))
    }

    async fn update_project(&mut self, project: &Project) -> Result<bool, PortError> {
        let _until_the_write_is_done = self.lock_row(Row::Project(project.id)).await?;
        if self.visible_project(project.id).is_none() {
            return Ok(false);
        }
        self.write(Write::PutProject(project.clone()))?;
        Ok(true)
    }

    async fn delete_project(&mut self, id: ProjectId) -> Result<bool, PortError> {
        let _until_the_write_is_done = self.lock_row(Row::Project(id)).await?;
        if self.visible_project(id).is_none() {
            return Ok(false);
        }
        // Its tasks go with it, locked first as PostgreSQL's cascade locks
        // them: a transaction changing one finishes before. No task enters
        // the project meanwhile (that takes the project's lock, held here).
        let tasks: Vec<TaskId> = self.view(|state| {
            state
                .tasks_by_project
                .get(&id)
                .into_iter()
                .flatten()
                .copied()
                .collect()
        });
        let mut locks = Vec::with_capacity(tasks.len());
        for task in tasks {
            locks.push(self.lock_row(Row::Task(task)).await?);
        }
        self.write(Write::DeleteProject(id))?;
        Ok(true)
    }

    async fn insert_member(&mut self, member: &Member) -> Result<(), InsertMemberError> {
        let key = (member.project_id, member.user_id);
        // As a foreign key does: waits for a transaction deleting the
        // project, and refuses a project that is not there.
        let _until_the_write_is_done = self.lock_existing_project(key.0).await?;
        if self.visible_member(key.0, key.1).is_some() {
            return Err(InsertMemberError::AlreadyMember);
        }
        // Checked and taken under one lock, so two callers cannot both pass.
        let mut state = self.shared.state();
        let own = self.tx.as_ref().and_then(|tx| tx.own_member(key.0, key.1));
        let committed = own.is_none()
            && state
                .members
                .get(&key.0)
                .is_some_and(|members| members.contains_key(&key.1));
        let reserved_by_us = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.reserved_members.contains(&key));
        if committed || (state.reserved_members.contains(&key) && !reserved_by_us) {
            return Err(InsertMemberError::AlreadyMember);
        }
        match &mut self.tx {
            Some(tx) => {
                state.reserved_members.insert(key);
                if !reserved_by_us {
                    tx.reserved_members.push(key);
                }
                tx.writes.push(Write::PutMember(member.clone()));
            }
            None => state.apply(Write::PutMember(member.clone())),
        }
        Ok(())
    }

    async fn member(
        &mut self,
        project: ProjectId,
        user: UserId,
    ) -> Result<Option<Member>, PortError> {
        Ok(self.visible_member(project, user))
    }

    async fn update_member_role(
        &mut self,
        project: ProjectId,
        user: UserId,
        role: ProjectRole,
    ) -> Result<bool, PortError> {
        let _project = self.lock_row(Row::Project(project)).await?;
        let _until_the_write_is_done = self.lock_row(Row::Member(project, user)).await?;
        let Some(mut member) = self.visible_member(project, user) else {
            return Ok(false);
        };
        member.role = role;
        self.write(Write::PutMember(member))?;
        Ok(true)
    }

    async fn delete_member(&mut self, project: ProjectId, user: UserId) -> Result<bool, PortError> {
        let _project = self.lock_row(Row::Project(project)).await?;
        let _until_the_write_is_done = self.lock_row(Row::Member(project, user)).await?;
        if self.visible_member(project, user).is_none() {
            return Ok(false);
        }
        self.write(Write::DeleteMember(project, user))?;
        Ok(true)
    }

    async fn members(
        &mut self,
        project: ProjectId,
        query: &MemberQuery,
    ) -> Result<Vec<MemberDetails>, PortError> {
        Ok(self.view(|state| {
            let mut members: Vec<&Member> = state
                .members
                .get(&project)
                .map(|members| members.values().collect())
                .unwrap_or_default();
            members.sort_by_key(|m| (m.joined_at, m.user_id));
            members
                .into_iter()
                .filter(|m| {
                    query
                        .after
                        .is_none_or(|after| (m.joined_at, m.user_id) > after)
                })
                // Joined with the users, as an inner join (every member is
                // a user, by a foreign key in PostgreSQL).
                .filter_map(|m| {
                    let user = state.users.get(&m.user_id)?;
                    Some(MemberDetails {
                        member: m.clone(),
                        email: user.email.clone(),
                        name: user.name.clone(),
                    })
                })
                .take(query.limit as usize + 1)
                .collect()
        }))
    }

    async fn projects_of(
        &mut self,
        user: UserId,
        query: &ProjectQuery,
    ) -> Result<Vec<(Project, ProjectRole)>, PortError> {
        Ok(self.view(|state| {
            let mut mine: Vec<(String, &Project, ProjectRole)> = state
                .memberships
                .get(&user)
                .into_iter()
                .flatten()
                .filter_map(|id| {
                    let project = state.projects.get(id)?;
                    let role = state.members.get(id)?.get(&user)?.role;
                    (project.archived == query.archived)
                        .then(|| (project.sort_key(), project, role))
                })
                .collect();
            mine.sort_by(|a, b| (&a.0, a.1.id).cmp(&(&b.0, b.1.id)));
            mine.into_iter()
                .filter(|(key, project, _)| {
                    query.after.as_ref().is_none_or(|(after_key, after_id)| {
                        (key, project.id) > (after_key, *after_id)
                    })
                })
                .take(query.limit as usize + 1)
                .map(|(_, project, role)| (project.clone(), role))
                .collect()
        }))
    }

    async fn inbox_of(&mut self, user: UserId) -> Result<Option<Project>, PortError> {
        Ok(self.view(|state| {
            state
                .projects
                .values()
                .find(|p| p.personal && p.owner_id == user)
                .cloned()
        }))
    }
}

impl Audit for MemoryHandle {
    async fn record(&mut self, entries: &[AuditEntry]) -> Result<(), PortError> {
        // An id is recorded once, as a primary key allows.
        let mut ids = HashSet::new();
        let state_has = |id: AuditId| self.shared.state().audit.entries.contains_key(&id);
        for entry in entries {
            let own = self.tx.as_ref().is_some_and(|tx| tx.recorded(entry.id));
            if !ids.insert(entry.id) || own || state_has(entry.id) {
                return Err(PortError::unexpected(
                    WHAT,
                    format!("audit entry {} recorded twice", entry.id),
                ));
            }
        }
        self.write(Write::Record(entries.to_vec()))?;
        Ok(())
    }

    async fn activity(
        &mut self,
        project: ProjectId,
        query: &AuditQuery,
    ) -> Result<Vec<AuditEntry>, PortError> {
        Ok(self.view(|state| {
            state
                .audit
                .page(state.audit.by_project.get(&project), query)
        }))
    }

    async fn history(
        &mut self,
        entity_type: EntityType,
        entity_id: uuid::Uuid,
        query: &AuditQuery,
    ) -> Result<Vec<AuditEntry>, PortError> {
        Ok(self.view(|state| {
            let keys = state.audit.by_entity.get(&(entity_type, entity_id));
            state.audit.page(keys, query)
        }))
    }
}

impl Events for MemoryHandle {
    async fn append(
        &mut self,
        project: ProjectId,
        events: &[NewEvent],
    ) -> Result<Vec<Event>, PortError> {
        // The project's row lock, as PostgreSQL's update of its head takes
        // it: numbers are given under it, so in commit order.
        let _until_the_write_is_done = self.lock_row(Row::Project(project)).await?;
        let head = self.visible_head(&self.shared.state(), project);
        let Some(head) = head else {
            return Err(PortError::unexpected(WHAT, format!("no project {project}")));
        };
        let numbered: Vec<Event> = (head + 1..)
            .zip(events)
            .map(|(seq, event)| Event {
                project_id: project,
                seq,
                event: event.clone(),
            })
            .collect();
        if !numbered.is_empty() {
            self.write(Write::Append(project, numbered.clone()))?;
        }
        Ok(numbered)
    }

    async fn events(
        &mut self,
        project: ProjectId,
        query: &EventQuery,
    ) -> Result<Vec<Event>, PortError> {
        let take = query.limit as usize + 1;
        Ok(self.visible_events(&self.shared.state(), project, query.after, take))
    }

    async fn log_bounds(&mut self, project: ProjectId) -> Result<Option<LogBounds>, PortError> {
        // Both read from one state of the committed data.
        let state = self.shared.state();
        let Some(head) = self.visible_head(&state, project) else {
            return Ok(None);
        };
        let oldest = self
            .visible_events(&state, project, 0, 1)
            .first()
            .map(|e| e.seq);
        Ok(Some(LogBounds { head, oldest }))
    }

    async fn heads(&mut self, projects: &[ProjectId]) -> Result<Vec<(ProjectId, i64)>, PortError> {
        let state = self.shared.state();
        Ok(projects
            .iter()
            .filter_map(|&id| Some((id, self.visible_head(&state, id)?)))
            .collect())
    }

    async fn prune_events(&mut self, before: OffsetDateTime) -> Result<u64, PortError> {
        self.check_writable()?;
        if self.tx.is_none() {
            // Counted as removed, under one lock: instances pruning at once
            // count each event once.
            let mut state = self.shared.state();
            return Ok(Arc::make_mut(&mut state.events).prune(before));
        }
        // Staged, and counted as the transaction sees the log (another
        // transaction pruning meanwhile may count the same events).
        let count = self.visible_older_than(&self.shared.state(), before);
        self.write(Write::Prune(before))?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use domain::{NewTask, PortError, Store, Task, Tasks, UserId};

    use super::*;

    fn event_at(actor: UserId, at: OffsetDateTime) -> NewEvent {
        domain::contract::events::event_at(actor, uuid::Uuid::now_v7(), at)
    }

    /// The seqs of the project's events the handle sees.
    async fn seqs_of(handle: &mut MemoryHandle, project: ProjectId) -> Vec<i64> {
        let all = EventQuery {
            after: 0,
            limit: 10,
        };
        let events = handle.events(project, &all).await.expect("events");
        events.iter().map(|e| e.seq).collect()
    }

    /// Pruning in a transaction (the contract prunes through connections):
    /// counted as the transaction sees the log, its own events included;
    /// seen by its own reads at once; by others only at commit.
    #[tokio::test]
    async fn a_transactions_prune_is_staged_until_it_commits() {
        let store = MemoryStore::new();
        let owner = UserId::generate();
        let now = OffsetDateTime::now_utc();
        let old = now - time::Duration::days(2);
        let project = Project::create(owner, "Pruned", None, now).expect("valid");
        let mut conn = store.connection().await.expect("connection");
        conn.insert_project(&project).await.expect("insert");
        let committed = [event_at(owner, old), event_at(owner, now)];
        conn.append(project.id, &committed).await.expect("append");
        for commit in [false, true] {
            let mut tx = store.begin().await.expect("begin");
            let own = [event_at(owner, old)];
            tx.append(project.id, &own).await.expect("append");
            let cutoff = now - time::Duration::days(1);
            assert_eq!(tx.prune_events(cutoff).await.expect("prune"), 2);
            assert_eq!(tx.prune_events(cutoff).await.expect("prune"), 0);
            // Appended after the prune: kept.
            let later = [event_at(owner, old)];
            tx.append(project.id, &later).await.expect("append");
            let seen = seqs_of(&mut tx, project.id).await;
            assert_eq!(seen, [2, 4]);
            let bounds = tx.log_bounds(project.id).await.expect("bounds");
            assert_eq!(
                bounds,
                Some(LogBounds {
                    head: 4,
                    oldest: Some(2)
                })
            );
            assert_eq!(seqs_of(&mut conn, project.id).await, [1, 2], "staged");
            if commit {
                tx.commit().await.expect("commit");
            }
        }
        let seqs = seqs_of(&mut conn, project.id).await;
        assert_eq!(seqs, [2, 4]);
        assert_eq!(store.shared.state().events.by_time.len(), 2);
    }

    fn task(project: ProjectId, owner: UserId, title: &str) -> Task {
        let input = NewTask {
            title: title.to_owned(),
            ..NewTask::default()
        };
        Task::create(project, owner, input, OffsetDateTime::now_utc()).expect("valid")
    }

    /// Two transactions that each hold a row the other wants end with an
    /// error, as PostgreSQL's statement timeout (or deadlock detector)
    /// ends them, instead of waiting for each other forever; and nothing is
    /// left in the lock map.
    #[tokio::test]
    async fn transactions_locking_in_opposite_orders_fail_instead_of_hanging() {
        let store = MemoryStore::with_lock_timeout(Duration::from_millis(200));
        let owner = UserId::generate();
        let project =
            Project::create(owner, "Crossed", None, OffsetDateTime::now_utc()).expect("valid");
        let (first, second) = (
            task(project.id, owner, "First"),
            task(project.id, owner, "Second"),
        );
        let mut conn = store.connection().await.expect("connection");
        conn.insert_project(&project).await.expect("insert");
        conn.insert_task(&first).await.expect("insert");
        conn.insert_task(&second).await.expect("insert");
        let mut a = store.begin().await.expect("begin");
        let mut b = store.begin().await.expect("begin");
        a.task_for_update(first.id).await.expect("lock");
        b.task_for_update(second.id).await.expect("lock");
        let crossed =
            async { tokio::join!(a.task_for_update(second.id), b.task_for_update(first.id)) };
        let (for_a, for_b) = tokio::time::timeout(Duration::from_secs(10), crossed)
            .await
            .expect("the waits end");
        let refused = [&for_a, &for_b]
            .into_iter()
            .filter(|r| matches!(r, Err(PortError::Unavailable { .. })))
            .count();
        assert!(refused >= 1, "{for_a:?} {for_b:?}");
        drop((a, b));
        let rows = store.shared.rows.lock().expect("rows");
        assert!(rows.is_empty(), "{rows:?}");
    }
}

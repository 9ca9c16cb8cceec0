use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use domain::ports::InsertUserError;
use domain::{
    Email, PortError, Repository, Store, Task, TaskId, TaskQuery, Transaction, User, UserId,
};
use tokio::sync::{Mutex, OwnedMutexGuard};

#[derive(Debug, Default)]
struct State {
    users: HashMap<UserId, User>,
    users_by_email: HashMap<Email, UserId>,
    /// Tasks by owner: every task is reached through its owner.
    tasks: HashMap<UserId, BTreeMap<TaskId, Task>>,
}

/// What a transaction did, so that dropping it can take it back.
#[derive(Debug)]
enum Undo {
    RemoveUser(UserId),
    RemoveTask(UserId, TaskId),
    RestoreTask(Task),
}

impl State {
    fn insert_user(&mut self, user: &User) -> Result<(), InsertUserError> {
        if self.users_by_email.contains_key(&user.email) {
            return Err(InsertUserError::EmailTaken);
        }
        self.users_by_email.insert(user.email.clone(), user.id);
        self.users.insert(user.id, user.clone());
        Ok(())
    }

    fn user_by_email(&self, email: &Email) -> Option<User> {
        self.users_by_email
            .get(email)
            .and_then(|id| self.users.get(id))
            .cloned()
    }

    fn task(&self, owner: UserId, id: TaskId) -> Option<&Task> {
        self.tasks.get(&owner).and_then(|tasks| tasks.get(&id))
    }

    fn insert_task(&mut self, task: &Task) {
        self.tasks
            .entry(task.owner_id)
            .or_default()
            .insert(task.id, task.clone());
    }

    /// The previous version of the task, when there was one.
    fn update_task(&mut self, task: &Task) -> Option<Task> {
        let slot = self.tasks.get_mut(&task.owner_id)?.get_mut(&task.id)?;
        Some(std::mem::replace(slot, task.clone()))
    }

    fn delete_task(&mut self, owner: UserId, id: TaskId) -> Option<Task> {
        self.tasks.get_mut(&owner)?.remove(&id)
    }

    fn list_tasks(&self, owner: UserId, query: &TaskQuery) -> Vec<Task> {
        let Some(tasks) = self.tasks.get(&owner) else {
            return Vec::new();
        };
        let mut matching: Vec<&Task> = tasks
            .values()
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

    fn undo(&mut self, undo: Undo) {
        match undo {
            Undo::RemoveUser(id) => {
                if let Some(user) = self.users.remove(&id) {
                    self.users_by_email.remove(&user.email);
                }
            }
            Undo::RemoveTask(owner, id) => {
                self.delete_task(owner, id);
            }
            Undo::RestoreTask(task) => self.insert_task(&task),
        }
    }
}

/// Users and tasks in memory, shared by every clone.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Store for MemoryStore {
    type Connection = MemoryConnection;
    type Transaction = MemoryTransaction;

    async fn connection(&self) -> Result<MemoryConnection, PortError> {
        Ok(MemoryConnection {
            state: Arc::clone(&self.state),
        })
    }

    async fn begin(&self) -> Result<MemoryTransaction, PortError> {
        Ok(MemoryTransaction {
            state: Some(Arc::clone(&self.state).lock_owned().await),
            undo: Vec::new(),
        })
    }

    async fn ping(&self) -> Result<(), PortError> {
        Ok(())
    }
}

/// Each call locks the store for its own duration and commits at once.
#[derive(Debug)]
pub struct MemoryConnection {
    state: Arc<Mutex<State>>,
}

impl Repository for MemoryConnection {
    async fn insert_user(&mut self, user: &User) -> Result<(), InsertUserError> {
        self.state.lock().await.insert_user(user)
    }

    async fn user_by_email(&mut self, email: &Email) -> Result<Option<User>, PortError> {
        Ok(self.state.lock().await.user_by_email(email))
    }

    async fn user_by_id(&mut self, id: UserId) -> Result<Option<User>, PortError> {
        Ok(self.state.lock().await.users.get(&id).cloned())
    }

    async fn insert_task(&mut self, task: &Task) -> Result<(), PortError> {
        self.state.lock().await.insert_task(task);
        Ok(())
    }

    async fn task(&mut self, owner: UserId, id: TaskId) -> Result<Option<Task>, PortError> {
        Ok(self.state.lock().await.task(owner, id).cloned())
    }

    async fn update_task(&mut self, task: &Task) -> Result<bool, PortError> {
        Ok(self.state.lock().await.update_task(task).is_some())
    }

    async fn delete_task(&mut self, owner: UserId, id: TaskId) -> Result<bool, PortError> {
        Ok(self.state.lock().await.delete_task(owner, id).is_some())
    }

    async fn list_tasks(
        &mut self,
        owner: UserId,
        query: &TaskQuery,
    ) -> Result<Vec<Task>, PortError> {
        Ok(self.state.lock().await.list_tasks(owner, query))
    }
}

/// Holds the store's lock until committed or dropped; dropped uncommitted,
/// it undoes its writes in reverse order.
#[derive(Debug)]
pub struct MemoryTransaction {
    state: Option<OwnedMutexGuard<State>>,
    undo: Vec<Undo>,
}

impl MemoryTransaction {
    fn state(&mut self) -> Result<&mut State, PortError> {
        self.state
            .as_deref_mut()
            .ok_or_else(|| PortError::unexpected("memory store", "transaction already ended"))
    }
}

impl Transaction for MemoryTransaction {
    async fn commit(mut self) -> Result<(), PortError> {
        self.undo.clear();
        self.state = None;
        Ok(())
    }
}

impl Drop for MemoryTransaction {
    fn drop(&mut self) {
        if let Some(state) = self.state.as_deref_mut() {
            for undo in self.undo.drain(..).rev() {
                state.undo(undo);
            }
        }
    }
}

impl Repository for MemoryTransaction {
    async fn insert_user(&mut self, user: &User) -> Result<(), InsertUserError> {
        self.state()?.insert_user(user)?;
        self.undo.push(Undo::RemoveUser(user.id));
        Ok(())
    }

    async fn user_by_email(&mut self, email: &Email) -> Result<Option<User>, PortError> {
        Ok(self.state()?.user_by_email(email))
    }

    async fn user_by_id(&mut self, id: UserId) -> Result<Option<User>, PortError> {
        Ok(self.state()?.users.get(&id).cloned())
    }

    async fn insert_task(&mut self, task: &Task) -> Result<(), PortError> {
        self.state()?.insert_task(task);
        self.undo.push(Undo::RemoveTask(task.owner_id, task.id));
        Ok(())
    }

    async fn task(&mut self, owner: UserId, id: TaskId) -> Result<Option<Task>, PortError> {
        Ok(self.state()?.task(owner, id).cloned())
    }

    async fn update_task(&mut self, task: &Task) -> Result<bool, PortError> {
        let previous = self.state()?.update_task(task);
        let updated = previous.is_some();
        self.undo.extend(previous.map(Undo::RestoreTask));
        Ok(updated)
    }

    async fn delete_task(&mut self, owner: UserId, id: TaskId) -> Result<bool, PortError> {
        let previous = self.state()?.delete_task(owner, id);
        let deleted = previous.is_some();
        self.undo.extend(previous.map(Undo::RestoreTask));
        Ok(deleted)
    }

    async fn list_tasks(
        &mut self,
        owner: UserId,
        query: &TaskQuery,
    ) -> Result<Vec<Task>, PortError> {
        Ok(self.state()?.list_tasks(owner, query))
    }
}

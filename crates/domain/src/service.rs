//! The use cases. [`TaskFlow`] is generic over [`Ports`]; only the
//! composition root names concrete adapters.

use time::{Duration, OffsetDateTime};

use crate::auth::{AccessClaims, IssuedAccessToken, Principal, RefreshToken, Session, SessionId};
use crate::error::{DomainError, ErrorKind, PortError, ValidationErrors};
use crate::ports::{
    AccessTokens, Clock, InsertUserError, PasswordHasher, Ports, SessionStore, Store, Tasks,
    Transaction, Users,
};
use crate::task::{NewTask, Page, Task, TaskId, TaskPatch, TaskQuery};
use crate::user::{Email, PlainPassword, Role, User, UserId, UserName};

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How long a session lives without being refreshed.
    pub refresh_token_ttl: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            refresh_token_ttl: Duration::days(30),
        }
    }
}

/// TaskFlow's use cases over one set of adapters.
pub struct TaskFlow<P: Ports> {
    store: P::Store,
    sessions: P::Sessions,
    hasher: P::Hasher,
    tokens: P::Tokens,
    clock: P::Clock,
    settings: Settings,
}

impl<P: Ports> Clone for TaskFlow<P> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            sessions: self.sessions.clone(),
            hasher: self.hasher.clone(),
            tokens: self.tokens.clone(),
            clock: self.clock.clone(),
            settings: self.settings,
        }
    }
}

impl<P: Ports> std::fmt::Debug for TaskFlow<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskFlow")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct RegisterInput {
    pub email: String,
    pub password: String,
    pub name: String,
}

// Each error's `Display` is its message for people; its kind
// (`DomainError::kind`) is what the HTTP layer maps.

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("invalid registration: {0}")]
    Invalid(ValidationErrors),
    #[error("This e-mail address is already registered.")]
    EmailTaken,
    #[error(transparent)]
    Port(#[from] PortError),
}

impl DomainError for RegisterError {
    fn kind(&self) -> ErrorKind<'_> {
        match self {
            Self::Invalid(errors) => ErrorKind::Invalid(errors),
            Self::EmailTaken => ErrorKind::Conflict,
            Self::Port(e) => ErrorKind::Port(e),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("Invalid e-mail or password.")]
    InvalidCredentials,
    #[error(transparent)]
    Port(#[from] PortError),
}

impl DomainError for LoginError {
    fn kind(&self) -> ErrorKind<'_> {
        match self {
            Self::InvalidCredentials => ErrorKind::InvalidCredentials,
            Self::Port(e) => ErrorKind::Port(e),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("The refresh token is invalid, expired or already used.")]
    InvalidToken,
    #[error(transparent)]
    Port(#[from] PortError),
}

impl DomainError for RefreshError {
    fn kind(&self) -> ErrorKind<'_> {
        match self {
            Self::InvalidToken => ErrorKind::Unauthenticated,
            Self::Port(e) => ErrorKind::Port(e),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "A valid access token is required: this one is missing, invalid or expired, or its session has ended."
    )]
    Unauthenticated,
    #[error(transparent)]
    Port(#[from] PortError),
}

impl DomainError for AuthError {
    fn kind(&self) -> ErrorKind<'_> {
        match self {
            Self::Unauthenticated => ErrorKind::Unauthenticated,
            Self::Port(e) => ErrorKind::Port(e),
        }
    }
}

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

/// A successful login or refresh.
#[derive(Debug)]
pub struct LoginOutcome {
    pub access: IssuedAccessToken,
    pub refresh: RefreshToken,
    pub user: User,
}

/// The state of each dependency, for readiness probes.
#[derive(Debug)]
pub struct Health {
    pub checks: Vec<(&'static str, Result<(), PortError>)>,
}

impl Health {
    pub fn is_ready(&self) -> bool {
        self.checks.iter().all(|(_, r)| r.is_ok())
    }
}

impl<P: Ports> TaskFlow<P> {
    pub fn new(
        store: P::Store,
        sessions: P::Sessions,
        hasher: P::Hasher,
        tokens: P::Tokens,
        clock: P::Clock,
        settings: Settings,
    ) -> Self {
        Self {
            store,
            sessions,
            hasher,
            tokens,
            clock,
            settings,
        }
    }

    pub fn store(&self) -> &P::Store {
        &self.store
    }

    pub fn sessions(&self) -> &P::Sessions {
        &self.sessions
    }

    // ---- users and sessions ----

    /// Creates an account with role `user`.
    pub async fn register(&self, input: RegisterInput) -> Result<User, RegisterError> {
        let mut errors = ValidationErrors::new();
        let email = errors.check("email", Email::parse(&input.email));
        let password = errors.check("password", PlainPassword::new(input.password));
        let name = errors.check("name", UserName::parse(&input.name));
        let (Some(email), Some(password), Some(name)) = (email, password, name) else {
            return Err(RegisterError::Invalid(errors));
        };
        // Checked before the (slow) hash, so a taken address costs none;
        // no connection is held while hashing.
        let taken = self
            .store
            .connection()
            .await?
            .user_by_email(&email)
            .await?
            .is_some();
        if taken {
            return Err(RegisterError::EmailTaken);
        }
        let user = User {
            id: UserId::generate(),
            email,
            name,
            role: Role::User,
            password_hash: self.hasher.hash(password).await?,
            created_at: self.clock.now(),
        };
        let mut tx = self.store.begin().await?;
        match tx.insert_user(&user).await {
            // Registered meanwhile by someone else: the store's rule holds.
            Err(InsertUserError::EmailTaken) => return Err(RegisterError::EmailTaken),
            Err(InsertUserError::Port(e)) => return Err(e.into()),
            Ok(()) => {}
        }
        tx.commit().await?;
        Ok(user)
    }

    /// Checks the credentials and opens a session. An unknown e-mail and a
    /// wrong password fail alike, after the same amount of hashing work.
    pub async fn login(&self, email: &str, password: String) -> Result<LoginOutcome, LoginError> {
        let password = PlainPassword::presented(password);
        let user = match Email::parse(email) {
            Ok(email) => self.store.connection().await?.user_by_email(&email).await?,
            Err(_) => None,
        };
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let valid = self.hasher.verify(password, hash).await?;
        let Some(user) = user.filter(|_| valid) else {
            return Err(LoginError::InvalidCredentials);
        };
        let now = self.clock.now();
        let (refresh, refresh_hash) = self.tokens.new_refresh_token()?;
        let session = Session {
            id: SessionId::generate(),
            user_id: user.id,
            role: user.role,
            refresh_hash,
            expires_at: now + self.settings.refresh_token_ttl,
        };
        self.sessions.create(&session).await?;
        let access = self.issue(&session, now)?;
        Ok(LoginOutcome {
            access,
            refresh,
            user,
        })
    }

    /// Redeems a refresh token for a new pair; the presented one stops working.
    pub async fn refresh(&self, token: RefreshToken) -> Result<LoginOutcome, RefreshError> {
        let old = self.tokens.hash_refresh_token(&token);
        let (refresh, new) = self.tokens.new_refresh_token()?;
        let now = self.clock.now();
        let expires_at = now + self.settings.refresh_token_ttl;
        let Some(session) = self.sessions.rotate(&old, &new, expires_at).await? else {
            return Err(RefreshError::InvalidToken);
        };
        let Some(user) = self
            .store
            .connection()
            .await?
            .user_by_id(session.user_id)
            .await?
        else {
            self.sessions.revoke(session.id).await?;
            return Err(RefreshError::InvalidToken);
        };
        let access = self.issue(&session, now)?;
        Ok(LoginOutcome {
            access,
            refresh,
            user,
        })
    }

    fn issue(
        &self,
        session: &Session,
        now: OffsetDateTime,
    ) -> Result<IssuedAccessToken, PortError> {
        let claims = AccessClaims {
            user_id: session.user_id,
            session_id: session.id,
            role: session.role,
        };
        self.tokens.issue(claims, now)
    }

    /// Ends the caller's session at once.
    pub async fn logout(&self, principal: Principal) -> Result<(), PortError> {
        self.sessions.revoke(principal.session_id).await
    }

    /// The caller behind an access token: valid signature, not expired, and
    /// its session still alive (one session-store round trip).
    pub async fn authenticate(&self, access_token: &str) -> Result<Principal, AuthError> {
        let claims = self
            .tokens
            .verify(access_token)
            .ok_or(AuthError::Unauthenticated)?;
        match self.sessions.active(claims.session_id).await? {
            Some((user_id, role)) if user_id == claims.user_id => Ok(Principal {
                user_id,
                session_id: claims.session_id,
                role,
            }),
            _ => Err(AuthError::Unauthenticated),
        }
    }

    pub async fn me(&self, principal: Principal) -> Result<User, AuthError> {
        self.store
            .connection()
            .await?
            .user_by_id(principal.user_id)
            .await?
            .ok_or(AuthError::Unauthenticated)
    }

    // ---- tasks ----

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

    // ---- operations ----

    /// Asks every store whether it answers.
    pub async fn health(&self) -> Health {
        let store = self.store.ping().await;
        let sessions = self.sessions.ping().await;
        Health {
            checks: vec![("database", store), ("sessionStore", sessions)],
        }
    }
}

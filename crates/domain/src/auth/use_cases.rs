//! The auth context's use cases: registration, login, token refresh,
//! logout, authentication of a request, the caller's account. Each error's
//! `Display` is its message for people; its kind (`DomainError::kind`) is
//! what the HTTP layer maps.

use time::OffsetDateTime;

use crate::app::TaskFlow;
use crate::audit::Actor;
use crate::auth::{AccessClaims, IssuedAccessToken, Principal, RefreshToken, Session, SessionId};
use crate::error::{DomainError, ErrorKind, PortError, ValidationErrors};
use crate::journal::Journal;
use crate::ports::{
    AccessTokens, Clock, EventBus, InsertUserError, MemberDetails, PasswordHasher, Ports, Projects,
    SessionStore, Store, Transaction, Users,
};
use crate::project::use_cases::insert_new_member;
use crate::project::{Member, Project, ProjectId, ProjectRole};
use crate::user::{Email, PlainPassword, Role, User, UserId, UserName};

#[derive(Debug)]
pub struct RegisterInput {
    pub email: String,
    pub password: String,
    pub name: String,
}

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
    #[error("This account is disabled.")]
    Disabled,
    #[error(transparent)]
    Port(#[from] PortError),
}

impl DomainError for LoginError {
    fn kind(&self) -> ErrorKind<'_> {
        match self {
            Self::InvalidCredentials => ErrorKind::InvalidCredentials,
            Self::Disabled => ErrorKind::Forbidden,
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

/// The caller's own account, as `me` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Me {
    pub user: User,
    /// The caller's personal project.
    pub inbox_id: ProjectId,
}

/// A successful login or refresh.
#[derive(Debug)]
pub struct LoginOutcome {
    pub access: IssuedAccessToken,
    pub refresh: RefreshToken,
    pub user: User,
}

impl<P: Ports> TaskFlow<P> {
    /// Creates an account with role `user`, and its Inbox (a personal
    /// project the user owns) in the same transaction.
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
            role: if self.settings.admin_emails.contains(&email) {
                Role::Admin
            } else {
                Role::User
            },
            email,
            name,
            password_hash: self.hasher.hash(password).await?,
            created_at: self.clock.now(),
            disabled: false,
        };
        // The account and its Inbox, which the user owns, or neither.
        let inbox = Project::inbox(user.id, user.created_at);
        let owner = Member {
            project_id: inbox.id,
            user_id: user.id,
            role: ProjectRole::Owner,
            joined_at: user.created_at,
        };
        let mut tx = self.store.begin().await?;
        match tx.insert_user(&user).await {
            // Registered meanwhile by someone else: the store's rule holds.
            Err(InsertUserError::EmailTaken) => return Err(RegisterError::EmailTaken),
            Err(InsertUserError::Port(e)) => return Err(e.into()),
            Ok(()) => {}
        }
        tx.insert_project(&inbox).await?;
        insert_new_member(&mut tx, &owner).await?;
        // The Inbox's log and trail start as any project's do.
        let mut journal = Journal::new(Actor {
            user_id: user.id,
            request_id: None,
            client_mutation_id: None,
            at: user.created_at,
        });
        journal.project_created(&inbox);
        journal.member_added(&MemberDetails {
            member: owner,
            email: user.email.clone(),
            name: user.name.clone(),
        });
        let events = journal.write(&mut tx).await?;
        tx.commit().await?;
        self.bus.committed(events);
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
        if user.disabled {
            return Err(LoginError::Disabled);
        }
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
        // Disabled while this login was under way: disabling ended the
        // sessions it saw, so end this one too.
        let disabled = self
            .store
            .connection()
            .await?
            .user_by_id(user.id)
            .await?
            .is_none_or(|u| u.disabled);
        if disabled {
            self.sessions.revoke(session.id).await?;
            return Err(LoginError::Disabled);
        }
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
        let user = self
            .store
            .connection()
            .await?
            .user_by_id(session.user_id)
            .await?;
        let Some(user) = user.filter(|u| !u.disabled) else {
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
        self.sessions.revoke(principal.session_id).await?;
        self.bus
            .sessions_ended(principal.user_id, Some(principal.session_id));
        Ok(())
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
                request_id: None,
                client_mutation_id: None,
            }),
            _ => Err(AuthError::Unauthenticated),
        }
    }

    /// The caller's account and the id of their Inbox.
    pub async fn me(&self, principal: Principal) -> Result<Me, AuthError> {
        let mut conn = self.store.connection().await?;
        let user = conn
            .user_by_id(principal.user_id)
            .await?
            .ok_or(AuthError::Unauthenticated)?;
        // Every user has one: made at registration, or by the migration
        // that introduced projects.
        let inbox = conn.inbox_of(user.id).await?.ok_or_else(|| {
            PortError::unexpected("database", format!("user {} has no Inbox", user.id))
        })?;
        Ok(Me {
            user,
            inbox_id: inbox.id,
        })
    }
}

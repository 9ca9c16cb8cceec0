//! TaskFlow's domain: entities, validated value objects, the ports (traits)
//! that adapters implement, and the use cases in [`TaskFlow`].
//!
//! This crate knows nothing of HTTP, JSON, SQL, Redis, async runtimes or
//! cryptography. Adapters translate their own failures into [`PortError`];
//! every use case's error says its [`ErrorKind`], which the HTTP layer
//! maps to status codes.

/// An entity id: a UUIDv7 (time-ordered) newtype that can make a new one
/// and prints as the UUID.
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            pub fn generate() -> Self {
                Self(uuid::Uuid::now_v7())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

pub mod admin;
pub mod app;
pub mod audit;
pub mod auth;
#[cfg(feature = "contract")]
pub mod contract;
pub mod error;
pub mod event;
pub mod idempotency;
mod journal;
pub mod ports;
pub mod project;
pub mod task;
pub mod text;
pub mod user;
pub mod version;

pub use admin::{AdminError, UserAdminPatch};
pub use app::{Health, Settings, TaskFlow};
pub use audit::{
    Actor, AuditAction, AuditEntry, AuditId, AuditQuery, Change, Changes, EntityType, RequestId,
    Value,
};
pub use auth::use_cases::{
    AuthError, LoginError, LoginOutcome, Me, RefreshError, RegisterError, RegisterInput,
};
pub use auth::{
    AccessClaims, IssuedAccessToken, Principal, RefreshToken, Session, SessionId, TokenHash,
};
pub use error::{BoxError, DomainError, ErrorKind, PortError, ValidationErrors};
pub use event::bus::Silent;
pub use event::use_cases::{EventPage, EventsError};
pub use event::{ClientMutationId, Event, EventData, EventQuery, EventType, LogBounds, NewEvent};
pub use idempotency::{Claim, Fingerprint, IdempotencyKey, IdempotencyStore, LeaseToken};
pub use ports::{
    AccessTokens, Audit, Clock, EventBus, Events, MemberDetails, MemberQuery, PasswordHasher,
    Ports, ProjectQuery, Projects, SessionStore, Store, SystemClock, Tasks, Transaction, UserQuery,
    Users,
};
pub use project::policy::{Action, Denied, authorize};
pub use project::use_cases::{
    MAX_PAGE, MemberRef, NewMember, NewProject, ProjectError, ProjectPatch, ProjectView,
};
pub use project::{Member, Project, ProjectDescription, ProjectId, ProjectName, ProjectRole};
pub use task::use_cases::{TaskError, TaskList};
pub use task::{
    Cursor, CursorKey, Description, NewTask, Page, Priority, SortKey, Status, Task, TaskId,
    TaskPatch, TaskQuery, TaskSort, Title,
};
pub use user::{Email, PasswordHash, PlainPassword, Role, User, UserId, UserName};
pub use version::IfMatch;

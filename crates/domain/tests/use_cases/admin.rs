//! System admins: made by the operator, they list users and disable them;
//! they see no project content without membership.

use domain::{
    AdminError, AuthError, Email, LoginError, ProjectError, Role, Settings, TaskError,
    UserAdminPatch, UserQuery,
};

use crate::harness::{
    PASSWORD, authenticate, create, inbox, login, new_task, register, settings, signed_in,
    taskflow, taskflow_with, together,
};

fn with_admin(email: &str) -> Settings {
    Settings {
        admin_emails: vec![Email::parse(email).expect("valid")],
        ..settings()
    }
}

fn disable(disabled: bool) -> UserAdminPatch {
    UserAdminPatch {
        disabled: Some(disabled),
        role: None,
    }
}

fn everyone() -> UserQuery {
    UserQuery {
        q: None,
        after: None,
        limit: 100,
    }
}

#[tokio::test]
async fn admin_emails_register_as_admins_and_only_admins_administer() {
    let (flow, _clock) = taskflow_with(with_admin("Root@Example.com"));
    let root = signed_in(&flow, "root@example.com").await;
    let ada = signed_in(&flow, "ada@example.com").await;
    assert_eq!(flow.me(root).await.expect("me").user.role, Role::Admin);
    assert_eq!(flow.me(ada).await.expect("me").user.role, Role::User);
    let users = flow.admin_users(root, everyone()).await.expect("listed");
    assert_eq!(users.items.len(), 2);
    let refused = flow.admin_users(ada, everyone()).await;
    assert!(matches!(refused, Err(AdminError::Forbidden)), "{refused:?}");
    let refused = flow.administer_user(ada, root.user_id, disable(true)).await;
    assert!(matches!(refused, Err(AdminError::Forbidden)), "{refused:?}");
}

#[tokio::test]
async fn disabling_ends_sessions_at_once_and_refuses_logins() {
    let (flow, _clock) = taskflow_with(with_admin("root@example.com"));
    let root = signed_in(&flow, "root@example.com").await;
    register(&flow, "ada@example.com").await;
    let outcome = login(&flow, "ada@example.com").await;
    let ada = authenticate(&flow, &outcome).await;
    let user = flow
        .administer_user(root, ada.user_id, disable(true))
        .await
        .expect("disabled");
    assert!(user.disabled);
    let gone = flow.authenticate(&outcome.access.token).await;
    assert!(matches!(gone, Err(AuthError::Unauthenticated)), "{gone:?}");
    assert!(flow.refresh(outcome.refresh.clone()).await.is_err());
    let refused = flow.login("ada@example.com", PASSWORD.to_owned()).await;
    assert!(matches!(refused, Err(LoginError::Disabled)), "{refused:?}");
    // A wrong password is still just wrong credentials.
    let wrong = flow
        .login("ada@example.com", "nope nope nope".to_owned())
        .await;
    assert!(
        matches!(wrong, Err(LoginError::InvalidCredentials)),
        "{wrong:?}"
    );
    flow.administer_user(root, ada.user_id, disable(false))
        .await
        .expect("enabled");
    login(&flow, "ada@example.com").await;
}

#[tokio::test]
async fn admins_cannot_disable_or_demote_themselves() {
    let (flow, _clock) = taskflow_with(with_admin("root@example.com"));
    let root = signed_in(&flow, "root@example.com").await;
    let ada = signed_in(&flow, "ada@example.com").await;
    let selfish = flow
        .administer_user(root, root.user_id, disable(true))
        .await;
    assert!(
        matches!(selfish, Err(AdminError::Conflict(_))),
        "{selfish:?}"
    );
    let demote = UserAdminPatch {
        disabled: None,
        role: Some(Role::User),
    };
    let selfish = flow
        .administer_user(root, root.user_id, demote.clone())
        .await;
    assert!(
        matches!(selfish, Err(AdminError::Conflict(_))),
        "{selfish:?}"
    );
    // Promote Ada; she may then demote Root, and Root's admin powers end at
    // once, whatever his token says.
    let promote = UserAdminPatch {
        disabled: None,
        role: Some(Role::Admin),
    };
    let promoted = flow
        .administer_user(root, ada.user_id, promote)
        .await
        .expect("promoted");
    assert_eq!(promoted.role, Role::Admin);
    flow.administer_user(ada, root.user_id, demote)
        .await
        .expect("demoted");
    let refused = flow.admin_users(root, everyone()).await;
    assert!(matches!(refused, Err(AdminError::Forbidden)), "{refused:?}");
}

#[tokio::test]
async fn users_are_searched_by_email_or_name_ignoring_case() {
    let (flow, _clock) = taskflow_with(with_admin("root@example.com"));
    let root = signed_in(&flow, "root@example.com").await;
    for email in ["ada@example.com", "grace@navy.mil", "a_b@example.com"] {
        register(&flow, email).await;
    }
    let search = |q: &str| UserQuery {
        q: Some(q.to_owned()),
        ..everyone()
    };
    let emails = |page: domain::Page<domain::User, domain::UserId>| {
        page.items
            .into_iter()
            .map(|u| u.email.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    let found = flow
        .admin_users(root, search("NAVY"))
        .await
        .expect("search");
    assert_eq!(emails(found), ["grace@navy.mil"]);
    // `_` is a character, not a wildcard.
    let found = flow.admin_users(root, search("a_b")).await.expect("search");
    assert_eq!(emails(found), ["a_b@example.com"]);
    // Every harness user is named "Test User".
    let found = flow
        .admin_users(root, search("test user"))
        .await
        .expect("search");
    assert_eq!(found.items.len(), 4);
    // Pages follow registration order.
    let first = flow
        .admin_users(
            root,
            UserQuery {
                limit: 2,
                ..everyone()
            },
        )
        .await
        .expect("page");
    let rest = flow
        .admin_users(
            root,
            UserQuery {
                after: first.next,
                ..everyone()
            },
        )
        .await
        .expect("page");
    let all: Vec<_> = first
        .items
        .iter()
        .chain(&rest.items)
        .map(|u| u.id)
        .collect();
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!((all.len(), all), (4, sorted));
}

#[tokio::test]
async fn a_system_admin_sees_no_project_content_without_membership() {
    let (flow, _clock) = taskflow_with(with_admin("root@example.com"));
    let root = signed_in(&flow, "root@example.com").await;
    let ada = signed_in(&flow, "ada@example.com").await;
    let task = create(&flow, ada, new_task("Private")).await;
    let ada_inbox = inbox(&flow, ada.user_id).await;
    assert!(matches!(
        flow.task(root, task.id).await,
        Err(TaskError::NotFound)
    ));
    assert!(matches!(
        flow.project(root, ada_inbox.id).await,
        Err(ProjectError::NotFound)
    ));
}

#[tokio::test]
async fn promote_makes_an_existing_user_admin() {
    let (flow, _clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let user = flow.promote("ADA@example.com").await.expect("promoted");
    assert_eq!(user.role, Role::Admin);
    flow.admin_users(ada, everyone())
        .await
        .expect("now an admin");
    assert!(matches!(
        flow.promote("nobody@example.com").await,
        Err(AdminError::NotFound)
    ));
}

#[tokio::test]
/// Two admins demoting each other: exactly one succeeds (the rows are
/// locked in id order; on PostgreSQL that orders truly concurrent attempts,
/// the in-memory store runs them one after the other).
async fn two_admins_demoting_each_other_leave_one_admin() {
    let (flow, _clock) = taskflow_with(Settings {
        admin_emails: vec![
            Email::parse("root@example.com").expect("valid"),
            Email::parse("ops@example.com").expect("valid"),
        ],
        ..settings()
    });
    let root = signed_in(&flow, "root@example.com").await;
    let ops = signed_in(&flow, "ops@example.com").await;
    let demote = UserAdminPatch {
        disabled: None,
        role: Some(Role::User),
    };
    for _ in 0..10 {
        let attempt = |by: domain::Principal, target: domain::UserId| {
            let (flow, demote) = (flow.clone(), demote.clone());
            async move { flow.administer_user(by, target, demote).await.is_ok() }
        };
        let attempts = vec![attempt(root, ops.user_id), attempt(ops, root.user_id)];
        let succeeded = together(attempts)
            .await
            .into_iter()
            .filter(|ok| *ok)
            .count();
        assert_eq!(succeeded, 1, "exactly one admin demotes the other");
        // Back to two admins for the next round.
        flow.promote("root@example.com").await.expect("promoted");
        flow.promote("ops@example.com").await.expect("promoted");
    }
}

#[tokio::test]
async fn a_search_with_control_characters_is_invalid() {
    let (flow, _clock) = taskflow_with(with_admin("root@example.com"));
    let root = signed_in(&flow, "root@example.com").await;
    let search = UserQuery {
        q: Some("a\u{0}b".to_owned()),
        ..everyone()
    };
    match flow.admin_users(root, search).await {
        Err(AdminError::Invalid(errors)) => assert!(errors.fields().contains_key("q")),
        other => panic!("expected 422 on q, got {other:?}"),
    }
}

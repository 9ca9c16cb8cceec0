use domain::{Clock, ProjectRole, Projects, RegisterError, Role, Store, User, Users};

use crate::harness::{PASSWORD, fields, inbox, registration, taskflow, together};

fn invalid_fields(result: Result<User, RegisterError>) -> Vec<String> {
    match result {
        Err(RegisterError::Invalid(errors)) => {
            fields(&errors).into_iter().map(str::to_owned).collect()
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn email_is_trimmed_and_lower_cased_and_name_trimmed() {
    let (flow, clock) = taskflow();
    let user = flow
        .register(registration(
            "  Ada.Lovelace@Example.COM ",
            PASSWORD,
            "  Ada  ",
        ))
        .await
        .expect("registers");
    assert_eq!(user.email.as_str(), "ada.lovelace@example.com");
    assert_eq!(user.name.as_str(), "Ada");
    assert_eq!(user.created_at, clock.now());
}

#[tokio::test]
async fn registered_user_is_stored_with_role_user() {
    let (flow, _clock) = taskflow();
    let user = flow
        .register(registration("ada@example.com", PASSWORD, "Ada"))
        .await
        .expect("registers");
    assert_eq!(user.role, Role::User);
    let mut conn = flow.store().connection().await.expect("connection");
    let by_id = conn.user_by_id(user.id).await.expect("read");
    assert_eq!(by_id.as_ref(), Some(&user));
    let by_email = conn.user_by_email(&user.email).await.expect("read");
    assert_eq!(by_email, Some(user));
}

#[tokio::test]
async fn registration_gives_the_user_an_inbox_they_own() {
    let (flow, clock) = taskflow();
    let user = flow
        .register(registration("ada@example.com", PASSWORD, "Ada"))
        .await
        .expect("registers");
    let inbox = inbox(&flow, user.id).await;
    assert!(inbox.personal && !inbox.archived);
    assert_eq!(inbox.name.as_str(), "Inbox");
    assert_eq!((inbox.owner_id, inbox.created_at), (user.id, clock.now()));
    let mut conn = flow.store().connection().await.expect("connection");
    let owner = conn
        .member(inbox.id, user.id)
        .await
        .expect("read")
        .expect("a member");
    assert_eq!(owner.role, ProjectRole::Owner);
}

#[tokio::test]
async fn stored_password_hash_is_not_the_password() {
    let (flow, _clock) = taskflow();
    let user = flow
        .register(registration("ada@example.com", PASSWORD, "Ada"))
        .await
        .expect("registers");
    let stored = flow
        .store()
        .connection()
        .await
        .expect("connection")
        .user_by_id(user.id)
        .await
        .expect("read")
        .expect("user is stored");
    let hash = stored.password_hash.as_str();
    assert!(!hash.is_empty());
    assert_ne!(hash, PASSWORD);
    assert!(
        !hash.contains(PASSWORD),
        "the hash must not embed the password"
    );
    assert!(hash.starts_with("$argon2id$"), "PHC string expected");
}

#[tokio::test]
async fn same_password_hashes_differently_for_two_users() {
    let (flow, _clock) = taskflow();
    let a = flow
        .register(registration("a@example.com", PASSWORD, "A"))
        .await
        .expect("registers");
    let b = flow
        .register(registration("b@example.com", PASSWORD, "B"))
        .await
        .expect("registers");
    assert_ne!(a.password_hash, b.password_hash, "hashes must be salted");
    assert_ne!(a.id, b.id);
}

#[tokio::test]
async fn duplicate_email_is_taken() {
    let (flow, _clock) = taskflow();
    flow.register(registration("ada@example.com", PASSWORD, "Ada"))
        .await
        .expect("registers");
    for duplicate in [
        "ada@example.com",
        "ADA@Example.com",
        "  ada@example.com\u{a0}",
    ] {
        let result = flow
            .register(registration(duplicate, PASSWORD, "Someone Else"))
            .await;
        assert!(
            matches!(result, Err(RegisterError::EmailTaken)),
            "{duplicate:?}: expected EmailTaken, got {result:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registrations_of_one_email_let_exactly_one_through() {
    let (flow, _clock) = taskflow();
    let registrations = [
        "ada@example.com",
        "ADA@example.com",
        " Ada@Example.com",
        "ada@EXAMPLE.COM",
    ]
    .into_iter()
    .map(|email| {
        let flow = flow.clone();
        async move { flow.register(registration(email, PASSWORD, "Ada")).await }
    })
    .collect();
    let mut ok = 0;
    for result in together(registrations).await {
        match result {
            Ok(_) => ok += 1,
            Err(RegisterError::EmailTaken) => {}
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn password_length_is_enforced() {
    let (flow, _clock) = taskflow();
    for password in ["", "1234567", &"x".repeat(129)] {
        let result = flow
            .register(registration("ada@example.com", password, "Ada"))
            .await;
        assert_eq!(
            invalid_fields(result),
            ["password"],
            "{} chars",
            password.len()
        );
    }
    for (i, password) in ["12345678".to_owned(), "y".repeat(128)]
        .into_iter()
        .enumerate()
    {
        flow.register(registration(
            &format!("ok{i}@example.com"),
            &password,
            "Ada",
        ))
        .await
        .expect("boundary length is accepted");
    }
}

#[tokio::test]
async fn malformed_email_is_invalid() {
    let (flow, _clock) = taskflow();
    for email in [
        "",
        "   ",
        "ada",
        "ada@",
        "@example.com",
        "ada@example",
        "a b@example.com",
    ] {
        let result = flow.register(registration(email, PASSWORD, "Ada")).await;
        assert_eq!(invalid_fields(result), ["email"], "{email:?}");
    }
}

#[tokio::test]
async fn blank_name_is_invalid() {
    let (flow, _clock) = taskflow();
    for name in ["", "   ", "\t\n"] {
        let result = flow
            .register(registration("ada@example.com", PASSWORD, name))
            .await;
        assert_eq!(invalid_fields(result), ["name"], "{name:?}");
    }
}

#[tokio::test]
async fn every_bad_field_is_reported_together_and_nothing_is_stored() {
    let (flow, _clock) = taskflow();
    let result = flow
        .register(registration("not-an-email", "short", " "))
        .await;
    assert_eq!(invalid_fields(result), ["email", "name", "password"]);

    let result = flow
        .register(registration("ada@example.com", "short", ""))
        .await;
    assert_eq!(invalid_fields(result), ["name", "password"]);
    // The rejected registration did not claim the address.
    flow.register(registration("ada@example.com", PASSWORD, "Ada"))
        .await
        .expect("address still free");
}

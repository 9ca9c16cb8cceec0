//! Registration, login and authentication of requests.

use std::time::Duration;

use domain::{AccessClaims, AccessTokens as _, Role, SessionId, UserId};
use reqwest::Method;
use serde_json::json;

use crate::helpers::{
    JWT_SECRET, PASSWORD, TestApp, assert_envelope_error, assert_ok_envelope, base64url_encode,
    jwt_claims, send,
};

// ---- registration ----

#[tokio::test]
async fn register_normalises_the_email_and_returns_the_user_without_secrets() {
    let app = TestApp::spawn().await;
    let reply = assert_ok_envelope(
        app.register(" Ada@Example.COM ", PASSWORD, "Ada Lovelace")
            .await,
        201,
    )
    .await;
    let user = reply.data();
    let keys: Vec<&str> = user
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["createdAt", "email", "id", "name", "role"]);
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["name"], "Ada Lovelace");
    assert_eq!(user["role"], "user");
    assert_eq!(user["id"].as_str().map(str::len), Some(36));
    assert!(user["createdAt"].as_str().is_some_and(|t| t.contains('T')));
    let lower = reply.text.to_lowercase();
    for secret in [PASSWORD, "password", "hash", "$argon2"] {
        assert!(!lower.contains(secret), "{secret:?} in {}", reply.text);
    }

    // The normalised address logs in, however it is written.
    let session = app.login_ok("ADA@example.com", PASSWORD).await;
    assert_eq!(session.email, "ada@example.com");
    let me = assert_ok_envelope(app.get("/api/v1/users/me", &session.access).await, 200).await;
    let mut account = me.data().clone();
    let inbox_id = account
        .as_object_mut()
        .expect("an object")
        .remove("inboxId")
        .expect("the caller's Inbox");
    assert_eq!(&account, user, "the account as registration answered it");
    uuid::Uuid::parse_str(inbox_id.as_str().expect("a string")).expect("a UUID");
}

#[tokio::test]
async fn register_twice_with_the_same_email_in_any_case_is_a_conflict() {
    let app = TestApp::spawn().await;
    assert_ok_envelope(
        app.register("dup@example.com", PASSWORD, "First").await,
        201,
    )
    .await;
    for again in ["dup@example.com", "DUP@Example.com", "  dup@EXAMPLE.COM"] {
        assert_envelope_error(
            app.register(again, "another password", "Second").await,
            409,
            "CONFLICT",
        )
        .await;
    }
    // The first registration is untouched.
    app.login_ok("dup@example.com", PASSWORD).await;
    assert_envelope_error(
        app.login("dup@example.com", "another password").await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
}

#[tokio::test]
async fn register_rejects_invalid_fields_with_details() {
    let app = TestApp::spawn().await;

    let reply = assert_envelope_error(
        app.register("a@example.com", "short", "A").await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    reply.assert_detail("password");

    let reply = assert_envelope_error(
        app.register("not-an-email", PASSWORD, "   ").await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    reply.assert_detail("email");
    reply.assert_detail("name");

    // An unknown field is named.
    let reply = assert_envelope_error(
        app.post_public(
            "/api/v1/auth/register",
            &json!({"email": "b@example.com", "password": PASSWORD, "name": "B", "role": "admin"}),
        )
        .await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    reply.assert_detail("role");

    // A field of the wrong type is named.
    let reply = assert_envelope_error(
        app.post_public(
            "/api/v1/auth/register",
            &json!({"email": 42, "password": PASSWORD, "name": "C"}),
        )
        .await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    reply.assert_detail("email");

    // A missing field.
    let reply = assert_envelope_error(
        app.post_public(
            "/api/v1/auth/register",
            &json!({"email": "d@example.com", "password": PASSWORD}),
        )
        .await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    assert!(
        reply.text.contains("name"),
        "the missing field is not named: {reply:?}"
    );

    // Not an object at all.
    assert_envelope_error(
        app.post_public("/api/v1/auth/register", &json!(["a", "b"]))
            .await,
        422,
        "VALIDATION_FAILED",
    )
    .await;

    // Nothing was registered.
    for email in ["a@example.com", "b@example.com", "d@example.com"] {
        assert_envelope_error(app.login(email, PASSWORD).await, 401, "INVALID_CREDENTIALS").await;
    }
}

// ---- login ----

#[tokio::test]
async fn login_returns_a_bearer_token_pair() {
    let app = TestApp::spawn().await;
    assert_ok_envelope(
        app.register("login@example.com", PASSWORD, "Log In").await,
        201,
    )
    .await;
    let reply = assert_ok_envelope(app.login(" Login@Example.com", PASSWORD).await, 200).await;
    let data = reply.data();
    assert_eq!(data["tokenType"], "Bearer");
    assert_eq!(data["expiresIn"], 900);
    assert_eq!(data["user"]["email"], "login@example.com");
    assert_eq!(data["user"]["role"], "user");
    let access = data["accessToken"].as_str().expect("an access token");
    let refresh = data["refreshToken"].as_str().expect("a refresh token");
    assert_eq!(access.split('.').count(), 3, "a JWT");
    assert_ne!(access, refresh);
    let claims = jwt_claims(access);
    assert_eq!(claims["sub"], data["user"]["id"]);
    assert_eq!(claims["iss"], "taskflow");
    assert_eq!(
        claims["exp"]
            .as_i64()
            .zip(claims["iat"].as_i64())
            .map(|(e, i)| e - i),
        Some(900)
    );
    assert!(!reply.text.contains(PASSWORD));

    // Two logins are two sessions with different tokens.
    let other = app.login_ok("login@example.com", PASSWORD).await;
    assert_ne!(other.refresh, refresh);
}

#[tokio::test]
async fn wrong_password_and_unknown_email_fail_alike() {
    let app = TestApp::spawn().await;
    assert_ok_envelope(
        app.register("known@example.com", PASSWORD, "Known").await,
        201,
    )
    .await;

    let wrong_password = assert_envelope_error(
        app.login("known@example.com", "not the password").await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    let unknown_email = assert_envelope_error(
        app.login("unknown@example.com", PASSWORD).await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    let not_an_email = assert_envelope_error(
        app.login("nobody", PASSWORD).await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    assert_eq!(wrong_password.error(), unknown_email.error());
    assert_eq!(wrong_password.error(), not_an_email.error());
    assert_eq!(wrong_password.error()["details"], json!({}));
}

#[tokio::test]
async fn login_and_refresh_bodies_are_validated() {
    let app = TestApp::spawn().await;
    let reply = assert_envelope_error(
        app.post_public("/api/v1/auth/login", &json!({"email": "a@example.com"}))
            .await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    assert!(reply.text.contains("password"), "{reply:?}");
    let reply = assert_envelope_error(
        app.post_public("/api/v1/auth/refresh", &json!({"refreshToken": ""}))
            .await,
        422,
        "VALIDATION_FAILED",
    )
    .await;
    reply.assert_detail("refreshToken");
    assert_envelope_error(
        app.refresh("no-such-refresh-token").await,
        401,
        "UNAUTHENTICATED",
    )
    .await;
}

// ---- authenticating requests ----

/// A token for the same user and session as `access`, with the same claims,
/// but signed with another secret.
fn signed_with_another_secret(access: &str) -> String {
    let claims = jwt_claims(access);
    let text = |name: &str| claims[name].as_str().expect("a string claim").to_owned();
    let tokens = adapters_auth::JwtTokens::new(
        b"another-secret-that-is-long-enough-0123456789",
        "taskflow",
        Duration::from_secs(900),
    );
    let claims = AccessClaims {
        user_id: UserId(text("sub").parse().expect("sub is a uuid")),
        session_id: SessionId(text("sid").parse().expect("sid is a uuid")),
        role: Role::User,
    };
    tokens
        .issue(claims, time::OffsetDateTime::now_utc())
        .expect("a token")
        .token
}

/// `access` with its signature removed and `alg` set to `none`.
fn unsigned(access: &str) -> String {
    let header = base64url_encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = access.split('.').nth(1).expect("a payload");
    format!("{header}.{payload}.")
}

#[tokio::test]
async fn requests_without_a_valid_bearer_token_are_unauthenticated() {
    let app = TestApp::spawn().await;
    let session = app.signup("auth@example.com").await;
    let forged = signed_with_another_secret(&session.access);
    // The forged token differs from a genuine one only in its signature
    // (and perhaps `iat`/`exp`): same subject, same session.
    assert_eq!(
        jwt_claims(&forged)["sid"],
        jwt_claims(&session.access)["sid"]
    );
    assert_eq!(jwt_claims(&forged)["sub"], json!(session.user_id));

    let mut tampered = session.access.clone();
    tampered.pop();
    tampered.push(if session.access.ends_with('A') {
        'B'
    } else {
        'A'
    });

    let authorizations: Vec<(&str, Option<String>)> = vec![
        ("no header", None),
        ("garbage token", Some("Bearer garbage".to_owned())),
        ("empty bearer", Some("Bearer ".to_owned())),
        ("bare token", Some(session.access.clone())),
        ("basic scheme", Some("Basic dXNlcjpwYXNz".to_owned())),
        (
            "basic scheme with the token",
            Some(format!("Basic {}", session.access)),
        ),
        ("another secret", Some(format!("Bearer {forged}"))),
        (
            "alg none",
            Some(format!("Bearer {}", unsigned(&session.access))),
        ),
        ("tampered signature", Some(format!("Bearer {tampered}"))),
    ];
    for path in ["/api/v1/users/me", "/api/v1/tasks"] {
        for (what, authorization) in &authorizations {
            let mut request = app.request(Method::GET, path);
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            let reply = assert_envelope_error(send(request).await, 401, "UNAUTHENTICATED").await;
            assert!(
                !reply.text.contains(&session.access),
                "{what} on {path}: the token is echoed"
            );
        }
    }
    // Creating a task with the forged token fails too.
    assert_envelope_error(
        send(
            app.request(Method::POST, "/api/v1/tasks")
                .header("authorization", format!("Bearer {forged}"))
                .json(&json!({"title": "sneaky"})),
        )
        .await,
        401,
        "UNAUTHENTICATED",
    )
    .await;

    // The genuine token still works, with any case of the scheme.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let request = app
            .request(Method::GET, "/api/v1/users/me")
            .header("authorization", format!("{scheme} {}", session.access));
        assert_ok_envelope(send(request).await, 200).await;
    }
    // Nothing was created with the forged token.
    let listed = assert_ok_envelope(app.get("/api/v1/tasks", &session.access).await, 200).await;
    assert_eq!(listed.data(), &json!([]));
}

#[tokio::test]
async fn a_token_of_another_server_secret_is_rejected_by_this_one() {
    let ours = TestApp::spawn().await;
    let other_secret = format!("{JWT_SECRET}-but-another-one");
    let theirs = TestApp::spawn_with(&[("JWT_SECRET", &other_secret)]).await;
    let their_session = theirs.signup("same@example.com").await;
    ours.signup("same@example.com").await;
    assert_envelope_error(
        ours.get("/api/v1/users/me", &their_session.access).await,
        401,
        "UNAUTHENTICATED",
    )
    .await;
}

#[tokio::test]
async fn an_expired_access_token_is_rejected_and_the_refresh_token_still_works() {
    let app = TestApp::spawn_with(&[("ACCESS_TOKEN_TTL", "1"), ("REFRESH_TOKEN_TTL", "1h")]).await;
    let session = app.signup("expiry@example.com").await;
    assert_ok_envelope(app.get("/api/v1/users/me", &session.access).await, 200).await;
    // `exp` is `iat + 1` in whole seconds and there is no leeway.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_envelope_error(
        app.get("/api/v1/users/me", &session.access).await,
        401,
        "UNAUTHENTICATED",
    )
    .await;
    let refreshed = assert_ok_envelope(app.refresh(&session.refresh).await, 200).await;
    assert_eq!(refreshed.data()["expiresIn"], 1);
    let access = refreshed.data()["accessToken"].as_str().expect("a token");
    assert_ok_envelope(app.get("/api/v1/users/me", access).await, 200).await;
}

#[tokio::test]
async fn logout_requires_authentication_and_ends_only_its_own_session() {
    let app = TestApp::spawn().await;
    assert_envelope_error(
        send(app.request(Method::POST, "/api/v1/auth/logout")).await,
        401,
        "UNAUTHENTICATED",
    )
    .await;
    let first = app.signup("sessions@example.com").await;
    let second = app.login_ok("sessions@example.com", PASSWORD).await;
    let reply = send(app.authed(Method::POST, "/api/v1/auth/logout", &first.access)).await;
    assert_eq!(reply.status().as_u16(), 204);
    assert_envelope_error(
        app.get("/api/v1/users/me", &first.access).await,
        401,
        "UNAUTHENTICATED",
    )
    .await;
    // Logging out again with the dead token is 401.
    assert_envelope_error(
        send(app.authed(Method::POST, "/api/v1/auth/logout", &first.access)).await,
        401,
        "UNAUTHENTICATED",
    )
    .await;
    // The other session lives on.
    let me = assert_ok_envelope(app.get("/api/v1/users/me", &second.access).await, 200).await;
    assert_eq!(me.data()["email"], "sessions@example.com");
    assert_ok_envelope(app.refresh(&second.refresh).await, 200).await;
}

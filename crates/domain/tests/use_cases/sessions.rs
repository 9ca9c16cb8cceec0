//! login, authenticate, refresh, logout, me.

use domain::{
    AccessClaims, AccessTokens, AuthError, Clock, LoginError, RefreshError, RefreshToken, Role,
};
use time::Duration;

use crate::harness::{
    PASSWORD, SECRET, authenticate, inbox, login, register, settings, signed_in, taskflow,
    together, tokens,
};

// ---- login ----

#[tokio::test]
async fn login_returns_tokens_and_the_user() {
    let (flow, _clock) = taskflow();
    let user = register(&flow, "ada@example.com").await;
    let outcome = flow
        .login("ada@example.com", PASSWORD.to_owned())
        .await
        .expect("login succeeds");
    assert_eq!(outcome.user, user);
    assert!(!outcome.access.token.is_empty());
    assert!(outcome.access.expires_in > 0);
    assert!(!outcome.refresh.expose().is_empty());
    assert_ne!(outcome.access.token, outcome.refresh.expose());
    let principal = authenticate(&flow, &outcome).await;
    assert_eq!(principal.user_id, user.id);
}

#[tokio::test]
async fn login_matches_the_email_after_normalisation() {
    let (flow, _clock) = taskflow();
    let user = register(&flow, "ada@example.com").await;
    let outcome = flow
        .login("  ADA@Example.Com ", PASSWORD.to_owned())
        .await
        .expect("login succeeds");
    assert_eq!(outcome.user.id, user.id);
}

#[tokio::test]
async fn wrong_password_and_unknown_email_fail_alike() {
    let (flow, _clock) = taskflow();
    register(&flow, "ada@example.com").await;
    for (email, password) in [
        ("ada@example.com", "wrong password"),
        ("ada@example.com", ""),
        ("ada@example.com", &PASSWORD.to_uppercase()),
        ("bob@example.com", PASSWORD),
        ("not an email", PASSWORD),
        ("", ""),
    ] {
        let result = flow.login(email, password.to_owned()).await;
        assert!(
            matches!(result, Err(LoginError::InvalidCredentials)),
            "{email:?}/{password:?}: expected InvalidCredentials, got {result:?}"
        );
    }
}

#[tokio::test]
async fn each_login_opens_its_own_session() {
    let (flow, _clock) = taskflow();
    register(&flow, "ada@example.com").await;
    let first = login(&flow, "ada@example.com").await;
    let second = login(&flow, "ada@example.com").await;
    let p1 = authenticate(&flow, &first).await;
    let p2 = authenticate(&flow, &second).await;
    assert_ne!(p1.session_id, p2.session_id);
    assert_ne!(first.refresh, second.refresh);

    flow.logout(p1).await.expect("logout");
    assert!(matches!(
        flow.authenticate(&first.access.token).await,
        Err(AuthError::Unauthenticated)
    ));
    assert_eq!(
        authenticate(&flow, &second).await,
        p2,
        "other session survives"
    );
}

// ---- authenticate ----

#[tokio::test]
async fn valid_access_token_gives_the_principal() {
    let (flow, _clock) = taskflow();
    let user = register(&flow, "ada@example.com").await;
    let outcome = login(&flow, "ada@example.com").await;
    let principal = flow
        .authenticate(&outcome.access.token)
        .await
        .expect("authenticates");
    assert_eq!(principal.user_id, user.id);
    assert_eq!(principal.role, Role::User);
    let me = flow.me(principal).await.expect("me");
    assert_eq!(me.user, user);
    assert_eq!(me.inbox_id, inbox(&flow, user.id).await.id);
}

#[tokio::test]
async fn garbage_and_tampered_tokens_are_unauthenticated() {
    let (flow, _clock) = taskflow();
    register(&flow, "ada@example.com").await;
    let outcome = login(&flow, "ada@example.com").await;
    let token = outcome.access.token.clone();
    let mut tampered = token.clone();
    let last = tampered.pop().expect("non-empty token");
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let refresh_as_access = outcome.refresh.expose().to_owned();
    for bad in [
        String::new(),
        "garbage".to_owned(),
        "a.b.c".to_owned(),
        tampered,
        format!("{token}x"),
        refresh_as_access,
    ] {
        let result = flow.authenticate(&bad).await;
        assert!(
            matches!(result, Err(AuthError::Unauthenticated)),
            "{bad:?}: expected Unauthenticated, got {result:?}"
        );
    }
    authenticate(&flow, &outcome).await;
}

#[tokio::test]
async fn token_signed_with_another_secret_is_unauthenticated() {
    let (flow, clock) = taskflow();
    register(&flow, "ada@example.com").await;
    let outcome = login(&flow, "ada@example.com").await;
    let principal = authenticate(&flow, &outcome).await;
    // Same claims, naming a live session, but signed with a foreign key.
    let forged = tokens(b"some other secret entirely, 32+ bytes")
        .issue(
            AccessClaims {
                user_id: principal.user_id,
                session_id: principal.session_id,
                role: Role::Admin,
            },
            clock.now(),
        )
        .expect("issue");
    let result = flow.authenticate(&forged.token).await;
    assert!(
        matches!(result, Err(AuthError::Unauthenticated)),
        "{result:?}"
    );
}

#[tokio::test]
async fn logout_ends_the_session_at_once() {
    let (flow, _clock) = taskflow();
    let principal = signed_in(&flow, "ada@example.com").await;
    let outcome = login(&flow, "ada@example.com").await;
    let principal2 = authenticate(&flow, &outcome).await;
    assert_ne!(principal, principal2);

    flow.logout(principal2).await.expect("logout");
    let result = flow.authenticate(&outcome.access.token).await;
    assert!(
        matches!(result, Err(AuthError::Unauthenticated)),
        "{result:?}"
    );
    // Logging out twice is harmless.
    flow.logout(principal2).await.expect("second logout");
}

#[tokio::test]
async fn session_ends_when_the_refresh_token_expires() {
    let (flow, clock) = taskflow();
    register(&flow, "ada@example.com").await;
    let outcome = login(&flow, "ada@example.com").await;
    let ttl = settings().refresh_token_ttl;

    clock.advance(ttl - Duration::seconds(1));
    authenticate(&flow, &outcome).await;

    clock.advance(Duration::seconds(2));
    let result = flow.authenticate(&outcome.access.token).await;
    assert!(
        matches!(result, Err(AuthError::Unauthenticated)),
        "{result:?}"
    );
    let result = flow.refresh(outcome.refresh.clone()).await;
    assert!(
        matches!(result, Err(RefreshError::InvalidToken)),
        "{result:?}"
    );
}

// ---- refresh ----

#[tokio::test]
async fn refresh_returns_a_new_pair_for_the_same_session() {
    let (flow, clock) = taskflow();
    let user = register(&flow, "ada@example.com").await;
    let first = login(&flow, "ada@example.com").await;
    let principal = authenticate(&flow, &first).await;
    clock.tick();

    let second = flow.refresh(first.refresh.clone()).await.expect("refresh");
    assert_ne!(second.refresh, first.refresh);
    assert_eq!(second.user, user);
    let refreshed = authenticate(&flow, &second).await;
    assert_eq!(refreshed.user_id, user.id);
    assert_eq!(refreshed.session_id, principal.session_id);
}

#[tokio::test]
async fn a_refresh_token_is_redeemed_once() {
    let (flow, _clock) = taskflow();
    register(&flow, "ada@example.com").await;
    let first = login(&flow, "ada@example.com").await;
    let second = flow.refresh(first.refresh.clone()).await.expect("refresh");

    let reuse = flow.refresh(first.refresh.clone()).await;
    assert!(
        matches!(reuse, Err(RefreshError::InvalidToken)),
        "{reuse:?}"
    );

    let third = flow
        .refresh(second.refresh.clone())
        .await
        .expect("new token works");
    let reuse = flow.refresh(second.refresh.clone()).await;
    assert!(
        matches!(reuse, Err(RefreshError::InvalidToken)),
        "{reuse:?}"
    );
    flow.refresh(third.refresh)
        .await
        .expect("newest token works");
}

#[tokio::test]
async fn unknown_refresh_token_is_invalid() {
    let (flow, _clock) = taskflow();
    register(&flow, "ada@example.com").await;
    login(&flow, "ada@example.com").await;
    for token in ["", "garbage"] {
        let result = flow.refresh(RefreshToken::new(token.to_owned())).await;
        assert!(
            matches!(result, Err(RefreshError::InvalidToken)),
            "{result:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_of_one_token_let_exactly_one_through() {
    let (flow, _clock) = taskflow();
    register(&flow, "ada@example.com").await;
    let outcome = login(&flow, "ada@example.com").await;

    let (a, b) = tokio::join!(
        flow.refresh(outcome.refresh.clone()),
        flow.refresh(outcome.refresh.clone())
    );
    assert_eq!(
        [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "{a:?} / {b:?}"
    );
    let winner = a.or(b).expect("one succeeded");

    // The same again with truly parallel callers.
    let refreshes = (0..8)
        .map(|_| {
            let flow = flow.clone();
            let token = winner.refresh.clone();
            async move { flow.refresh(token).await }
        })
        .collect();
    let mut ok = 0;
    for result in together(refreshes).await {
        match result {
            Ok(_) => ok += 1,
            Err(RefreshError::InvalidToken) => {}
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn refresh_fails_after_logout() {
    let (flow, _clock) = taskflow();
    register(&flow, "ada@example.com").await;
    let outcome = login(&flow, "ada@example.com").await;
    let principal = authenticate(&flow, &outcome).await;
    flow.logout(principal).await.expect("logout");
    let result = flow.refresh(outcome.refresh).await;
    assert!(
        matches!(result, Err(RefreshError::InvalidToken)),
        "{result:?}"
    );
}

#[tokio::test]
async fn expired_refresh_token_is_invalid() {
    let (flow, clock) = taskflow();
    register(&flow, "ada@example.com").await;
    let outcome = login(&flow, "ada@example.com").await;
    clock.advance(settings().refresh_token_ttl + Duration::seconds(1));
    let result = flow.refresh(outcome.refresh).await;
    assert!(
        matches!(result, Err(RefreshError::InvalidToken)),
        "{result:?}"
    );
}

#[tokio::test]
async fn refresh_token_expires_exactly_at_its_ttl() {
    let (flow, clock) = taskflow();
    register(&flow, "ada@example.com").await;
    let outcome = login(&flow, "ada@example.com").await;
    clock.advance(settings().refresh_token_ttl);
    let result = flow.refresh(outcome.refresh).await;
    assert!(
        matches!(result, Err(RefreshError::InvalidToken)),
        "{result:?}"
    );
}

#[tokio::test]
async fn refresh_extends_the_session_by_the_full_ttl() {
    let (flow, clock) = taskflow();
    register(&flow, "ada@example.com").await;
    let first = login(&flow, "ada@example.com").await;
    let ttl = settings().refresh_token_ttl;

    clock.advance(ttl - Duration::hours(1));
    let second = flow
        .refresh(first.refresh)
        .await
        .expect("refresh before expiry");
    // Past the original expiry, up to a full ttl after the refresh.
    clock.advance(ttl - Duration::seconds(1));
    authenticate(&flow, &second).await;

    clock.advance(Duration::seconds(1));
    let result = flow.authenticate(&second.access.token).await;
    assert!(
        matches!(result, Err(AuthError::Unauthenticated)),
        "{result:?}"
    );
    let result = flow.refresh(second.refresh).await;
    assert!(
        matches!(result, Err(RefreshError::InvalidToken)),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_token_naming_another_users_session_is_unauthenticated() {
    // Correctly signed, but its user does not own the session it names.
    let (flow, clock) = taskflow();
    let ada = signed_in(&flow, "ada@example.com").await;
    let bob = signed_in(&flow, "bob@example.com").await;
    let crossed = tokens(SECRET)
        .issue(
            AccessClaims {
                user_id: bob.user_id,
                session_id: ada.session_id,
                role: Role::User,
            },
            clock.now(),
        )
        .expect("issue");
    let result = flow.authenticate(&crossed.token).await;
    assert!(
        matches!(result, Err(AuthError::Unauthenticated)),
        "{result:?}"
    );
    // The same claims with the right user do authenticate: the token itself is fine.
    let genuine = tokens(SECRET)
        .issue(
            AccessClaims {
                user_id: ada.user_id,
                session_id: ada.session_id,
                role: Role::User,
            },
            clock.now(),
        )
        .expect("issue");
    assert_eq!(flow.authenticate(&genuine.token).await.expect("valid"), ada);
}

//! Live delivery over the network: the WebSocket protocol at `/api/v1/ws`
//! and Server-Sent Events at `/api/v1/projects/{id}/events/stream`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{TestApp, id_of};
use crate::ws::{Socket, connect, events, message, recv, send, ws_url};

fn kinds(list: &[(i64, &str)]) -> Vec<(i64, String)> {
    list.iter().map(|(s, k)| (*s, (*k).to_owned())).collect()
}

async fn subscribe(socket: &mut Socket, project: &str, since: Option<i64>) -> Value {
    let mut m = json!({"type": "subscribe", "projectId": project});
    if let Some(since) = since {
        m["since"] = json!(since);
    }
    send(socket, m).await;
    message(socket).await
}

#[tokio::test]
async fn a_socket_replays_after_since_then_delivers_live_events_in_order() {
    let app = TestApp::spawn().await;
    let ada = app.signup("ada@example.com").await;
    let project = id_of(&app.create_project(&ada.access, "Live").await);
    app.create_task(&ada.access, &json!({"title": "one", "projectId": project}))
        .await;
    let mut socket = connect(&app.address, Some(&ada.access))
        .await
        .expect("upgrade");
    let subscribed = subscribe(&mut socket, &project, Some(1)).await;
    assert_eq!(
        subscribed,
        json!({"type": "subscribed", "projectId": project, "headSeq": 3})
    );
    assert_eq!(
        events(&mut socket, 2).await,
        kinds(&[(2, "member.added"), (3, "task.created")])
    );
    let created = app
        .authed(Method::POST, "/api/v1/tasks", &ada.access)
        .header("X-Client-Mutation-Id", "mutation-7")
        .json(&json!({"title": "two", "projectId": project}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), StatusCode::CREATED);
    let live = message(&mut socket).await;
    assert_eq!(live["event"]["seq"], 4);
    assert_eq!(live["event"]["type"], "task.created");
    assert_eq!(live["event"]["clientMutationId"], "mutation-7");
    assert_eq!(live["event"]["data"]["title"], "two");
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(message(&mut socket).await, json!({"type": "pong"}));
    send(
        &mut socket,
        json!({"type": "unsubscribe", "projectId": project}),
    )
    .await;
    assert_eq!(
        message(&mut socket).await,
        json!({"type": "unsubscribed", "projectId": project, "reason": "client"})
    );
    app.create_task(
        &ada.access,
        &json!({"title": "three", "projectId": project}),
    )
    .await;
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(
        message(&mut socket).await,
        json!({"type": "pong"}),
        "nothing after unsubscribing"
    );
}

#[tokio::test]
async fn a_bad_token_on_the_upgrade_is_a_401_envelope_not_a_socket() {
    let app = TestApp::spawn().await;
    match connect(&app.address, Some("not-a-token")).await {
        Err(WsError::Http(response)) => {
            assert_eq!(response.status(), 401);
            let body: Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default())
                    .expect("an envelope");
            assert_eq!(body["error"]["code"], "UNAUTHENTICATED");
        }
        other => panic!("a 401, got {other:?}"),
    }
}

#[tokio::test]
async fn a_browser_authenticates_with_its_first_message_or_is_closed_with_4401() {
    let app = TestApp::spawn_with(&[("WS_AUTH_TIMEOUT", "1s")]).await;
    let ada = app.signup("ada@example.com").await;
    let project = id_of(&app.create_project(&ada.access, "Live").await);
    let mut socket = connect(&app.address, None).await.expect("upgrade");
    send(&mut socket, json!({"type": "auth", "token": ada.access})).await;
    let subscribed = subscribe(&mut socket, &project, None).await;
    assert_eq!(subscribed["type"], "subscribed");
    let mut silent = connect(&app.address, None).await.expect("upgrade");
    assert_eq!(recv(&mut silent).await, Err(Some(4401)));
    let mut wrong = connect(&app.address, None).await.expect("upgrade");
    send(&mut wrong, json!({"type": "auth", "token": "forged"})).await;
    assert_eq!(message(&mut wrong).await["code"], "UNAUTHENTICATED");
    assert_eq!(recv(&mut wrong).await, Err(Some(4401)));
}

#[tokio::test]
async fn a_non_member_gets_not_found_and_bad_messages_get_errors() {
    let app = TestApp::spawn().await;
    let ada = app.signup("ada@example.com").await;
    let eve = app.signup("eve@example.com").await;
    let project = id_of(&app.create_project(&ada.access, "Private").await);
    let mut socket = connect(&app.address, Some(&eve.access))
        .await
        .expect("upgrade");
    let refused = subscribe(&mut socket, &project, None).await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["code"], "NOT_FOUND");
    assert_eq!(refused["projectId"], project.as_str());
    send(&mut socket, json!({"type": "dance"})).await;
    assert_eq!(message(&mut socket).await["code"], "MALFORMED_REQUEST");
    let inbox = app.inbox_id(&eve.access).await;
    let ahead = subscribe(&mut socket, &inbox, Some(99)).await;
    assert_eq!(ahead["code"], "VALIDATION_FAILED");
}

#[tokio::test]
async fn a_removed_member_is_unsubscribed_with_the_removal() {
    let app = TestApp::spawn().await;
    let ada = app.signup("ada@example.com").await;
    let bob = app.signup("bob@example.com").await;
    let project = id_of(&app.create_project(&ada.access, "Shared").await);
    app.add_member(&ada.access, &project, &bob.user_id, "viewer")
        .await;
    let mut socket = connect(&app.address, Some(&bob.access))
        .await
        .expect("upgrade");
    assert_eq!(subscribe(&mut socket, &project, None).await["headSeq"], 3);
    let removed = app
        .delete(
            &format!("/api/v1/projects/{project}/members/{}", bob.user_id),
            &ada.access,
        )
        .await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        events(&mut socket, 1).await,
        kinds(&[(4, "member.removed")])
    );
    assert_eq!(
        message(&mut socket).await,
        json!({"type": "unsubscribed", "projectId": project, "reason": "removed"})
    );
}

#[tokio::test]
async fn logout_closes_the_socket_with_4401() {
    let app = TestApp::spawn().await;
    let ada = app.signup("ada@example.com").await;
    let mut socket = connect(&app.address, Some(&ada.access))
        .await
        .expect("upgrade");
    let out = app
        .authed(Method::POST, "/api/v1/auth/logout", &ada.access)
        .send()
        .await
        .expect("logout");
    assert!(out.status().is_success());
    assert_eq!(recv(&mut socket).await, Err(Some(4401)));
}

#[tokio::test]
async fn a_page_of_another_origin_may_not_open_a_socket() {
    let app = TestApp::spawn().await;
    let ada = app.signup("ada@example.com").await;
    let mut request = ws_url(&app.address).into_client_request().expect("request");
    let headers = request.headers_mut();
    headers.insert("Origin", "https://evil.example".parse().expect("value"));
    let bearer = format!("Bearer {}", ada.access);
    headers.insert("Authorization", bearer.parse().expect("value"));
    match tokio_tungstenite::connect_async(request).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("a 403, got {other:?}"),
    }
}

/// Reads an SSE response until `n` events (lines `id:`) have come; answers
/// their ids and types.
async fn sse_events(response: &mut reqwest::Response, n: usize) -> Vec<(i64, String)> {
    let mut buffer = String::new();
    let mut got = Vec::new();
    while got.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("a chunk within 10 s")
            .expect("the stream goes on")
            .expect("not ended");
        buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut id = None;
            let mut kind = None;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = v.parse::<i64>().ok();
                } else if let Some(v) = line.strip_prefix("event: ") {
                    kind = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    let data: Value = serde_json::from_str(v).expect("JSON data");
                    if let Some(id) = id {
                        assert_eq!(data["seq"], id, "data is the event");
                    }
                }
            }
            if let (Some(id), Some(kind)) = (id, kind) {
                got.push((id, kind));
            }
        }
    }
    got
}

#[tokio::test]
async fn server_sent_events_resume_after_last_event_id_then_follow() {
    let app = TestApp::spawn().await;
    let ada = app.signup("ada@example.com").await;
    let project = id_of(&app.create_project(&ada.access, "Streamed").await);
    app.create_task(&ada.access, &json!({"title": "one", "projectId": project}))
        .await;
    let path = format!("/api/v1/projects/{project}/events/stream?since=0");
    let mut stream = app
        .authed(Method::GET, &path, &ada.access)
        .header("Last-Event-ID", "1")
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(
        stream.headers()["content-type"].to_str().expect("ascii"),
        "text/event-stream"
    );
    assert_eq!(
        sse_events(&mut stream, 2).await,
        kinds(&[(2, "member.added"), (3, "task.created")]),
        "Last-Event-ID wins over since"
    );
    app.create_task(&ada.access, &json!({"title": "two", "projectId": project}))
        .await;
    assert_eq!(
        sse_events(&mut stream, 1).await,
        kinds(&[(4, "task.created")])
    );
    let eve = app.signup("eve@example.com").await;
    let refused = app.get(&path, &eve.access).await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let bad = app
        .authed(Method::GET, &path, &ada.access)
        .header("Last-Event-ID", "minus one")
        .send()
        .await
        .expect("stream");
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_silent_peer_is_closed_and_one_that_answers_pings_stays() {
    let app =
        TestApp::spawn_with(&[("WS_PING_INTERVAL", "100ms"), ("WS_IDLE_TIMEOUT", "400ms")]).await;
    let ada = app.signup("ada@example.com").await;
    let mut silent = connect(&app.address, Some(&ada.access))
        .await
        .expect("upgrade");
    let mut lively = connect(&app.address, Some(&ada.access))
        .await
        .expect("upgrade");
    // The lively one keeps reading (its library answers each ping when it
    // reads).
    let reader = tokio::spawn(async move {
        let mut last = Err(None);
        for _ in 0..12 {
            send(&mut lively, json!({"type": "ping"})).await;
            last = recv(&mut lively).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        last
    });
    // The silent one reads nothing for a while: no pongs.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Closed (1001), though the client may see only the connection end: it
    // answers the pings it reads first, on a connection already closed.
    let end = recv(&mut silent).await;
    assert!(matches!(end, Err(Some(1001) | None)), "closed, got {end:?}");
    assert_eq!(
        reader.await.expect("reader"),
        Ok(json!({"type": "pong"})),
        "still open"
    );
}

#[tokio::test]
async fn disabling_a_user_closes_their_sockets_and_ends_their_streams() {
    let app = TestApp::spawn_with(&[("ADMIN_EMAILS", "root@example.com")]).await;
    let root = app.signup("root@example.com").await;
    let bob = app.signup("bob@example.com").await;
    let inbox = app.inbox_id(&bob.access).await;
    let mut socket = connect(&app.address, Some(&bob.access))
        .await
        .expect("upgrade");
    assert_eq!(
        subscribe(&mut socket, &inbox, None).await["type"],
        "subscribed"
    );
    let path = format!("/api/v1/projects/{inbox}/events/stream");
    let mut stream = app.get(&path, &bob.access).await;
    assert_eq!(stream.status(), StatusCode::OK);
    let disabled = app
        .patch(
            &format!("/api/v1/admin/users/{}", bob.user_id),
            &root.access,
            &json!({"disabled": true}),
        )
        .await;
    assert_eq!(disabled.status(), StatusCode::OK);
    assert_eq!(recv(&mut socket).await, Err(Some(4401)));
    // The stream ends: after its opening comment, nothing but the end.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the SSE stream ended");
}

/// A socket that reads nothing while a burst of large events flows falls a
/// queue behind and is closed with 4008; another socket on the same
/// project gets every event, in order, meanwhile.
#[tokio::test]
async fn a_slow_socket_is_closed_with_4008_and_others_are_not_held_back() {
    let app = TestApp::spawn_with(&[("LIVE_QUEUE", "20")]).await;
    let ada = app.signup("ada@example.com").await;
    let project = id_of(&app.create_project(&ada.access, "Busy").await);
    // The slow reader's socket buffer is small, so the server's sends to
    // it back up soon.
    let tcp = tokio::net::TcpSocket::new_v4().expect("socket");
    tcp.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let address = app.address.trim_start_matches("http://").to_owned();
    let stream = tcp
        .connect(address.parse().expect("address"))
        .await
        .expect("connect");
    let mut request = ws_url(&app.address).into_client_request().expect("request");
    let bearer = format!("Bearer {}", ada.access).parse().expect("value");
    request.headers_mut().insert("Authorization", bearer);
    let (slow, _) =
        tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .expect("upgrade");
    let mut slow: Socket = slow;
    assert_eq!(
        subscribe(&mut slow, &project, None).await["type"],
        "subscribed"
    );
    let mut brisk = connect(&app.address, Some(&ada.access))
        .await
        .expect("upgrade");
    assert_eq!(
        subscribe(&mut brisk, &project, None).await["type"],
        "subscribed"
    );
    const EVENTS: usize = 640;
    const WRITERS: usize = 8;
    let reader = tokio::spawn(async move { events(&mut brisk, EVENTS).await });
    let description = "x".repeat(10_000);
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/api/v1/tasks"),
            ada.access.clone(),
        );
        let (project, description) = (project.clone(), description.clone());
        writers.spawn(async move {
            for i in 0..EVENTS / WRITERS {
                let body = json!({
                    "title": format!("w{w} {i}"),
                    "description": description,
                    "projectId": project,
                });
                let created = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .expect("create");
                assert_eq!(created.status(), StatusCode::CREATED);
            }
        });
    }
    writers.join_all().await;
    let got = reader.await.expect("reader");
    let seqs: Vec<i64> = got.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, (3..3 + EVENTS as i64).collect::<Vec<_>>());
    let mut received = 0;
    let end = loop {
        match recv(&mut slow).await {
            Ok(_) => received += 1,
            Err(end) => break end,
        }
    };
    assert_eq!(
        end,
        Some(4008),
        "closed as too slow after {received} events"
    );
    assert!(received < EVENTS, "it did not get them all: {received}");
}

#[tokio::test]
async fn a_message_over_the_limit_closes_the_socket_with_1009() {
    let app = TestApp::spawn().await;
    let ada = app.signup("ada@example.com").await;
    let mut socket = connect(&app.address, Some(&ada.access))
        .await
        .expect("upgrade");
    let huge = json!({"type": "ping", "padding": "x".repeat(70 * 1024)});
    send(&mut socket, huge).await;
    assert_eq!(recv(&mut socket).await, Err(Some(1009)));
}

//! A WebSocket client for the tests: connect, send JSON, read JSON or the
//! close code.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub fn ws_url(base: &str) -> String {
    format!("{}/api/v1/ws", base.replace("http://", "ws://"))
}

/// Opens a socket to the server at `base` (`http://…`), with a bearer
/// token on the upgrade when given.
pub async fn connect(base: &str, token: Option<&str>) -> Result<Socket, WsError> {
    let mut request = ws_url(base).into_client_request().expect("a request");
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().expect("a header value");
        request.headers_mut().insert("Authorization", value);
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

pub async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .expect("send");
}

/// The next JSON message (pings are answered by the library), or the
/// close code if the server closes.
pub async fn recv(socket: &mut Socket) -> Result<Value, Option<u16>> {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s");
        match next {
            Some(Ok(Message::Text(text))) => {
                return Ok(serde_json::from_str(&text).expect("JSON"));
            }
            Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| f.code.into())),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(None),
        }
    }
}

pub async fn message(socket: &mut Socket) -> Value {
    recv(socket).await.expect("a message, not a close")
}

/// The next `n` events' (seq, type).
pub async fn events(socket: &mut Socket, n: usize) -> Vec<(i64, String)> {
    let mut got = Vec::new();
    while got.len() < n {
        let m = message(socket).await;
        assert_eq!(m["type"], "event", "an event, got {m} after {got:?}");
        let e = &m["event"];
        got.push((
            e["seq"].as_i64().expect("seq"),
            e["type"].as_str().expect("type").to_owned(),
        ));
    }
    got
}

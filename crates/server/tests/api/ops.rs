//! Health, readiness and the documentation pages.

use crate::helpers::{Reply, TestApp, assert_ok_envelope};

#[tokio::test]
async fn health_is_ok() {
    let app = TestApp::spawn().await;
    let reply = assert_ok_envelope(app.get_public("/health").await, 200).await;
    assert_eq!(reply.data(), &serde_json::json!({"status": "ok"}));
}

#[tokio::test]
async fn ready_reports_every_store_up() {
    let app = TestApp::spawn().await;
    let reply = assert_ok_envelope(app.get_public("/ready").await, 200).await;
    assert_eq!(reply.data()["status"], "ready");
    assert_eq!(reply.data()["checks"]["database"], "up");
    assert_eq!(reply.data()["checks"]["sessionStore"], "up");
}

#[tokio::test]
async fn docs_redirects_to_the_swagger_ui() {
    let app = TestApp::spawn().await;
    let reply = Reply::read(app.get_public("/docs").await).await;
    assert!(reply.status.is_redirection(), "{reply:?}");
    assert_eq!(reply.header("location"), Some("/docs/"));
}

/// The `src` and `href` values of the page's `<script>` and `<link>` tags.
fn assets(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(at) = rest.find(attribute) {
            rest = &rest[at + attribute.len()..];
            let Some(end) = rest.find('"') else { break };
            let value = &rest[..end];
            if value.ends_with(".js") || value.ends_with(".css") {
                found.push(value.to_owned());
            }
            rest = &rest[end..];
        }
    }
    found
}

#[tokio::test]
async fn the_swagger_ui_and_its_assets_are_served_from_the_binary() {
    let app = TestApp::spawn().await;
    let page = Reply::read(app.get_public("/docs/").await).await;
    assert_eq!(page.status.as_u16(), 200, "{page:?}");
    let content_type = page.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(page.text.contains("swagger-ui"), "{}", page.text);

    let assets = assets(&page.text);
    for expected in ["swagger-ui.css", "swagger-ui-bundle.js"] {
        assert!(
            assets.iter().any(|a| a.ends_with(expected)),
            "the page does not reference {expected}: {assets:?}"
        );
    }
    for asset in &assets {
        assert!(
            !asset.starts_with("http:") && !asset.starts_with("https:") && !asset.starts_with("//"),
            "{asset} is loaded from the network"
        );
        let path = match asset.strip_prefix("./") {
            Some(relative) => format!("/docs/{relative}"),
            None if asset.starts_with('/') => asset.clone(),
            None => format!("/docs/{asset}"),
        };
        let reply = Reply::read(app.get_public(&path).await).await;
        assert_eq!(reply.status.as_u16(), 200, "{path}");
        assert!(reply.text.len() > 100, "{path} is (nearly) empty");
        let content_type = reply.header("content-type").unwrap_or_default();
        let expected = if path.ends_with(".css") {
            "css"
        } else {
            "javascript"
        };
        assert!(content_type.contains(expected), "{path}: {content_type}");
    }

    // The UI is pointed at this server's document.
    let initializer = Reply::read(app.get_public("/docs/swagger-initializer.js").await).await;
    assert_eq!(initializer.status.as_u16(), 200);
    assert!(
        initializer.text.contains("/api-docs/openapi.json"),
        "{}",
        initializer.text
    );

    // An asset that does not exist is a 404.
    let missing = Reply::read(app.get_public("/docs/no-such-asset.js").await).await;
    missing.assert_error(404, "NOT_FOUND");
}

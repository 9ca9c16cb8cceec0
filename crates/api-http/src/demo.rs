//! The demo page at `/demo`: one static page (HTML, a stylesheet and plain
//! JavaScript, compiled into the binary, no build step, nothing loaded from
//! elsewhere) that logs in, picks a project and follows its tasks live. It
//! is also the reference client of the WebSocket protocol: subscribe with
//! `since`, reconnect with back-off, resync. Its browser test is
//! `e2e/demo.test.mjs` (`cargo xtask e2e`).

use actix_web::HttpResponse;
use actix_web::http::header;

const PAGE: &str = include_str!("demo/index.html");
const SCRIPT: &str = include_str!("demo/app.js");
const STYLE: &str = include_str!("demo/app.css");

/// Only this origin's own files; no inline script or style, no frames, no
/// plugins. `connect-src 'self'` covers the same-origin WebSocket
/// (CSP Level 3); the page's icon is an empty `data:` image.
const CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(body)
}

/// The demo page.
#[utoipa::path(
    get, path = "/demo", tag = "demo",
    description = "A small page that uses this API as a browser would: log in, pick a project, see its tasks change live (over the WebSocket), create and change tasks. Open it in two windows. Served from the binary with a strict Content-Security-Policy.",
    responses((status = 200, description = "The page", content_type = "text/html", body = String))
)]
pub async fn page() -> HttpResponse {
    asset("text/html; charset=utf-8", PAGE)
}

/// The demo page's script.
#[utoipa::path(
    get, path = "/demo/app.js", tag = "demo",
    description = "The demo page's plain JavaScript: the reference client of the WebSocket protocol.",
    responses((status = 200, description = "The script", content_type = "text/javascript", body = String))
)]
pub async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// The demo page's stylesheet.
#[utoipa::path(
    get, path = "/demo/app.css", tag = "demo",
    description = "The demo page's stylesheet.",
    responses((status = 200, description = "The stylesheet", content_type = "text/css", body = String))
)]
pub async fn style() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_files() {
        assert!(PAGE.contains(r#"<script src="/demo/app.js" defer></script>"#));
        assert!(PAGE.contains(r#"<link rel="stylesheet" href="/demo/app.css">"#));
        // Nothing inline that the policy would block, nothing from elsewhere.
        assert_eq!(PAGE.matches("<script").count(), 1);
        assert!(!PAGE.contains("<style"));
        assert!(!PAGE.contains(" style="));
        let handlers = PAGE.split(" on").skip(1).filter(|rest| {
            let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        });
        assert_eq!(handlers.count(), 0, "no inline event handlers");
        for text in [PAGE, SCRIPT, STYLE] {
            assert!(!text.contains("http://") && !text.contains("https://"));
        }
    }
}

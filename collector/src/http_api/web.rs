//! The web dashboard (docs/web-ui.md): plain HTML, CSS and JavaScript
//! modules from `collector/web/`, embedded in the binary so a fresh
//! machine needs no build step and no files beside the collector. The
//! pages call the JSON API of this same listener with the token the user
//! pasted; this module only serves the files and sets the headers every
//! answer of the listener carries.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::error::ApiError;

/// One embedded file of the dashboard.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset { name: $name, content_type: $type, body: include_bytes!(concat!("../../web/", $name)) }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file under `/ui/`; `/` serves `index.html`.
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("charts.js", JS),
    asset!("pages.js", JS),
    asset!("host.js", JS),
];

/// No inline script or style, nothing from another origin, no framing:
/// the pages load their own files and call their own API, nothing else.
/// SVG charts are built with DOM calls, which `style-src 'self'` allows.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The API routes plus the dashboard, every answer with the security
/// headers and, unless it says otherwise, `Cache-Control: no-store` (API
/// answers hold fleet data a shared browser must not keep).
pub fn with_ui(api: Router) -> Router {
    Router::new()
        .route("/", get(|| async { serve("index.html") }))
        .route("/ui/{file}", get(|Path(file): Path<String>| async move { serve(&file) }))
        .merge(api)
        .layer(axum::middleware::map_response(security_headers))
}

fn serve(name: &str) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return ApiError::not_found(format!("no such file /ui/{name}")).into_response();
    };
    let mut response = (StatusCode::OK, asset.body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    // Revalidate every time: an upgraded collector serves new files at the
    // same names, and the files are small.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_pages_load_is_embedded() {
        // Each module a page imports, and each file index.html names, is
        // in ASSETS (a missing one would be a 404 only a browser notices).
        for asset in ASSETS {
            let text = std::str::from_utf8(asset.body).expect("text files");
            for quote in ['"', '\''] {
                for part in text.split(quote).skip(1).step_by(2) {
                    let name = part.strip_prefix("/ui/").or_else(|| part.strip_prefix("./"));
                    if let Some(name) = name.filter(|n| n.ends_with(".js") || n.ends_with(".css") || n.ends_with(".svg")) {
                        assert!(ASSETS.iter().any(|a| a.name == name), "{} refers to {name}, which is not embedded", asset.name);
                    }
                }
            }
        }
    }

    #[test]
    fn pages_hold_no_inline_script_or_style() {
        let index = std::str::from_utf8(ASSETS[0].body).expect("html");
        for (i, chunk) in index.split("<script").enumerate().skip(1) {
            let tag = chunk.split('>').next().unwrap_or_default();
            assert!(tag.contains("src="), "script {i} of index.html is inline: CSP would block it");
        }
        assert!(!index.contains("<style") && !index.contains(" style="), "no inline style");
        // No inline event handler attribute (` onclick=` and the like).
        for (i, _) in index.match_indices(" on") {
            let name: String = index[i + 1..].chars().take_while(char::is_ascii_alphabetic).collect();
            assert!(!index[i + 1 + name.len()..].starts_with('='), "inline handler {name} in index.html");
        }
    }
}

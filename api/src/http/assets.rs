//! `GET /assets/{*path}`: the stylesheet, scripts and vendored libraries under
//! `api/assets/static/`, embedded in the binary at compile time (so `cargo build` needs no node
//! and the binary runs from any directory). Each answer carries its Content-Type, a strong ETag
//! (a SHA-256 of the bytes) and `Cache-Control: no-cache`, so browsers revalidate and get a 304
//! while nothing changed. Lookup is by exact name in a fixed table: a path that is not in it,
//! `..` included, is a 404; this module must never read the filesystem at run time.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use super::AppState;

const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const MARKDOWN: &str = "text/markdown; charset=utf-8";

macro_rules! asset {
    ($path:literal, $type:expr) => {
        (
            $path,
            $type,
            include_bytes!(concat!("../../assets/static/", $path)) as &[u8],
        )
    };
}

/// Every file served, by its path under `/assets/`. A test checks this matches the folder.
const ASSETS: &[(&str, &str, &[u8])] = &[
    asset!("app.css", CSS),
    asset!("app.js", JS),
    asset!("controllers/index.js", JS),
    asset!("controllers/balance_poll_controller.js", JS),
    asset!("controllers/flash_controller.js", JS),
    asset!("controllers/password_visibility_controller.js", JS),
    asset!("vendor/turbo.js", JS),
    asset!("vendor/turbo.LICENSE.md", MARKDOWN),
    asset!("vendor/stimulus.js", JS),
    asset!("vendor/stimulus.LICENSE.md", MARKDOWN),
];

pub fn router() -> Router<AppState> {
    Router::new().route("/assets/{*path}", get(serve))
}

/// The ETag of each asset, in table order, computed once.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|(_, _, bytes)| {
                let digest = Sha256::digest(bytes);
                format!("\"{}\"", hex::encode(&digest[..16]))
            })
            .collect()
    })
}

/// The asset at `path` (its index in the table), if there is one.
fn find(path: &str) -> Option<usize> {
    ASSETS.iter().position(|(name, _, _)| *name == path)
}

async fn serve(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let Some(i) = find(&path) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let (_, content_type, bytes) = ASSETS[i];
    let etag = &etags()[i];
    let common = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    let etag_value = HeaderValue::from_str(etag).unwrap_or(HeaderValue::from_static("\"\""));
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
    if matches {
        return (StatusCode::NOT_MODIFIED, common, [(header::ETAG, etag_value)]).into_response();
    }
    (
        StatusCode::OK,
        common,
        [
            (header::ETAG, etag_value),
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        ],
        bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::path::{Path as FsPath, PathBuf};

    use super::*;

    fn files_under(dir: &FsPath, base: &FsPath, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path: PathBuf = entry.unwrap().path();
            if path.is_dir() {
                files_under(&path, base, out);
            } else {
                out.push(
                    path.strip_prefix(base)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }

    #[test]
    fn the_table_serves_every_file_in_the_folder_and_nothing_else() {
        let base = FsPath::new(env!("CARGO_MANIFEST_DIR")).join("assets/static");
        let mut on_disk = Vec::new();
        files_under(&base, &base, &mut on_disk);
        on_disk.sort();
        let mut served: Vec<String> = ASSETS.iter().map(|(p, _, _)| p.to_string()).collect();
        served.sort();
        assert_eq!(
            served, on_disk,
            "add new files under api/assets/static to ASSETS in http/assets.rs"
        );
    }

    #[test]
    fn unknown_and_traversing_paths_are_not_found() {
        assert!(find("app.css").is_some());
        for path in [
            "../Cargo.toml",
            "vendor/../app.css",
            "/app.css",
            "APP.CSS",
            "",
            "controllers/",
        ] {
            assert!(find(path).is_none(), "{path}");
        }
        assert_eq!(etags().len(), ASSETS.len());
        assert!(etags().iter().all(|e| e.len() == 34));
    }

    /// The CSP forbids inline scripts, styles and handlers: none may appear in a page template.
    #[test]
    fn templates_have_no_inline_script_or_style() {
        let base = FsPath::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut files = Vec::new();
        files_under(&base, &base, &mut files);
        assert!(files.iter().any(|f| f == "layout.html"));
        let mut found = Vec::new();
        // Email bodies are not served under the CSP (mail clients want inline styles).
        for file in files
            .iter()
            .filter(|f| f.ends_with(".html") && !f.starts_with("emails/"))
        {
            let text = std::fs::read_to_string(base.join(file))
                .unwrap()
                .to_ascii_lowercase();
            for (i, _) in text.match_indices("<script") {
                let tag = &text[i..text[i..].find('>').map_or(text.len(), |end| i + end)];
                if !tag.contains(" src=") {
                    found.push(format!("{file}: inline <script>"));
                }
            }
            if text.contains("<style") {
                found.push(format!("{file}: <style>"));
            }
            if text.contains(" style=") {
                found.push(format!("{file}: style attribute"));
            }
            for handler in [
                " onclick=",
                " onload=",
                " onsubmit=",
                " onchange=",
                " oninput=",
                " onerror=",
            ] {
                if text.contains(handler) {
                    found.push(format!("{file}: inline handler{handler}"));
                }
            }
        }
        assert!(found.is_empty(), "the CSP would block these: {found:?}");
    }
}

//! The web UI: `GET /` is its page and `GET /ui/{file}` its ES modules and stylesheet, all
//! compiled into the binary from `web/` (plain files, no build step, no CDN). The page talks to
//! the `/v1` API with `fetch` like any other client, so it needs no route of its own beyond
//! these; [`super::router::HTML_CSP`] lets it load because every script and style is a file of
//! this origin.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// One file of the UI: its name under `/ui/`, its media type and its bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_str!(concat!("../../web/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of `web/` that the page loads.
static ASSETS: &[Asset] = &[
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("charts.js", JS),
    asset!("catalog.js", JS),
    asset!("upload.js", JS),
    asset!("jobs.js", JS),
    asset!("newjob.js", JS),
    asset!("job.js", JS),
    asset!("report.js", JS),
];

static INDEX: &str = include_str!("../../web/index.html");

fn respond(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            // Revalidate on every load: a new binary brings new files under the same names.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// `GET /`: the UI's page.
pub async fn index() -> Response {
    respond("text/html; charset=utf-8", INDEX)
}

/// `GET /ui/{file}`: one of the UI's files, or the usual 404 problem.
///
/// # Errors
/// [`ApiError::RouteNotFound`] for a name that is not one of [`ASSETS`].
pub async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    ASSETS
        .iter()
        .find(|a| a.name == file)
        .map(|a| respond(a.content_type, a.body))
        .ok_or_else(|| ApiError::RouteNotFound(format!("/ui/{file}")))
}

#[cfg(test)]
mod tests {
    use super::ASSETS;

    /// Every module the page imports is served: a missing one would only show in a browser.
    #[test]
    fn every_import_of_the_ui_names_a_served_file() {
        let names: Vec<&str> = ASSETS.iter().map(|a| a.name).collect();
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for line in a.body.lines().filter(|l| l.starts_with("import ")) {
                let target = line
                    .rsplit_once("from './")
                    .and_then(|(_, rest)| rest.split_once('\''))
                    .map(|(name, _)| name)
                    .unwrap_or_else(|| panic!("{}: unexpected import `{line}`", a.name));
                assert!(names.contains(&target), "{} imports {target}", a.name);
            }
        }
        let index = super::INDEX;
        assert!(index.contains("src=\"/ui/app.js\""));
        assert!(index.contains("href=\"/ui/style.css\""));
    }
}

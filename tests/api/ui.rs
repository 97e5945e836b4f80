//! The web UI's files: `/` is the page (with the strict CSP), `/ui/{file}` its modules and
//! stylesheet, open without an API key (they hold no data), and unknown names are 404 problems.

use crate::backend::Backend;
use crate::helpers::{assert_problem, spawn_app_with};

#[tokio::test]
async fn the_page_and_its_modules_are_served_with_their_types_and_the_csp() {
    let app = spawn_app_with(&Backend::Sqlite, |c| c.require_auth = true).await;
    let res = app.get("/").await;
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="/ui/app.js">"#));
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "inline code in the page"
    );

    let js = app.get("/ui/app.js").await;
    assert_eq!(js.status(), 200);
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(js.text().await.unwrap().contains("hashchange"));
    let css = app.get("/ui/style.css").await;
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert_eq!(
        app.get("/v1/jobs").await.status(),
        401,
        "the API itself stays closed"
    );

    assert_problem(app.get("/ui/nope.js").await, 404, "route_not_found").await;
    assert_problem(app.get("/ui/../Cargo.toml").await, 404, "route_not_found").await;
    app.stop().await;
}

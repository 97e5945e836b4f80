//! Cursor paging of the four lists (`/v1/models`, `/v1/jobs`, `/v1/datasets`,
//! `/v1/architectures`): pages of at most `limit` items that together list every item once, in
//! the list's order; built-ins first; a bad limit or cursor is a 400 problem.

use reqwest::multipart::Form;
use serde_json::{Value, json};

use crate::backend::{Backend, both_backends};
use crate::datasets::{idx, part};
use crate::fixtures::{job_request, mnist_cnn_model, tiny_mlp_spec};
use crate::helpers::{TestApp, assert_problem, spawn_app_with};

/// Every page of `path` at `limit` items a page: the items in order, and how many pages.
async fn walk(app: &TestApp, path: &str, limit: u32) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{path}?limit={limit}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = app.get_json(&url).await;
        pages += 1;
        let got = page["items"].as_array().unwrap();
        assert!(got.len() <= limit as usize, "{url}: {} items", got.len());
        items.extend(got.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return (items, pages),
        }
        assert!(pages < 50, "{path}: the cursor does not move");
    }
}

fn field(items: &[Value], name: &str) -> Vec<String> {
    items
        .iter()
        .map(|i| i[name].as_str().unwrap().to_string())
        .collect()
}

both_backends!(every_list_pages_through_all_its_items_once_in_order);
async fn every_list_pages_through_all_its_items_once_in_order(db: Backend) {
    // No worker: the jobs stay queued, so the list does not change while it is read.
    let app = spawn_app_with(&db, |c| c.workers = 0).await;
    let mut models = Vec::new();
    for seed in 1..=5 {
        models.push(app.model_id(mnist_cnn_model(3136, seed), "m").await);
    }
    let mut jobs = Vec::new();
    for pair in models.windows(2) {
        jobs.push(app.job_id(&job_request(&pair[0], &pair[1])).await);
    }
    for (i, name) in ["zeta", "alpha", "mid"].iter().enumerate() {
        let mut spec = tiny_mlp_spec();
        spec["name"] = json!(name);
        spec["input"] = json!([1, 28, 28 - i]);
        assert_eq!(
            app.post_json("/v1/architectures", &spec).await.status(),
            201
        );
    }
    let mut uploads = Vec::new();
    for n in [10, 11, 12] {
        let (images, labels) = idx(n, 28, 28);
        let form = Form::new()
            .part("images", part(images))
            .part("labels", part(labels));
        let res = crate::datasets::post_form(&app, form).await;
        assert_eq!(res.status(), 201);
        uploads.push(
            res.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }

    // Newest first: ids are time-ordered (UUIDv7), the last made comes first.
    let newest_first = |mut v: Vec<String>| {
        v.reverse();
        v
    };
    let (items, pages) = walk(&app, "/v1/models", 2).await;
    assert_eq!(
        (field(&items, "id"), pages),
        (newest_first(models.clone()), 3)
    );
    let (items, pages) = walk(&app, "/v1/jobs", 3).await;
    assert_eq!(
        (field(&items, "id"), pages),
        (newest_first(jobs.clone()), 2)
    );

    // Built-ins first (in their fixed order), then the stored ones.
    let mut want = vec!["mnist-test".to_string(), "mnist-train-5k".to_string()];
    want.extend(newest_first(uploads.clone()));
    for limit in [1, 2, 4, 100] {
        let (items, pages) = walk(&app, "/v1/datasets", limit).await;
        assert_eq!(field(&items, "id"), want, "limit {limit}");
        // A full page always names a cursor, so a list that fills its last page has an empty
        // one after it.
        assert_eq!(pages, want.len() / limit as usize + 1, "limit {limit}");
    }
    let want = [
        "mnist-cnn",
        "cnn-bn",
        "resnet-mini",
        "mlp",
        "alpha",
        "mid",
        "zeta",
    ];
    for limit in [1, 2, 3, 100] {
        let (items, _) = walk(&app, "/v1/architectures", limit).await;
        assert_eq!(field(&items, "name"), want, "limit {limit}");
        assert_eq!(
            field(&items, "kind"),
            [
                "preset",
                "preset",
                "preset",
                "shape_driven",
                "custom",
                "custom",
                "custom"
            ]
        );
    }
    // The shape-driven preset reads as one, and its name cannot be taken.
    let mlp = app.get_json("/v1/architectures/mlp").await;
    assert_eq!(
        (mlp["kind"].as_str(), mlp["builtin"].as_bool()),
        (Some("shape_driven"), Some(true))
    );
    assert!(
        mlp.get("spec").is_none() && mlp["description"].is_string(),
        "{mlp}"
    );
    let mut spec = tiny_mlp_spec();
    spec["name"] = json!("mlp");
    let res = app.post_json("/v1/architectures", &spec).await;
    assert_problem(res, 409, "already_exists").await;
    app.stop().await;
}

both_backends!(a_bad_limit_or_cursor_is_a_400_problem);
async fn a_bad_limit_or_cursor_is_a_400_problem(db: Backend) {
    let app = spawn_app_with(&db, |c| c.workers = 0).await;
    for list in ["models", "jobs", "datasets", "architectures"] {
        for query in ["limit=0", "limit=101", "limit=x"] {
            let res = app.get(&format!("/v1/{list}?{query}")).await;
            assert_problem(res, 400, "invalid_query").await;
        }
    }
    for list in ["models", "jobs", "datasets"] {
        let res = app.get(&format!("/v1/{list}?cursor=not-an-id")).await;
        assert_problem(res, 400, "invalid_query").await;
    }
    // An architecture cursor is a name: past every name, the page is empty.
    let page = app.get_json("/v1/architectures?cursor=zzz").await;
    assert_eq!(page, json!({"items": []}));
    app.stop().await;
}

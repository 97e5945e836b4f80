//! ONNX models with external data over HTTP (`multipart/form-data`: part `model` and one part
//! per external file). The demo exports are split by the engine's `onnx::externalize` into one
//! file (`weights.bin`) and into a file per tensor (`data/<tensor>`), uploaded, and stored as
//! the one self-contained file they came from (the same sha256: a later upload of that file is
//! the same model); the pair fuses with the curves of the safetensors pair under the preset.
//! Forms that do not match their model are 4xx problem+json naming the tensor or the file, and
//! leave nothing stored.

use reqwest::Response;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use sha2::Digest;

use gmfuse::engine::onnx::{self, ExternalFiles};

use super::onnx::{accuracies, demo, demo_onnx, onnx_model, run};
use crate::backend::{Backend, both_backends};
use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_app_with};

/// A form of `model` (part `model`, filename `m.onnx`) and `files`, each part named `file`
/// with the location as its filename.
fn form(model: &[u8], files: &ExternalFiles) -> Form {
    let mut form = Form::new().part("model", Part::bytes(model.to_vec()).file_name("m.onnx"));
    for (location, bytes) in files {
        form = form.part(
            "file",
            Part::bytes(bytes.clone()).file_name(location.clone()),
        );
    }
    form
}

async fn post_form(app: &TestApp, form: Form) -> Response {
    app.client
        .post(app.url("/v1/models"))
        .multipart(form)
        .send()
        .await
        .expect("upload")
}

/// `preset`'s demo model `which` exported, and split as `file_of` says.
fn split(
    preset: &str,
    which: &str,
    file_of: &dyn Fn(&str) -> String,
) -> (Vec<u8>, Vec<u8>, ExternalFiles) {
    let original = demo_onnx(preset, which);
    let (model, files) = onnx::externalize(&original, file_of, 1).unwrap();
    (original, model, files)
}

fn one_file(_: &str) -> String {
    "weights.bin".into()
}

both_backends!(a_model_with_external_data_is_stored_as_one_file_and_fuses_like_safetensors);
async fn a_model_with_external_data_is_stored_as_one_file_and_fuses_like_safetensors(db: Backend) {
    let app = spawn_app(&db).await;
    let (orig_a, model_a, files_a) = split("cnn-bn", "a", &one_file);
    let (orig_b, model_b, files_b) = split("cnn-bn", "b", &|name| format!("data/{name}"));
    assert!(files_b.len() > 10, "a file per tensor: {}", files_b.len());
    let mut ids = Vec::new();
    for ((original, model), files) in [(orig_a, model_a), (orig_b, model_b)]
        .into_iter()
        .zip([files_a, files_b])
    {
        let res = post_form(&app, form(&model, &files)).await;
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["format"], "onnx", "{body}");
        let sha = hex::encode(sha2::Sha256::digest(&original));
        assert_eq!(
            body["sha256"], sha,
            "the stored file is the self-contained export"
        );
        assert_eq!(body["size_bytes"], original.len());
        let id = body["id"].as_str().unwrap().to_string();
        let stored = app.get(&format!("/v1/models/{id}/weights")).await;
        assert!(
            stored.bytes().await.unwrap() == original,
            "one self-contained file"
        );
        // The self-contained upload is the same model (identical bytes: 200, same id).
        let again = onnx_model(&app, original, "application/onnx").await;
        assert_eq!(again["id"], id.as_str());
        ids.push(id);
    }
    let sa = app.model_id(demo("cnn-bn", "a"), "st-a").await;
    let sb = app.model_id(demo("cnn-bn", "b"), "st-b").await;
    let job = |models: Value, arch: Option<&str>| {
        let mut req = json!({"models": models, "dataset": "mnist-test",
                             "methods": ["weight_matching"], "proportions": [0.0, 0.5, 1.0]});
        if let Some(a) = arch {
            req["architecture"] = json!(a);
        }
        req
    };
    let (_, from_form) = run(&app, &job(json!(ids), None)).await;
    let (_, from_st) = run(&app, &job(json!([sa, sb]), Some("cnn-bn"))).await;
    let (got, want) = (accuracies(&from_form), accuracies(&from_st));
    println!("cnn-bn: external data {got:?}, safetensors {want:?}");
    assert_eq!(got, want);
    app.stop().await;
}

/// `files` with `location` set to `bytes` (added or replaced).
fn with(files: &ExternalFiles, location: &str, bytes: &[u8]) -> ExternalFiles {
    let mut f = files.clone();
    f.insert(location.into(), bytes.to_vec());
    f
}

/// A refused form: its status and code, and every `needle` in the detail.
async fn refused(app: &TestApp, form: Form, status: u16, code: &str, needles: &[&str]) {
    let body = assert_problem(post_form(app, form).await, status, code).await;
    let detail = body["detail"].as_str().unwrap();
    for n in needles {
        assert!(detail.contains(n), "{n}: {detail}");
    }
}

both_backends!(forms_that_do_not_match_their_model_are_refused_and_nothing_is_stored);
async fn forms_that_do_not_match_their_model_are_refused_and_nothing_is_stored(db: Backend) {
    let app = spawn_app(&db).await;
    let (_, model, files) = split("cnn-bn", "a", &one_file);
    let none = ExternalFiles::new();
    let cut = files["weights.bin"][..1000].to_vec();
    let (_, escaping, up) = split("cnn-bn", "a", &|_| "../weights.bin".into());
    let bad = |form: Form, needles: &'static [&'static str]| {
        refused(&app, form, 400, "invalid_onnx", needles)
    };
    bad(
        form(&model, &none),
        &["tensor `conv1.weight`", "`weights.bin`", "not given"],
    )
    .await;
    let extra = with(&files, "wieghts.bin", b"x");
    bad(form(&model, &extra), &["`wieghts.bin` is not referenced"]).await;
    let short = with(&files, "weights.bin", &cut);
    bad(form(&model, &short), &["`weights.bin`", "past the end"]).await;
    bad(
        form(&escaping, &up),
        &["`../weights.bin`", "`..` component"],
    )
    .await;
    bad(form(b"not onnx", &none), &["not a valid ONNX file"]).await;
    let part = || Part::bytes(cut.clone()).file_name("weights.bin");
    bad(Form::new().part("file", part()), &["no `model` part"]).await;
    bad(
        form(&model, &files).part("file", part()),
        &["two parts for `weights.bin`"],
    )
    .await;
    let model_again = Part::bytes(model.clone());
    bad(
        form(&model, &files).part("model", model_again),
        &["two parts for `model`"],
    )
    .await;
    let res = app
        .client
        .post(app.url("/v1/models"))
        .header("content-type", "multipart/form-data")
        .body(model.clone())
        .send()
        .await
        .unwrap();
    assert_problem(res, 415, "unsupported_media_type").await;
    app.assert_nothing_stored().await;
    app.stop().await;
}

#[tokio::test]
async fn the_parts_together_are_held_to_the_upload_limit() {
    let (_, model, files) = split("cnn-bn", "a", &one_file);
    // Each part fits the limit; together they do not.
    let limit = files["weights.bin"].len() as u64 + 100;
    assert!(model.len() > 100, "{} bytes", model.len());
    let app = spawn_app_with(&Backend::Sqlite, |c| c.max_upload_bytes = limit).await;
    let res = post_form(&app, form(&model, &files)).await;
    assert_problem(res, 413, "payload_too_large").await;
    app.assert_nothing_stored().await;
    app.stop().await;
}

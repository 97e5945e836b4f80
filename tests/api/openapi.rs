//! The OpenAPI document: the committed `openapi/openapi.json` is current, `/openapi.json`
//! serves the same, and every operation is complete (id, tag, a description on every response
//! — utoipa leaves it out otherwise, which makes the document invalid).

use serde_json::Value;

use crate::backend::Backend;
use crate::helpers::spawn_app;

fn generated() -> Value {
    serde_json::to_value(gmfuse::http::openapi()).unwrap()
}

#[test]
fn the_committed_openapi_json_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let now = gmfuse::http::openapi().to_pretty_json().unwrap();
    if committed.trim_end() != now.trim_end() {
        if std::env::var_os("GMFUSE_UPDATE_OPENAPI").is_some() {
            std::fs::write(path, format!("{now}\n")).unwrap();
            return;
        }
        panic!(
            "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json` \
             (or this test with GMFUSE_UPDATE_OPENAPI=1)"
        );
    }
}

#[test]
fn every_operation_has_an_id_a_tag_and_described_responses() {
    let doc = generated();
    let mut ops = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ops += 1;
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}: no operationId"));
            assert!(
                op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{id}: no tag"
            );
            for (status, res) in op["responses"].as_object().unwrap() {
                assert!(
                    res["description"].as_str().is_some_and(|d| !d.is_empty()),
                    "{id} {status}: no description"
                );
                let problem = res["content"]["application/problem+json"].is_object();
                let code: u16 = status.parse().unwrap_or(0);
                if code >= 400 {
                    assert!(problem, "{id} {status}: errors are problem+json");
                }
            }
        }
    }
    assert!(ops >= 22, "{ops} operations");
}

#[test]
fn request_bodies_carry_examples() {
    let doc = generated();
    for name in ["NewJob", "ArchSpec"] {
        let schema = &doc["components"]["schemas"][name];
        assert!(schema["example"].is_object(), "{name}: {schema}");
    }
}

#[tokio::test]
async fn the_served_document_is_the_generated_one() {
    let app = spawn_app(&Backend::Sqlite).await;
    assert_eq!(app.get_json("/openapi.json").await, generated());
    app.stop().await;
}

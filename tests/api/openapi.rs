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

/// Every `$ref` in `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn every_operation_has_a_summary_and_the_statuses_any_route_can_give() {
    let doc = generated();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{id}: no summary"
            );
            let has = |s: &str| op["responses"].get(s).is_some();
            assert!(has("405") && has("500"), "{method} {path}");
            if path.starts_with("/v1/") {
                assert!(has("401") && has("429"), "{method} {path}");
            }
            assert_eq!(has("408"), !path.ends_with("/events"), "{method} {path}");
        }
    }
    for op in ["/v1/jobs", "/v1/architectures"] {
        assert!(
            doc["paths"][op]["post"]["responses"]["413"].is_object(),
            "{op}"
        );
    }
    assert!(doc["servers"].as_array().is_some_and(|s| !s.is_empty()));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[test]
fn bodies_carry_their_media_types_and_files_are_binary_strings() {
    let doc = generated();
    let p = &doc["paths"];
    let binary = serde_json::json!({"type": "string", "format": "binary"});
    assert_eq!(
        p["/v1/models"]["post"]["requestBody"]["content"]["application/octet-stream"]["schema"],
        binary
    );
    for path in ["/v1/models/{id}/weights", "/v1/jobs/{id}/fused"] {
        let ok = &p[path]["get"]["responses"]["200"]["content"];
        assert_eq!(ok["application/octet-stream"]["schema"], binary, "{path}");
    }
    let form = &doc["components"]["schemas"]["DatasetUpload"]["properties"];
    for part in ["images", "labels", "file"] {
        assert_eq!(form[part]["format"], "binary", "{part}: {form}");
    }
    for path in ["/v1/jobs/{id}/report.svg", "/v1/jobs/{id}/matching.svg"] {
        let ok = &p[path]["get"]["responses"]["200"]["content"];
        assert_eq!(ok["image/svg+xml"]["schema"]["type"], "string", "{path}");
    }
    let events = &p["/v1/jobs/{id}/events"]["get"]["responses"]["200"]["content"];
    assert_eq!(events["text/event-stream"]["schema"]["type"], "string");
    for name in ["JobEvent", "JobEventName"] {
        assert!(doc["components"]["schemas"][name].is_object(), "{name}");
    }
}

#[test]
fn schemas_are_named_once_with_discriminated_ops_and_a_typed_report() {
    let doc = generated();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    // Every reference resolves, and no list wrapper inlines (and so duplicates) its item.
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in &all {
        let name = r.trim_start_matches("#/components/schemas/");
        assert!(schemas.contains_key(name), "{r} does not resolve");
    }
    for (name, schema) in schemas {
        assert!(!name.contains('_'), "{name}: a generic instance's name");
        if name.ends_with("Page") {
            assert!(
                schema["properties"]["items"]["items"]["$ref"].is_string(),
                "{name}"
            );
        }
    }
    let op = &schemas["Op"];
    let mapping = op["discriminator"]["mapping"].as_object().unwrap();
    assert_eq!(op["discriminator"]["propertyName"], "op");
    assert_eq!(mapping.len(), op["oneOf"].as_array().unwrap().len());
    assert_eq!(mapping["conv2d"], "#/components/schemas/Conv2dOp");
    assert_eq!(
        schemas["ReportView"]["properties"]["request"]["$ref"],
        "#/components/schemas/NewJob"
    );
    let methods = &schemas["MethodId"]["enum"];
    assert_eq!(methods[0], "gamf", "wire names, not Rust names: {methods}");
    assert_eq!(schemas["SolverId"]["enum"][0], "sm");
}

#[tokio::test]
async fn the_docs_page_has_no_validator_badge() {
    let app = spawn_app(&Backend::Sqlite).await;
    let res = app.get("/docs/swagger-initializer.js").await;
    assert_eq!(res.status(), 200);
    let js = res.text().await.unwrap().replace([' ', '\n'], "");
    assert!(js.contains("\"validatorUrl\":\"none\""), "{js}");
    app.stop().await;
}

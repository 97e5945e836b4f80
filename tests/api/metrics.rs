//! `/metrics` through `metrics-exporter-prometheus` (issue 7, part 6): requests labelled by
//! matched route (`unmatched` for 404s, which are counted) and a fixed method set, so 5,000
//! requests with random method strings add no series; a real latency histogram; the text
//! passes the checks `promtool check metrics` makes on types and histograms. And the access
//! log: one info line per request with its id, method, route, status and latency in ms, read
//! from the real binary's output.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::backend::Backend;
use crate::helpers::{TestApp, spawn_app_with};

async fn scrape(app: &TestApp) -> String {
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.unwrap()
}

/// Sample lines: `name{labels} value` → (name, labels, value).
fn samples(text: &str) -> Vec<(String, String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("`series value`");
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let value = value.parse().unwrap_or_else(|_| panic!("value of {l}"));
            (name.to_string(), labels.to_string(), value)
        })
        .collect()
}

/// The label `key` of a label string.
fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{key}=\""))? + key.len() + 2;
    let len = labels[start..].find('"')?;
    Some(&labels[start..start + len])
}

/// What `promtool check metrics` checks that can be checked here: every sample belongs to a
/// family with one `# TYPE` line, given before its samples; no series twice; a histogram has
/// `_bucket` series with cumulative counts ending in `le="+Inf"` equal to its `_count`, and a
/// `_sum`; a counter's samples are named `…_total`.
fn check_exposition(text: &str) {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            assert!(
                types.insert(name.into(), kind.into()).is_none(),
                "two TYPE lines for {name}"
            );
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (name, labels, _) = samples(line).remove(0);
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(&name)
            .to_string();
        let kind = types
            .get(&family)
            .unwrap_or_else(|| panic!("{name} has no TYPE line before it"));
        if kind == "counter" {
            assert!(name.ends_with("_total"), "counter {name}");
        }
        assert!(seen.insert(format!("{name}{{{labels}}}")), "{line} twice");
    }
    // Histograms: buckets cumulative, +Inf = _count, a _sum.
    let all = samples(text);
    for (family, _) in types.iter().filter(|(_, k)| *k == "histogram") {
        let bucket = format!("{family}_bucket");
        let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for (name, labels, v) in &all {
            if *name == bucket {
                let le = label(labels, "le").expect("le label");
                let le: f64 = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                let key: Vec<&str> = labels
                    .split(',')
                    .filter(|p| !p.starts_with("le="))
                    .collect();
                series.entry(key.join(",")).or_default().push((le, *v));
            }
        }
        for (key, buckets) in &series {
            assert!(
                buckets
                    .windows(2)
                    .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
                "{family}{{{key}}}"
            );
            let (last_le, last) = *buckets.last().unwrap();
            assert_eq!(last_le, f64::INFINITY, "{family}{{{key}}} ends in +Inf");
            let find = |suffix: &str| {
                all.iter()
                    .find(|(n, l, _)| *n == format!("{family}{suffix}") && l == key)
                    .map(|(_, _, v)| *v)
            };
            assert_eq!(find("_count"), Some(last), "{family}{{{key}}} _count");
            assert!(find("_sum").is_some(), "{family}{{{key}}} _sum");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_methods_add_no_series_404s_are_counted_and_the_text_is_well_formed() {
    let app = spawn_app_with(&Backend::Sqlite, |c| {
        c.workers = 0;
        c.tenant_rate_per_sec = 0;
    })
    .await;
    app.get("/v1/models").await;
    let before = scrape(&app).await;
    check_exposition(&before);
    let series_before = samples(&before).len();
    // 5,000 requests with random method tokens, half to a route, half to no route.
    let mut seed = 0x9e37_79b9_u64;
    let mut sends = Vec::new();
    for i in 0..5000 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let method = Method::from_bytes(format!("M{:X}", seed >> 20).as_bytes()).unwrap();
        let path = if i % 2 == 0 {
            "/v1/models".to_string()
        } else {
            format!("/nope/{i}")
        };
        sends.push(app.client.request(method, app.url(&path)).send());
        if sends.len() == 100 {
            for res in futures::future::join_all(sends.drain(..)).await {
                assert!(res.unwrap().status().is_client_error());
            }
        }
    }
    for (i, p) in ["/nope", "/v1/nope", "/v1/models/x/y/z"].iter().enumerate() {
        assert_eq!(app.get(p).await.status(), StatusCode::NOT_FOUND, "{i}");
    }
    let after = scrape(&app).await;
    check_exposition(&after);
    let all = samples(&after);
    eprintln!(
        "series before: {series_before}, after 5,000 random methods: {}",
        all.len()
    );
    // New series: `other` × (the route's 405, unmatched 404) and the 404 GETs, each a counter
    // and a histogram (12 buckets + +Inf + _sum + _count), plus the first scrape's own.
    assert!(all.len() <= series_before + 6 * 16, "{after}");
    let requests = |pred: &dyn Fn(&str) -> bool| -> f64 {
        all.iter()
            .filter(|(n, l, _)| n == "gmfuse_http_requests_total" && pred(l))
            .map(|(_, _, v)| v)
            .sum()
    };
    let methods: BTreeSet<&str> = all
        .iter()
        .filter_map(|(_, l, _)| label(l, "method"))
        .collect();
    assert!(
        methods.iter().all(|m| ["GET", "POST", "other"].contains(m)),
        "{methods:?}"
    );
    assert_eq!(requests(&|l| label(l, "method") == Some("other")), 5000.0);
    assert_eq!(
        requests(&|l| l == r#"method="GET",route="unmatched",status="404""#),
        3.0,
        "404s are counted under `unmatched`"
    );
    assert_eq!(
        requests(&|l| label(l, "route") == Some("unmatched") && label(l, "method") == Some("other")),
        2500.0
    );
    assert!(after.contains("# TYPE gmfuse_http_request_duration_seconds histogram"));
    assert!(after.contains(
        r#"gmfuse_http_request_duration_seconds_bucket{method="GET",route="/v1/models",status="200",le="+Inf"} 1"#
    ), "{after}");
    app.stop().await;
}

#[tokio::test]
async fn every_request_writes_one_access_line_with_its_id_route_status_and_latency() {
    let dir = tempfile::tempdir().unwrap();
    let bin = std::env::var("GMFUSE_TEST_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_gmfuse").to_string());
    let mut child = Command::new(bin)
        .arg("serve")
        .env("GMFUSE_ADDR", "127.0.0.1:0")
        .env("GMFUSE_DATA_DIR", dir.path())
        .env("GMFUSE_LOG_FORMAT", "json")
        .env("GMFUSE_NO_DEMO", "true")
        .env("GMFUSE_WORKERS", "0")
        .env_remove("RUST_LOG")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting gmfuse");
    let (tx, rx) = mpsc::channel::<Value>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let next = |want: &dyn Fn(&Value) -> bool| loop {
        let v = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("a log line");
        if want(&v) {
            return v;
        }
    };
    let listening = next(&|v| v["message"] == "gmfuse listening");
    let base = format!("http://{}", listening["addr"].as_str().unwrap());
    let client = reqwest::Client::new();
    let res = client
        .get(format!("{base}/v1/models?limit=5"))
        .header("x-request-id", "access-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = client
        .get(format!("{base}/no/such/page"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let generated = res.headers()["x-request-id"].to_str().unwrap().to_string();

    let is_access = |v: &Value| v["message"] == "request" && v["target"] == "gmfuse::access";
    let first = next(&is_access);
    assert_eq!(first["level"], "INFO", "{first}");
    assert_eq!(first["request_id"], "access-1", "{first}");
    assert_eq!(first["method"], "GET");
    assert_eq!(first["route"], "/v1/models");
    assert_eq!(first["status"], 200);
    let ms = first["latency_ms"]
        .as_f64()
        .expect("latency_ms is a number");
    assert!(ms > 0.0 && ms < 10_000.0, "{first}");
    let second = next(&is_access);
    assert_eq!(second["request_id"], generated.as_str(), "{second}");
    assert_eq!(second["route"], "unmatched");
    assert_eq!(second["status"], 404);
    child.kill().unwrap();
    child.wait().unwrap();
}

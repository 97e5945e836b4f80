//! A local S3-compatible server for tests: [moto](https://pypi.org/project/moto/)'s
//! `moto_server` on loopback, and the few plain-HTTP calls the tests make to it besides the
//! `object_store` client (moto does not check signatures, so these go unsigned).
//!
//! [`test_endpoint`] uses `GMFUSE_TEST_S3_ENDPOINT` when it is set (CI starts the server with
//! `scripts/moto.sh`); otherwise it starts `moto_server` from `PATH` once per process, through a
//! shell that kills it when this process exits (the shell waits for end-of-file on a pipe this
//! process holds open). With neither, it returns `None` and the S3 tests say SKIPPED, unless
//! `GMFUSE_TEST_S3_REQUIRED` is set, which turns the skip into a failure.

use std::io;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The variable naming a running S3-compatible test server, e.g. `http://127.0.0.1:5055`.
pub const ENDPOINT_VAR: &str = "GMFUSE_TEST_S3_ENDPOINT";

/// Set to make a missing test server a failure instead of a skip.
pub const REQUIRED_VAR: &str = "GMFUSE_TEST_S3_REQUIRED";

/// Credentials moto accepts (any are fine).
pub const TEST_ACCESS_KEY: &str = "testing";
/// See [`TEST_ACCESS_KEY`].
pub const TEST_SECRET_KEY: &str = "testing";

/// Settings for the store of `url` behind `endpoint` (a test server, or an address where
/// nothing listens): region `us-east-1`, the credentials moto accepts, plain HTTP allowed.
pub fn settings(endpoint: &str, url: String) -> super::S3Settings {
    super::S3Settings {
        url,
        endpoint: Some(endpoint.to_string()),
        region: Some("us-east-1".into()),
        access_key_id: Some(TEST_ACCESS_KEY.into()),
        secret_access_key: Some(TEST_SECRET_KEY.into()),
        allow_http: true,
    }
}

struct Server {
    endpoint: String,
    // The shell and its stdin, held for the life of the process: closing the pipe (at exit)
    // stops the server.
    _keepalive: Option<Mutex<(Child, ChildStdin)>>,
}

static SERVER: OnceLock<Option<Server>> = OnceLock::new();

/// The endpoint of the test server, starting one if needed; `None` (after a loud SKIPPED line
/// on stderr) when there is none, unless [`REQUIRED_VAR`] is set.
///
/// # Panics
/// When [`REQUIRED_VAR`] is set and no server can be had, or a started server never answers.
pub fn test_endpoint(test: &str) -> Option<String> {
    let server = SERVER.get_or_init(|| {
        if let Ok(endpoint) = std::env::var(ENDPOINT_VAR) {
            return Some(Server {
                endpoint: endpoint.trim_end_matches('/').to_string(),
                _keepalive: None,
            });
        }
        find_on_path("moto_server").map(|_| start_moto())
    });
    match server {
        Some(s) => Some(s.endpoint.clone()),
        None if std::env::var_os(REQUIRED_VAR).is_some() => panic!(
            "{REQUIRED_VAR} is set but there is no S3 test server: set {ENDPOINT_VAR} or \
             install moto (pip install 'moto[server]')"
        ),
        None => {
            eprintln!(
                "SKIPPED {test}: no S3 test server ({ENDPOINT_VAR} unset and no moto_server on \
                 PATH; pip install 'moto[server]' or run scripts/moto.sh start)"
            );
            None
        }
    }
}

fn find_on_path(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

fn start_moto() -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let log = std::env::temp_dir().join(format!("gmfuse-moto-{port}.log"));
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"moto_server -H 127.0.0.1 -p "$1" >"$2" 2>&1 & m=$!; cat >/dev/null; kill $m"#)
        .arg("sh")
        .arg(port.to_string())
        .arg(&log)
        .stdin(Stdio::piped())
        .spawn()
        .expect("starting moto_server");
    let stdin = child.stdin.take().expect("piped stdin");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not listen on port {port} within a minute; see {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Server {
        endpoint: format!("http://127.0.0.1:{port}"),
        _keepalive: Some(Mutex::new((child, stdin))),
    }
}

/// One unsigned HTTP/1.1 request to a plain-HTTP endpoint; returns the status and the body.
async fn request(endpoint: &str, method: &str, target: &str) -> io::Result<(u16, String)> {
    let host = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| io::Error::other(format!("{endpoint} is not a plain-HTTP endpoint")))?;
    let mut conn = tokio::net::TcpStream::connect(host).await?;
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await?;
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("no HTTP status in {text:?}")))?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status, body.to_string()))
}

/// Create `bucket` (an existing one is fine).
///
/// # Errors
/// When the server cannot be reached or refuses.
pub async fn create_bucket(endpoint: &str, bucket: &str) -> io::Result<()> {
    match request(endpoint, "PUT", &format!("/{bucket}")).await? {
        (200 | 409, _) => Ok(()),
        (status, body) => Err(io::Error::other(format!(
            "creating bucket {bucket}: HTTP {status}: {body}"
        ))),
    }
}

/// Multipart uploads started and neither completed nor aborted under `prefix` (URL-safe).
///
/// # Errors
/// When the server cannot be reached or refuses.
pub async fn open_multipart_uploads(
    endpoint: &str,
    bucket: &str,
    prefix: &str,
) -> io::Result<usize> {
    match request(
        endpoint,
        "GET",
        &format!("/{bucket}?uploads&prefix={prefix}"),
    )
    .await?
    {
        // Filtered here as well, in case the server ignores `prefix`.
        (200, body) => Ok(body
            .split("<Upload>")
            .skip(1)
            .filter(|upload| {
                upload
                    .split_once("<Key>")
                    .is_some_and(|(_, key)| key.starts_with(prefix))
            })
            .count()),
        (status, body) => Err(io::Error::other(format!(
            "listing multipart uploads: HTTP {status}: {body}"
        ))),
    }
}

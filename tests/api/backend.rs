//! The database a test runs on, and [`both_backends!`], which turns one test into two: one on
//! SQLite (a file in the test's data directory) and one on PostgreSQL (a fresh database
//! `gmfuse_test_<random>` on the server named by `GMFUSE_TEST_POSTGRES_URL`, dropped when the
//! test ends, whether it passed or not).
//!
//! `GMFUSE_TEST_POSTGRES_URL` unset: the local server `postgres://postgres@127.0.0.1:5432/postgres`
//! is used when it answers, and the PostgreSQL half of each test says SKIPPED when it does not.
//! Set: that server must answer (CI sets it, so that a missing server fails instead of skipping).
//! Set to `off`: the PostgreSQL half is skipped.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection, Executor, PgConnection};

/// The server used when `GMFUSE_TEST_POSTGRES_URL` is unset (trust authentication).
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Where a test's service keeps its catalog and queue.
#[derive(Clone, Debug)]
pub enum Backend {
    /// `sqlite://<data dir>/gmfuse.db`, the service default.
    Sqlite,
    /// A database of its own on the test server, dropped with the last clone.
    Postgres(Arc<PgTestDb>),
}

impl Backend {
    /// The name `/readyz` reports.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// The `DATABASE_URL` to give the service (`None`: the SQLite default in the data dir).
    pub fn database_url(&self) -> Option<String> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres(db) => Some(db.url.clone()),
        }
    }

    /// A fresh PostgreSQL database, or `None` after printing why the test is skipped.
    ///
    /// # Panics
    /// When `GMFUSE_TEST_POSTGRES_URL` is set (not `off`) and the server cannot be used.
    pub async fn postgres(test: &str) -> Option<Backend> {
        let (admin, required) = match std::env::var("GMFUSE_TEST_POSTGRES_URL") {
            Ok(v) if v == "off" => {
                eprintln!("SKIPPED {test}: GMFUSE_TEST_POSTGRES_URL=off");
                return None;
            }
            Ok(v) if !v.is_empty() => (v, true),
            _ => (DEFAULT_POSTGRES_URL.to_string(), false),
        };
        match PgTestDb::create(&admin).await {
            Ok(db) => Some(Backend::Postgres(Arc::new(db))),
            Err(e) if required => panic!("GMFUSE_TEST_POSTGRES_URL={admin} is not usable: {e}"),
            Err(e) => {
                eprintln!(
                    "SKIPPED {test}: no PostgreSQL at {admin} ({e}); start one or set \
                     GMFUSE_TEST_POSTGRES_URL to run the PostgreSQL half of the tests"
                );
                None
            }
        }
    }

    /// Run one SQL statement on the service's database (SQLite: the file in `data_dir`).
    pub async fn execute(&self, data_dir: &Path, sql: &str) {
        match self {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", data_dir.join("gmfuse.db").display());
                let pool = sqlx::SqlitePool::connect(&url).await.expect("open SQLite");
                pool.execute(sql).await.expect("execute");
                pool.close().await;
            }
            Backend::Postgres(db) => {
                let mut conn = PgConnection::connect(&db.url).await.expect("connect");
                conn.execute(sql).await.expect("execute");
                let _ = conn.close().await;
            }
        }
    }

    /// Rows in `table` of the service's database (SQLite: the file in `data_dir`).
    pub async fn count_rows(&self, data_dir: &Path, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match self {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", data_dir.join("gmfuse.db").display());
                let pool = sqlx::SqlitePool::connect(&url).await.expect("open SQLite");
                let n = sqlx::query_scalar(&sql)
                    .fetch_one(&pool)
                    .await
                    .expect("count");
                pool.close().await;
                n
            }
            Backend::Postgres(db) => {
                let mut conn = PgConnection::connect(&db.url).await.expect("connect");
                let n = sqlx::query_scalar(&sql)
                    .fetch_one(&mut conn)
                    .await
                    .expect("count");
                let _ = conn.close().await;
                n
            }
        }
    }
}

/// A database created for one test on the test server; dropping it drops the database.
#[derive(Debug)]
pub struct PgTestDb {
    admin: String,
    pub name: String,
    pub url: String,
}

impl PgTestDb {
    async fn create(admin: &str) -> Result<Self, String> {
        let connect = tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(admin));
        let mut conn = match connect.await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("no answer in 5 s".into()),
        };
        let name = format!("gmfuse_test_{}", uuid::Uuid::new_v4().simple());
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .map_err(|e| format!("CREATE DATABASE: {e}"))?;
        let _ = conn.close().await;
        Ok(PgTestDb {
            admin: admin.to_string(),
            url: with_database(admin, &name),
            name,
        })
    }
}

impl Drop for PgTestDb {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime (or while a panic unwinds): do the async work on
        // a thread with a runtime of its own. FORCE ends the connections still open.
        let admin = self.admin.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin)
                    .await
                    .map_err(|e| e.to_string())?;
                conn.execute(sql.as_str())
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = conn.close().await;
                Ok::<(), String>(())
            })
        })
        .join();
        if let Ok(Err(e)) = done {
            eprintln!("could not drop the test database {}: {e}", self.name);
        }
    }
}

/// `url` with its database (the path) replaced by `name`; the query string is kept.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

/// Define, for the `async fn NAME(db: Backend)` beside it, the tests `NAME::sqlite` and
/// `NAME::postgres`. The test attribute defaults to `#[tokio::test]`; give another first:
/// `both_backends!(#[tokio::test(flavor = "multi_thread")] NAME);`.
macro_rules! both_backends {
    ($name:ident) => {
        $crate::backend::both_backends!(
            #[tokio::test]
            $name
        );
    };
    (#[$test:meta] $name:ident) => {
        mod $name {
            #[$test]
            async fn sqlite() {
                super::$name($crate::backend::Backend::Sqlite).await;
            }

            #[$test]
            async fn postgres() {
                if let Some(db) = $crate::backend::Backend::postgres(module_path!()).await {
                    super::$name(db).await;
                }
            }
        }
    };
}
pub(crate) use both_backends;

#[test]
fn a_database_name_replaces_the_path_of_a_url() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
        "postgres://postgres@127.0.0.1:5432/t1"
    );
    assert_eq!(
        with_database("postgres://u:p@db/x?sslmode=disable", "t2"),
        "postgres://u:p@db/t2?sslmode=disable"
    );
    assert_eq!(
        with_database("postgres://db:5432", "t3"),
        "postgres://db:5432/t3"
    );
}

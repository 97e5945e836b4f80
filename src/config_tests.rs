//! Tests of the configuration: defaults, URL and secret redaction, derived durations and budgets.

use super::*;

#[test]
fn database_url_defaults_to_sqlite_in_the_data_dir() {
    let c = Config::for_tests("/tmp/x");
    assert_eq!(c.database_url().expose(), "sqlite:///tmp/x/gmfuse.db");
}

#[test]
fn redacts_the_password_of_a_database_url() {
    let u = DatabaseUrl("postgres://app:s3cret@db:5432/gmfuse".into());
    assert_eq!(u.redacted(), "postgres://***@db:5432/gmfuse");
    assert!(!format!("{u:?}").contains("s3cret"));
}

#[test]
fn debug_output_hides_the_s3_secret_key() {
    let mut c = Config::for_tests("/tmp/x");
    c.aws_secret_access_key = Some("wJalrXUtnFEMI".into());
    let shown = format!("{c:?}");
    assert!(
        shown.contains("aws_secret_access_key: Some(\"***\")"),
        "{shown}"
    );
    assert!(!shown.contains("wJalrXUtnFEMI"));
}

#[test]
fn heartbeat_never_exceeds_a_third_of_the_lease() {
    let mut c = Config::for_tests("/tmp/x");
    c.lease_secs = 3.0;
    c.heartbeat_secs = 5.0;
    assert_eq!(c.heartbeat(), Duration::from_secs(1));
}

#[test]
fn the_job_memory_budget_defaults_to_a_quarter_of_memtotal_with_a_floor() {
    let meminfo = "MemTotal:       24683584 kB\nMemFree:        22615716 kB\n";
    assert_eq!(parse_mem_total(meminfo), Some(24_683_584 * 1024));
    assert_eq!(parse_mem_total("nothing here"), None);
    let mut c = Config::for_tests("/tmp/x");
    c.max_job_bytes = None;
    let expected = (mem_total().unwrap_or(0) / 4).max(256 << 20);
    assert_eq!(c.max_job_bytes(), expected);
    assert!(c.max_job_bytes() >= 256 << 20);
    c.max_job_bytes = Some(1000);
    assert_eq!(c.max_job_bytes(), 1000);
}

#[test]
fn rejects_a_zero_lease() {
    let mut c = Config::for_tests("/tmp/x");
    c.lease_secs = 0.0;
    assert!(c.check().unwrap_err().contains("GMFUSE_LEASE_SECS"));
}

//! Tests of the S3 blob store's pure parts: URL parsing, the key layout, the secret kept out of `Debug`.

use super::*;

#[test]
fn splits_an_s3_url_into_bucket_and_prefix() {
    let split = |u: &str| parse_s3_url(u).unwrap();
    assert_eq!(split("s3://b/a/c/"), ("b".into(), "a/c".into()));
    assert_eq!(split("s3://b"), ("b".into(), String::new()));
    assert_eq!(split("s3://b/"), ("b".into(), String::new()));
    assert!(matches!(
        parse_s3_url("s3:///x"),
        Err(S3ConfigError::BadUrl(_))
    ));
    assert!(matches!(
        parse_s3_url("gs://b/x"),
        Err(S3ConfigError::BadUrl(_))
    ));
}

#[test]
fn keys_are_content_addressed_under_the_prefix() {
    let url = "s3://bucket/team/gmfuse/".into();
    let store = S3BlobStore::open(&moto::settings("http://127.0.0.1:1", url)).unwrap();
    let sha = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
    assert_eq!(
        store.blob_path(sha).unwrap().as_ref(),
        format!("team/gmfuse/blobs/{sha}")
    );
    assert_eq!(store.staged_path("u").as_ref(), "team/gmfuse/staging/u");
    assert!(matches!(
        store.blob_path("../x"),
        Err(BlobError::NotFound(_))
    ));
}

#[test]
fn settings_debug_hides_the_secret() {
    let s = S3Settings {
        secret_access_key: Some("topsecret".into()),
        ..S3Settings::default()
    };
    assert!(!format!("{s:?}").contains("topsecret"));
}

//! IDX dataset files, valid and malformed, and a gzip bomb.

/// An IDX file: magic, big-endian dimensions, data.
pub fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = magic.to_be_bytes().to_vec();
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// Gzip `header` followed by `zeros` zero bytes, streaming (the output is small).
pub fn gzip_bomb(header: &[u8], zeros: usize) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(header).unwrap();
    let block = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(block.len());
        enc.write_all(&block[..n]).unwrap();
        left -= n;
    }
    enc.finish().unwrap()
}

/// Malformed IDX dataset uploads: `(label, images, labels)`.
pub fn idx_cases() -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let images = idx(2051, &[2, 28, 28], &[0; 2 * 784]);
    let labels = idx(2049, &[2], &[1, 2]);
    let mut out = vec![
        (
            "gzip bomb: 28x28 declared, 256 MiB inflated".to_string(),
            gzip_bomb(&idx(2051, &[1, 28, 28], &[]), 256 << 20),
            idx(2049, &[1], &[0]),
        ),
        (
            "gzip bomb: 300000 images declared".into(),
            gzip_bomb(&idx(2051, &[300_000, 28, 28], &[]), 64 << 20),
            idx(2049, &[300_000], &[]),
        ),
        (
            "declared 4 Gi pixels".into(),
            idx(2051, &[65536, 256, 256], &[]),
            labels.clone(),
        ),
        (
            "declared overflow".into(),
            idx(2052, &[u32::MAX, u32::MAX, u32::MAX, u32::MAX], &[]),
            labels.clone(),
        ),
        ("bad magic".into(), idx(2049, &[2], &[0, 1]), labels.clone()),
        (
            "truncated header".into(),
            images[..10].to_vec(),
            labels.clone(),
        ),
        ("short data".into(), images[..100].to_vec(), labels.clone()),
        (
            "trailing data".into(),
            [&images[..], &[1, 2, 3]].concat(),
            labels.clone(),
        ),
        (
            "label count mismatch".into(),
            images.clone(),
            idx(2049, &[3], &[1, 2, 3]),
        ),
        (
            "labels with image magic".into(),
            images.clone(),
            images.clone(),
        ),
        (
            "no samples".into(),
            idx(2051, &[0, 28, 28], &[]),
            idx(2049, &[0], &[]),
        ),
        (
            "zero width".into(),
            idx(2051, &[1, 28, 0], &[]),
            idx(2049, &[1], &[0]),
        ),
        (
            "bad gzip".into(),
            vec![0x1f, 0x8b, 8, 0, 1, 2, 3, 4],
            labels.clone(),
        ),
        ("empty images".into(), vec![], labels.clone()),
    ];
    let trailing_bomb = gzip_bomb(&images, 128 << 20);
    out.push(("gzip bomb after valid data".into(), trailing_bomb, labels));
    out
}

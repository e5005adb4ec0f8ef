use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

fn sha_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A small raw "disk" (qemu-img sees raw, so import converts it).
fn raw_image() -> Vec<u8> {
    (0..3u32 << 20).map(|i| (i % 251) as u8).collect()
}

/// Serves `body` once over HTTP/1.1 on 127.0.0.1; returns the URL.
async fn serve_once(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/debian-12-genericcloud-amd64.raw",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = vec![0u8; 4096];
        let _ = stream.read(&mut request).await.unwrap();
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&body).await.unwrap();
    });
    url
}

fn leftovers(cache: &Path) -> Vec<String> {
    let dir = cache.join("base");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.retain(|n| n != ".lock");
    names.sort();
    names
}

#[tokio::test]
async fn imports_a_local_file_and_makes_it_current() {
    let cache = tempfile::tempdir().unwrap();
    let src = cache.path().join("cloud.raw");
    std::fs::write(&src, raw_image()).unwrap();
    let sha = sha_hex(&raw_image());
    let image = import(
        src.to_str().unwrap(),
        &sha.to_uppercase(),
        Suite::Bookworm,
        cache.path(),
        DEFAULT_LIMIT,
        &Progress::silent(),
    )
    .await
    .unwrap();
    assert_eq!(
        image.path,
        cache
            .path()
            .join(format!("base/imported-{}.qcow2", &sha[..16]))
    );
    assert_eq!(
        base_meta::current(cache.path(), Suite::Bookworm)
            .await
            .unwrap(),
        Some(image.clone())
    );
    let info = std::process::Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(&image.path)
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["format"], "qcow2");
    assert_eq!(info["virtual-size"], 3 << 20);
    assert_eq!(
        image.sha256,
        base_meta::sha256_file(&image.path).await.unwrap()
    );
}

#[tokio::test]
async fn one_file_imported_as_two_suites_is_two_bases_side_by_side() {
    let cache = tempfile::tempdir().unwrap();
    let src = cache.path().join("cloud.raw");
    std::fs::write(&src, raw_image()).unwrap();
    let sha = sha_hex(&raw_image());
    let mut found = Vec::new();
    let progress = Progress::silent();
    for suite in [Suite::Trixie, Suite::Bookworm] {
        let source = src.to_str().unwrap();
        let run = import(source, &sha, suite, cache.path(), DEFAULT_LIMIT, &progress);
        let image = run.await.unwrap();
        assert_eq!(image.suite, suite);
        found.push(image);
    }
    assert_eq!(
        found[0].path,
        cache
            .path()
            .join(format!("base/imported-trixie-{}.qcow2", &sha[..16]))
    );
    assert_ne!(found[0].path, found[1].path);
    for (suite, image) in [Suite::Trixie, Suite::Bookworm].into_iter().zip(found) {
        let current = base_meta::current(cache.path(), suite).await.unwrap();
        assert_eq!(current, Some(image));
    }
    std::fs::remove_file(&src).unwrap();
    assert_eq!(
        leftovers(cache.path()),
        vec![
            "current-trixie.qcow2".to_string(),
            "current.qcow2".to_string(),
            format!("imported-{}.qcow2", &sha[..16]),
            format!("imported-{}.toml", &sha[..16]),
            format!("imported-trixie-{}.qcow2", &sha[..16]),
            format!("imported-trixie-{}.toml", &sha[..16]),
        ]
    );
}

#[tokio::test]
async fn imports_over_http_with_transfer_events() {
    let cache = tempfile::tempdir().unwrap();
    let url = serve_once(raw_image()).await;
    let (progress, mut events) = Progress::channel();
    let sha = sha_hex(&raw_image());
    import(
        &url,
        &sha,
        Suite::Bookworm,
        cache.path(),
        DEFAULT_LIMIT,
        &progress,
    )
    .await
    .unwrap();
    drop(progress);
    let mut last = None;
    while let Some(event) = events.recv().await {
        if let Event::Transfer { done, total, .. } = event {
            last = Some((done, total));
        }
    }
    let size = raw_image().len() as u64;
    assert_eq!(last, Some((size, Some(size))));
    assert_eq!(
        leftovers(cache.path()),
        vec![
            "current.qcow2".to_string(),
            format!("imported-{}.qcow2", &sha[..16]),
            format!("imported-{}.toml", &sha[..16])
        ]
    );
}

#[tokio::test]
async fn checksum_mismatch_is_refused_and_nothing_is_kept() {
    let cache = tempfile::tempdir().unwrap();
    let url = serve_once(raw_image()).await;
    let wrong = "0".repeat(64);
    let err = import(
        &url,
        &wrong,
        Suite::Bookworm,
        cache.path(),
        DEFAULT_LIMIT,
        &Progress::silent(),
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "`{url}`: checksum mismatch: expected {wrong}, got "
        )),
        "{text}"
    );
    assert!(text.ends_with(&sha_hex(&raw_image())));
    assert_eq!(leftovers(cache.path()), Vec::<String>::new());
    assert_eq!(
        base_meta::current(cache.path(), Suite::Bookworm)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_malformed_checksum_is_refused_before_any_transfer() {
    let cache = tempfile::tempdir().unwrap();
    let err = import(
        "/nonexistent",
        "abc",
        Suite::Bookworm,
        cache.path(),
        DEFAULT_LIMIT,
        &Progress::silent(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid sha256 `abc`: expected 64 hexadecimal digits"
    );
}

#[tokio::test]
async fn an_http_error_is_a_download_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/missing.qcow2", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = vec![0u8; 4096];
        let _ = stream.read(&mut request).await.unwrap();
        stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
    });
    let cache = tempfile::tempdir().unwrap();
    let err = import(
        &url,
        &"a".repeat(64),
        Suite::Bookworm,
        cache.path(),
        DEFAULT_LIMIT,
        &Progress::silent(),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().starts_with(&format!("download `{url}`: ")),
        "{err}"
    );
    assert_eq!(leftovers(cache.path()), Vec::<String>::new());
}

#[tokio::test]
async fn work_folders_of_an_interrupted_run_are_removed() {
    let cache = tempfile::tempdir().unwrap();
    let stale = cache.path().join("base/.import-abc/fetched");
    std::fs::create_dir_all(&stale).unwrap();
    let src = cache.path().join("cloud.raw");
    std::fs::write(&src, raw_image()).unwrap();
    import(
        src.to_str().unwrap(),
        &sha_hex(&raw_image()),
        Suite::Bookworm,
        cache.path(),
        DEFAULT_LIMIT,
        &Progress::silent(),
    )
    .await
    .unwrap();
    assert!(!cache.path().join("base/.import-abc").exists());
}

/// Imports `source` with `limit`, failing the test instead of hanging.
async fn refused(source: &str, cache: &Path, limit: u64) -> ImportError {
    let sha = "a".repeat(64);
    let progress = Progress::silent();
    let run = import(source, &sha, Suite::Bookworm, cache, limit, &progress);
    let err = tokio::time::timeout(std::time::Duration::from_secs(20), run)
        .await
        .expect("refused without waiting")
        .unwrap_err();
    assert_eq!(leftovers(cache), Vec::<String>::new(), "nothing is kept");
    assert_eq!(
        base_meta::current(cache, Suite::Bookworm).await.unwrap(),
        None
    );
    match err {
        TargetError::Import(e) => e,
        e => panic!("not an import refusal: {e}"),
    }
}

#[tokio::test]
async fn a_fifo_is_refused_before_it_is_opened() {
    let cache = tempfile::tempdir().unwrap();
    let fifo = cache.path().join("image.fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    // Should import open it for reading after all, this writer lets the
    // open return (with an empty stream) instead of hanging the test.
    let writer = fifo.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(3));
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(writer);
    });
    let err = refused(fifo.to_str().unwrap(), cache.path(), DEFAULT_LIMIT).await;
    assert_eq!(
        err.to_string(),
        format!(
            "`{}` is a FIFO (named pipe), not a regular file: only an image file or a URL can be imported",
            fifo.display()
        )
    );
    assert!(err.is_invalid_input());
    assert!(
        !cache.path().join("base").exists(),
        "the cache is untouched"
    );
}

#[tokio::test]
async fn devices_and_folders_are_refused() {
    let cache = tempfile::tempdir().unwrap();
    // An endless stream, with a small limit should it be read after all.
    for (path, kind) in [
        ("/dev/zero", "a character device"),
        ("/dev/null", "a character device"),
        ("/tmp", "a folder"),
    ] {
        let err = refused(path, cache.path(), 1 << 20).await;
        assert!(
            err.to_string()
                .starts_with(&format!("`{path}` is {kind}, not a regular file")),
            "{err}"
        );
        assert!(err.is_invalid_input());
    }
}

#[tokio::test]
async fn a_file_over_the_limit_is_refused() {
    let cache = tempfile::tempdir().unwrap();
    let src = cache.path().join("cloud.raw");
    std::fs::write(&src, raw_image()).unwrap();
    let err = refused(src.to_str().unwrap(), cache.path(), 1 << 20).await;
    assert_eq!(
        err.to_string(),
        format!(
            "`{}` is longer than the import limit of 1048576 bytes (--max-size)",
            src.display()
        )
    );
    assert!(!err.is_invalid_input());
}

#[tokio::test]
async fn a_file_that_says_it_is_empty_is_cut_at_the_limit() {
    // procfs files report a size of 0 and still have bytes to read.
    let cache = tempfile::tempdir().unwrap();
    let err = refused("/proc/self/maps", cache.path(), 64).await;
    assert!(
        matches!(&err, ImportError::TooLarge { limit: 64, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_content_length_over_the_limit_is_refused() {
    let cache = tempfile::tempdir().unwrap();
    let url = serve_once(raw_image()).await;
    let err = refused(&url, cache.path(), 1 << 20).await;
    assert_eq!(
        err.to_string(),
        format!("`{url}` is longer than the import limit of 1048576 bytes (--max-size)")
    );
}

#[tokio::test]
async fn an_endless_body_is_cut_at_the_limit() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/endless.raw", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = vec![0u8; 4096];
        let _ = stream.read(&mut request).await.unwrap();
        // No Content-Length: the body ends when the server closes, never.
        let head = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
        stream.write_all(head).await.unwrap();
        let zeros = vec![0u8; 64 << 10];
        while stream.write_all(&zeros).await.is_ok() {}
    });
    let cache = tempfile::tempdir().unwrap();
    let err = refused(&url, cache.path(), 1 << 20).await;
    assert!(
        matches!(&err, ImportError::TooLarge { limit: 1048576, .. }),
        "{err}"
    );
}

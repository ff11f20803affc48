//! Downloads through a Hub that runs on 127.0.0.1 (the Hub's HTTP protocol as hf-hub speaks
//! it: file metadata and bytes at `/<repo>/resolve/main/<file>`, listings at `/api/...`), a
//! closed port, and a Hub that refuses.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;

use latam_hub::{Hub, Kind, Reason};

/// An answer: status line, headers, body.
type Answer = (String, Vec<(String, String)>, Vec<u8>);

/// Serves requests on a free port until the test ends: `answer` gives the answer to each
/// request path.
fn serve(answer: fn(&str) -> Answer) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
            }
            let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let (status, headers, body) = answer(&path);
            let mut head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                let _ = write!(head, "{k}: {v}\r\n");
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    address
}

const TOKENIZER: &[u8] = br#"{"version": "1.0", "model": {"type": "BPE"}}"#;

/// A Hub with one dataset, `latam-gpt/tiny`, holding `data/test.jsonl`.
fn hub_answer(path: &str) -> Answer {
    let ok = |body: &[u8]| {
        let headers = vec![
            ("ETag".into(), "\"abc123\"".into()),
            ("X-Repo-Commit".into(), "0123456789abcdef".into()),
            (
                "Content-Range".into(),
                format!("bytes 0-{}/{}", body.len() - 1, body.len()),
            ),
        ];
        ("200 OK".to_owned(), headers, body.to_vec())
    };
    match path {
        "/api/datasets/latam-gpt/tiny/revision/main" => ok(
            br#"{"sha": "0123456789abcdef", "siblings": [{"rfilename": "README.md"}, {"rfilename": "data/test.jsonl"}]}"#,
        ),
        "/datasets/latam-gpt/tiny/resolve/main/data/test.jsonl" => ok(TOKENIZER),
        _ => ("404 Not Found".into(), vec![], b"Entry not found".to_vec()),
    }
}

fn hub(endpoint: &str, cache: &Path) -> Hub {
    Hub {
        endpoint: endpoint.to_owned(),
        cache: cache.to_owned(),
        token: None,
    }
}

#[test]
fn downloads_lists_and_reads_the_cache_offline() {
    let cache = tempfile::tempdir().unwrap();
    let endpoint = serve(hub_answer);
    let repo = hub(&endpoint, cache.path())
        .repo(Kind::Dataset, "latam-gpt/tiny", "--data FILE")
        .unwrap();
    assert_eq!(repo.files().unwrap(), ["README.md", "data/test.jsonl"]);
    let path = repo.get("data/test.jsonl").unwrap();
    assert!(path.starts_with(cache.path()), "{}", path.display());
    assert_eq!(std::fs::read(&path).unwrap(), TOKENIZER);

    // No Hub at all: the file fetched before comes from the cache.
    let closed = closed_port();
    let offline = hub(&closed, cache.path())
        .repo(Kind::Dataset, "latam-gpt/tiny", "--data FILE")
        .unwrap();
    assert_eq!(offline.get("data/test.jsonl").unwrap(), path);
}

/// The address of a port nothing listens on.
fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    address
}

#[test]
fn an_unreachable_hub_says_what_to_do_instead() {
    let cache = tempfile::tempdir().unwrap();
    let endpoint = closed_port();
    let e = hub(&endpoint, cache.path())
        .repo(
            Kind::Model,
            "meta-llama/Llama-3.1-8B",
            "--tokenizer FILE (a tokenizer.json)",
        )
        .unwrap()
        .get("tokenizer.json")
        .unwrap_err();
    assert_eq!(e.reason, Reason::Unreachable);
    let message = e.to_string();
    for part in [
        "hf://meta-llama/Llama-3.1-8B: cannot download tokenizer.json from http://127.0.0.1:",
        "did not answer",
        "Instead: --tokenizer FILE (a tokenizer.json)",
        "HF_TOKEN is not set",
        "HF_ENDPOINT",
        &cache.path().display().to_string(),
    ] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
}

#[test]
fn a_refusal_and_a_missing_file_are_told_apart() {
    fn refuse(_: &str) -> Answer {
        let said = "Access to model meta-llama/Llama-3.1-8B is restricted.";
        (
            "401 Unauthorized".into(),
            vec![("X-Error-Message".into(), said.into())],
            vec![],
        )
    }
    let cache = tempfile::tempdir().unwrap();
    let e = hub(&serve(refuse), cache.path())
        .repo(Kind::Model, "meta-llama/Llama-3.1-8B", "--tokenizer FILE")
        .unwrap()
        .get("tokenizer.json")
        .unwrap_err();
    assert_eq!(e.reason, Reason::Denied);
    let message = e.to_string();
    assert!(
        message.contains("status 401, Access to model meta-llama/Llama-3.1-8B is restricted.")
            && message.contains("gated"),
        "{message}"
    );

    let e = hub(&serve(hub_answer), cache.path())
        .repo(Kind::Dataset, "latam-gpt/tiny", "--data FILE")
        .unwrap()
        .get("data/train.jsonl")
        .unwrap_err();
    assert_eq!(e.reason, Reason::NotFound);
    assert!(e.to_string().contains("No such repository or file"), "{e}");
}

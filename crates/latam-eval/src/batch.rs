//! The OpenAI Batch API, as latamgpt-benchmark uses it: the chat requests a run needs and has
//! not cached are uploaded as one JSONL file, a batch is created, polled until it ends, and its
//! output is collected into the cache; then the run scores from the cache. The batch id is kept
//! in `<output>/batches.json`, so a run stopped while waiting polls the same batch again.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::EvalError;
use crate::cache::Cache;
use crate::client::{Client, chat_answer};
use crate::run::{BatchConfig, Context};
use latam_benchmarks::Example;

/// Submits, waits for and collects the answers, then the verdicts of the judge.
pub(crate) fn prefill(
    ctx: &Context<'_>,
    examples: &[Example],
    batch: &BatchConfig,
) -> Result<(), EvalError> {
    let answers = uncached(
        ctx,
        "answer",
        examples.iter().filter_map(|e| ctx.answer_request(e)),
    )?;
    submit_and_collect(ctx, &ctx.client, "answer", &answers, batch)?;
    if let Some((client, _)) = &ctx.judge {
        let mut requests = Vec::new();
        for example in examples {
            let Some(request) = ctx.answer_request(example) else {
                continue;
            };
            let cached = ctx.cache.get(&Cache::key("answer", &request))?;
            if let Some(answer) = cached.as_ref().and_then(chat_answer) {
                requests.extend(ctx.judge_request(example, &answer.text));
            }
        }
        let verdicts = uncached(ctx, "judge#0", requests.into_iter())?;
        submit_and_collect(ctx, client, "judge#0", &verdicts, batch)?;
    }
    Ok(())
}

/// `(cache key, request)` of the requests not cached yet, each once.
fn uncached(
    ctx: &Context<'_>,
    kind: &str,
    requests: impl Iterator<Item = Value>,
) -> Result<Vec<(String, Value)>, EvalError> {
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    for request in requests {
        let key = Cache::key(kind, &request);
        if ctx.cache.get(&key)?.is_none() {
            out.insert(key, request);
        }
    }
    Ok(out.into_iter().collect())
}

fn submit_and_collect(
    ctx: &Context<'_>,
    client: &Client,
    kind: &str,
    requests: &[(String, Value)],
    config: &BatchConfig,
) -> Result<(), EvalError> {
    if requests.is_empty() {
        return Ok(());
    }
    let state_path = ctx.config.output.join("batches.json");
    let mut state: BTreeMap<String, Value> = std::fs::read(&state_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    // A batch is known by its kind and the requests it holds.
    let name = format!(
        "{kind}-{}",
        &Cache::key(
            kind,
            &json!(requests.iter().map(|(k, _)| k).collect::<Vec<_>>())
        )[..16]
    );
    let id =
        if let Some(id) = state.get(&name).and_then(|v| v["id"].as_str()) {
            id.to_owned()
        } else {
            let mut jsonl = Vec::new();
            for (key, body) in requests {
                serde_json::to_writer(&mut jsonl, &json!({
                "custom_id": key, "method": "POST", "url": "/v1/chat/completions", "body": body,
            }))
            .expect("JSON");
                jsonl.push(b'\n');
            }
            let file = client.upload_batch_file(&format!("latam-{name}.jsonl"), &jsonl)?;
            let created = client.post_json(
                "batches",
                &json!({
                    "input_file_id": file, "endpoint": "/v1/chat/completions",
                    "completion_window": config.completion_window,
                }),
            )?;
            let id = created["id"].as_str().ok_or_else(|| EvalError::Protocol {
                url: format!("{}/batches", client.base()),
                message: "no `id` in the created batch".into(),
            })?;
            state.insert(
                name.clone(),
                json!({ "id": id, "input_file_id": file, "requests": requests.len() }),
            );
            latam_io::write_atomic(
                &state_path,
                &serde_json::to_vec_pretty(&state).expect("JSON"),
            )
            .map_err(|e| EvalError::Output {
                path: state_path.clone(),
                message: e.to_string(),
            })?;
            tracing::info!("batch {id} submitted: {} {kind} requests", requests.len());
            id.to_owned()
        };
    let status = loop {
        let status = client.get_json(&format!("batches/{id}"))?;
        match status["status"].as_str().unwrap_or_default() {
            "completed" | "failed" | "expired" | "cancelled" => break status,
            other => {
                tracing::info!("batch {id}: {other}, {}", status["request_counts"]);
                std::thread::sleep(Duration::from_secs_f64(config.poll_s.max(0.01)));
            }
        }
    };
    let mut collected = 0usize;
    if let Some(output) = status["output_file_id"].as_str() {
        for line in client
            .get_text(&format!("files/{output}/content"))?
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            let Ok(record) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let response = &record["response"];
            if response["status_code"].as_u64() == Some(200)
                && chat_answer(&response["body"]).is_some()
                && let Some(key) = record["custom_id"].as_str()
            {
                ctx.cache.put(key, kind, &response["body"])?;
                collected += 1;
            }
        }
    }
    if collected < requests.len() {
        tracing::warn!(
            "batch {id} ended `{}` with {collected} of {} answers; the rest are asked one by one",
            status["status"].as_str().unwrap_or_default(),
            requests.len()
        );
    }
    Ok(())
}

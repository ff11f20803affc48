//! The runtime against an independent reference: a random Llama written as safetensors and as
//! GGUF (F32 and quantized), run by candle and by a plain f64 implementation of the same maths.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::GgmlDType;
use latam_model::synthetic::{random_weights, tiny_config, write_gguf, write_hf};
use latam_model::{
    ChatMessage, Event, FinishReason, Generation, GenerationRequest, LoadOptions, Model,
    ModelConfig, SamplingParams, log_softmax,
};

struct Fixture {
    _dir: tempfile::TempDir,
    hf: Model,
    gguf_f32: Model,
    weights: HashMap<String, Vec<f32>>,
    config: ModelConfig,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config();
    let weights = random_weights(&config, 42);
    write_hf(&dir.path().join("hf"), &config, &weights).unwrap();
    let gguf = dir.path().join("tiny-f32.gguf");
    write_gguf(&gguf, &config, &weights, GgmlDType::F32).unwrap();
    let options = LoadOptions::default();
    Fixture {
        hf: Model::load(&dir.path().join("hf"), &options).unwrap(),
        gguf_f32: Model::load(&gguf, &options).unwrap(),
        weights: weights
            .iter()
            .map(|(k, v)| (k.clone(), v.flatten_all().unwrap().to_vec1().unwrap()))
            .collect(),
        config,
        _dir: dir,
    }
}

/// The runtime's log-probability of each prompt token after the first.
fn prompt_logprobs(model: &Model, tokens: &[u32]) -> Vec<f32> {
    let mut request = GenerationRequest::new(tokens.to_vec(), 0);
    request.prompt_logprobs = Some(0);
    let mut generation = Generation::new(model, request).unwrap();
    let mut out = Vec::new();
    while !generation.is_finished() {
        for event in generation.step(model).unwrap() {
            if let Event::PromptLogprobs(list) = event {
                out = list.into_iter().filter_map(|t| t.logprob).collect();
            }
        }
    }
    out
}

/// A plain implementation of the Llama forward pass in f64, from the Hugging Face weights:
/// returns the log-probabilities of every position.
#[allow(clippy::many_single_char_names, clippy::too_many_lines)] // the maths' own notation
fn reference(w: &HashMap<String, Vec<f32>>, c: &ModelConfig, tokens: &[u32]) -> Vec<Vec<f64>> {
    let d = c.hidden_size;
    let hd = c.head_dim;
    let get = |name: &str| w.get(name).unwrap_or_else(|| panic!("{name}"));
    let matvec = |m: &[f32], x: &[f64], rows: usize| -> Vec<f64> {
        let cols = x.len();
        (0..rows)
            .map(|r| (0..cols).map(|k| f64::from(m[r * cols + k]) * x[k]).sum())
            .collect()
    };
    let rms = |x: &[f64], g: &[f32]| -> Vec<f64> {
        let mean = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
        let s = 1.0 / (mean + c.rms_norm_eps).sqrt();
        x.iter()
            .zip(g)
            .map(|(v, g)| v * s * f64::from(*g))
            .collect()
    };
    let rope = |v: &mut [f64], pos: usize| {
        for i in 0..hd / 2 {
            let freq = 1.0 / f64::from(c.rope_theta).powf(2.0 * i as f64 / hd as f64);
            let (sin, cos) = (pos as f64 * freq).sin_cos();
            let (a, b) = (v[i], v[i + hd / 2]);
            v[i] = a * cos - b * sin;
            v[i + hd / 2] = a * sin + b * cos;
        }
    };
    let mut xs: Vec<Vec<f64>> = tokens
        .iter()
        .map(|&t| {
            get("model.embed_tokens.weight")[t as usize * d..(t as usize + 1) * d]
                .iter()
                .map(|&v| f64::from(v))
                .collect()
        })
        .collect();
    for layer in 0..c.num_layers {
        let name = |n: &str| format!("model.layers.{layer}.{n}.weight");
        let mut keys: Vec<Vec<f64>> = Vec::new();
        let mut values: Vec<Vec<f64>> = Vec::new();
        let mut queries: Vec<Vec<f64>> = Vec::new();
        for (pos, x) in xs.iter().enumerate() {
            let h = rms(x, get(&name("input_layernorm")));
            let mut q = matvec(get(&name("self_attn.q_proj")), &h, c.num_heads * hd);
            let mut k = matvec(get(&name("self_attn.k_proj")), &h, c.num_kv_heads * hd);
            for head in q.chunks_mut(hd) {
                rope(head, pos);
            }
            for head in k.chunks_mut(hd) {
                rope(head, pos);
            }
            values.push(matvec(
                get(&name("self_attn.v_proj")),
                &h,
                c.num_kv_heads * hd,
            ));
            keys.push(k);
            queries.push(q);
        }
        let group = c.num_heads / c.num_kv_heads;
        for (pos, x) in xs.iter_mut().enumerate() {
            let mut out = vec![0.0; c.num_heads * hd];
            for head in 0..c.num_heads {
                let kv = head / group;
                let q = &queries[pos][head * hd..(head + 1) * hd];
                let scores: Vec<f64> = (0..=pos)
                    .map(|j| {
                        let k = &keys[j][kv * hd..(kv + 1) * hd];
                        q.iter().zip(k).map(|(a, b)| a * b).sum::<f64>() / (hd as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().copied().fold(f64::MIN, f64::max);
                let exp: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = exp.iter().sum();
                for (j, e) in exp.iter().enumerate() {
                    for i in 0..hd {
                        out[head * hd + i] += e / total * values[j][kv * hd + i];
                    }
                }
            }
            let o = matvec(get(&name("self_attn.o_proj")), &out, d);
            for (a, b) in x.iter_mut().zip(o) {
                *a += b;
            }
            let h = rms(x, get(&name("post_attention_layernorm")));
            let gate = matvec(get(&name("mlp.gate_proj")), &h, c.intermediate_size);
            let up = matvec(get(&name("mlp.up_proj")), &h, c.intermediate_size);
            let act: Vec<f64> = gate
                .iter()
                .zip(&up)
                .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
                .collect();
            let down = matvec(get(&name("mlp.down_proj")), &act, d);
            for (a, b) in x.iter_mut().zip(down) {
                *a += b;
            }
        }
    }
    xs.iter()
        .map(|x| {
            let h = rms(x, get("model.norm.weight"));
            let logits = matvec(get("lm_head.weight"), &h, c.vocab_size);
            let max = logits.iter().copied().fold(f64::MIN, f64::max);
            let log_total = logits.iter().map(|l| (l - max).exp()).sum::<f64>().ln() + max;
            logits.iter().map(|l| l - log_total).collect()
        })
        .collect()
}

const TEXT: &str = "La capital de Chile es Santiago; la de Perú, Lima.";

#[test]
fn safetensors_and_gguf_match_the_reference() {
    let f = fixture();
    let tokens = f.hf.tokenizer().encode(TEXT, true).unwrap();
    assert_eq!(tokens, f.gguf_f32.tokenizer().encode(TEXT, true).unwrap());
    assert_eq!(tokens[0], 256, "BOS first");
    let want = reference(&f.weights, &f.config, &tokens);
    for model in [&f.hf, &f.gguf_f32] {
        let got = prompt_logprobs(model, &tokens);
        assert_eq!(got.len(), tokens.len() - 1);
        for (pos, row) in got.iter().enumerate() {
            let expected = want[pos][tokens[pos + 1] as usize];
            assert!(
                (f64::from(*row) - expected).abs() < 1e-3,
                "{}: position {pos}: {} vs reference {expected}",
                model.name(),
                *row
            );
        }
    }
}

/// Random weights without `lm_head.weight`, the embedding scaled as an output matrix.
fn tied(config: &ModelConfig) -> HashMap<String, candle_core::Tensor> {
    let mut weights = random_weights(config, 9);
    weights.remove("lm_head.weight");
    let embed = &weights["model.embed_tokens.weight"];
    let scaled = (embed * (1.7 / (config.hidden_size as f64).sqrt())).unwrap();
    weights.insert("model.embed_tokens.weight".into(), scaled);
    weights
}

#[test]
fn tied_embeddings_share_the_embedding_as_output() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config();
    let weights = tied(&config);
    write_hf(&dir.path().join("hf"), &config, &weights).unwrap();
    let mut reference_weights: HashMap<String, Vec<f32>> = weights
        .iter()
        .map(|(k, v)| (k.clone(), v.flatten_all().unwrap().to_vec1().unwrap()))
        .collect();
    let embed = reference_weights["model.embed_tokens.weight"].clone();
    reference_weights.insert("lm_head.weight".into(), embed);
    let options = LoadOptions::default();
    let hf = Model::load(&dir.path().join("hf"), &options).unwrap();
    let tokens = hf.tokenizer().encode(TEXT, true).unwrap();
    let want = reference(&reference_weights, &config, &tokens);
    let gap = |model: &Model| {
        prompt_logprobs(model, &tokens)
            .iter()
            .enumerate()
            .map(|(pos, &got)| (f64::from(got) - want[pos][tokens[pos + 1] as usize]).abs())
            .fold(0.0, f64::max)
    };
    assert!(gap(&hf) < 1e-3, "safetensors: {}", gap(&hf));
    // GGUF: without `output.weight` the model equals one that stores the embedding again as
    // its output, for the types looked up from our blocks (Q4_1, Q4_K) and from candle's (Q3_K).
    for dtype in [
        GgmlDType::F32,
        GgmlDType::Q8_0,
        GgmlDType::Q4_1,
        GgmlDType::Q4K,
        GgmlDType::Q3K,
    ] {
        let mut config = config.clone();
        if matches!(dtype, GgmlDType::Q4K | GgmlDType::Q3K) {
            // k-quants work on blocks of 256.
            config.hidden_size = 256;
            config.intermediate_size = 256;
            config.head_dim = 64;
        }
        let weights = tied(&config);
        let mut copied = weights.clone();
        copied.insert(
            "lm_head.weight".into(),
            weights["model.embed_tokens.weight"].clone(),
        );
        let load = |name: &str, weights: &HashMap<String, candle_core::Tensor>| {
            let path = dir.path().join(format!("{name}-{dtype:?}.gguf"));
            write_gguf(&path, &config, weights, dtype).unwrap();
            Model::load(&path, &options).unwrap()
        };
        let model = load("tied", &weights);
        let gap_to_copy = max_logprob_gap(&model, &load("copied", &copied), &tokens);
        assert!(gap_to_copy.to_bits() == 0, "{dtype:?}: {gap_to_copy}");
        if dtype == GgmlDType::F32 {
            assert!(gap(&model) < 1e-3, "GGUF: {}", gap(&model));
        }
    }
}

#[test]
fn both_formats_generate_the_same_tokens_with_and_without_cache() {
    let f = fixture();
    let prompt = f.hf.tokenizer().encode("Hola", true).unwrap();
    let greedy = |model: &Model| {
        model
            .complete(GenerationRequest::new(prompt.clone(), 24), |_| {})
            .unwrap()
    };
    let (text, reason) = greedy(&f.hf);
    assert_eq!((text.clone(), reason), greedy(&f.gguf_f32));
    // Decoding with the cache equals re-running the whole sequence: the reference's argmax
    // at each step follows the same path.
    let mut request = GenerationRequest::new(prompt.clone(), 8);
    request.logprobs = Some(0);
    let mut generation = Generation::new(&f.hf, request).unwrap();
    let mut generated = Vec::new();
    while !generation.is_finished() {
        for event in generation.step(&f.hf).unwrap() {
            if let Event::Token {
                logprob: Some(t), ..
            } = event
            {
                generated.push(t.id);
            }
        }
    }
    assert_eq!(generated.len(), 8);
    let mut tokens = prompt.clone();
    for next in generated {
        let lp = reference(&f.weights, &f.config, &tokens);
        let last = lp.last().unwrap();
        let best = (0..last.len())
            .max_by(|&a, &b| last[a].total_cmp(&last[b]))
            .unwrap();
        assert_eq!(best as u32, next, "after {tokens:?}");
        tokens.push(next);
    }
    assert!(text.len() > 1);
}

fn max_logprob_gap(a: &Model, b: &Model, tokens: &[u32]) -> f32 {
    prompt_logprobs(a, tokens)
        .iter()
        .zip(prompt_logprobs(b, tokens))
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn quantized_gguf_stays_close_to_full_precision() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = tiny_config();
    // k-quants work on blocks of 256.
    config.hidden_size = 256;
    config.intermediate_size = 512;
    config.num_heads = 4;
    config.num_kv_heads = 2;
    config.head_dim = 64;
    let weights = random_weights(&config, 7);
    let load = |dtype: GgmlDType| {
        let path = dir.path().join(format!("m-{dtype:?}.gguf"));
        write_gguf(&path, &config, &weights, dtype).unwrap();
        Model::load(&path, &LoadOptions::default()).unwrap()
    };
    let full = load(GgmlDType::F32);
    let tokens = full.tokenizer().encode(TEXT, true).unwrap();
    for (dtype, tolerance) in [
        (GgmlDType::Q8_0, 0.05),
        (GgmlDType::Q4_0, 0.5),
        (GgmlDType::Q4_1, 0.5),
        (GgmlDType::Q4K, 0.5),
        (GgmlDType::Q5K, 0.35),
        (GgmlDType::Q6K, 0.25),
        // Requantized to Q8_0 at load.
        (GgmlDType::Q5_0, 0.35),
        (GgmlDType::Q5_1, 0.35),
    ] {
        let gap = max_logprob_gap(&full, &load(dtype), &tokens);
        assert!(
            gap < tolerance,
            "{dtype:?}: log-probabilities differ by {gap}"
        );
        assert!(gap > 0.0, "{dtype:?} is really quantized");
    }
}

#[test]
fn long_prompts_are_prefilled_in_chunks_with_the_same_result() {
    let f = fixture();
    let text = TEXT.repeat(8);
    let tokens = f.hf.tokenizer().encode(&text, true).unwrap();
    assert!(tokens.len() > 300, "longer than one chunk");
    let got = prompt_logprobs(&f.hf, &tokens);
    let want = reference(&f.weights, &f.config, &tokens);
    for pos in [0, 100, 255, 256, 257, tokens.len() - 2] {
        let expected = want[pos][tokens[pos + 1] as usize];
        assert!(
            (f64::from(got[pos]) - expected).abs() < 1e-3,
            "position {pos}"
        );
    }
}

#[test]
fn stop_strings_eos_and_lengths_end_generations() {
    let f = fixture();
    let prompt = f.hf.tokenizer().encode("Hola", true).unwrap();
    let (full, reason) =
        f.hf.complete(GenerationRequest::new(prompt.clone(), 24), |_| {})
            .unwrap();
    assert_eq!(reason, FinishReason::Length);
    // Stop at a text that appears in the middle of the greedy completion.
    let chars: Vec<char> = full.chars().collect();
    let stop: String = chars[6..9].iter().collect();
    let cut = full.find(&stop).unwrap();
    let mut request = GenerationRequest::new(prompt.clone(), 24);
    request.stop = vec![stop.clone()];
    let mut pieces = Vec::new();
    let (text, reason) =
        f.hf.complete(request, |p| pieces.push(p.to_owned()))
            .unwrap();
    assert_eq!((text.as_str(), reason), (&full[..cut], FinishReason::Stop));
    assert!(pieces.concat() == text && !pieces.concat().contains(&stop));
    // Sampling with a seed repeats; another seed differs.
    let sample = |seed| {
        let mut request = GenerationRequest::new(prompt.clone(), 24);
        request.sampling = SamplingParams {
            temperature: 1.5,
            seed,
            ..SamplingParams::default()
        };
        f.hf.complete(request, |_| {}).unwrap().0
    };
    assert_eq!(sample(1), sample(1));
    assert_ne!(sample(1), sample(2));
    // Too long for the context: refused before running.
    let err = Generation::new(&f.hf, GenerationRequest::new(prompt, 10_000))
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("maximum context length is 512"),
        "{err}"
    );
}

/// Ids and log-probabilities of the tokens a generation emits.
fn tokens_of(events: Vec<Event>, out: &mut Vec<(u32, f32)>) {
    for event in events {
        if let Event::Token {
            logprob: Some(t), ..
        } = event
        {
            out.push((t.id, t.logprob.unwrap()));
        }
    }
}

#[test]
fn batched_decoding_equals_one_sequence_at_a_time() {
    let f = fixture();
    let prompts = [
        "Hola",
        "La capital de Chile es",
        "Olá, tudo bem? Eu sou do Brasil.",
    ];
    let start = |model: &Model| -> Vec<Generation> {
        prompts
            .iter()
            .map(|p| {
                let mut request =
                    GenerationRequest::new(model.tokenizer().encode(p, true).unwrap(), 10);
                request.logprobs = Some(0);
                request.ignore_eos = true;
                Generation::new(model, request).unwrap()
            })
            .collect()
    };
    for model in [&f.hf, &f.gguf_f32] {
        let mut alone = start(model);
        let mut want = vec![Vec::new(); prompts.len()];
        for (g, out) in alone.iter_mut().zip(&mut want) {
            while !g.is_finished() {
                tokens_of(g.step(model).unwrap(), out);
            }
        }
        let mut together = start(model);
        let mut got = vec![Vec::new(); prompts.len()];
        let mut batched_steps = 0;
        while together.iter().any(|g| !g.is_finished()) {
            if together.iter().all(|g| g.next_input().is_some()) {
                let mut refs: Vec<&mut Generation> = together.iter_mut().collect();
                for (events, out) in model
                    .step_batch(&mut refs)
                    .unwrap()
                    .into_iter()
                    .zip(&mut got)
                {
                    tokens_of(events, out);
                }
                batched_steps += 1;
            } else {
                for (g, out) in together.iter_mut().zip(&mut got) {
                    if g.next_input().is_none() {
                        tokens_of(g.step(model).unwrap(), out);
                    }
                }
            }
        }
        assert!(batched_steps >= 8, "{batched_steps}");
        for (w, g) in want.iter().zip(&got) {
            assert_eq!(
                w.iter().map(|t| t.0).collect::<Vec<_>>(),
                g.iter().map(|t| t.0).collect::<Vec<_>>()
            );
            for (a, b) in w.iter().zip(g) {
                assert!((a.1 - b.1).abs() < 1e-4, "{} vs {}", a.1, b.1);
            }
        }
    }
}

#[test]
fn a_reused_prefix_cache_gives_the_same_completion() {
    let f = fixture();
    let run = |generation: &mut Generation| {
        let mut text = String::new();
        while !generation.is_finished() {
            for event in generation.step(&f.hf).unwrap() {
                if let Event::Token { text: t, .. } | Event::Done { text: t, .. } = event {
                    text.push_str(&t);
                }
            }
        }
        text
    };
    let first =
        f.hf.tokenizer()
            .encode("Sistema: responde en castellano. Hola", true)
            .unwrap();
    let mut earlier = Generation::new(&f.hf, GenerationRequest::new(first, 6)).unwrap();
    run(&mut earlier);
    let (tokens, cache) = earlier.into_cache();
    // Longer than the earlier cache's room: the reused (truncated) cache has to grow.
    let second =
        f.hf.tokenizer()
            .encode(
                &format!(
                    "Sistema: responde en castellano. Chao{}",
                    " y adiós".repeat(12)
                ),
                true,
            )
            .unwrap();
    assert!(second.len() > 2 * tokens.len());
    let fresh =
        run(&mut Generation::new(&f.hf, GenerationRequest::new(second.clone(), 6)).unwrap());
    let mut reusing = Generation::new(&f.hf, GenerationRequest::new(second, 6)).unwrap();
    let reused = reusing.reuse(&tokens, cache);
    assert_eq!(
        reused,
        "Sistema: responde en castellano. ".len() + 1,
        "BOS and the shared bytes"
    );
    assert_eq!(run(&mut reusing), fresh);
}

#[test]
fn chat_templates_come_from_either_format() {
    let f = fixture();
    let messages = [ChatMessage::new("user", "¿Cuál es la capital de Chile?")];
    let want = "<|im_start|>user\n¿Cuál es la capital de Chile?<|im_end|>\n<|im_start|>assistant\n";
    assert_eq!(f.hf.chat_prompt(&messages).unwrap(), want);
    assert_eq!(f.gguf_f32.chat_prompt(&messages).unwrap(), want);
    assert_eq!(f.hf.eos_ids(), &[257]);
    assert_eq!(f.gguf_f32.eos_ids(), &[257]);
}

#[test]
fn broken_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = |path: &Path| {
        Model::load(path, &LoadOptions::default())
            .err()
            .unwrap()
            .to_string()
    };
    let missing = err(&dir.path().join("nothing.gguf"));
    assert!(missing.contains("nothing.gguf"), "{missing}");
    let truncated = dir.path().join("cut.gguf");
    let config = tiny_config();
    write_gguf(
        &truncated,
        &config,
        &random_weights(&config, 1),
        GgmlDType::F32,
    )
    .unwrap();
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let message = err(&truncated);
    assert!(message.contains("past the end"), "{message}");
    std::fs::write(dir.path().join("config.json"), "{}").unwrap();
    assert!(err(dir.path()).contains("config.json"));
}

#[test]
fn log_softmax_is_normalized() {
    let lp = log_softmax(&[1.0, 2.0, 3.0]);
    let total: f32 = lp.iter().map(|l| l.exp()).sum();
    assert!((total - 1.0).abs() < 1e-6);
}

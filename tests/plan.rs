//! The plan end to end: prompts, lengths, arrivals and the bytes on the wire.

use serde_json::{json, Map, Value};
use servebench::plan::{
    arrival_times, build, completions_body, frame_request, ArrivalSpec, LengthRanges, Plan,
    PlanConfig, RandomDataset, RandomSpec,
};
use servebench::tokenizer::Tokenizer;

fn config(num_prompts: usize, input_len: usize, range_ratio: f64, prefix_len: usize) -> PlanConfig {
    PlanConfig {
        model: "test-model".into(),
        headers: vec![("Authorization".into(), "Bearer k".into())],
        request_id_prefix: "bench-0badcafe-".into(),
        num_prompts,
        input_len,
        output_len: 64,
        range_ratio,
        prefix_len,
        request_rate: 50.0,
        ..PlanConfig::default()
    }
}

/// A request parsed back from its bytes.
struct Parsed {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Map<String, Value>,
}

fn parse_wire(wire: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(wire).expect("request head parses") {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => panic!("request head incomplete"),
    };
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8(h.value.to_vec()).unwrap(),
            )
        })
        .collect();
    let content_length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().unwrap())
        .expect("Content-Length present");
    assert_eq!(content_length, wire.len() - head_len, "Content-Length");
    let body = match serde_json::from_slice(&wire[head_len..]).expect("body is JSON") {
        Value::Object(m) => m,
        other => panic!("body is not an object: {other}"),
    };
    Parsed {
        method: req.method.unwrap().to_string(),
        path: req.path.unwrap().to_string(),
        headers,
        body,
    }
}

fn prompts(plan: &Plan) -> Vec<String> {
    plan.requests
        .iter()
        .map(|r| {
            parse_wire(&r.wire).body["prompt"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn random_prompts_hit_their_lengths_within_vllm_ranges() {
    let tok = Tokenizer::embedded_default();
    for range_ratio in [0.0, 0.5, 0.9] {
        let prefix_len = 16;
        let cfg = config(48, 200, range_ratio, prefix_len);
        let plan = build(&cfg, &tok).unwrap();
        let ranges =
            LengthRanges::new(200, 64, range_ratio, tok.num_special_tokens_to_add()).unwrap();
        let dataset = RandomDataset::new(
            &RandomSpec {
                input_len: 200,
                output_len: 64,
                range_ratio,
                prefix_len,
                seed: cfg.seed,
            },
            &tok,
        )
        .unwrap();

        let mut mismatch_sum = 0;
        let mut distinct_lengths = std::collections::BTreeSet::new();
        for (i, (req, text)) in plan.requests.iter().zip(prompts(&plan)).enumerate() {
            // The reported length is the tokenizer's count of the text sent.
            assert_eq!(
                tok.count(&text).unwrap(),
                req.prompt_len as usize,
                "request {i}"
            );
            let direct = dataset.prompt(i).unwrap();
            assert_eq!(direct.prompt, text);
            assert_eq!(direct.prompt_len, req.prompt_len as usize);
            mismatch_sum += direct.mismatch;
            // The target length (what was drawn) always lies in vLLM's range; the prompt does
            // too unless the retries ran out, which is what the mismatch counts.
            let target = req.prompt_len as i64 - direct.mismatch - prefix_len as i64;
            assert!(ranges.input.contains(&(target as usize)), "target {target}");
            if direct.mismatch == 0 {
                let body_len = req.prompt_len as usize - prefix_len;
                assert!(
                    ranges.input.contains(&body_len),
                    "r={range_ratio}: {body_len}"
                );
            }
            assert!(ranges.output.contains(&(req.output_len as usize)));
            assert_eq!(
                parse_wire(&req.wire).body["max_tokens"],
                json!(req.output_len)
            );
            distinct_lengths.insert(req.prompt_len);
        }
        assert_eq!(mismatch_sum, plan.length_mismatch_tokens);
        if range_ratio == 0.0 {
            assert_eq!(ranges.input, 200..=200);
        } else {
            assert!(
                distinct_lengths.len() > 5,
                "lengths vary with r={range_ratio}"
            );
        }
    }
}

#[test]
fn most_prompts_hit_the_exact_target() {
    let tok = Tokenizer::embedded_default();
    let plan = build(&config(100, 300, 0.0, 0), &tok).unwrap();
    let exact = plan.requests.iter().filter(|r| r.prompt_len == 300).count();
    assert!(exact >= 95, "only {exact} of 100 prompts have 300 tokens");
    let off: i64 = plan
        .requests
        .iter()
        .map(|r| r.prompt_len as i64 - 300)
        .sum();
    assert_eq!(off, plan.length_mismatch_tokens);
}

#[test]
fn prefix_is_shared_verbatim() {
    let tok = Tokenizer::embedded_default();
    let prefix_len = 40;
    let cfg = config(24, 100, 0.3, prefix_len);
    let dataset = RandomDataset::new(
        &RandomSpec {
            input_len: 100,
            output_len: 64,
            range_ratio: 0.3,
            prefix_len,
            seed: cfg.seed,
        },
        &tok,
    )
    .unwrap();
    assert_eq!(dataset.prefix_ids().len(), prefix_len);
    // A trailing partial UTF-8 sequence decodes to U+FFFD on its own but may be completed by
    // the first body token, so only the text before it is fixed.
    let prefix_text = tok.decode(dataset.prefix_ids()).unwrap();
    let fixed = prefix_text.trim_end_matches('\u{fffd}');
    assert!(fixed.chars().count() > prefix_len / 2, "{fixed:?}");

    let plan = build(&cfg, &tok).unwrap();
    let texts = prompts(&plan);
    for text in &texts {
        assert!(
            text.starts_with(fixed),
            "{text:?} lacks the prefix {fixed:?}"
        );
    }
    // Without a prefix the prompts share (almost) nothing.
    let plain = prompts(&build(&config(24, 100, 0.3, 0), &tok).unwrap());
    let head: String = fixed.chars().take(4).collect();
    assert!(plain.iter().any(|t| !t.starts_with(&head)));
}

#[test]
fn special_ids_never_appear_in_prompts() {
    let tok = Tokenizer::embedded_default();
    assert!(!tok.special_ids().is_empty());
    let plan = build(&config(64, 256, 0.5, 8), &tok).unwrap();
    for text in prompts(&plan) {
        let ids = tok.encode(&text).unwrap();
        assert!(ids.iter().all(|id| !tok.special_ids().contains(id)));
        assert!(!text.contains("<｜"), "special token text in {text:?}");
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let tok = Tokenizer::embedded_default();
    let cfg = config(40, 128, 0.5, 4);
    let a = build(&cfg, &tok).unwrap();
    let b = build(&cfg, &tok).unwrap();
    assert_eq!(a.requests, b.requests);
    assert_eq!(a.length_mismatch_tokens, b.length_mismatch_tokens);

    let other = build(
        &PlanConfig {
            seed: 1,
            ..cfg.clone()
        },
        &tok,
    )
    .unwrap();
    assert_eq!(other.requests.len(), a.requests.len());
    let same_wire = a
        .requests
        .iter()
        .zip(&other.requests)
        .filter(|(x, y)| x.wire == y.wire)
        .count();
    assert_eq!(same_wire, 0);
    assert_ne!(
        a.requests.iter().map(|r| r.arrival_ns).collect::<Vec<_>>(),
        other
            .requests
            .iter()
            .map(|r| r.arrival_ns)
            .collect::<Vec<_>>()
    );

    // A request does not depend on how many others are planned (multi-host slices).
    let fewer = build(
        &PlanConfig {
            num_prompts: 10,
            ..cfg
        },
        &tok,
    )
    .unwrap();
    for (x, y) in fewer.requests.iter().zip(&a.requests) {
        assert_eq!(x.wire, y.wire);
        assert_eq!(x.prompt_len, y.prompt_len);
    }
}

#[test]
fn wire_carries_vllm_headers_and_body() {
    let tok = Tokenizer::embedded_default();
    let mut cfg = config(3, 32, 0.0, 0);
    cfg.headers.push(("X-Request-Id".into(), "user".into()));
    cfg.headers.push(("x-tenant".into(), "t1".into()));
    cfg.extra_body = json!({"temperature": 0.5, "max_tokens": 5})
        .as_object()
        .unwrap()
        .clone();
    let plan = build(&cfg, &tok).unwrap();
    for (i, req) in plan.requests.iter().enumerate() {
        let p = parse_wire(&req.wire);
        assert_eq!(p.method, "POST");
        assert_eq!(p.path, "/v1/completions");
        let names: Vec<&str> = p.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "Host",
                "Content-Type",
                "Content-Length",
                "Authorization",
                "x-tenant",
                "x-request-id"
            ]
        );
        assert_eq!(p.headers[0].1, "127.0.0.1:8000");
        assert_eq!(p.headers[1].1, "application/json");
        assert_eq!(p.headers[3].1, "Bearer k");
        assert_eq!(p.headers[5].1, format!("bench-0badcafe-{i}"));
        let keys: Vec<&str> = p.body.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "model",
                "prompt",
                "repetition_penalty",
                "max_tokens",
                "logprobs",
                "stream",
                "stream_options",
                "ignore_eos",
                "temperature"
            ]
        );
        assert_eq!(p.body["model"], "test-model");
        assert_eq!(p.body["max_tokens"], 5);
        assert_eq!(p.body["ignore_eos"], true);
    }
}

#[test]
fn bad_config_is_an_error_naming_the_flag() {
    let tok = Tokenizer::embedded_default();
    let cases: [(PlanConfig, &str); 5] = [
        (
            PlanConfig {
                range_ratio: 1.0,
                ..config(2, 10, 0.0, 0)
            },
            "--random-range-ratio",
        ),
        (
            PlanConfig {
                request_rate: 0.0,
                ..config(2, 10, 0.0, 0)
            },
            "--request-rate",
        ),
        (
            PlanConfig {
                burstiness: -1.0,
                ..config(2, 10, 0.0, 0)
            },
            "--burstiness",
        ),
        (
            PlanConfig {
                num_prompts: 0,
                ..config(2, 10, 0.0, 0)
            },
            "--num-prompts",
        ),
        (config(2, 0, 0.0, 0), "--random-input-len"),
    ];
    for (cfg, flag) in cases {
        let err = format!("{:#}", build(&cfg, &tok).unwrap_err());
        assert!(err.contains(flag), "{flag}: {err}");
    }
    let mut cfg = config(2, 10, 0.0, 0);
    cfg.headers.push(("x-evil".into(), "a\r\nb: c".into()));
    assert!(build(&cfg, &tok).is_err());
    let mut cfg = config(2, 10, 0.0, 0);
    cfg.request_id_prefix = "bad\n".into();
    assert!(build(&cfg, &tok).is_err());
}

fn gap_cv(times: &[u64]) -> f64 {
    let mut prev = 0u64;
    let gaps: Vec<f64> = times
        .iter()
        .map(|&t| {
            let g = (t - prev) as f64;
            prev = t;
            g
        })
        .collect();
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
    var.sqrt() / mean
}

#[test]
fn arrivals_follow_vllm() {
    let spec = |request_rate, burstiness| ArrivalSpec {
        request_rate,
        burstiness,
        seed: 7,
        ramp_up: None,
    };
    assert_eq!(
        arrival_times(100, &spec(f64::INFINITY, 1.0)).unwrap(),
        vec![0; 100]
    );
    assert_eq!(
        arrival_times(100, &spec(f64::INFINITY, f64::INFINITY)).unwrap(),
        vec![0; 100]
    );

    let even = arrival_times(1000, &spec(8.0, f64::INFINITY)).unwrap();
    for (i, t) in even.iter().enumerate() {
        assert_eq!(*t, (i as u64 + 1) * 125_000_000);
    }

    for (burstiness, expected_cv) in [(1.0, 1.0_f64), (4.0, 0.5), (0.25, 2.0)] {
        let t = arrival_times(10_000, &spec(100.0, burstiness)).unwrap();
        assert_eq!(t.len(), 10_000);
        assert_eq!(
            *t.last().unwrap(),
            100_000_000_000,
            "last arrival is N/rate"
        );
        assert!(t.windows(2).all(|w| w[0] <= w[1]), "non-decreasing");
        assert!(t[0] > 0, "the first request waits one gap, as in vLLM");
        let cv = gap_cv(&t);
        let tolerance = 0.05 * expected_cv.max(1.0);
        assert!(
            (cv - expected_cv).abs() < tolerance,
            "burstiness {burstiness}: CV {cv}, expected {expected_cv}"
        );
    }
}

#[test]
fn body_round_trips_awkward_prompts_and_merges_extra_body() {
    let prompt = "say \"hi\" \\ back\nthen\ttab \u{1} ünïcödé 漢字 🦀 </s> \u{2028}";
    let body = completions_body("org/model \"x\"", prompt, 128, false, &Map::new());
    let parsed: Map<String, Value> = serde_json::from_slice(&body).unwrap();
    assert_eq!(parsed["prompt"], prompt);
    assert_eq!(parsed["model"], "org/model \"x\"");
    assert!(!parsed.contains_key("ignore_eos"));
    assert!(!body.contains(&b'\n'), "newlines are escaped");

    let extra = json!({"stream": false, "top_k": 1, "stop": ["\n"], "logprobs": 2})
        .as_object()
        .unwrap()
        .clone();
    let body = completions_body("m", prompt, 128, true, &extra);
    let parsed: Map<String, Value> = serde_json::from_slice(&body).unwrap();
    let keys: Vec<&str> = parsed.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "model",
            "prompt",
            "repetition_penalty",
            "max_tokens",
            "logprobs",
            "stream",
            "stream_options",
            "ignore_eos",
            "top_k",
            "stop"
        ]
    );
    assert_eq!(parsed["stream"], false);
    assert_eq!(parsed["logprobs"], 2);
    assert_eq!(parsed["stop"], json!(["\n"]));
    assert_eq!(parsed["repetition_penalty"], 1.0);
}

#[test]
fn framed_requests_parse_and_reject_injection() {
    let body = completions_body("m", "héllo\r\n", 4, true, &Map::new());
    let headers = vec![
        ("Authorization".to_string(), "Bearer abc".to_string()),
        ("x-request-id".to_string(), "bench-1".to_string()),
    ];
    let wire = frame_request("POST", "/v1/completions", "example:80", &headers, &body).unwrap();
    let p = parse_wire(&wire);
    assert_eq!(p.body["prompt"], "héllo\r\n");
    assert_eq!(p.headers.len(), 5);
    assert!(wire.starts_with(b"POST /v1/completions HTTP/1.1\r\nHost: example:80\r\n"));

    for (name, value) in [
        ("x-a", "1\r\nx-b: 2"),
        ("x-a", "1\n"),
        ("x-a\r\n", "1"),
        ("x-a", "\r"),
    ] {
        let bad = vec![(name.to_string(), value.to_string())];
        let err = frame_request("POST", "/v1/completions", "h", &bad, b"{}").unwrap_err();
        assert!(err.to_string().contains("header"), "{err}");
    }
}

#[test]
fn lora_adapters_are_assigned_round_robin_or_from_the_seed() {
    let tok = Tokenizer::embedded_default();
    let models = |cfg: &PlanConfig| -> Vec<String> {
        let plan = build(cfg, &tok).unwrap();
        plan.requests
            .iter()
            .map(|r| {
                parse_wire(&r.wire).body["model"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let mut cfg = config(12, 16, 0.0, 0);
    cfg.lora_modules = vec!["a".into(), "b".into(), "c".into()];
    cfg.lora_round_robin = true;
    let rr = models(&cfg);
    assert_eq!(&rr[..4], ["a", "b", "c", "a"]);
    cfg.lora_round_robin = false;
    let random = models(&cfg);
    assert_eq!(
        random,
        models(&cfg),
        "random assignment is reproducible for a seed"
    );
    assert!(random.iter().all(|m| ["a", "b", "c"].contains(&m.as_str())));
    assert!(random.iter().any(|m| m != &random[0]), "{random:?}");
    cfg.lora_modules.clear();
    assert!(models(&cfg).iter().all(|m| m == "test-model"));
}

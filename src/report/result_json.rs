//! `--save-result` JSON: vLLM's keys in vLLM's order, written the way Python's `json.dump`
//! writes them (", " and ": " separators, `repr` floats), atomically.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::pyfmt::{percentile_word, py_float};
use super::{Figures, RunInfo};
use crate::record::RequestRecord;

/// Per-request arrays vLLM drops unless `--save-detailed` (it keeps `latencies` and
/// `queue_times`, a quirk users' scripts rely on).
const DETAILED_ONLY: [&str; 7] = [
    "input_lens",
    "output_lens",
    "start_times",
    "ttfts",
    "itls",
    "generated_texts",
    "errors",
];

/// Build the result object. `date` is `%Y%m%d-%H%M%S`; `t0_mono_s` is the run epoch on
/// CLOCK_MONOTONIC in seconds (what Python's perf_counter reads), for `start_times`.
pub fn build(
    info: &RunInfo,
    f: &Figures,
    records: &[RequestRecord],
    texts: &[String],
    date: &str,
    t0_mono_s: f64,
    detailed: bool,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("date".into(), json!(date));
    m.insert("endpoint_type".into(), json!(info.backend));
    m.insert("backend".into(), json!(info.backend));
    m.insert("label".into(), json!(info.label));
    m.insert("model_id".into(), json!(info.model_id));
    m.insert("tokenizer_id".into(), json!(info.tokenizer_id));
    m.insert("num_prompts".into(), json!(info.num_prompts));
    for (k, v) in &info.metadata {
        m.insert(k.clone(), json!(v));
    }
    m.insert(
        "request_rate".into(),
        if info.request_rate.is_finite() {
            json!(info.request_rate)
        } else {
            json!("inf")
        },
    );
    m.insert("burstiness".into(), json!(info.burstiness));
    m.insert("max_concurrency".into(), json!(info.max_concurrency));
    if let Some(r) = &info.ramp_up {
        m.insert("ramp_up_strategy".into(), json!(r.strategy_name()));
        m.insert("ramp_up_start_rps".into(), rps_value(r.start_rps));
        m.insert("ramp_up_end_rps".into(), rps_value(r.end_rps));
    }

    let secs = |ns: u64| ns as f64 / 1e9;
    m.insert("duration".into(), json!(f.duration_s));
    m.insert("completed".into(), json!(f.completed));
    m.insert("failed".into(), json!(f.failed));
    m.insert("total_input_tokens".into(), json!(f.total_input));
    m.insert("total_output_tokens".into(), json!(f.total_output));
    m.insert("request_throughput".into(), json!(f.request_throughput));
    m.insert(
        "request_goodput".into(),
        json!(f.goodput.as_ref().map(|g| g.request_goodput)),
    );
    m.insert("output_throughput".into(), json!(f.output_throughput));
    m.insert(
        "total_token_throughput".into(),
        json!(f.total_token_throughput),
    );
    let col = |g: &dyn Fn(&RequestRecord) -> Value| -> Value {
        Value::Array(records.iter().map(g).collect())
    };
    m.insert("input_lens".into(), col(&|r| json!(r.prompt_len)));
    m.insert(
        "output_lens".into(),
        col(&|r| json!(if r.success { r.output_tokens } else { 0 })),
    );
    m.insert("ttfts".into(), col(&|r| json!(secs(r.ttft_ns))));
    m.insert(
        "itls".into(),
        col(&|r| Value::Array(r.itl_ns.iter().map(|&g| json!(secs(g))).collect())),
    );
    m.insert("latencies".into(), col(&|r| json!(secs(r.latency_ns))));
    m.insert(
        "start_times".into(),
        col(&|r| json!(t0_mono_s + secs(r.start_ns))),
    );
    m.insert("queue_times".into(), col(&|r| json!(secs(r.queue_ns()))));
    m.insert("generated_texts".into(), json!(texts));
    m.insert(
        "errors".into(),
        col(&|r| json!(r.error.as_deref().unwrap_or(""))),
    );
    m.insert(
        "max_output_tokens_per_s".into(),
        json!(f.max_output_tokens_per_s),
    );
    m.insert(
        "max_concurrent_requests".into(),
        json!(f.max_concurrent_requests),
    );
    m.insert("rtfx".into(), json!(0.0));
    if let Some(sd) = &f.spec_decode {
        m.insert(
            "spec_decode_acceptance_rate".into(),
            json!(sd.acceptance_rate),
        );
        m.insert(
            "spec_decode_acceptance_length".into(),
            json!(sd.acceptance_length),
        );
        m.insert("spec_decode_num_drafts".into(), json!(sd.drafts));
        m.insert("spec_decode_draft_tokens".into(), json!(sd.draft_tokens));
        m.insert(
            "spec_decode_accepted_tokens".into(),
            json!(sd.accepted_tokens),
        );
        m.insert(
            "spec_decode_per_position_acceptance_rates".into(),
            json!(sd.per_position),
        );
    }
    for b in &f.blocks {
        let k = b.key.key();
        let s = &b.summary;
        m.insert(format!("mean_{k}_ms"), json!(s.mean_ms));
        m.insert(format!("median_{k}_ms"), json!(s.median_ms));
        m.insert(format!("std_{k}_ms"), json!(s.std_ms));
        for &(p, v) in &s.percentiles_ms {
            m.insert(format!("p{}_{k}_ms", percentile_word(p)), json!(v));
        }
    }
    if !detailed {
        for k in DETAILED_ONLY {
            m.shift_remove(k);
        }
    }
    // Which tokenizer built the prompts and whether the server recounted them (issue 10).
    for (k, v) in &info.tokenizer_extra {
        m.insert(k.clone(), v.clone());
    }
    // servebench's own, after vLLM's: why requests failed (issue 6), in every file (vLLM's
    // `errors` list stays a detailed-only key); every category is present, zeros included.
    let failures = super::failures::Failures::of(records);
    m.insert("failures_by_category".into(), failures.by_category_json());
    m.insert("first_errors".into(), failures.first_errors_json());
    // servebench's own, last: each request's planned arrival, for the HTML report's send lag.
    if detailed {
        m.insert(
            super::html::ARRIVALS_KEY.into(),
            col(&|r| json!(t0_mono_s + secs(r.arrival_ns))),
        );
    }
    m
}

/// vLLM's file name: `{label}-{rate}qps[-concurrency{N}]-{model basename}-{date}.json`,
/// or `--result-filename`, under `--result-dir` if given.
pub fn file_name(
    info: &RunInfo,
    result_filename: Option<&str>,
    result_dir: Option<&str>,
    date: &str,
) -> PathBuf {
    let name = match result_filename {
        Some(n) => n.to_string(),
        None => {
            let label = info.label.as_deref().unwrap_or(&info.backend);
            let model = info.model_id.rsplit('/').next().unwrap_or(&info.model_id);
            let conc = info
                .max_concurrency
                .map(|c| format!("-concurrency{c}"))
                .unwrap_or_default();
            match &info.ramp_up {
                Some(r) => format!(
                    "{label}-ramp-up-{}-{}qps-{}qps{conc}-{model}-{date}.json",
                    r.strategy_name(),
                    rps_value(r.start_rps),
                    rps_value(r.end_rps)
                ),
                None => format!(
                    "{label}-{}qps{conc}-{model}-{date}.json",
                    py_float(info.request_rate)
                ),
            }
        }
    };
    match result_dir {
        Some(d) => Path::new(d).join(name),
        None => PathBuf::from(name),
    }
}

/// vLLM's ramp-up rates are ints: written as such when they are whole.
fn rps_value(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

/// Serialise like Python's `json.dump(obj, f)`.
pub fn to_python_json(v: &Value) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    v.serialize(&mut ser)
        .expect("serialising a Value into memory cannot fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Write (or with `append`, add a line to) the result file. A new file is written to a
/// temporary name in the same directory and renamed, so a crash or a full disk never leaves
/// half a result behind; an appended line goes out in one write.
pub fn write(path: &Path, v: &Value, append: bool) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let text = to_python_json(v);
    let text = crate::secrets::scrub(&text);
    if append {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let mut line = Vec::with_capacity(text.len() + 1);
        if f.metadata()?.len() != 0 {
            line.push(b'\n');
        }
        line.extend_from_slice(text.as_bytes());
        f.write_all(&line)?;
        return f.sync_all();
    }
    write_atomically(path, text.as_bytes())
}

/// Write `bytes` to a temporary file beside `path`, then rename it into place; the temporary
/// file is removed if anything fails.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn write_f64<W: ?Sized + Write>(&mut self, w: &mut W, v: f64) -> io::Result<()> {
        // json.dump writes inf/nan as bare Infinity/NaN; vLLM avoids them, and so do we.
        let s = if v.is_finite() {
            py_float(v)
        } else if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
        w.write_all(s.as_bytes())
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // json.dump's default ensure_ascii=True: non-ASCII as \uXXXX (UTF-16 units).
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if c.is_ascii() {
                continue;
            }
            w.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                write!(w, "\\u{u:04x}")?;
            }
            start = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_whole_files_and_leave_no_temporary() {
        let dir = std::env::temp_dir().join(format!("servebench-rj-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub").join("r.json");
        write(&path, &json!({"a": 1}), false).unwrap();
        write(&path, &json!({"a": 2}), false).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), r#"{"a": 2}"#);
        write(&path, &json!({"b": 3}), true).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\": 2}\n{\"b\": 3}"
        );
        let names: Vec<_> = std::fs::read_dir(dir.join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["r.json"]);
        // A rename onto a directory fails: the temporary file goes with it.
        std::fs::create_dir_all(dir.join("d.json")).unwrap();
        assert!(write(&dir.join("d.json"), &json!({}), false).is_err());
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn python_style_output() {
        let v = json!({"a": 1, "b": [1.0, 0.5, "x"], "c": null, "d": {"e": 1e-7}, "f": "é😀"});
        assert_eq!(
            to_python_json(&v),
            r#"{"a": 1, "b": [1.0, 0.5, "x"], "c": null, "d": {"e": 1e-07}, "f": "\u00e9\ud83d\ude00"}"#
        );
    }
}

//! Reading dataset files with errors that name the file, the line and the field, and the
//! row-order helpers every file dataset shares (shuffle, oversample).

use std::path::Path;

use anyhow::{anyhow, bail, Context};
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{Map, Value};

use crate::plan::seeded::{self, Stream};

/// The whole file as UTF-8 text.
pub fn read_text(path: &str, dataset: &str) -> anyhow::Result<String> {
    let p = Path::new(path);
    if !p.exists() {
        bail!("--dataset-path {path}: no such file (--dataset-name {dataset})");
    }
    if p.is_dir() {
        bail!("--dataset-path {path}: is a directory; --dataset-name {dataset} reads one file");
    }
    let bytes = std::fs::read(p).with_context(|| format!("--dataset-path {path}: cannot read"))?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
        anyhow!("{path}:{line}: not UTF-8 text (byte {at}); the {dataset} dataset must be UTF-8")
    })
}

/// A whole-file JSON document; a syntax error names its line and column.
pub fn read_json(path: &str, dataset: &str) -> anyhow::Result<Value> {
    let text = read_text(path, dataset)?;
    serde_json::from_str(&text).map_err(|e| {
        anyhow!(
            "{path}:{}:{}: not valid JSON ({e}); the {dataset} dataset is one JSON document",
            e.line(),
            e.column()
        )
    })
}

/// One row of a JSONL file, with where it came from.
pub struct Row<'f> {
    pub path: &'f str,
    /// 1-based line number in the file.
    pub line: usize,
    pub obj: Map<String, Value>,
}

impl Row<'_> {
    /// An error about `field` on this row.
    pub fn error(&self, field: &str, what: &str) -> anyhow::Error {
        anyhow!("{}:{}: field \"{field}\" {what}", self.path, self.line)
    }

    pub fn get(&self, field: &str) -> Option<&Value> {
        self.obj.get(field)
    }

    /// A required string field.
    pub fn str(&self, field: &str) -> anyhow::Result<&str> {
        match self.obj.get(field) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => {
                Err(self.error(field, &format!("must be a string, got {}", kind(other))))
            }
            None => Err(self.error(field, "is missing")),
        }
    }

    /// A required non-negative integer field (integral floats such as 12.0 are accepted).
    pub fn uint(&self, field: &str) -> anyhow::Result<u64> {
        match self.obj.get(field) {
            Some(v) => as_uint(v).ok_or_else(|| {
                self.error(field, &format!("must be a non-negative integer, got {v}"))
            }),
            None => Err(self.error(field, "is missing")),
        }
    }

    /// An optional non-negative integer field (absent or null: None).
    pub fn opt_uint(&self, field: &str) -> anyhow::Result<Option<u64>> {
        match self.obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.uint(field).map(Some),
        }
    }

    /// A required finite number.
    pub fn num(&self, field: &str) -> anyhow::Result<f64> {
        match self.obj.get(field) {
            Some(Value::Number(n)) => n
                .as_f64()
                .filter(|f| f.is_finite())
                .ok_or_else(|| self.error(field, "must be a finite number")),
            Some(other) => {
                Err(self.error(field, &format!("must be a number, got {}", kind(other))))
            }
            None => Err(self.error(field, "is missing")),
        }
    }
}

fn as_uint(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < u64::MAX as f64)
                .map(|f| f as u64)
        }),
        _ => None,
    }
}

/// What a JSON value is, for error messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Every non-blank line of a JSONL file as an object. The first bad line is the error.
pub fn read_jsonl<'f>(path: &'f str, dataset: &str) -> anyhow::Result<Vec<Row<'f>>> {
    let text = read_text(path, dataset)?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line).map_err(|e| {
            anyhow!(
                "{path}:{line_no}: not valid JSON ({e}); the {dataset} dataset is JSON Lines, \
                 one object per line"
            )
        })?;
        match value {
            Value::Object(obj) => rows.push(Row {
                path,
                line: line_no,
                obj,
            }),
            other => bail!(
                "{path}:{line_no}: expected a JSON object, got {}; the {dataset} dataset is \
                 JSON Lines, one object per line",
                kind(&other)
            ),
        }
    }
    if rows.is_empty() {
        bail!("--dataset-path {path}: the file has no rows (--dataset-name {dataset})");
    }
    Ok(rows)
}

/// `items` in the order the dataset takes them: shuffled with the seed unless `keep_order`.
pub fn ordered<T>(mut items: Vec<T>, seed: u64, keep_order: bool) -> Vec<T> {
    if !keep_order {
        items.shuffle(&mut seeded::rng(seed, Stream::Shuffle, 0));
    }
    items
}

/// vLLM's oversampling: with fewer samples than `--num-prompts`, draw more (with
/// replacement) from those there are, unless `--no-oversample`; with more, keep the first
/// `n`. Says on stderr what it did.
pub fn fit_count<T: Clone>(
    mut samples: Vec<T>,
    n: usize,
    seed: u64,
    no_oversample: bool,
    dataset: &str,
) -> Vec<T> {
    if samples.len() >= n {
        samples.truncate(n);
        return samples;
    }
    if no_oversample || samples.is_empty() {
        eprintln!(
            "WARNING: --dataset-name {dataset}: only {} of the {n} requests asked for (--no-oversample, or too few rows passed the filters)",
            samples.len()
        );
        return samples;
    }
    let have = samples.len();
    let mut rng = seeded::rng(seed, Stream::Shuffle, 1);
    for _ in have..n {
        let k = rng.gen_range(0..have);
        samples.push(samples[k].clone());
    }
    eprintln!("Oversampled {dataset}: {have} rows drawn again up to {n} requests");
    samples
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp_file(name: &str, body: &[u8]) -> String {
        let dir = std::env::temp_dir().join(format!("servebench-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(body)
            .unwrap();
        path.to_string_lossy().into_owned()
    }

    #[test]
    fn jsonl_errors_name_file_line_and_field() {
        let p = temp_file("a.jsonl", b"{\"prompt\": \"hi\"}\n\n{\"prompt\": 3}\n");
        let rows = read_jsonl(&p, "custom").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].line, 3);
        let e = rows[1].str("prompt").unwrap_err().to_string();
        assert!(
            e.contains(&format!("{p}:3")) && e.contains("\"prompt\""),
            "{e}"
        );
        let e = rows[0].uint("output_tokens").unwrap_err().to_string();
        assert!(e.contains("is missing") && e.contains(":1:"), "{e}");

        let bad = temp_file("b.jsonl", b"{\"prompt\": \"hi\"}\n{oops\n");
        let e = read_jsonl(&bad, "custom").err().unwrap().to_string();
        assert!(e.contains(&format!("{bad}:2:")), "{e}");
        let arr = temp_file("c.jsonl", b"[1, 2]\n");
        let e = read_jsonl(&arr, "custom").err().unwrap().to_string();
        assert!(e.contains("expected a JSON object"), "{e}");
        let empty = temp_file("d.jsonl", b"\n \n");
        let e = read_jsonl(&empty, "custom").err().unwrap().to_string();
        assert!(e.contains("no rows"), "{e}");
        let e = read_jsonl("/no/such/file.jsonl", "custom")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("no such file"), "{e}");
    }

    #[test]
    fn json_and_utf8_errors_name_the_line() {
        let p = temp_file("e.json", b"[\n  {\"a\": 1},\n  {\"a\": }\n]");
        let e = read_json(&p, "sharegpt").unwrap_err().to_string();
        assert!(e.contains(&format!("{p}:3:")), "{e}");
        let p = temp_file("f.txt", b"ok\nok\n\xff\n");
        let e = read_text(&p, "sonnet").unwrap_err().to_string();
        assert!(e.contains(&format!("{p}:3:")) && e.contains("UTF-8"), "{e}");
    }

    #[test]
    fn integral_floats_count_as_integers() {
        let p = temp_file("g.jsonl", b"{\"n\": 12.0, \"m\": -1, \"f\": 1.5}\n");
        let rows = read_jsonl(&p, "t").unwrap();
        assert_eq!(rows[0].uint("n").unwrap(), 12);
        assert!(rows[0].uint("m").is_err());
        assert!(rows[0].uint("f").is_err());
        assert_eq!(rows[0].opt_uint("absent").unwrap(), None);
    }

    #[test]
    fn oversampling_fills_from_existing_rows_deterministically() {
        let a = fit_count(vec![1, 2, 3], 10, 7, false, "t");
        assert_eq!(a.len(), 10);
        assert_eq!(&a[..3], &[1, 2, 3]);
        assert!(a.iter().all(|x| (1..=3).contains(x)));
        assert_eq!(a, fit_count(vec![1, 2, 3], 10, 7, false, "t"));
        assert_eq!(fit_count(vec![1, 2, 3], 10, 7, true, "t"), vec![1, 2, 3]);
        assert_eq!(fit_count(vec![1, 2, 3], 2, 7, false, "t"), vec![1, 2]);
        let shuffled = ordered((0..50).collect::<Vec<_>>(), 3, false);
        assert_ne!(shuffled, (0..50).collect::<Vec<_>>());
        assert_eq!(
            ordered((0..5).collect::<Vec<_>>(), 3, true),
            vec![0, 1, 2, 3, 4]
        );
    }
}

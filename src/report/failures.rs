//! Why requests failed: a count per cause category and the most frequent distinct error
//! messages, for the console's "Failures" section and the result file's
//! `failures_by_category` / `first_errors` keys.

use serde_json::{json, Map, Value};

use crate::record::{FailureKind, RequestRecord};

/// How many distinct messages the console shows, and the result file keeps.
pub const CONSOLE_MESSAGES: usize = 5;
pub const FILE_MESSAGES: usize = 10;

/// The key of failed requests that carry no category (none should).
pub const UNCATEGORISED: &str = "uncategorised";

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Failures {
    /// Every category of [`FailureKind::ALL`], in that order, with its count (zeros kept).
    pub by_category: Vec<(FailureKind, usize)>,
    /// Failed requests without a category.
    pub uncategorised: usize,
    /// Distinct error messages with their counts, most frequent first (ties: first seen
    /// first), at most [`FILE_MESSAGES`].
    pub first_errors: Vec<(String, usize)>,
    pub failed: usize,
}

impl Failures {
    /// From the sent requests' records (requests never sent are left out by the caller).
    pub fn of(records: &[RequestRecord]) -> Failures {
        let mut counts = [0usize; FailureKind::ALL.len()];
        let mut uncategorised = 0;
        // Distinct messages in first-seen order; runs have few distinct messages, so a
        // linear look-up is cheap and keeps the order stable.
        let mut messages: Vec<(String, usize)> = Vec::new();
        let mut failed = 0;
        for r in records.iter().filter(|r| !r.success && !r.not_sent) {
            failed += 1;
            match r.failure {
                Some(kind) => counts[kind as usize] += 1,
                None => uncategorised += 1,
            }
            let msg = r.error.as_deref().unwrap_or("");
            match messages.iter_mut().find(|(m, _)| m == msg) {
                Some((_, n)) => *n += 1,
                None => messages.push((msg.to_string(), 1)),
            }
        }
        // Stable: equal counts keep their first-seen order.
        messages.sort_by_key(|m| std::cmp::Reverse(m.1));
        messages.truncate(FILE_MESSAGES);
        Failures {
            by_category: FailureKind::ALL
                .iter()
                .map(|&k| (k, counts[k as usize]))
                .collect(),
            uncategorised,
            first_errors: messages,
            failed,
        }
    }

    /// `failures_by_category`: every category with its count, zeros included, so scripts
    /// can read any key; `uncategorised` only when some failure has no category.
    pub fn by_category_json(&self) -> Value {
        let mut m = Map::new();
        for &(k, n) in &self.by_category {
            m.insert(k.as_str().into(), json!(n));
        }
        if self.uncategorised > 0 {
            m.insert(UNCATEGORISED.into(), json!(self.uncategorised));
        }
        Value::Object(m)
    }

    /// `first_errors`: `[{"error": message, "count": n}, ...]`, most frequent first.
    pub fn first_errors_json(&self) -> Value {
        Value::Array(
            self.first_errors
                .iter()
                .map(|(m, n)| json!({"error": m, "count": n}))
                .collect(),
        )
    }
}

/// The console section; empty when nothing failed and nothing was retried.
pub fn render(f: &Failures, keepalive_retries: u64) -> String {
    use std::fmt::Write;
    if f.failed == 0 && keepalive_retries == 0 {
        return String::new();
    }
    let mut o = String::new();
    let _ = writeln!(o, "{}", super::console::center(" Failures ", '='));
    let row = |o: &mut String, label: &str, v: usize| {
        let _ = writeln!(o, "{label:<40} {v:<10}");
    };
    row(&mut o, "Failed requests:", f.failed);
    for &(k, n) in f.by_category.iter().filter(|(_, n)| *n > 0) {
        row(&mut o, &format!("  {}:", k.as_str()), n);
    }
    if f.uncategorised > 0 {
        row(&mut o, &format!("  {UNCATEGORISED}:"), f.uncategorised);
    }
    row(
        &mut o,
        "Keep-alive retries (not failures):",
        keepalive_retries as usize,
    );
    for (msg, n) in f.first_errors.iter().take(CONSOLE_MESSAGES) {
        let _ = writeln!(o, "{n:>6} x {}", one_line(&crate::secrets::scrub(msg), 200));
    }
    let _ = writeln!(o, "{}", "=".repeat(50));
    o
}

/// `msg` on one line, at most `max` characters.
fn one_line(msg: &str, max: usize) -> String {
    let flat: String = msg
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match flat.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(kind: Option<FailureKind>, msg: &str) -> RequestRecord {
        RequestRecord {
            failure: kind,
            error: Some(msg.into()),
            ..Default::default()
        }
    }

    #[test]
    fn counts_each_failure_once_by_category_and_message() {
        let ok = RequestRecord {
            success: true,
            ..Default::default()
        };
        let unsent = RequestRecord {
            not_sent: true,
            ..Default::default()
        };
        let records = vec![
            ok,
            failed(Some(FailureKind::Reset), "reset a"),
            failed(Some(FailureKind::Timeout), "slow"),
            failed(Some(FailureKind::Timeout), "slow"),
            failed(Some(FailureKind::Reset), "reset b"),
            failed(None, "odd"),
            unsent,
        ];
        let f = Failures::of(&records);
        assert_eq!(f.failed, 5);
        let count = |k| f.by_category.iter().find(|(c, _)| *c == k).unwrap().1;
        assert_eq!(count(FailureKind::Reset), 2);
        assert_eq!(count(FailureKind::Timeout), 2);
        assert_eq!(count(FailureKind::Connect), 0);
        assert_eq!(f.uncategorised, 1);
        assert_eq!(f.by_category.len(), FailureKind::ALL.len());
        assert_eq!(
            f.first_errors,
            [
                ("slow".to_string(), 2),
                ("reset a".to_string(), 1),
                ("reset b".to_string(), 1),
                ("odd".to_string(), 1)
            ]
        );
        let j = f.by_category_json();
        assert_eq!(j["timeout"], 2);
        assert_eq!(j["connect"], 0);
        assert_eq!(j[UNCATEGORISED], 1);
        assert_eq!(f.first_errors_json()[0]["count"], 2);
        let text = render(&f, 3);
        assert!(text.contains("Failures"), "{text}");
        assert!(text.contains("  timeout:"), "{text}");
        assert!(!text.contains("  connect:"), "{text}");
        let retries = text
            .lines()
            .find(|l| l.starts_with("Keep-alive retries (not failures):"))
            .unwrap();
        assert_eq!(retries.split_whitespace().last(), Some("3"), "{text}");
        assert!(text.contains("     2 x slow"), "{text}");
    }

    #[test]
    fn silent_when_all_went_well_and_capped_to_ten_messages() {
        assert_eq!(render(&Failures::of(&[]), 0), "");
        let many: Vec<_> = (0..30)
            .map(|i| failed(Some(FailureKind::Protocol), &format!("m{i}\nline")))
            .collect();
        let f = Failures::of(&many);
        assert_eq!(f.first_errors.len(), FILE_MESSAGES);
        let text = render(&f, 0);
        assert_eq!(text.matches(" x m").count(), CONSOLE_MESSAGES);
        assert!(text.contains("1 x m0 line"), "{text}");
    }
}

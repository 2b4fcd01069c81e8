//! The calibration workload: a fixed prompt, a fixed output length and evenly spaced arrivals
//! that hold a given number of streams open. Built directly, without a tokenizer, so even the
//! 10,000-stream step is ready in milliseconds.

use std::time::Duration;

use serde_json::Map;

use crate::plan::{completions_body, frame_request, Plan, PlannedRequest};

pub struct Workload {
    pub streams: usize,
    /// Requests per stream over the step.
    pub waves: usize,
    pub prompt_words: usize,
    pub output_len: u32,
    /// How long one request lasts at the server (TTFT + (output_len − 1) × ITL); zero sends
    /// every request at once.
    pub request_time: Duration,
    pub host_header: String,
    pub request_id_prefix: String,
}

impl Workload {
    pub fn requests(&self) -> usize {
        (self.streams * self.waves).max(1)
    }

    pub fn build(&self) -> anyhow::Result<Plan> {
        let prompt = "hello ".repeat(self.prompt_words);
        let body = completions_body(
            "servebench-mock",
            prompt.trim_end(),
            self.output_len,
            true,
            &Map::new(),
        );
        // Arrivals 5% sparser than the streams can absorb, so the concurrency cap (the number
        // of streams) only binds when the client or the server falls behind.
        let gap_ns = self.request_time.as_nanos() as f64 * 1.05 / self.streams.max(1) as f64;
        let mut requests = Vec::with_capacity(self.requests());
        for i in 0..self.requests() {
            let headers = [(
                "x-request-id".to_string(),
                format!("{}{i}", self.request_id_prefix),
            )];
            let wire = frame_request(
                "POST",
                "/v1/completions",
                &self.host_header,
                &headers,
                &body,
            )?;
            requests.push(PlannedRequest {
                prompt_len: self.prompt_words as u32,
                output_len: self.output_len,
                arrival_ns: (i as f64 * gap_ns) as u64,
                wire: wire.into_boxed_slice(),
                turn: 0,
                live: None,
            });
        }
        Ok(Plan {
            api: crate::backend::Api::Completions,
            streamed: true,
            requests,
            length_mismatch_tokens: 0,
            warmup: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_hold_the_stream_count() {
        let w = Workload {
            streams: 4,
            waves: 3,
            prompt_words: 8,
            output_len: 16,
            request_time: Duration::from_millis(100),
            host_header: "127.0.0.1:1".into(),
            request_id_prefix: "c-".into(),
        };
        let plan = w.build().unwrap();
        assert_eq!(plan.requests.len(), 12);
        // Request 4 starts one request time (plus 5%) after request 0: four in flight.
        assert_eq!(plan.requests[4].arrival_ns, 105_000_000);
        let wire = String::from_utf8(plan.requests[7].wire.to_vec()).unwrap();
        assert!(wire.contains("x-request-id: c-7\r\n"));
        assert!(wire.contains("\"max_tokens\":16"));
    }
}

//! The console report of `calibrate`.

use std::fmt::Write;

use super::{Report, StepResult};

pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n=========== Client calibration (servebench calibrate) ===========\n\
         Client on CPUs {:?}, mock on CPUs {:?}; mock TTFT {} ms, ITL {} ms, {} tokens per response.\n\
         Errors are the client's figure minus the mock's own (its truth log), same clock. The TTFT \
         error shown is the client's share; \"+ server\" is the mean time requests then waited \
         between leaving the client and being read by the mock (the server's backlog), which a \
         client rightly counts in TTFT but the mock's own TTFT does not.",
        r.client_cpus, r.mock_cpus, r.ttft_ms, r.itl_ms, r.output_len
    );
    let _ = writeln!(
        s,
        "{:>8} {:>10} {:>17} {:>10} {:>17} {:>11} {:>12} {:>9} {:>9} {:>9} {:>8} {:>7}",
        "streams",
        "events/s",
        "TTFT err mean/p99",
        "+ server",
        "ITL err mean/p99",
        "late p99",
        "send lag p99",
        "CPU/event",
        "CPU/req",
        "RSS/strm",
        "mock CPU",
        "budget"
    );
    let _ = writeln!(
        s,
        "{:>8} {:>10} {:>17} {:>10} {:>17} {:>11} {:>12} {:>9} {:>9} {:>9} {:>8} {:>7}",
        "", "", "(ms)", "(ms)", "(ms)", "(ms)", "(µs)", "(µs)", "(µs)", "(KiB)", "(%)", ""
    );
    for step in &r.steps {
        let _ = writeln!(
            s,
            "{}",
            row(step, if step.within_budget { "ok" } else { "OVER" })
        );
    }
    if let Some(c) = &r.ceiling {
        let _ = writeln!(
            s,
            "\nRequest-rate ceiling (zero-latency mock, 16 tokens, {} streams, all sent at once):\n\
             {:.0} requests/s; client CPU {:.1} µs per request ({:.0}% of {} core{}), mock CPU {:.0}% of {} core{}{}.",
            c.streams,
            c.requests_per_s,
            c.client_cpu_us_per_request,
            pct(c.client_cpu_s, c.duration_s, c.client_cores),
            c.client_cores,
            plural(c.client_cores),
            pct(c.mock_cpu_s, c.duration_s, c.mock_cores),
            c.mock_cores,
            plural(c.mock_cores),
            limiter(c),
        );
    }
    let b = &r.budget;
    let _ = writeln!(
        s,
        "\nBudget: client's share of the TTFT error ≤ {} ms mean and ≤ {} ms p99, |mean ITL error| ≤ {} ms, no failures.",
        b.ttft_mean_ms, b.ttft_p99_ms, b.itl_mean_ms
    );
    match r.max_streams_within_budget {
        Some(n) => {
            let _ = writeln!(
                s,
                "Within budget up to {n} concurrent streams on this host."
            );
        }
        None => {
            let _ = writeln!(s, "No step was within budget on this host.");
        }
    }
    s.push_str("=================================================================\n");
    s
}

fn row(st: &StepResult, verdict: &str) -> String {
    let ms = |ns: f64| ns / 1e6;
    let failed = if st.failed > 0 {
        format!(" ({} failed)", st.failed)
    } else {
        String::new()
    };
    format!(
        "{:>8} {:>10.0} {:>17} {:>10.3} {:>17} {:>11.3} {:>12.0} {:>9.2} {:>9.1} {:>9.1} {:>8.0} {:>7}{failed}",
        st.streams,
        st.events_per_s,
        format!(
            "{:.3} / {:.3}",
            ms(st.client_ttft_err.mean_ns),
            ms(st.client_ttft_err.p99_ns)
        ),
        ms(st.server_ingest.mean_ns),
        format!("{:.3} / {:.3}", ms(st.itl_err.mean_ns), ms(st.itl_err.p99_ns)),
        ms(st.delivery.p99_ns),
        st.send_lag.p99_ns / 1e3,
        st.client_cpu_us_per_event,
        st.client_cpu_us_per_request,
        st.rss_bytes_per_stream / 1024.0,
        pct(st.mock_cpu_s, st.duration_s, st.mock_cores),
        verdict,
    )
}

/// CPU seconds as a percentage of `cores` over `duration_s`.
fn pct(cpu_s: f64, duration_s: f64, cores: usize) -> f64 {
    100.0 * cpu_s / (duration_s * cores as f64).max(1e-9)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Which side ran out of CPU first, when one did.
fn limiter(c: &StepResult) -> &'static str {
    let client = pct(c.client_cpu_s, c.duration_s, c.client_cores);
    let mock = pct(c.mock_cpu_s, c.duration_s, c.mock_cores);
    match (client >= 90.0, mock >= 90.0) {
        (_, true) if mock >= client => " — the mock is the limit",
        (true, _) => " — the client is the limit",
        _ => "",
    }
}

/// The same figures as a Markdown table (one row per step, the ceiling last), for
/// docs/PERFORMANCE.md.
pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| streams | mock TTFT/ITL/tokens | events/s | TTFT err, client's share, mean / p99 (ms) | + server backlog, mean (ms) | ITL err mean / p99 (ms) | send lag p50 / p99 / max (µs) | client CPU µs/event | client CPU µs/req | RSS KiB/stream | req/s | client CPU % | mock CPU % | budget |"
    );
    let _ = writeln!(
        s,
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    let ms = |ns: f64| ns / 1e6;
    let line = |s: &mut String, st: &StepResult, model: String, verdict: &str| {
        let _ = writeln!(
            s,
            "| {} | {model} | {:.0} | {:.3} / {:.3} | {:.3} | {:.3} / {:.3} | {:.0} / {:.0} / {:.0} | {:.2} | {:.1} | {:.1} | {:.0} | {:.0} | {:.0} | {verdict} |",
            st.streams,
            st.events_per_s,
            ms(st.client_ttft_err.mean_ns),
            ms(st.client_ttft_err.p99_ns),
            ms(st.server_ingest.mean_ns),
            ms(st.itl_err.mean_ns),
            ms(st.itl_err.p99_ns),
            st.send_lag.p50_ns / 1e3,
            st.send_lag.p99_ns / 1e3,
            st.send_lag.max_ns / 1e3,
            st.client_cpu_us_per_event,
            st.client_cpu_us_per_request,
            st.rss_bytes_per_stream / 1024.0,
            st.requests_per_s,
            pct(st.client_cpu_s, st.duration_s, st.client_cores),
            pct(st.mock_cpu_s, st.duration_s, st.mock_cores),
        );
    };
    for st in &r.steps {
        let model = format!("{}/{}/{}", r.ttft_ms, r.itl_ms, r.output_len);
        let verdict = if st.within_budget { "ok" } else { "over" };
        line(&mut s, st, model, verdict);
    }
    if let Some(c) = &r.ceiling {
        line(
            &mut s,
            c,
            "0/0/16, all at once".into(),
            limiter(c).trim_start_matches(" — "),
        );
    }
    s
}

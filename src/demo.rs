//! `servebench demo`: the benchmark against a mock server started in this process, so one
//! command on a fresh machine shows a real run with no server and no network.

use crate::cli::DemoArgs;
use crate::engine::placement;
use crate::mock::{self, MockArgs};

const DEMO_CONCURRENCY: usize = 128;

pub fn run(demo: &DemoArgs) -> anyhow::Result<()> {
    let cpus = placement::allowed_cpus();
    // The mock gets the last CPU; the client the others (or share the only one).
    let mock_cpu = *cpus.last().expect("allowed_cpus is never empty");
    let mock_args = MockArgs {
        port: 0,
        ttft_ms: demo.mock_ttft_ms,
        itl_ms: demo.mock_itl_ms,
        cpus: Some(vec![mock_cpu]),
        ..MockArgs::default()
    };
    let handle = mock::spawn(&mock_args)?;
    let addr = handle.addr();
    eprintln!(
        "demo: mock server on http://{addr} (TTFT {} ms, ITL {} ms)",
        demo.mock_ttft_ms, demo.mock_itl_ms
    );
    let mut bench = demo.bench.clone();
    bench.base_url = Some(format!("http://{addr}"));
    // The demo's mock counts tokens with no tokenizer of its own: there is nothing to align.
    bench.skip_server_alignment = true;
    // vLLM's defaults would open 1,000 streams at once; the mock and the client share this
    // host, so the demo keeps the load one small machine carries unless told otherwise.
    if bench.max_concurrency.is_none() {
        bench.max_concurrency = Some(DEMO_CONCURRENCY);
        eprintln!("demo: --max-concurrency {DEMO_CONCURRENCY} (pass your own to change it)");
    }
    if bench.num_shards.is_none() && cpus.len() > 1 {
        bench.num_shards = Some(cpus.len() - 1);
    }
    let result = crate::bench::run(&bench);
    handle.stop();
    result
}

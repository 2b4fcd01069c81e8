//! Costs paid outside the timed path but still worth watching: building the plan (per 1,000
//! prompts of vLLM's random dataset, real tokenizer) and recording into and merging the
//! per-shard histograms.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use servebench::plan::{self, PlanConfig};
use servebench::stats::Distribution;
use servebench::tokenizer::Tokenizer;

fn config(num_prompts: usize, input_len: usize) -> PlanConfig {
    PlanConfig {
        model: "bench-model".into(),
        num_prompts,
        input_len,
        ..PlanConfig::default()
    }
}

fn plan_building(c: &mut Criterion) {
    let tok = Tokenizer::embedded_default();
    let mut group = c.benchmark_group("plan_1000_prompts");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1000));
    for input_len in [256, 1024] {
        let cfg = config(1000, input_len);
        group.bench_function(format!("random_{input_len}_in"), |b| {
            b.iter(|| plan::build(black_box(&cfg), &tok).map(|p| p.requests.len()))
        });
    }
    group.finish();
}

fn histograms(c: &mut Criterion) {
    let mut group = c.benchmark_group("histogram");
    // An ITL-like spread: 5-15 ms in ns, pseudo-random but fixed.
    let values: Vec<u64> = (0..4096u64)
        .map(|i| 5_000_000 + (i.wrapping_mul(2_654_435_761) % 10_000_000))
        .collect();
    group.throughput(Throughput::Elements(values.len() as u64));
    group.bench_function("record", |b| {
        b.iter_batched_ref(
            Distribution::new,
            |d| {
                for &v in &values {
                    d.record(black_box(v));
                }
            },
            BatchSize::SmallInput,
        )
    });
    let mut full = Distribution::new();
    for &v in &values {
        full.record(v);
    }
    group.throughput(Throughput::Elements(1));
    group.bench_function("merge_shard", |b| {
        b.iter_batched_ref(
            Distribution::new,
            |d| d.merge(black_box(&full)),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, plan_building, histograms);
criterion_main!(benches);

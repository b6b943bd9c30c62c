//! Top-k over a random batch of logits on the best device available, checked against the CPU
//! reference and timed next to Burn's own `topk_with_indices`.
//!
//! ```text
//! cargo run --release --example topk -- [--batch 4] [--vocab 32000] [--k 50]
//! ```
//! Built with `--features cuda` it runs on CUDA device 0; otherwise on the best wgpu adapter (a
//! discrete GPU, else an integrated one, else the software Vulkan adapter).

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use burn_topk::{TopKExt, reference};
use std::time::{Duration, Instant};

#[cfg(feature = "cuda")]
type B = burn::backend::Cuda;
#[cfg(not(feature = "cuda"))]
type B = burn::backend::Wgpu;

fn flag(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number, got {v}"))
        })
        .unwrap_or(default)
}

/// Median wall time of `runs` calls, each finished by reading the indices back.
fn median_time(runs: usize, mut call: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            call();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn main() {
    let (batch, vocab, k) = (flag("--batch", 4), flag("--vocab", 32_000), flag("--k", 50));
    let device = burn_topk::device::default_device();
    println!("device: {device:?}; logits [{batch}, {vocab}], k = {k}");

    let logits = Tensor::<B, 2>::random([batch, vocab], Distribution::Normal(0.0, 3.0), &device);
    let host: Vec<f32> = logits.to_data().to_vec().expect("f32 logits");

    let (values, indices) = logits.clone().top_k(k, 1);
    let values: Vec<f32> = values.into_data().to_vec().expect("f32 values");
    let indices: Vec<i64> = indices
        .into_data()
        .convert::<i64>()
        .to_vec()
        .expect("indices");
    let (want_values, want_indices) =
        reference::top_k(&host, &[batch, vocab], k, 1, true).expect("valid arguments");
    let want_indices: Vec<i64> = want_indices.into_iter().map(|i| i as i64).collect();
    assert_eq!(
        indices, want_indices,
        "indices differ from the CPU reference"
    );
    assert_eq!(values, want_values, "values differ from the CPU reference");
    println!("matches the CPU reference on all {batch} rows");

    let shown = k.min(8);
    println!("row 0, top {shown} tokens:");
    for (token, logit) in indices.iter().zip(&values).take(shown) {
        println!("  token {token:>7}  logit {logit:+.4}");
    }

    let runs = 9;
    let ours = median_time(runs, || {
        let (_, i) = logits.clone().top_k(k, 1);
        i.into_data();
    });
    let burn = median_time(runs, || {
        let (_, i) = logits.clone().topk_with_indices(k, 1);
        i.into_data();
    });
    B::sync(&device).expect("device sync");
    println!("median wall time per call, read-back included ({runs} runs):");
    println!(
        "  burn_topk top_k            {:>10.1} µs",
        ours.as_secs_f64() * 1e6
    );
    println!(
        "  burn topk_with_indices     {:>10.1} µs",
        burn.as_secs_f64() * 1e6
    );
}

//! What `Strategy::Auto`'s autotuner picks, and how far the pick is from the best candidate.
//!
//! `cargo bench --bench autotune -- [--quick] [--dtype f32|bf16] [--shapes B:V:K,...] [--csv FILE]
//! [--keep-cache] [--compile-cost]` on the runtime the features select (CUDA with `--features
//! cuda`, else wgpu; `--quick` is a small grid for CPU adapters such as lavapipe; `--dtype` keeps
//! one dtype of the grid; `--shapes` replaces the grid with the listed shapes, in `--dtype`, f32
//! unless given). For each shape of the grid (the kernels bench's grid):
//!
//! - tune ms: the wall time of the first `Auto` call with a new key (tuning, including the
//!   compilation of kernels no earlier shape needed);
//! - every candidate's median device time over 15 samples after 3 warm-up runs, on the same
//!   input, the samples taken in rounds over the candidates, each sample
//!   [`runs_per_sample`](burn_topk::autotune::runs_per_sample) back-to-back runs, sized from a
//!   few back-to-back runs (the tuner's own method, with more samples), `-` where the candidate
//!   does not fit;
//! - the pick, its time, the best candidate and the pick's distance from it;
//! - the best candidate by CubeCL's own score of the same samples (0.8 × min + 0.2 × median,
//!   inflated by the samples' coefficient of variation: what the tuner ranks by) and the pick's
//!   distance from that one, which tells a statistic's choice from the tuner's noise.
//!
//! The crate's autotune cache file is deleted first (so every key is tuned here) unless
//! `--keep-cache`.

use burn::tensor::{DType, Distribution, Tensor};
use burn_topk::autotune::{self, TuneShape};
use burn_topk::{Strategy, TopKExt, TopKOptions};
use cubecl::Runtime;
use std::time::Instant;

mod common;

use common::{Device, Plain as B, Rt, median, profile};

const SAMPLES: usize = 15;

/// A candidate's times per top-k, in µs: the median of the samples and CubeCL's tuner score of
/// them.
#[derive(Clone, Copy)]
struct Timing {
    median: f64,
    score: f64,
}

/// CubeCL's tuner score of `samples` (`BenchmarkComputations::score` in cubecl-common 0.10):
/// mostly the fastest sample, penalised by the spread.
fn tuner_score(samples: &[f64]) -> f64 {
    let n = samples.len() as f64;
    let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let mean = samples.iter().sum::<f64>() / n;
    let variance = samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / n;
    (0.8 * min + 0.2 * median(samples.to_vec())) * (1.0 + variance.sqrt() / mean)
}

/// The GPU time of one top-k with each strategy; `None` where it does not fit. The samples are
/// taken in rounds, one per candidate per round, so that a drift of the machine (the host's
/// launch speed moves by 10–25 % between minutes on the H200) weighs on every candidate alike.
fn time_all(
    device: &Device,
    input: &Tensor<B, 2>,
    k: usize,
    strategies: &[Strategy],
) -> Vec<Option<Timing>> {
    let call = |options: TopKOptions| {
        let _ = input.clone().top_k_with(k, 1, options);
    };
    // Warm-up, then runs per sample from a few back-to-back runs (the tuner's method).
    let runs: Vec<Option<(TopKOptions, usize)>> = strategies
        .iter()
        .map(|&strategy| {
            let options = TopKOptions::largest().with_strategy(strategy);
            input.clone().try_top_k_with(k, 1, options).ok()?;
            for _ in 0..2 {
                call(options);
            }
            <B as burn::tensor::backend::Backend>::sync(device).unwrap();
            let start = Instant::now();
            for _ in 0..autotune::PROBE_RUNS {
                call(options);
            }
            <B as burn::tensor::backend::Backend>::sync(device).unwrap();
            Some((
                options,
                autotune::runs_per_sample(start.elapsed() / autotune::PROBE_RUNS),
            ))
        })
        .collect();
    let mut samples = vec![Vec::with_capacity(SAMPLES); strategies.len()];
    for _ in 0..SAMPLES {
        for (i, entry) in runs.iter().enumerate() {
            if let Some((options, runs)) = *entry {
                let input = input.clone();
                let all = profile(device, move || {
                    for _ in 0..runs {
                        let _ = input.clone().top_k_with(k, 1, options);
                    }
                });
                samples[i].push(all / runs as f64);
            }
        }
    }
    samples
        .into_iter()
        .map(|samples| {
            (!samples.is_empty()).then(|| Timing {
                median: median(samples.clone()),
                score: tuner_score(&samples),
            })
        })
        .collect()
}

fn remove_cache() {
    let mut stack = vec![autotune::cache_dir()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().contains("burn-topk-top-k") {
                println!("removing the autotune cache {}", path.display());
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// What each candidate's first call costs beyond its second (kernel compilation, on CUDA NVRTC
/// plus the driver's PTX load) for k values the grid does not use, so no kernel is cached yet.
fn compile_cost() {
    let device: Device = burn_topk::device::default_device();
    let client = Rt::client(&device);
    let candidates = autotune::candidates(&client.properties().hardware);
    let input = Tensor::<B, 2>::random([8, 131072], Distribution::Normal(0.0, 3.0), &device);
    let call = |k: usize, strategy: Strategy| {
        let start = Instant::now();
        let options = TopKOptions::largest().with_strategy(strategy);
        let ok = input.clone().try_top_k_with(k, 1, options).is_ok();
        <B as burn::tensor::backend::Backend>::sync(&device).unwrap();
        (ok, start.elapsed().as_secs_f64() * 1e3)
    };
    call(1, Strategy::Heuristic);
    println!("| k | candidate | first call ms | second call ms |\n|---|---|---|---|");
    for k in [77, 600] {
        for candidate in &candidates {
            let (ok, first) = call(k, candidate.strategy);
            let (_, second) = call(k, candidate.strategy);
            if ok {
                println!("| {k} | {} | {first:.0} | {second:.2} |", candidate.name);
            }
        }
    }
}

fn main() {
    let mut quick = false;
    let mut csv_path = None;
    let mut keep_cache = false;
    let mut only_dtype = None;
    let mut shapes = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--csv" => csv_path = it.next(),
            "--keep-cache" => keep_cache = true,
            "--dtype" => only_dtype = it.next().map(|d| common::parse_dtype(&d)),
            "--shapes" => {
                shapes = Some(common::parse_shapes(
                    &it.next().expect("--shapes B:V:K,..."),
                ))
            }
            "--compile-cost" => {
                compile_cost();
                return;
            }
            _ => {} // `cargo bench` passes `--bench`
        }
    }
    if !keep_cache {
        remove_cache();
    }

    let device: Device = burn_topk::device::default_device();
    let client = Rt::client(&device);
    let hardware = client.properties().hardware.clone();
    let candidates = autotune::candidates(&hardware);
    println!(
        "device: {device:?}, plane size {}, {} units per cube, {} KiB shared memory; {} candidates",
        hardware.plane_size_max,
        hardware.max_units_per_cube,
        hardware.max_shared_memory_size / 1024,
        candidates.len()
    );

    // Listed shapes run in `--dtype` (f32 unless given); the grid in its dtypes, or one of them.
    let groups = common::shape_groups(shapes.as_deref(), only_dtype.unwrap_or(DType::F32), quick);

    let mut header = String::from(
        "| dtype | b | V | k | tune ms | pick | pick µs | best | best µs | pick/best | best by score | pick/best by score |",
    );
    let mut rule = String::from("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for candidate in &candidates {
        header += &format!(" {} |", candidate.name);
        rule += "---|";
    }
    println!("{header}\n{rule}");
    let mut csv = String::from(
        "dtype,batch,vocab,k,tune_ms,pick,pick_us,best,best_us,score_best,candidate,candidate_us,candidate_score_us\n",
    );
    let mut worst: f64 = 1.0;
    for (dtype, batch, vocab, ks) in groups {
        if only_dtype.is_some_and(|d| d != dtype) {
            continue;
        }
        if !<B as burn::tensor::backend::Backend>::supports_dtype(&device, dtype) {
            println!("{dtype:?} {batch} × {vocab}: not supported on this device, skipped");
            continue;
        }
        let input = Tensor::<B, 2>::random([batch, vocab], Distribution::Normal(0.0, 3.0), &device)
            .cast(dtype);
        <B as burn::tensor::backend::Backend>::sync(&device).unwrap();
        for k in ks {
            let start = Instant::now();
            let (values, _) = input.clone().top_k(k, 1);
            let _ = values.into_data();
            let tune_ms = start.elapsed().as_secs_f64() * 1e3;
            let shape = TuneShape::new(batch, vocab, k).with_dtype(dtype);
            let pick = autotune::tuned_choice::<Rt>(&client, &device, &shape);
            let strategies: Vec<Strategy> = candidates.iter().map(|c| c.strategy).collect();
            let times = time_all(&device, &input, k, &strategies);
            // The fastest candidate by a statistic of the timings.
            let fastest = |by: fn(&Timing) -> f64| {
                times
                    .iter()
                    .enumerate()
                    .filter_map(|(i, t)| t.as_ref().map(|t| (i, by(t))))
                    .min_by(|a, b| a.1.partial_cmp(&b.1).unwrap())
                    .expect("radix select always fits")
            };
            let (best, best_us) = fastest(|t| t.median);
            let (score_best, score_best_us) = fastest(|t| t.score);
            let pick_index = pick
                .as_ref()
                .and_then(|p| candidates.iter().position(|c| c == p));
            let pick_time = pick_index.and_then(|i| times[i]);
            let pick_us = pick_time.map(|t| t.median);
            let ratio = pick_us.map_or(f64::NAN, |t| t / best_us);
            if ratio.is_finite() {
                worst = worst.max(ratio);
            }
            let score_ratio = pick_time.map_or(f64::NAN, |t| t.score / score_best_us);
            let pick_name = pick
                .as_ref()
                .map_or("(none: k > buffer)", |p| p.name.as_str());
            let mut row = format!(
                "| {dtype:?} | {batch} | {vocab} | {k} | {tune_ms:.0} | {pick_name} | {} | {} | {best_us:.1} | {ratio:.3} | {} | {score_ratio:.3} |",
                pick_us.map_or("-".into(), |t| format!("{t:.1}")),
                candidates[best].name,
                candidates[score_best].name,
            );
            for (candidate, t) in candidates.iter().zip(&times) {
                row += &t.map_or(" - |".into(), |t| format!(" {:.1} |", t.median));
                csv += &format!(
                    "{dtype:?},{batch},{vocab},{k},{tune_ms:.1},{pick_name},{},{},{best_us:.2},{},{},{},{}\n",
                    pick_us.map_or(String::new(), |t| format!("{t:.2}")),
                    candidates[best].name,
                    candidates[score_best].name,
                    candidate.name,
                    t.map_or(String::new(), |t| format!("{:.2}", t.median)),
                    t.map_or(String::new(), |t| format!("{:.2}", t.score)),
                );
            }
            println!("{row}");
        }
    }
    println!("worst pick/best: {worst:.3}");
    if let Some(path) = csv_path {
        std::fs::write(&path, csv).expect("write the csv");
    }
}

//! Times sampling on a grid of shapes, each mode, next to the naive Burn composition.
//!
//! `cargo bench --bench sampling -- [--quick] [--csv FILE] [--naive-limit-s 2] [--naive-all]
//! [--shapes B:V,...] [--modes NAME,...] [--top-k-strategy NAME]` on the runtime the features
//! select (CUDA with `--features cuda`, else wgpu). `--quick` (or `BURN_TOPK_BENCH_QUICK=1`) runs a
//! tiny grid, for CPU adapters such as lavapipe; `--shapes` and `--modes` narrow the grid (mode
//! names as printed); `--top-k-strategy` pins the top-k of the modes that have one
//! (`SamplingParams::top_k_strategy`, names as the top-k bench's: `streaming` runs the sampling in
//! the streaming kernel's launch where it fits, at any batch).
//!
//! - device: GPU time of one call (`client.profile`, CubeBackend without fusion): calls queued
//!   behind a busy kernel so the host's launch gaps are hidden, minus the busy kernel alone, per
//!   call, median of samples after warm-up (the top-k bench's method); inputs rotate over copies
//!   totalling at least 128 MiB, so no call reads its logits hot from L2;
//! - host: wall time for the call to return on the fused backend users run (`burn::backend::Cuda`
//!   or `Wgpu`), median; round trip: the call plus a device sync, median (also on the plain
//!   backend, last column);
//! - one read: the logits' bytes at the measured copy bandwidth (the time a read of them takes
//!   at full speed), and, beside it, the GPU time of Burn's `max_dim` over them (timed like the
//!   modes). The target is top-k + top-p within 2× one read at b = 64, V = 128k;
//! - naive: softmax, sort, top-k/top-p masks with cumsum, renormalise, `categorical`, on the fused
//!   backend, call + sync; Burn sorts through the host and its cumsum is quadratic, so one
//!   warm-up call that takes longer than `--naive-limit-s` seconds is reported alone, and shapes
//!   past b = 64, V = 128k are skipped (NaN) unless `--naive-all`.

use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor};
use burn_topk::Strategy;
use burn_topk::sampling::{SampleExt, SamplingParams};
use std::io::Write;
use std::time::Instant;

mod common;

use common::{Device, Plain, median};

#[cfg(feature = "cuda")]
type Fused = burn::backend::Cuda;
#[cfg(not(feature = "cuda"))]
type Fused = burn::backend::Wgpu;

/// The naive path is skipped past this many logits (b = 64, V = 128k) unless `--naive-all`.
const NAIVE_MAX_ELEMENTS: usize = 64 * 131_072;

struct Args {
    quick: bool,
    csv: Option<String>,
    naive_limit_s: f64,
    naive_all: bool,
    shapes: Option<Vec<(usize, usize)>>,
    modes: Option<Vec<String>>,
    top_k_strategy: Option<Strategy>,
}

fn args() -> Args {
    let mut quick = std::env::var("BURN_TOPK_BENCH_QUICK").is_ok_and(|v| v == "1");
    let mut csv = None;
    let mut naive_limit_s = 2.0;
    let mut naive_all = false;
    let mut shapes = None;
    let mut modes = None;
    let mut top_k_strategy = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--csv" => csv = it.next(),
            "--naive-all" => naive_all = true,
            "--shapes" => {
                let list = it.next().expect("--shapes B:V,...");
                shapes = Some(
                    list.split(',')
                        .map(|shape| {
                            let (b, v) = shape.split_once(':').expect("a shape is B:V");
                            (
                                b.parse().expect("B a number"),
                                v.parse().expect("V a number"),
                            )
                        })
                        .collect(),
                )
            }
            "--modes" => {
                let list = it.next().expect("--modes NAME,...");
                modes = Some(list.split(',').map(str::to_string).collect())
            }
            "--top-k-strategy" => {
                let name = it.next().expect("--top-k-strategy NAME");
                top_k_strategy = Some(Strategy::from_name(&name).expect("a strategy name"))
            }
            "--naive-limit-s" => {
                naive_limit_s = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--naive-limit-s SECONDS")
            }
            _ => {} // `cargo bench` passes `--bench`
        }
    }
    Args {
        quick,
        csv,
        naive_limit_s,
        naive_all,
        shapes,
        modes,
        top_k_strategy,
    }
}

/// Whether the device times its own work: CUDA does; wgpu's timestamp queries fail on lavapipe
/// (now and then, so no probe can tell), so wgpu builds time call + sync instead.
fn device_timing(_device: &Device) -> bool {
    cfg!(feature = "cuda")
}

/// Device time of one call, µs (see the module docs); where the device cannot time its work, the
/// median wall time of a call and a sync.
fn per_call(
    device: &Device,
    busy: Option<&common::Busy>,
    samples: usize,
    mut call: impl FnMut() + Send,
) -> f64 {
    let Some(busy) = busy else {
        return median(
            (0..samples)
                .map(|_| {
                    let start = Instant::now();
                    call();
                    Plain::sync(device).expect("sync");
                    start.elapsed().as_secs_f64() * 1e6
                })
                .collect(),
        );
    };
    busy.per_call(device, 10, samples, call)
}

/// The modes of the grid, as (name, params, top-k, top-p) (the last two for the naive path).
fn modes<B: Backend>() -> Vec<(&'static str, SamplingParams<B>, Option<usize>, f32)> {
    vec![
        ("plain", SamplingParams::new().seed(1), None, 1.0),
        ("greedy", SamplingParams::greedy(), None, 1.0),
        (
            "top-k 50",
            SamplingParams::new().top_k(50).seed(1),
            Some(50),
            1.0,
        ),
        (
            "top-p 0.9",
            SamplingParams::new().top_p(0.9).seed(1),
            None,
            0.9,
        ),
        (
            "top-k 50 + top-p 0.9",
            SamplingParams::new().top_k(50).top_p(0.9).seed(1),
            Some(50),
            0.9,
        ),
        (
            "joint top-k 50 + top-p 0.9",
            SamplingParams::new().top_k(50).top_p(0.9).joint().seed(1),
            Some(50),
            0.9,
        ),
        (
            "min-p 0.1",
            SamplingParams::new().min_p(0.1).seed(1),
            None,
            1.0,
        ),
    ]
}

/// The usual composition, in Burn ops: softmax, sort, top-k and top-p masks, renormalise, draw.
fn naive<B: Backend>(logits: Tensor<B, 2>, top_k: Option<usize>, top_p: f32) -> Tensor<B, 2, Int> {
    let [batch, vocab] = logits.dims();
    let probs = softmax(logits, 1);
    let (sorted, indices) = probs.sort_descending_with_indices(1);
    let mut sorted = sorted;
    if let Some(k) = top_k {
        let position = Tensor::<B, 1, Int>::arange(0..vocab as i64, &sorted.device())
            .reshape([1, vocab])
            .expand([batch, vocab]);
        sorted = sorted.mask_fill(position.greater_equal_elem(k as i64), 0.0);
    }
    if top_p < 1.0 {
        let total = sorted.clone().sum_dim(1);
        let before = sorted.clone().cumsum(1) - sorted.clone();
        sorted = sorted
            .clone()
            .mask_fill(before.greater_equal(total * top_p), 0.0);
    }
    let total = sorted.clone().sum_dim(1);
    let position = (sorted / total).categorical(1);
    indices.gather(1, position)
}

fn main() {
    let args = args();
    let device: Device = burn_topk::device::default_device();
    let (batches, vocabs, reps): (&[usize], &[usize], usize) = if args.quick {
        (&[1, 4], &[1000, 4096], 5)
    } else {
        (&[1, 64, 256], &[32_768, 131_072], 9)
    };
    // The busy kernel times itself through `client.profile`: CUDA only (see `device_timing`).
    let busy = device_timing(&device).then(|| common::Busy::new(&device, args.quick));
    if let Some(busy) = &busy {
        println!("copy bandwidth: {:.0} GB/s", busy.copy_gbps());
    }
    if !device_timing(&device) {
        println!(
            "this device cannot time its own work: 'device µs' is the wall time of call + sync"
        );
    }
    let mut csv = args
        .csv
        .as_ref()
        .map(|path| std::fs::File::create(path).expect("the csv file"));
    if let Some(f) = csv.as_mut() {
        writeln!(
            f,
            "batch,vocab,mode,device_us,host_us,round_trip_us,read_us,max_dim_us,naive_ms,plain_round_trip_us"
        )
        .unwrap();
    }
    println!(
        "| b | V | mode | device µs | host µs | call + sync µs | one read µs | device / one read | max_dim µs | naive Burn ms | plain call + sync µs |\n|---|---|---|---|---|---|---|---|---|---|---|"
    );
    let grid: Vec<(usize, usize)> = args.shapes.clone().unwrap_or_else(|| {
        batches
            .iter()
            .flat_map(|&b| vocabs.iter().map(move |&v| (b, v)))
            .collect()
    });
    for (batch, vocab) in grid {
        let bytes = batch * vocab * 4;
        let copies = (128usize << 20).div_ceil(bytes).clamp(1, 64);
        let all = Tensor::<Plain, 2>::random(
            [copies * batch, vocab],
            Distribution::Normal(0.0, 3.0),
            &device,
        );
        let inputs: Vec<Tensor<Plain, 2>> = (0..copies)
            .map(|c| all.clone().narrow(0, c * batch, batch))
            .collect();
        let plain = inputs[0].clone();
        let fused = Tensor::<Fused, 2>::from_data(plain.to_data(), &device);
        // No copy bandwidth without device timing: NaN.
        let read = busy.as_ref().map_or(f64::NAN, |b| b.read_us(bytes));
        let max_dim = {
            let mut next = 0usize;
            let mut call = || {
                let _ = inputs[next % copies].clone().max_dim(1);
                next += 1;
            };
            call();
            per_call(&device, busy.as_ref(), reps, &mut call)
        };
        for ((name, plain_params, top_k, top_p), (_, fused_params, ..)) in
            modes::<Plain>().into_iter().zip(modes::<Fused>())
        {
            if args
                .modes
                .as_ref()
                .is_some_and(|m| !m.iter().any(|m| m == name))
            {
                continue;
            }
            let (plain_params, fused_params) = match (args.top_k_strategy, top_k) {
                (Some(strategy), Some(_)) => (
                    plain_params.top_k_strategy(strategy),
                    fused_params.top_k_strategy(strategy),
                ),
                _ => (plain_params, fused_params),
            };
            // The first call may autotune the top-k of the fast path: outside the timing.
            let _ = plain.clone().sample(&plain_params);
            Plain::sync(&device).expect("sync");
            let mut next = 0usize;
            let mut call = || {
                let _ = inputs[next % copies].clone().sample(&plain_params);
                next += 1;
            };
            for _ in 0..3 {
                call();
            }
            let device_us = per_call(&device, busy.as_ref(), reps, &mut call);
            for _ in 0..3 {
                let _ = fused.clone().sample(&fused_params);
            }
            Fused::sync(&device).expect("sync");
            let (mut host, mut round_trip) = (Vec::new(), Vec::new());
            for _ in 0..reps {
                let start = Instant::now();
                let tokens = fused.clone().sample(&fused_params);
                host.push(start.elapsed().as_secs_f64() * 1e6);
                Fused::sync(&device).expect("sync");
                round_trip.push(start.elapsed().as_secs_f64() * 1e6);
                drop(tokens);
            }
            let (host_us, round_trip_us) = (median(host), median(round_trip));
            // The same round trip on the plain backend: what the fused backend's own
            // synchronisation adds to a decode step that reads its token back.
            let mut plain_round_trip = Vec::new();
            for _ in 0..reps {
                let start = Instant::now();
                let tokens = plain.clone().sample(&plain_params);
                Plain::sync(&device).expect("sync");
                plain_round_trip.push(start.elapsed().as_secs_f64() * 1e6);
                drop(tokens);
            }
            let plain_round_trip_us = median(plain_round_trip);
            let naive_too_big = batch * vocab > NAIVE_MAX_ELEMENTS && !args.naive_all;
            let naive_ms = if name == "greedy" || name == "min-p 0.1" || naive_too_big {
                f64::NAN
            } else {
                let time = || {
                    let start = Instant::now();
                    let tokens = naive(fused.clone(), top_k, top_p);
                    Fused::sync(&device).expect("sync");
                    drop(tokens);
                    start.elapsed().as_secs_f64() * 1e3
                };
                let first = time();
                if first > args.naive_limit_s * 1e3 {
                    first
                } else {
                    median((0..3).map(|_| time()).collect())
                }
            };
            println!(
                "| {batch} | {vocab} | {name} | {device_us:.1} | {host_us:.1} | {round_trip_us:.1} | {read:.1} | {:.2} | {max_dim:.1} | {naive_ms:.2} | {plain_round_trip_us:.1} |",
                device_us / read
            );
            if let Some(f) = csv.as_mut() {
                writeln!(
                    f,
                    "{batch},{vocab},{name},{device_us:.2},{host_us:.2},{round_trip_us:.2},{read:.2},{max_dim:.2},{naive_ms:.3},{plain_round_trip_us:.2}"
                )
                .unwrap();
            }
        }
    }
}

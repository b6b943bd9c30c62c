//! Times every top-k strategy on a grid of shapes: device time and host wall time per call.
//!
//! `cargo bench --bench topk -- [--quick] [--strategies auto,streaming,two-stage,radix,burn]
//! [--shapes B:V:K,...] [--dtype f32|bf16|f16] [--csv FILE]` on the runtime the features select
//! (CUDA with `--features cuda`, else wgpu). `--shapes` replaces the grid with the listed shapes,
//! in `--dtype` (f32 unless given). A
//! strategy name may carry tuning after slashes: `streaming/p=16/v=8` (planes per cube, vectors
//! per unit), `two-stage/w=8192/p=8` (tile width, planes per cube), `radix/d=10/w=16384/p=8`
//! (digit bits, tile width, planes per cube). `floor/p=8` and `floor/w=4096/p=8` time kernels that
//! only read the rows in streaming's and two-stage's launch shapes (f32 only; see `floor`).
//!
//! - device time: the GPU time of `n` calls queued behind a ~1 ms busy kernel (so host launch
//!   gaps are hidden), minus the busy kernel alone, divided by `n`; median of several samples;
//! - wall time: a steady loop of calls, synchronised at the end, per call (what a decode loop
//!   pays; it includes the host's launch cost). The loop lasts about [`LOOP_TIME`] of device time
//!   (5 to 1000 calls): a loop pays once for its first launch on an idle device and its final
//!   synchronisation, ~140 µs on the H100, which 50 calls of a 13 µs top-k spread as 2.8 µs per
//!   call. `BURN_TOPK_BENCH_LOOPS=N` sets the length instead;
//! - inputs rotate over copies totalling at least 128 MiB, so no call reads a row hot from L2
//!   (`BURN_TOPK_BENCH_COPIES=1` keeps one copy instead: what a kernel gains from a row hot in
//!   L2, i.e. how much of its time is waiting on memory);
//! - GB/s counts the input bytes read once; % copy compares with a measured device copy.

use burn::tensor::{DType, Distribution, Tensor};
use burn_topk::options::{RadixSelectParams, StreamingParams, TwoStageParams};
use burn_topk::{Strategy, TopKExt, TopKOptions};
use cubecl::Runtime;
use std::time::{Duration, Instant};

mod common;
mod floor;

use common::{Device, Plain as B, Rt};

/// What a bench line times: a top-k strategy, or a floor of reads alone.
enum Entry {
    TopK(Strategy),
    Floor(floor::Floor),
}

struct Args {
    quick: bool,
    strategies: Vec<(String, Entry)>,
    shapes: Option<Vec<(usize, usize, usize)>>,
    /// The dtype of the listed shapes.
    dtype: DType,
    csv: Option<String>,
}

/// A strategy name with optional `/key=value` tuning (see the module docs).
fn parse_strategy(spec: &str) -> Strategy {
    let mut parts = spec.split('/');
    let strategy = Strategy::from_name(parts.next().unwrap()).expect("strategy name");
    let mut values = std::collections::HashMap::new();
    for part in parts {
        let (key, value) = part.split_once('=').expect("tuning as key=value");
        values.insert(key.to_string(), value.parse::<usize>().expect("a number"));
    }
    let get = |key: &str| values.get(key).copied();
    match strategy {
        Strategy::Streaming(_) => Strategy::Streaming(StreamingParams {
            planes_per_cube: get("p").map(|p| p as u32),
            vectors_per_unit: get("v").map(|v| v as u32),
        }),
        Strategy::TwoStage(_) => Strategy::TwoStage(TwoStageParams {
            tile_width: get("w"),
            planes_per_cube: get("p").map(|p| p as u32),
        }),
        Strategy::RadixSelect(_) => Strategy::RadixSelect(RadixSelectParams {
            digit_bits: get("d").map(|d| d as u32),
            tile_width: get("w"),
            planes_per_cube: get("p").map(|p| p as u32),
        }),
        other => other,
    }
}

fn args() -> Args {
    let mut quick = false;
    let mut names = "auto,streaming,two-stage,radix".to_string();
    let mut csv = None;
    let mut shapes = None;
    let mut dtype = DType::F32;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--strategies" => names = it.next().expect("--strategies LIST"),
            "--csv" => csv = it.next(),
            "--dtype" => dtype = common::parse_dtype(&it.next().expect("--dtype f32|bf16|f16")),
            "--shapes" => {
                shapes = Some(common::parse_shapes(
                    &it.next().expect("--shapes B:V:K,..."),
                ))
            }
            _ => {} // `cargo bench` passes `--bench`
        }
    }
    let strategies = names
        .split(',')
        .map(|n| {
            let entry = match floor::Floor::parse(n) {
                Some(floor) => Entry::Floor(floor),
                None => Entry::TopK(parse_strategy(n)),
            };
            (n.to_string(), entry)
        })
        .collect();
    Args {
        quick,
        strategies,
        shapes,
        dtype,
        csv,
    }
}

/// The device time a steady loop lasts (see the module docs).
const LOOP_TIME: Duration = Duration::from_millis(10);

/// Calls in a steady loop for a call of `device_us` µs of device time.
fn loop_calls(device_us: f64) -> usize {
    let calls = LOOP_TIME.as_secs_f64() * 1e6 / device_us.max(1.0);
    (calls.ceil() as usize).clamp(5, 1000)
}

fn sync(device: &Device) {
    <B as burn::tensor::backend::Backend>::sync(device).expect("sync");
}

fn main() {
    let args = args();
    let device: Device = burn_topk::device::default_device();
    let client = Rt::client(&device);
    let hw = &client.properties().hardware;
    println!(
        "device: {device:?}, plane size {}..{}, {} units per cube, {} KiB shared memory, {:?} processors",
        hw.plane_size_min,
        hw.plane_size_max,
        hw.max_units_per_cube,
        hw.max_shared_memory_size / 1024,
        hw.num_streaming_multiprocessors
    );

    let busy = common::Busy::new(&device, args.quick);
    let copy_gbps = busy.copy_gbps();
    println!(
        "copy bandwidth: {copy_gbps:.0} GB/s ({:.0} µs to copy {} MiB)",
        busy.alone_us,
        busy.bytes() >> 20
    );

    let groups = common::shape_groups(args.shapes.as_deref(), args.dtype, args.quick);
    let loops_override = std::env::var("BURN_TOPK_BENCH_LOOPS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0);
    let mut csv =
        String::from("dtype,batch,vocab,k,strategy,device_us,wall_us,host_us,gb_per_s,pct_copy\n");
    println!(
        "{:>5} {:>4} {:>8} {:>5} {:>10} {:>10} {:>10} {:>10} {:>8} {:>7}",
        "dtype", "b", "V", "k", "strategy", "device µs", "wall µs", "host µs", "GB/s", "% copy"
    );
    for (dtype, batch, vocab, ks) in groups {
        if !<B as burn::tensor::backend::Backend>::supports_dtype(&device, dtype) {
            println!("{dtype:?}: not supported on this device, skipped");
            continue;
        }
        let bytes = batch * vocab * dtype.size();
        let copies = std::env::var("BURN_TOPK_BENCH_COPIES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or((128usize << 20).div_ceil(bytes).clamp(1, 512));
        let all = Tensor::<B, 2>::random(
            [copies * batch, vocab],
            Distribution::Normal(0.0, 3.0),
            &device,
        )
        .cast(dtype);
        let inputs: Vec<Tensor<B, 2>> = (0..copies)
            .map(|c| all.clone().narrow(0, c * batch, batch))
            .collect();
        for &k in ks.iter().filter(|&&k| k <= vocab) {
            for (name, entry) in &args.strategies {
                let builtin = matches!(entry, Entry::TopK(Strategy::BurnBuiltin));
                if builtin && (batch > 8 || vocab > 128 << 10) {
                    continue; // a host sort: minutes on the large shapes
                }
                if matches!(entry, Entry::Floor(_))
                    && (dtype != DType::F32 || vocab % 4 != 0 || Some(&k) != ks.first())
                {
                    continue; // the floor reads f32 in vectors of 4, the same for every k
                }
                let heavy = bytes >= 64 << 20 || builtin;
                let calls = if heavy { 3 } else { 10 };
                let samples = if heavy { 3 } else { 9 };
                let mut next = 0usize;
                let mut call = || {
                    let input = inputs[next % copies].clone();
                    next += 1;
                    match entry {
                        Entry::TopK(strategy) => {
                            let options = TopKOptions::largest().with_strategy(*strategy);
                            let _ = input.top_k_with(k, 1, options);
                        }
                        Entry::Floor(floor) => {
                            let _ = floor.run(input);
                        }
                    }
                };
                if let Entry::Floor(floor) = entry {
                    // The last copy: a view past the first, so the check covers its offset.
                    floor.check(inputs[copies - 1].clone());
                }
                // Warm up: compile the kernels, fill the memory pools.
                for _ in 0..3 {
                    call();
                }
                sync(&device);
                let device_us = busy.per_call(&device, calls, samples, &mut call);
                let loops = loops_override.unwrap_or_else(|| loop_calls(device_us));
                sync(&device);
                let start = Instant::now();
                for _ in 0..loops {
                    call();
                }
                let host: Duration = start.elapsed();
                sync(&device);
                let wall = start.elapsed();
                let wall_us = wall.as_secs_f64() * 1e6 / loops as f64;
                let host_us = host.as_secs_f64() * 1e6 / loops as f64;
                let gbps = bytes as f64 / device_us.max(1e-3) / 1e3;
                let pct = 100.0 * gbps / copy_gbps;
                let dt = format!("{dtype:?}").to_lowercase();
                println!(
                    "{dt:>5} {batch:>4} {vocab:>8} {k:>5} {name:>10} {device_us:>10.1} {wall_us:>10.1} {host_us:>10.1} {gbps:>8.0} {pct:>6.0}%"
                );
                csv.push_str(&format!(
                    "{dt},{batch},{vocab},{k},{name},{device_us:.2},{wall_us:.2},{host_us:.2},{gbps:.1},{pct:.1}\n"
                ));
            }
        }
    }
    if let Some(path) = args.csv {
        std::fs::write(&path, csv).expect("writing the CSV");
        println!("wrote {path}");
    }
}

//! `Strategy::Auto`'s autotuner: its choice runs and matches every fixed strategy, tuning ahead
//! works, and the disk cache survives a process restart and corruption (child processes of this
//! test binary, each with its own cache directory).

use super::{
    Plain, check_tensor, few_values, gpu_device, random_values, rng, run_child_test,
    sparse_specials, tensor, try_check_tensor,
};
use burn_topk::autotune::{self, TuneShape};
use burn_topk::{Strategy, TopKError, TopKOptions};
use cubecl::Runtime;
use std::path::{Path, PathBuf};

#[cfg(feature = "cuda")]
type Rt = cubecl::cuda::CudaRuntime;
#[cfg(not(feature = "cuda"))]
type Rt = cubecl::wgpu::WgpuRuntime;

/// The environment variable that makes `autotune_child` run one phase.
const PHASE: &str = "BURN_TOPK_AUTOTUNE_PHASE";

/// Checks Auto and every candidate on one shape against the reference.
fn check_shape(shape: TuneShape, what: &str) {
    let device = gpu_device();
    let mut rng = rng(what);
    let values = random_values(&mut rng, shape.rows * shape.len);
    let options = TopKOptions::largest().with_strategy(Strategy::Auto);
    check_tensor(
        tensor::<Plain, 2>(values, [shape.rows, shape.len], &device),
        shape.k,
        1,
        options,
        what,
    );
}

#[test]
fn autotune_choice_runs_and_matches() {
    let device = gpu_device();
    let client = Rt::client(&device);
    let hardware = &client.properties().hardware;
    let candidates = autotune::candidates(hardware);
    let mut names: Vec<&str> = candidates.iter().map(|c| c.name.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), candidates.len(), "candidate names are unique");
    assert!(names.contains(&"radix"));

    let mut rng = rng("autotune choice");
    for shape in [
        TuneShape::new(3, 20_000, 17),
        TuneShape::new(2, 70_001, 5),
        TuneShape::new(40, 1000, 300),
    ] {
        autotune::tune_ahead::<Plain>(&device, &[shape]).unwrap();
        let choice = autotune::tuned_choice::<Rt>(&client, &device, &shape)
            .unwrap_or_else(|| panic!("{shape:?} was tuned ahead"));
        // The pick and Auto agree with the reference (and so with each other), on fresh data
        // with the same key.
        let values = random_values(&mut rng, shape.rows * shape.len);
        for strategy in [Strategy::Auto, choice.strategy] {
            let what = format!("{shape:?} {strategy:?}");
            check_tensor(
                tensor::<Plain, 2>(values.clone(), [shape.rows, shape.len], &device),
                shape.k,
                1,
                TopKOptions::largest().with_strategy(strategy),
                &what,
            );
        }
    }
}

/// Every candidate the tuner may pick, run as an explicit strategy, against the reference: the
/// tuner only ever checks a candidate's speed, so a wrong one would be served to `Auto` users on
/// exactly the keys where it is fastest. Lengths off every tile and vector width; k from one
/// to the whole row. A candidate may refuse a k it cannot hold (the tuner then never admits it
/// for that key), but never a wrong answer, and each must run every k = 1 case.
#[test]
fn autotune_candidates_match_reference() {
    let device = gpu_device();
    let client = Rt::client(&device);
    let mut rng = rng("autotune candidates");
    let cases: Vec<(&str, usize, usize, Vec<f32>)> = [(5usize, 257usize), (2, 4097), (2, 65537)]
        .into_iter()
        .flat_map(|(rows, len)| {
            [
                ("random", rows, len, random_values(&mut rng, rows * len)),
                ("ties", rows, len, few_values(&mut rng, rows * len)),
                ("specials", rows, len, sparse_specials(&mut rng, rows * len)),
            ]
        })
        .collect();
    for candidate in autotune::candidates(&client.properties().hardware) {
        let mut refused = Vec::new();
        for (name, rows, len, values) in &cases {
            for k in [1, 33, len / 2, *len] {
                for largest in [true, false] {
                    let what = format!(
                        "{}: {name} {rows}x{len} k={k} largest={largest}",
                        candidate.name
                    );
                    let options = TopKOptions {
                        largest,
                        strategy: candidate.strategy,
                    };
                    let input = tensor::<Plain, 2>(values.clone(), [*rows, *len], &device);
                    match try_check_tensor(input, k, 1, options, &what) {
                        Ok(()) => {}
                        Err(TopKError::InvalidParams { .. }) if k > 1 => refused.push(what),
                        Err(e) => panic!("{what}: {e}"),
                    }
                }
            }
        }
        println!("{}: {} cases refused", candidate.name, refused.len());
    }
}

/// The shapes the child processes use: the first is tuned, the second gets a cache line with an
/// index that is not a candidate, the third a cache line with a stale checksum.
fn child_shapes() -> [TuneShape; 3] {
    [
        TuneShape::new(2, 9000, 9),
        TuneShape::new(2, 9000, 10),
        TuneShape::new(2, 9000, 11),
    ]
}

/// One phase of the cache test, in a child process whose working directory holds its own
/// `Cargo.toml` (so the cache lives in that directory's `target/`). Run by the parent test only.
#[test]
#[ignore = "a phase of autotune_cache_survives_restart_and_corruption"]
fn autotune_child() {
    let phase = std::env::var(PHASE).expect("run by the parent test");
    let [tuned, bad_index, stale] = child_shapes();
    match phase.as_str() {
        "tune" => {
            check_shape(tuned, "child tune");
            assert_eq!(autotune::tuning_count(), 1, "a fresh cache tunes");
        }
        "restart" => {
            check_shape(tuned, "child restart");
            assert_eq!(autotune::tuning_count(), 0, "the disk cache answers");
        }
        "corrupt" => {
            log::set_logger(&LOG).unwrap();
            log::set_max_level(log::LevelFilter::Info);
            check_shape(tuned, "child corrupt: intact line");
            check_shape(bad_index, "child corrupt: bad index");
            check_shape(bad_index, "child corrupt: bad index again");
            assert_eq!(autotune::tuning_count(), 0, "intact lines still answer");
            let lines = LOG.lines.lock().unwrap().clone();
            let count = |level: log::Level, text: &str| {
                lines
                    .iter()
                    .filter(|(l, line)| *l == level && line.contains(text))
                    .count()
            };
            assert_eq!(
                count(log::Level::Info, "from the disk cache"),
                2,
                "{lines:?}"
            );
            assert_eq!(
                count(log::Level::Warn, "is not a candidate; using the heuristic"),
                1,
                "one warning for the bad index, not one per call: {lines:?}"
            );
            check_shape(stale, "child corrupt: stale checksum");
            assert_eq!(autotune::tuning_count(), 1, "a stale line is tuned again");
        }
        other => panic!("unknown phase {other}"),
    }
}

/// The child's log: this crate's records, to check what it reports.
struct Captured {
    lines: std::sync::Mutex<Vec<(log::Level, String)>>,
}

static LOG: Captured = Captured {
    lines: std::sync::Mutex::new(Vec::new()),
};

impl log::Log for Captured {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.target().starts_with("burn_topk")
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            let line = record.args().to_string();
            self.lines.lock().unwrap().push((record.level(), line));
        }
    }

    fn flush(&self) {}
}

fn run_child(dir: &Path, phase: &str) {
    run_child_test("autotune::autotune_child", (PHASE, phase), Some(dir));
}

fn cache_file(dir: &Path) -> PathBuf {
    let mut found = Vec::new();
    let mut stack = vec![dir.join("target").join("autotune")];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().contains("burn-topk-top-k") {
                found.push(path);
            }
        }
    }
    assert_eq!(found.len(), 1, "one cache file for the device: {found:?}");
    found.pop().unwrap()
}

#[test]
fn autotune_cache_survives_restart_and_corruption() {
    let dir = std::env::temp_dir().join(format!("burn-topk-autotune-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Cargo.toml"), "").unwrap();

    run_child(&dir, "tune");
    run_child(&dir, "restart");

    // Corrupt the cache: a line that is not JSON, the tuned line copied under the second key
    // with an index past the candidates, and under the third key with another checksum.
    let file = cache_file(&dir);
    let text = std::fs::read_to_string(&file).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("\"k\":9,"))
        .expect("the tuned key is cached")
        .to_string();
    let index = line.find("\"fastest_index\":").unwrap() + "\"fastest_index\":".len();
    let digits = line[index..].find(|c: char| !c.is_ascii_digit()).unwrap();
    let bad_index = format!("{}999{}", &line[..index], &line[index + digits..])
        .replace("\"k\":9,", "\"k\":10,");
    let checksum = line.find("\"checksum\":\"").unwrap() + "\"checksum\":\"".len();
    let stale =
        format!("{}x{}", &line[..checksum], &line[checksum..]).replace("\"k\":9,", "\"k\":11,");
    std::fs::write(
        &file,
        format!("{text}{{\"key\": not json\n{bad_index}\n{stale}\n"),
    )
    .unwrap();
    run_child(&dir, "corrupt");
    let _ = std::fs::remove_dir_all(&dir);
}

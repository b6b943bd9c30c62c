//! Sampling tests, part of the one test binary: exact cases, filters against the CPU reference,
//! chi-square of device draws against the exact filtered distribution, reproducibility, invalid
//! rows and errors. Run on the fused device backend and on NdArray.

use super::{Fused, Plain, gpu, gpu_device};
use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Int, Tensor, TensorData};
use burn_topk::Strategy;
use burn_topk::options::StreamingParams;
use burn_topk::sampling::reference::{self, Filtered, RowSettings};
use burn_topk::sampling::{
    FilterOrder, FilterOutput, SampleExt, Sampler, SamplingBackend, SamplingError, SamplingParams,
    Source,
};
use cubecl::Runtime;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Fixed seeds: these tests are statistical, and a fixed seed makes each outcome reproducible.
fn rng(salt: u64) -> StdRng {
    StdRng::seed_from_u64(0x5A11_9100 + salt)
}

fn matrix<B: SamplingBackend>(values: &[f32], rows: usize, device: &B::Device) -> Tensor<B, 2> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), [rows, values.len() / rows]),
        device,
    )
}

fn ints<B: SamplingBackend>(values: Vec<i64>, device: &B::Device) -> Tensor<B, 1, Int> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

fn floats<B: SamplingBackend>(values: Vec<f32>, device: &B::Device) -> Tensor<B, 1> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

fn to_vec_i64<B: SamplingBackend>(t: Tensor<B, 1, Int>) -> Vec<i64> {
    t.into_data().convert::<i64>().to_vec().unwrap()
}

fn repeat(row: &[f32], rows: usize) -> Vec<f32> {
    row.iter().copied().cycle().take(row.len() * rows).collect()
}

fn as_f64(row: &[f32]) -> Vec<f64> {
    row.iter().map(|&v| f64::from(v)).collect()
}

/// Probabilities sorted descending, with the reference's order.
fn sorted_probabilities(row: &[f32], settings: &RowSettings) -> Vec<f64> {
    let plain = RowSettings {
        top_k: None,
        top_p: 1.0,
        min_p: 0.0,
        ..*settings
    };
    let probabilities = reference::filter_row(&as_f64(row), &plain)
        .unwrap()
        .probabilities;
    let mut sorted = probabilities;
    sorted.sort_by(|a, b| b.partial_cmp(a).unwrap());
    sorted
}

/// A top-p halfway between the masses of the first `at + 1` and `at + 2` sorted tokens (as a
/// fraction of `base`): the nucleus keeps `at + 2` tokens, and float rounding cannot move the cut.
fn safe_top_p(sorted: &[f64], at: usize, base: f64) -> f32 {
    let before: f64 = sorted[..=at].iter().sum();
    let after = before + sorted[at + 1];
    ((before + after) / 2.0 / base) as f32
}

/// A min-p halfway between the relative probabilities of sorted positions `at` and `at + 1`.
fn safe_min_p(sorted: &[f64], at: usize) -> f32 {
    ((sorted[at] + sorted[at + 1]) / 2.0 / sorted[0]) as f32
}

fn distinct_logits(rng: &mut StdRng, n: usize, spread: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-spread..spread)).collect()
}

fn tied_logits(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(0..4) as f32).collect()
}

/// Rows as constrained decoding leaves them: −inf but at `finite.len()` random places, which hold
/// `finite` in every row. Only the places differ, so the rows share one sorted distribution and
/// a top-p or min-p away from its boundaries in one is away from them in all.
fn masked_rows(rng: &mut StdRng, rows: usize, vocab: usize, finite: &[f32]) -> Vec<f32> {
    let mut values = vec![f32::NEG_INFINITY; rows * vocab];
    for row in values.chunks_mut(vocab) {
        let places = rand::seq::index::sample(rng, vocab, finite.len());
        for (at, &value) in places.iter().zip(finite) {
            row[at] = value;
        }
    }
    values
}

/// A row of −inf but one finite logit, away from index 0 (the token of an all −inf row).
fn one_finite(vocab: usize) -> Vec<f32> {
    let mut row = vec![f32::NEG_INFINITY; vocab];
    row[vocab * 2 / 3] = 1.5;
    row
}

/// Each row's softmax: exactly 0 where the logit is −inf.
fn softmax_rows(values: &[f32], vocab: usize) -> Vec<f32> {
    values
        .chunks(vocab)
        .flat_map(|row| {
            let top = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let weights: Vec<f64> = row.iter().map(|&v| f64::from(v - top).exp()).collect();
            let total: f64 = weights.iter().sum();
            weights.into_iter().map(move |w| (w / total) as f32)
        })
        .collect()
}

/// The validity flags are `valid`, and no row's token is masked (its value not above `masked`:
/// −inf for logits, 0 for probabilities). Invalid rows give their argmax, which is not masked
/// either.
fn assert_unmasked(
    values: &[f32],
    (tokens, flags): &(Vec<i64>, Vec<i64>),
    valid: &[i64],
    masked: f32,
    what: &str,
) {
    assert_eq!(flags, valid, "{what}: validity");
    let vocab = values.len() / tokens.len();
    for (row, &token) in tokens.iter().enumerate() {
        let value = values[row * vocab + token as usize];
        assert!(
            value > masked,
            "{what}: row {row} drew token {token}, which is masked ({value})"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Exact cases

/// Greedy, top-k = 1 and a tiny top-p all give the argmax, ties to the smaller index.
fn exact_argmax<B: SamplingBackend>(device: &B::Device) {
    let mut rng = rng(1);
    for (vocab, rows) in [(1usize, 3usize), (7, 5), (300, 6), (5000, 4), (70_000, 2)] {
        for (name, values) in [
            ("ties", tied_logits(&mut rng, rows * vocab)),
            ("distinct", distinct_logits(&mut rng, rows * vocab, 8.0)),
        ] {
            let want: Vec<i64> = values
                .chunks(vocab)
                .map(|row| reference::argmax(&as_f64(row)) as i64)
                .collect();
            for (mode, params) in [
                ("greedy", SamplingParams::greedy()),
                ("top-k 1", SamplingParams::new().top_k(1).seed(3)),
                ("top-p 1e-9", SamplingParams::new().top_p(1e-9).seed(4)),
                ("min-p 1", SamplingParams::new().min_p(1.0).temperature(0.5)),
            ] {
                // min-p 1 keeps every token tied with the largest: only exact for distinct values.
                if mode == "min-p 1" && name == "ties" {
                    continue;
                }
                let got = to_vec_i64(matrix::<B>(&values, rows, device).sample(&params));
                assert_eq!(got, want, "{mode}, {name}, vocab {vocab}");
            }
        }
    }
}

/// Greedy decoding of f32, f16 and bf16 logits (where the device has them): the argmax, ties
/// (many for the half types, after rounding) to the smaller index, −0.0 tied with +0.0, and rows
/// with a NaN, all −inf or a +inf invalid with the NaN's, the first −inf's or the +inf's index.
fn greedy_dtypes<B: SamplingBackend>(device: &B::Device) {
    use burn::tensor::DType;
    let mut rng = rng(12);
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        if !B::supports_dtype(device, dtype) {
            println!("{dtype:?}: not supported on this device, skipped");
            continue;
        }
        for (rows, vocab) in [(6usize, 4099usize), (5, 70_000)] {
            let mut values = distinct_logits(&mut rng, rows * vocab, 2.0);
            values[vocab + vocab / 3] = f32::NAN;
            values[2 * vocab..3 * vocab].fill(f32::NEG_INFINITY);
            values[3 * vocab + vocab - 2] = f32::INFINITY;
            values[4 * vocab..5 * vocab].fill(-1.0);
            values[4 * vocab + 7] = -0.0;
            values[4 * vocab + 9] = 0.0;
            // The half values made on the host, so the kernel and the reference see the same
            // numbers whatever rounding the device's cast would use.
            let (data, rounded): (TensorData, Vec<f32>) = match dtype {
                DType::F32 => (TensorData::new(values.clone(), [rows, vocab]), values),
                DType::F16 => {
                    let h: Vec<half::f16> =
                        values.iter().map(|&v| half::f16::from_f32(v)).collect();
                    let r = h.iter().map(|v| v.to_f32()).collect();
                    (TensorData::new(h, [rows, vocab]), r)
                }
                _ => {
                    let h: Vec<half::bf16> =
                        values.iter().map(|&v| half::bf16::from_f32(v)).collect();
                    let r = h.iter().map(|v| v.to_f32()).collect();
                    (TensorData::new(h, [rows, vocab]), r)
                }
            };
            let logits = Tensor::<B, 2>::from_data(data, (device, dtype));
            assert_eq!(logits.dtype(), dtype);
            let want: Vec<i64> = rounded
                .chunks(vocab)
                .map(|row| reference::argmax(&as_f64(row)) as i64)
                .collect();
            let (tokens, valid) = logits
                .try_sample_with_validity(&SamplingParams::greedy())
                .unwrap();
            assert_eq!(to_vec_i64(tokens), want, "{dtype:?}, vocab {vocab}");
            assert_eq!(
                want[4], 7,
                "{dtype:?}: -0.0 ties with +0.0, the smaller index wins"
            );
            let valid = to_vec_i64(valid.int());
            assert_eq!(&valid[1..4], &[0, 0, 0], "{dtype:?}, invalid rows");
            assert!(valid[0] == 1 && valid[4] == 1, "{dtype:?}, valid rows");
        }
    }
}

/// A filtered row compared with the reference: the survivor set exactly, values to rounding.
fn check_filter<B: SamplingBackend>(
    values: &[f32],
    rows: usize,
    params: &SamplingParams<B>,
    settings: &RowSettings,
    output: FilterOutput,
    device: &B::Device,
    what: &str,
) {
    let got = matrix::<B>(values, rows, device)
        .try_filter(params, output)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    check_filtered(got, values, settings, output, what);
}

/// Filtered rows (`got`, from `values`) compared with the reference.
fn check_filtered<B: SamplingBackend>(
    got: Tensor<B, 2>,
    values: &[f32],
    settings: &RowSettings,
    output: FilterOutput,
    what: &str,
) {
    let [rows, vocab] = got.dims();
    let got = got.into_data().convert::<f32>().to_vec::<f32>().unwrap();
    for row in 0..rows {
        let input = &values[row * vocab..(row + 1) * vocab];
        let Filtered {
            keep,
            probabilities,
        } = reference::filter_row(&as_f64(input), settings).expect("a valid row");
        for i in 0..vocab {
            let g = got[row * vocab + i];
            match output {
                FilterOutput::MaskedLogits => {
                    let want = if keep[i] { input[i] } else { f32::NEG_INFINITY };
                    assert_eq!(g.to_bits(), want.to_bits(), "{what}: row {row} element {i}");
                }
                FilterOutput::Probabilities => {
                    let want = probabilities[i] as f32;
                    assert_eq!(
                        g == 0.0,
                        !keep[i] || want == 0.0,
                        "{what}: row {row} element {i} kept"
                    );
                    assert!(
                        (g - want).abs() <= 2e-5 * want.max(1e-3),
                        "{what}: row {row} element {i}: got {g}, want {want}"
                    );
                }
            }
        }
    }
}

fn filters<B: SamplingBackend>(device: &B::Device) {
    let mut rng = rng(2);
    // Top-k masks, with ties cut by index, across the index digit passes.
    for (vocab, rows) in [(5usize, 3usize), (300, 4), (3000, 2), (70_000, 1)] {
        let values = tied_logits(&mut rng, rows * vocab);
        for k in [1, 2, vocab / 2 + 1, vocab.saturating_sub(1).max(1), vocab] {
            let settings = RowSettings {
                top_k: Some(k),
                ..Default::default()
            };
            check_filter::<B>(
                &values,
                rows,
                &SamplingParams::new().top_k(k),
                &settings,
                FilterOutput::MaskedLogits,
                device,
                &format!("top-k mask vocab {vocab} k {k}"),
            );
        }
    }
    // The named ops.
    let logits: Vec<f32> = distinct_logits(&mut rng, 2 * 40, 4.0);
    let masked = matrix::<B>(&logits, 2, device).top_k_mask_logits(5);
    let settings = RowSettings {
        top_k: Some(5),
        ..Default::default()
    };
    let want: Vec<f32> = logits
        .chunks(40)
        .flat_map(|row| {
            let keep = reference::filter_row(&as_f64(row), &settings).unwrap().keep;
            row.iter()
                .zip(keep)
                .map(|(&v, k)| if k { v } else { f32::NEG_INFINITY })
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(masked.into_data().to_vec::<f32>().unwrap(), want);

    // Renormalised probabilities from probabilities: top-k and top-p away from boundaries.
    let probs_row: Vec<f32> = {
        let w: Vec<f32> = (0..64)
            .map(|_| rng.random_range(0.0f32..1.0).powi(3))
            .collect();
        let total: f32 = w.iter().sum();
        w.iter().map(|v| v / total).collect()
    };
    let probs = repeat(&probs_row, 3);
    let from_probs = RowSettings {
        source: Source::Probabilities,
        ..Default::default()
    };
    for k in [1, 7, 63] {
        let got = matrix::<B>(&probs, 3, device).top_k_renorm_probs(k);
        let want = reference::filter_row(
            &as_f64(&probs_row),
            &RowSettings {
                top_k: Some(k),
                ..from_probs
            },
        )
        .unwrap();
        let got = got.into_data().convert::<f32>().to_vec::<f32>().unwrap();
        for (i, &g) in got.iter().enumerate() {
            let w = want.probabilities[i % 64] as f32;
            assert!(
                (g - w).abs() <= 2e-5 * w.max(1e-3),
                "top-k renorm k {k} at {i}: {g} vs {w}"
            );
        }
    }
    let sorted = sorted_probabilities(&probs_row, &from_probs);
    for at in [0, 5, 30] {
        let p = safe_top_p(&sorted, at, 1.0);
        let settings = RowSettings {
            top_p: p,
            ..from_probs
        };
        let params = SamplingParams::new().top_p(p).from_probabilities();
        check_filter::<B>(
            &probs,
            3,
            &params,
            &settings,
            FilterOutput::Probabilities,
            device,
            &format!("top-p renorm {p}"),
        );
        let named = matrix::<B>(&probs, 3, device).top_p_renorm_probs(p);
        let kept = named
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .filter(|&&v| v > 0.0)
            .count();
        assert_eq!(
            kept,
            3 * (at + 2),
            "top-p renorm {p} keeps {at} + 2 per row"
        );
    }

    // Every filter from logits, both outputs, both orders.
    let logits = distinct_logits(&mut rng, 200, 5.0);
    let rows_values = repeat(&logits, 2);
    for temperature in [0.7f32, 1.3] {
        let base = RowSettings {
            temperature,
            ..Default::default()
        };
        let sorted = sorted_probabilities(&logits, &base);
        let k = 40;
        let kept_mass: f64 = sorted[..k].iter().sum();
        let cases = [
            (
                "top-p",
                RowSettings {
                    top_p: safe_top_p(&sorted, 12, 1.0),
                    ..base
                },
            ),
            (
                "min-p",
                RowSettings {
                    min_p: safe_min_p(&sorted, 9),
                    ..base
                },
            ),
            (
                "top-k top-p",
                RowSettings {
                    top_k: Some(k),
                    top_p: safe_top_p(&sorted, 20, kept_mass),
                    ..base
                },
            ),
            (
                "joint",
                RowSettings {
                    top_k: Some(k),
                    top_p: safe_top_p(&sorted, 20, 1.0),
                    order: FilterOrder::Joint,
                    ..base
                },
            ),
            (
                "joint, top-p shorter",
                RowSettings {
                    top_k: Some(k),
                    top_p: safe_top_p(&sorted, 3, 1.0),
                    order: FilterOrder::Joint,
                    min_p: safe_min_p(&sorted, 30),
                    ..base
                },
            ),
        ];
        for (name, settings) in cases {
            let params = params_of::<B>(&settings);
            for output in [FilterOutput::MaskedLogits, FilterOutput::Probabilities] {
                check_filter::<B>(
                    &rows_values,
                    2,
                    &params,
                    &settings,
                    output,
                    device,
                    &format!("{name} T {temperature} {output:?}"),
                );
            }
        }
    }
    filters_masked::<B>(device, &[300, 5000]);
}

/// The filters on masked rows (constrained decoding): 90 % of each row −inf (or, as
/// probabilities, 0), and a last row with one finite logit, against the reference. Top-k runs
/// below, at and past the finite count; a filter that took a masked row for an invalid one would
/// give it back unchanged.
fn filters_masked<B: SamplingBackend>(device: &B::Device, vocabs: &[usize]) {
    let mut rng = rng(13);
    for &vocab in vocabs {
        let rows = 4;
        let finite = distinct_logits(&mut rng, vocab / 10, 4.0);
        let n = finite.len();
        let mut logits = masked_rows(&mut rng, rows - 1, vocab, &finite);
        logits.extend(one_finite(vocab));
        let what = |op: String| format!("masked, vocab {vocab}: {op}");
        let default = RowSettings::default();

        // The named ops.
        for k in [1, n / 2, n, n + 7, vocab] {
            check_filtered(
                matrix::<B>(&logits, rows, device).top_k_mask_logits(k),
                &logits,
                &RowSettings {
                    top_k: Some(k),
                    ..default
                },
                FilterOutput::MaskedLogits,
                &what(format!("top-k mask {k}")),
            );
        }
        // Probabilities 0 where masked, one of them −0.0 (not a negative value).
        let mut probs = softmax_rows(&logits, vocab);
        let zero = probs.iter().position(|&p| p == 0.0).unwrap();
        probs[zero] = -0.0;
        let from_probs = RowSettings {
            source: Source::Probabilities,
            ..default
        };
        for k in [1, n / 2, n + 7] {
            check_filtered(
                matrix::<B>(&probs, rows, device).top_k_renorm_probs(k),
                &probs,
                &RowSettings {
                    top_k: Some(k),
                    ..from_probs
                },
                FilterOutput::Probabilities,
                &what(format!("top-k renorm {k}")),
            );
        }
        let sorted = sorted_probabilities(&finite, &default);
        for at in [0, n / 4, n / 2] {
            let p = safe_top_p(&sorted, at, 1.0);
            check_filtered(
                matrix::<B>(&probs, rows, device).top_p_renorm_probs(p),
                &probs,
                &RowSettings {
                    top_p: p,
                    ..from_probs
                },
                FilterOutput::Probabilities,
                &what(format!("top-p renorm {p}")),
            );
        }

        // Every mode from logits, both outputs.
        let base = RowSettings {
            temperature: 0.8,
            ..default
        };
        let sorted = sorted_probabilities(&finite, &base);
        let half: f64 = sorted[..n / 2].iter().sum();
        let cases = [
            (
                "greedy",
                RowSettings {
                    temperature: 0.0,
                    ..base
                },
            ),
            ("temperature", base),
            (
                "top-p",
                RowSettings {
                    top_p: safe_top_p(&sorted, n / 3, 1.0),
                    ..base
                },
            ),
            (
                "min-p",
                RowSettings {
                    min_p: safe_min_p(&sorted, n / 4),
                    ..base
                },
            ),
            (
                "top-k top-p",
                RowSettings {
                    top_k: Some(n / 2),
                    top_p: safe_top_p(&sorted, n / 4, half),
                    ..base
                },
            ),
            (
                "top-k past the finite, top-p",
                RowSettings {
                    top_k: Some(n + 7),
                    top_p: safe_top_p(&sorted, n / 3, 1.0),
                    ..base
                },
            ),
            (
                "joint",
                RowSettings {
                    top_k: Some(n + 7),
                    top_p: safe_top_p(&sorted, n / 5, 1.0),
                    order: FilterOrder::Joint,
                    ..base
                },
            ),
        ];
        for (name, settings) in cases {
            for output in [FilterOutput::MaskedLogits, FilterOutput::Probabilities] {
                check_filter::<B>(
                    &logits,
                    rows,
                    &params_of::<B>(&settings),
                    &settings,
                    output,
                    device,
                    &what(format!("{name} {output:?}")),
                );
            }
        }
    }
}

fn params_of<B: SamplingBackend>(s: &RowSettings) -> SamplingParams<B> {
    let mut params = SamplingParams::new()
        .temperature(s.temperature)
        .top_p(s.top_p)
        .min_p(s.min_p)
        .order(s.order)
        .source(s.source);
    if let Some(k) = s.top_k {
        params = params.top_k(k);
    }
    params
}

// ---------------------------------------------------------------------------------------------
// Statistics

/// Wilson–Hilferty approximation of the chi-square quantile at `z` standard deviations.
fn chi_square_critical(df: usize, z: f64) -> f64 {
    let df = df as f64;
    let a = 2.0 / (9.0 * df);
    df * (1.0 - a + z * a.sqrt()).powi(3)
}

/// Draws `rows` tokens from the same row and tests them against the reference distribution:
/// every row valid, no draw outside the survivors, and a chi-square below the 5-sigma quantile.
fn chi_square<B: SamplingBackend>(
    row: &[f32],
    settings: &RowSettings,
    params: SamplingParams<B>,
    rows: usize,
    device: &B::Device,
    what: &str,
) {
    let want = reference::filter_row(&as_f64(row), settings).expect("a valid row");
    let seeds = ints::<B>((0..rows as i64).map(|s| s * 7919 + 11).collect(), device);
    let (tokens, valid) = tokens_and_validity::<B>(
        &repeat(row, rows),
        rows,
        &params.seed_per_row(seeds),
        device,
    );
    assert!(valid.iter().all(|&v| v == 1), "{what}: every row valid");
    chi_square_test(&tokens, &want, what);
}

/// Draws from a batch whose rows cycle through `groups` (row r is in group r mod the groups),
/// each group with its own row and its own temperature, top-p, min-p and (unless `params` has a
/// batch top-k, which the groups must share) top-k, given per row; tests each group's draws
/// against its own distribution as [`chi_square`] does. `params` holds what is batch-wide: the
/// order, the source, a batch top-k and its strategy.
fn chi_square_per_row<B: SamplingBackend>(
    groups: &[(Vec<f32>, RowSettings)],
    params: SamplingParams<B>,
    rows: usize,
    device: &B::Device,
    what: &str,
) {
    let scalars = params.scalars();
    let g = groups.len();
    for (_, s) in groups {
        assert_eq!((s.order, s.source), (scalars.order, scalars.source));
        assert!(scalars.top_k.is_none() || s.top_k == scalars.top_k);
    }
    let of_row = |f: &dyn Fn(&RowSettings) -> f32| -> Tensor<B, 1> {
        floats::<B>((0..rows).map(|r| f(&groups[r % g].1)).collect(), device)
    };
    let seeds = (0..rows as i64).map(|s| s * 7919 + 11).collect();
    let mut params = params
        .seed_per_row(ints::<B>(seeds, device))
        .top_p_per_row(of_row(&|s| s.top_p))
        .min_p_per_row(of_row(&|s| s.min_p));
    if scalars.source == Source::Logits {
        params = params.temperature_per_row(of_row(&|s| s.temperature));
    }
    if scalars.top_k.is_none() {
        // k = 0: no top-k for that row.
        let ks = (0..rows).map(|r| groups[r % g].1.top_k.unwrap_or(0) as i64);
        params = params.top_k_per_row(ints::<B>(ks.collect(), device));
    }
    let values: Vec<f32> = (0..rows).flat_map(|r| groups[r % g].0.clone()).collect();
    let (tokens, valid) = tokens_and_validity::<B>(&values, rows, &params, device);
    assert!(valid.iter().all(|&v| v == 1), "{what}: every row valid");
    for (group, (row, settings)) in groups.iter().enumerate() {
        let want = reference::filter_row(&as_f64(row), settings).expect("a valid row");
        let drawn: Vec<i64> = tokens.iter().skip(group).step_by(g).copied().collect();
        chi_square_test(&drawn, &want, &format!("{what}, group {group}"));
    }
}

/// No token outside the survivors of `want`, and the tokens' chi-square against its
/// distribution below the 5-sigma quantile.
fn chi_square_test(tokens: &[i64], want: &Filtered, what: &str) {
    let mut counts = vec![0usize; want.keep.len()];
    for &t in tokens {
        let t = t as usize;
        assert!(
            want.keep[t] && want.probabilities[t] > 0.0,
            "{what}: drew token {t}, which was filtered out (or has probability 0)"
        );
        counts[t] += 1;
    }
    // Pool the bins with expectation below 5.
    let n = tokens.len() as f64;
    let (mut statistic, mut bins) = (0.0, 0usize);
    let (mut pooled_count, mut pooled_expected) = (0.0, 0.0);
    for (&count, &probability) in counts.iter().zip(&want.probabilities) {
        let expected = probability * n;
        if expected == 0.0 {
            continue;
        }
        if expected < 5.0 {
            pooled_count += count as f64;
            pooled_expected += expected;
            continue;
        }
        statistic += (count as f64 - expected).powi(2) / expected;
        bins += 1;
    }
    if pooled_expected > 0.0 {
        statistic += (pooled_count - pooled_expected).powi(2) / pooled_expected;
        bins += 1;
    }
    if bins < 2 {
        return;
    }
    let critical = chi_square_critical(bins - 1, 5.0);
    println!("{what}: chi-square {statistic:.1} over {bins} bins (critical {critical:.1})");
    assert!(
        statistic < critical,
        "{what}: chi-square {statistic:.1} over {bins} bins exceeds {critical:.1}"
    );
}

fn statistics<B: SamplingBackend>(device: &B::Device, rows: usize) {
    let mut rng = rng(3);
    let logits = distinct_logits(&mut rng, 50, 3.0);
    let base = RowSettings::default();
    let sorted = sorted_probabilities(&logits, &base);
    let cool = RowSettings {
        temperature: 0.6,
        ..base
    };
    let cool_sorted = sorted_probabilities(&logits, &cool);
    let k = 12;
    let kept: f64 = cool_sorted[..k].iter().sum();
    let cases = [
        ("plain", base),
        ("temperature 0.6", cool),
        (
            "top-k 12",
            RowSettings {
                top_k: Some(12),
                ..base
            },
        ),
        (
            "top-p",
            RowSettings {
                top_p: safe_top_p(&sorted, 15, 1.0),
                ..base
            },
        ),
        (
            "min-p",
            RowSettings {
                min_p: safe_min_p(&sorted, 20),
                ..base
            },
        ),
        (
            "top-k then top-p",
            RowSettings {
                top_k: Some(k),
                top_p: safe_top_p(&cool_sorted, 6, kept),
                ..cool
            },
        ),
        (
            "joint",
            RowSettings {
                top_k: Some(k),
                top_p: safe_top_p(&cool_sorted, 8, 1.0),
                order: FilterOrder::Joint,
                ..cool
            },
        ),
        (
            "all filters",
            RowSettings {
                top_k: Some(30),
                top_p: safe_top_p(&sorted, 25, sorted[..30].iter().sum()),
                min_p: safe_min_p(&sorted, 18),
                ..base
            },
        ),
    ];
    for (name, settings) in &cases {
        chi_square::<B>(
            &logits,
            settings,
            params_of::<B>(settings),
            rows,
            device,
            name,
        );
    }
    // From probabilities: top-k, top-p, min-p.
    let probs: Vec<f32> = {
        let total: f64 = logits.iter().map(|&v| f64::from(v).exp()).sum();
        logits
            .iter()
            .map(|&v| (f64::from(v).exp() / total) as f32)
            .collect()
    };
    let from_probs = RowSettings {
        source: Source::Probabilities,
        ..base
    };
    let probs_sorted = sorted_probabilities(&probs, &from_probs);
    let probs_cases = [
        (
            "top-k 20",
            RowSettings {
                top_k: Some(20),
                ..from_probs
            },
        ),
        (
            "top-p",
            RowSettings {
                top_p: safe_top_p(&probs_sorted, 12, 1.0),
                ..from_probs
            },
        ),
        (
            "min-p",
            RowSettings {
                min_p: safe_min_p(&probs_sorted, 15),
                ..from_probs
            },
        ),
    ];
    for (name, settings) in &probs_cases {
        chi_square::<B>(
            &probs,
            settings,
            params_of::<B>(settings),
            rows,
            device,
            &format!("probabilities {name}"),
        );
    }

    // Per-row parameters: four groups in one batch, each with its own row (one of them 90 %
    // −inf, `sparse`), temperature, top-k, top-p and min-p.
    let other = distinct_logits(&mut rng, 50, 2.0);
    let third = distinct_logits(&mut rng, 50, 4.0);
    let sparse = masked_rows(&mut rng, 1, 50, &logits[..5]);
    let hot = RowSettings {
        temperature: 1.5,
        ..base
    };
    let warm = RowSettings {
        temperature: 0.8,
        ..base
    };
    let other_sorted = sorted_probabilities(&other, &cool);
    let sparse_sorted = sorted_probabilities(&logits[..5], &hot);
    let third_sorted = sorted_probabilities(&third, &warm);
    let groups = [
        (logits.clone(), base),
        (
            other,
            RowSettings {
                top_k: Some(12),
                top_p: safe_top_p(&other_sorted, 6, other_sorted[..12].iter().sum()),
                ..cool
            },
        ),
        (
            sparse.clone(),
            RowSettings {
                top_p: safe_top_p(&sparse_sorted, 2, 1.0),
                ..hot
            },
        ),
        (
            third,
            RowSettings {
                top_k: Some(30),
                min_p: safe_min_p(&third_sorted, 10),
                ..warm
            },
        ),
    ];
    chi_square_per_row::<B>(&groups, SamplingParams::new(), rows, device, "per-row");

    // Masked rows (constrained decoding): the per-row batch's row of 5 finite logits among 45
    // −inf, through every mode, as groups of per-row parameters to keep lavapipe's time down:
    // the sequential modes (greedy, and top-k below and past the finite count) through the
    // one-launch kernel; joint top-p with a batch top-k past the finite count through the fast
    // path (whose tokens are the one-launch kernel's, see `fast_path_agrees`); and the
    // probabilities, 0 where masked.
    let masked = |settings: RowSettings| (sparse.clone(), settings);
    let finite = &logits[..5];
    let sorted = sorted_probabilities(finite, &base);
    let cool_sorted = sorted_probabilities(finite, &cool);
    let sequential = [
        masked(RowSettings {
            temperature: 0.0,
            ..base
        }),
        masked(base),
        masked(cool),
        masked(RowSettings {
            top_k: Some(2),
            ..cool
        }),
        masked(RowSettings {
            top_k: Some(12),
            ..base
        }),
        masked(RowSettings {
            top_p: safe_top_p(&sorted, 1, 1.0),
            ..base
        }),
        masked(RowSettings {
            min_p: safe_min_p(&sorted, 2),
            ..base
        }),
        masked(RowSettings {
            top_k: Some(3),
            top_p: safe_top_p(&cool_sorted, 0, cool_sorted[..3].iter().sum()),
            ..cool
        }),
    ];
    let params = SamplingParams::new();
    chi_square_per_row::<B>(&sequential, params, rows, device, "masked");
    let joint = |top_p: f32, min_p: f32, settings: RowSettings| {
        masked(RowSettings {
            top_k: Some(12),
            top_p,
            min_p,
            order: FilterOrder::Joint,
            ..settings
        })
    };
    let joint = [
        joint(safe_top_p(&cool_sorted, 1, 1.0), 0.0, cool),
        joint(1.0, 0.0, base),
        joint(safe_top_p(&sorted, 2, 1.0), safe_min_p(&sorted, 1), base),
    ];
    let params = SamplingParams::new().top_k(12).joint();
    chi_square_per_row::<B>(&joint, params, rows, device, "masked, joint, top-k 12");
    let masked_probs = softmax_rows(&sparse, 50);
    let sorted = sorted_probabilities(&masked_probs, &from_probs);
    let probabilities = [
        RowSettings {
            top_k: Some(2),
            ..from_probs
        },
        RowSettings {
            top_k: Some(12),
            ..from_probs
        },
        RowSettings {
            top_p: safe_top_p(&sorted, 1, 1.0),
            ..from_probs
        },
        RowSettings {
            min_p: safe_min_p(&sorted, 2),
            ..from_probs
        },
    ]
    .map(|settings| (masked_probs.clone(), settings));
    let params = SamplingParams::new().from_probabilities();
    chi_square_per_row::<B>(&probabilities, params, rows, device, "masked probabilities");

    // Ties at the top-k cut: the first ties by index survive.
    let tied: Vec<f32> = (0..40).map(|i| (i % 5) as f32 * 0.5).collect();
    let settings = RowSettings {
        top_k: Some(10),
        ..base
    };
    chi_square::<B>(
        &tied,
        &settings,
        params_of::<B>(&settings),
        rows,
        device,
        "top-k 10 with ties",
    );
}

// ---------------------------------------------------------------------------------------------
// Reproducibility, per-row parameters, invalid rows

fn reproducibility<B: SamplingBackend>(device: &B::Device) {
    let mut rng = rng(4);
    // More rows than the H100 has processors: the batch runs 256-unit cubes, a row alone the
    // largest cube, and the tokens must not depend on it.
    let rows = 160;
    let vocab = 1000;
    let values = distinct_logits(&mut rng, rows * vocab, 2.0);
    let params = SamplingParams::new().top_p(0.95).seed(123);
    let first = to_vec_i64(matrix::<B>(&values, rows, device).sample(&params));
    let again = to_vec_i64(matrix::<B>(&values, rows, device).sample(&params));
    assert_eq!(first, again, "same seed, same tokens");
    let next = to_vec_i64(matrix::<B>(&values, rows, device).sample(&params.clone().next_step()));
    assert!(first != next, "the next step draws other tokens");
    let other = to_vec_i64(matrix::<B>(&values, rows, device).sample(&params.clone().seed(124)));
    assert!(first != other, "another seed draws other tokens");
    // A sampler walks the steps.
    let mut sampler = Sampler::new(params.clone());
    assert_eq!(
        to_vec_i64(sampler.sample(matrix::<B>(&values, rows, device))),
        first
    );
    assert_eq!(
        to_vec_i64(sampler.sample(matrix::<B>(&values, rows, device))),
        next
    );

    // Per-row seeds and parameters: each row as if sampled alone.
    let seeds: Vec<i64> = (0..rows as i64).map(|r| r * 31 + 5).collect();
    let temperatures: Vec<f32> = (0..rows).map(|r| [0.0, 0.5, 1.0, 2.0][r % 4]).collect();
    let ks: Vec<i64> = (0..rows as i64)
        .map(|r| [0, 1, 5, 50, 2000][r as usize % 5])
        .collect();
    let ps: Vec<f32> = (0..rows).map(|r| [1.0, 0.5, 0.9][r % 3]).collect();
    let min_ps: Vec<f32> = (0..rows).map(|r| [0.0, 0.1][r % 2]).collect();
    let batch = SamplingParams::new()
        .seed_per_row(ints::<B>(seeds.clone(), device))
        .temperature_per_row(floats::<B>(temperatures.clone(), device))
        .top_k_per_row(ints::<B>(ks.clone(), device))
        .top_p_per_row(floats::<B>(ps.clone(), device))
        .min_p_per_row(floats::<B>(min_ps.clone(), device))
        .offset(9);
    let together = to_vec_i64(matrix::<B>(&values, rows, device).sample(&batch));
    // Rows 5, 10, 15, 65, 135 and 145 have no top-k and a temperature above 0: alone, they take
    // the one-launch kernel's draw.
    for row in [
        0usize, 1, 2, 3, 4, 5, 10, 15, 17, 38, 63, 65, 100, 131, 135, 145, 159,
    ] {
        let mut alone = SamplingParams::new()
            .seed_per_row(ints::<B>(vec![seeds[row]], device))
            .temperature(temperatures[row])
            .top_p(ps[row])
            .min_p(min_ps[row])
            .offset(9);
        if ks[row] > 0 {
            alone = alone.top_k(ks[row] as usize);
        }
        let single = &values[row * vocab..(row + 1) * vocab];
        let got = to_vec_i64(matrix::<B>(single, 1, device).sample(&alone));
        assert_eq!(got[0], together[row], "row {row} alone");
        if temperatures[row] == 0.0 || ks[row] == 1 {
            assert_eq!(
                got[0],
                reference::argmax(&as_f64(single)) as i64,
                "row {row} greedy"
            );
        }
    }
}

fn invalid_rows<B: SamplingBackend>(device: &B::Device) {
    let vocab = 6;
    let good = [0.5f32, 2.0, 1.0, -1.0, 0.0, 1.5];
    let rows: Vec<[f32; 6]> = vec![
        good,
        [0.0, 1.0, f32::NAN, 3.0, f32::NAN, 0.0],
        [f32::NEG_INFINITY; 6],
        [0.0, f32::INFINITY, 1.0, f32::INFINITY, 0.0, 0.0],
        good,
        good,
        good,
    ];
    let values: Vec<f32> = rows.iter().flatten().copied().collect();
    let n = rows.len();
    let seeds = ints::<B>((0..n as i64).collect(), device);
    // Row 5 has an out-of-range per-row p, row 6 a negative temperature.
    let ps = floats::<B>(vec![0.9, 0.9, 0.9, 0.9, 0.9, 0.0, 0.9], device);
    let ts = floats::<B>(vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1.0], device);
    let params = SamplingParams::new()
        .seed_per_row(seeds)
        .top_p_per_row(ps)
        .temperature_per_row(ts);
    let (tokens, valid) = matrix::<B>(&values, n, device)
        .try_sample_with_validity(&params)
        .unwrap();
    let tokens = to_vec_i64(tokens);
    assert_eq!(to_vec_i64(valid.int()), vec![1, 0, 0, 0, 1, 0, 0]);
    assert_eq!(&tokens[1..4], &[2, 0, 1], "first NaN, token 0, first +inf");
    assert_eq!(tokens[5], 1, "invalid parameters give the argmax");
    // The good rows are as if sampled alone.
    for row in [0usize, 4] {
        let alone = SamplingParams::new()
            .seed_per_row(ints::<B>(vec![row as i64], device))
            .top_p(0.9);
        let got = to_vec_i64(matrix::<B>(&good, 1, device).sample(&alone));
        assert_eq!(got[0], tokens[row], "row {row}");
    }
    // Filters give invalid rows back unchanged.
    let masked = matrix::<B>(&values, n, device)
        .top_k_mask_logits(2)
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    for row in 1..4 {
        let got = &masked[row * vocab..(row + 1) * vocab];
        let want = &values[row * vocab..(row + 1) * vocab];
        let same = got
            .iter()
            .zip(want)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "row {row} unchanged: {got:?}");
    }
    // Probabilities: negative or all-zero rows are invalid.
    let probs = [0.5f32, 0.5, 0.0, 0.0, -0.1, 0.6, 0.0, 0.0, 0.0];
    let (tokens, valid) = matrix::<B>(&probs, 3, device)
        .try_sample_with_validity(&SamplingParams::new().from_probabilities())
        .unwrap();
    assert_eq!(to_vec_i64(valid.int()), vec![1, 0, 0]);
    assert_eq!(&to_vec_i64(tokens)[1..], &[2, 0]);
}

fn errors<B: SamplingBackend>(device: &B::Device) {
    let x = || matrix::<B>(&[1.0, 2.0, 3.0, 4.0], 2, device);
    let err = |params: SamplingParams<B>| x().try_sample(&params).err();
    assert_eq!(
        err(SamplingParams::new().temperature(-1.0)),
        Some(SamplingError::InvalidTemperature(-1.0))
    );
    assert!(matches!(
        err(SamplingParams::new().temperature(f32::NAN)),
        Some(SamplingError::InvalidTemperature(_))
    ));
    assert_eq!(
        err(SamplingParams::new().temperature(f32::INFINITY)),
        Some(SamplingError::InvalidTemperature(f32::INFINITY))
    );
    assert_eq!(
        err(SamplingParams::new().top_k(0)),
        Some(SamplingError::TopKIsZero)
    );
    assert_eq!(
        err(SamplingParams::new().top_p(0.0)),
        Some(SamplingError::InvalidTopP(0.0))
    );
    assert_eq!(
        err(SamplingParams::new().top_p(1.5)),
        Some(SamplingError::InvalidTopP(1.5))
    );
    assert_eq!(
        err(SamplingParams::new().min_p(-0.1)),
        Some(SamplingError::InvalidMinP(-0.1))
    );
    assert_eq!(
        err(SamplingParams::new().from_probabilities().temperature(0.5)),
        Some(SamplingError::TemperatureWithProbabilities)
    );
    assert_eq!(
        err(SamplingParams::new().top_k_per_row(ints::<B>(vec![1, 2, 3], device))),
        Some(SamplingError::PerRowShape {
            param: "top-k",
            batch: 2,
            shape: vec![3]
        })
    );
    let empty = Tensor::<B, 2>::empty([2, 0], device);
    assert_eq!(
        empty.try_sample(&SamplingParams::new()).err(),
        Some(SamplingError::EmptyVocabulary(vec![2, 0]))
    );
    assert_eq!(
        x().try_top_p_renorm_probs(0.0).err(),
        Some(SamplingError::InvalidTopP(0.0))
    );
    // An empty batch is fine.
    let none = Tensor::<B, 2>::empty([0, 5], device).sample(&SamplingParams::new());
    assert_eq!(none.dims(), [0]);
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        x().sample(&SamplingParams::new().top_k(0))
    }))
    .unwrap_err();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("top-k must be at least 1"), "{message}");
}

// ---------------------------------------------------------------------------------------------
// The fast path (top-k, then the candidate kernel) against the one-launch kernel

/// Tokens and validity flags of one call.
fn tokens_and_validity<B: SamplingBackend>(
    values: &[f32],
    rows: usize,
    params: &SamplingParams<B>,
    device: &B::Device,
) -> (Vec<i64>, Vec<i64>) {
    let (tokens, valid) = matrix::<B>(values, rows, device)
        .try_sample_with_validity(params)
        .unwrap();
    (to_vec_i64(tokens), to_vec_i64(valid.int()))
}

/// The per-row top-p of [`path_modes`]' "per-row" modes, by row mod 4: 1.5 makes a row invalid.
const PER_ROW_TOP_P: [f32; 4] = [0.9, 1.0, 0.5, 1.5];

/// The modes `fast_path_agrees` runs with each top-k: temperatures, top-p (sequential and joint),
/// min-p, and per-row seeds and parameters (some rows greedy, one in four invalid).
fn path_modes<B: SamplingBackend>(
    rows: usize,
    device: &B::Device,
) -> Vec<(&'static str, SamplingParams<B>)> {
    let seeds: Vec<i64> = (0..rows as i64).map(|r| 7 * r + 1).collect();
    let per_row = SamplingParams::new()
        .seed_per_row(ints::<B>(seeds, device))
        .temperature_per_row(floats::<B>(
            (0..rows).map(|r| [1.0, 0.0, 0.7][r % 3]).collect(),
            device,
        ))
        .top_p_per_row(floats::<B>(
            (0..rows).map(|r| PER_ROW_TOP_P[r % 4]).collect(),
            device,
        ))
        .min_p_per_row(floats::<B>(
            (0..rows).map(|r| [0.0, 0.05][r % 2]).collect(),
            device,
        ));
    vec![
        ("top-k", SamplingParams::new().seed(11)),
        (
            "top-k, T 0.5",
            SamplingParams::new().temperature(0.5).seed(12),
        ),
        ("top-k + top-p", SamplingParams::new().top_p(0.7).seed(13)),
        (
            "joint",
            SamplingParams::new().top_p(0.3).joint().temperature(2.0),
        ),
        ("min-p", SamplingParams::new().min_p(0.2).offset(3)),
        // Without the joint order, per-row parameters reach the fused kernel; with it, the row is
        // read again in the candidate kernel.
        ("per-row, sequential", per_row.clone()),
        ("per-row", per_row.joint()),
    ]
}

/// Tokens and validity of `params` with a batch top-k of `k` on every path, which must agree:
/// the default fast path, the same k per row (the one-launch kernel), the streaming top-k with the
/// sampling in the same launch (256-unit cubes fit even lavapipe's 32 KiB of shared memory), and
/// radix select followed by the candidate kernel.
fn all_paths<B: SamplingBackend>(
    values: &[f32],
    rows: usize,
    params: &SamplingParams<B>,
    k: usize,
    device: &B::Device,
    what: &str,
) -> (Vec<i64>, Vec<i64>) {
    let plane = gpu::Rt::client(&gpu_device())
        .properties()
        .hardware
        .plane_size_max;
    let fused = Strategy::Streaming(StreamingParams {
        planes_per_cube: Some(256 / plane),
        vectors_per_unit: None,
    });
    let fast = tokens_and_validity::<B>(values, rows, &params.clone().top_k(k), device);
    let ks = ints::<B>(vec![k as i64; rows], device);
    let one_launch =
        tokens_and_validity::<B>(values, rows, &params.clone().top_k_per_row(ks), device);
    assert_eq!(fast, one_launch, "{what}");
    for (path, strategy) in [("fused", fused), ("radix", Strategy::radix_select())] {
        let params = params.clone().top_k(k).top_k_strategy(strategy);
        let tokens = tokens_and_validity::<B>(values, rows, &params, device);
        assert_eq!(tokens, one_launch, "{what} ({path})");
    }
    one_launch
}

/// Greedy (the greedy kernel) against top-k 1 (the fast path with one candidate) and against
/// per-row zero temperatures (the one-launch kernel's first pass).
fn greedy_paths<B: SamplingBackend>(
    values: &[f32],
    rows: usize,
    device: &B::Device,
    what: &str,
) -> (Vec<i64>, Vec<i64>) {
    let greedy = tokens_and_validity::<B>(values, rows, &SamplingParams::greedy(), device);
    let top_1 = tokens_and_validity::<B>(values, rows, &SamplingParams::new().top_k(1), device);
    assert_eq!(greedy, top_1, "greedy and top-k 1, {what}");
    let zeros = floats::<B>(vec![0.0; rows], device);
    let one_launch = tokens_and_validity::<B>(
        values,
        rows,
        &SamplingParams::new().temperature_per_row(zeros),
        device,
    );
    assert_eq!(greedy, one_launch, "greedy, {what}");
    greedy
}

/// A batch top-k of at most 4096 (and greedy) takes the fast path; the same k given per row takes
/// the one-launch kernel. Both use the same fixed-point weights, cut the same prefixes and walk
/// the survivors in the same order, so they give the same token for every row and seed, whichever
/// top-k strategy the fast path runs: the streaming kernel with the sampling fused into its launch
/// where it fits, or radix select followed by the candidate kernel.
fn fast_path_agrees<B: SamplingBackend>(device: &B::Device) {
    let mut rng = rng(7);
    let cases: &[(usize, usize, &[usize])] = &[
        (5, 1, &[1, 3]),
        (4, 7, &[1, 2, 7, 9]),
        (6, 300, &[1, 2, 50, 64, 299, 300]),
        (3, 1001, &[1, 50, 1000, 1001]),
        (2, 5000, &[1, 50, 4096, 4097]),
        (2, 70_000, &[1, 50, 4096, 5000]),
    ];
    for &(rows, vocab, ks) in cases {
        for (name, mut values) in [
            ("distinct", distinct_logits(&mut rng, rows * vocab, 4.0)),
            ("ties", tied_logits(&mut rng, rows * vocab)),
        ] {
            // Invalid rows inside the batch: a NaN, all −inf, a +inf.
            if rows >= 4 {
                values[vocab + vocab / 2] = f32::NAN;
                values[2 * vocab..3 * vocab].fill(f32::NEG_INFINITY);
                values[3 * vocab + vocab - 1] = f32::INFINITY;
            }
            for &k in ks {
                for (mode, params) in path_modes::<B>(rows, device) {
                    all_paths(
                        &values,
                        rows,
                        &params,
                        k,
                        device,
                        &format!("{mode}, {name}, vocab {vocab}, k {k}"),
                    );
                }
            }
            let greedy = greedy_paths::<B>(&values, rows, device, &format!("{name}, {vocab}"));
            if rows >= 4 {
                assert_eq!(&greedy.1[1..4], &[0, 0, 0], "invalid rows, {name}");
            }
        }
    }

    // Masked rows (constrained decoding): 90 % of each row −inf and the last row with one finite
    // logit, with top-k below and past the finite count (30 of 300, 500 of 5000), in shapes
    // tuned above. Every row is valid (but those with an out-of-range per-row top-p), and no
    // token is masked.
    let mut masked_rng = self::rng(14);
    for (rows, vocab, ks) in [
        (6usize, 300usize, &[2usize, 50, 299][..]),
        (2, 5000, &[50, 4096]),
    ] {
        let finite = distinct_logits(&mut masked_rng, vocab / 10, 4.0);
        let mut values = masked_rows(&mut masked_rng, rows - 1, vocab, &finite);
        values.extend(one_finite(vocab));
        for &k in ks {
            for (mode, params) in path_modes::<B>(rows, device) {
                let what = format!("masked, {mode}, vocab {vocab}, k {k}");
                let got = all_paths(&values, rows, &params, k, device, &what);
                let valid: Vec<i64> = (0..rows)
                    .map(|r| i64::from(!mode.starts_with("per-row") || PER_ROW_TOP_P[r % 4] <= 1.0))
                    .collect();
                assert_unmasked(&values, &got, &valid, f32::NEG_INFINITY, &what);
            }
        }
        let what = format!("masked, vocab {vocab}");
        let greedy = greedy_paths::<B>(&values, rows, device, &what);
        assert_unmasked(&values, &greedy, &vec![1; rows], f32::NEG_INFINITY, &what);
        let argmax: Vec<i64> = values
            .chunks(vocab)
            .map(|row| reference::argmax(&as_f64(row)) as i64)
            .collect();
        assert_eq!(greedy.0, argmax, "{what}: greedy");
    }

    // A transposed input (rows with stride 1 across the batch): scalar loads in the row pass.
    let (rows, vocab) = (3usize, 2001usize);
    let values = distinct_logits(&mut rng, rows * vocab, 3.0);
    let columns: Vec<f32> = (0..vocab)
        .flat_map(|i| (0..rows).map(move |r| (r, i)))
        .map(|(r, i)| values[r * vocab + i])
        .collect();
    let transposed = || {
        Tensor::<B, 2>::from_data(TensorData::new(columns.clone(), [vocab, rows]), device)
            .transpose()
    };
    for params in [
        SamplingParams::new().top_k(40).top_p(0.2).joint().seed(9),
        SamplingParams::new().top_k(7).min_p(0.3).seed(10),
        SamplingParams::greedy(),
    ] {
        let fast = to_vec_i64(transposed().sample(&params));
        let contiguous = tokens_and_validity::<B>(&values, rows, &params, device).0;
        assert_eq!(fast, contiguous, "transposed input");
    }
    // Per-row parameters given as broadcast views (stride 0) of one value, on the transposed
    // input: the kernels read arrays, so such views are copied in order first. Both kernels: a
    // per-row k takes the one-launch kernel, a batch k the fast path.
    // The same parameters from per-row tensors made by `float` and `int`.
    let per_row = |float: &dyn Fn(f32) -> Tensor<B, 1>, int: &dyn Fn(i64) -> Tensor<B, 1, Int>| {
        [
            SamplingParams::new()
                .top_k_per_row(int(40))
                .top_p_per_row(float(0.3))
                .min_p_per_row(float(0.01))
                .temperature_per_row(float(0.8))
                .seed_per_row(int(9)),
            SamplingParams::new()
                .top_k(40)
                .top_p_per_row(float(0.3))
                .temperature_per_row(float(0.8))
                .seed_per_row(int(9)),
        ]
    };
    let views = per_row(&|v| floats::<B>(vec![v], device).expand([rows]), &|v| {
        ints::<B>(vec![v], device).expand([rows])
    });
    let lists = per_row(&|v| floats::<B>(vec![v; rows], device), &|v| {
        ints::<B>(vec![v; rows], device)
    });
    for (view, list) in views.iter().zip(&lists) {
        let from_views = to_vec_i64(transposed().sample(view));
        let from_lists = tokens_and_validity::<B>(&values, rows, list, device).0;
        assert_eq!(
            from_views, from_lists,
            "per-row parameters as broadcast views"
        );
    }

    // From probabilities (the row is read again for negative values), with an invalid row.
    let (rows, vocab) = (3usize, 1003usize);
    let mut probs: Vec<f32> = (0..rows * vocab)
        .map(|_| rng.random_range(0.0..1.0))
        .collect();
    probs[vocab + 17] = -0.5;
    for k in [1usize, 20, 1003] {
        for params in [
            SamplingParams::new().from_probabilities().seed(5),
            SamplingParams::new()
                .from_probabilities()
                .top_p(0.5)
                .joint(),
        ] {
            let fast = tokens_and_validity::<B>(&probs, rows, &params.clone().top_k(k), device);
            let ks = ints::<B>(vec![k as i64; rows], device);
            let one_launch =
                tokens_and_validity::<B>(&probs, rows, &params.top_k_per_row(ks), device);
            assert_eq!(fast, one_launch, "probabilities, k {k}");
            assert_eq!(fast.1, vec![1, 0, 1], "probabilities, k {k}");
        }
    }
    // Probabilities of masked rows: 0 where masked (one of them −0.0, which is not negative),
    // the last row with one positive entry; top-k below, past and at the row length.
    let finite = distinct_logits(&mut masked_rng, 100, 3.0);
    let mut logits = masked_rows(&mut masked_rng, rows - 1, vocab, &finite);
    logits.extend(one_finite(vocab));
    let mut probs = softmax_rows(&logits, vocab);
    let zero = probs.iter().position(|&p| p == 0.0).unwrap();
    probs[zero] = -0.0;
    for k in [1usize, 20, 1003] {
        for params in [
            SamplingParams::new().from_probabilities().seed(5),
            SamplingParams::new()
                .from_probabilities()
                .top_p(0.5)
                .joint(),
            SamplingParams::new()
                .from_probabilities()
                .top_p(0.8)
                .min_p(0.1),
        ] {
            let fast = tokens_and_validity::<B>(&probs, rows, &params.clone().top_k(k), device);
            let ks = ints::<B>(vec![k as i64; rows], device);
            let one_launch =
                tokens_and_validity::<B>(&probs, rows, &params.top_k_per_row(ks), device);
            let what = format!("masked probabilities, k {k}");
            assert_eq!(fast, one_launch, "{what}");
            assert_unmasked(&probs, &fast, &vec![1; rows], 0.0, &what);
        }
    }
}

// ---------------------------------------------------------------------------------------------

#[test]
fn sampling_fast_path_fused() {
    fast_path_agrees::<Fused>(&gpu_device());
}

#[test]
fn sampling_exact_fused() {
    exact_argmax::<Fused>(&gpu_device());
    greedy_dtypes::<Fused>(&gpu_device());
}

#[test]
fn sampling_filters_fused() {
    filters::<Fused>(&gpu_device());
}

#[test]
fn sampling_statistics_fused() {
    statistics::<Fused>(&gpu_device(), 4096);
}

#[test]
fn sampling_reproducible_fused() {
    let device = gpu_device();
    reproducibility::<Fused>(&device);
    invalid_rows::<Fused>(&device);
    errors::<Fused>(&device);
}

#[test]
fn sampling_plain_and_autodiff() {
    let device = gpu_device();
    invalid_rows::<Plain>(&device);
    errors::<Plain>(&device);
    filters_masked::<Plain>(&device, &[300]);
    invalid_rows::<Autodiff<Fused>>(&device);
    let mut rng = rng(5);
    let values = distinct_logits(&mut rng, 4 * 100, 3.0);
    let x = matrix::<Autodiff<Fused>>(&values, 4, &device).require_grad();
    let params = SamplingParams::new().top_k(10).seed(8);
    let tokens = to_vec_i64(x.clone().sample(&params));
    let plain = to_vec_i64(
        matrix::<Plain>(&values, 4, &device).sample(&SamplingParams::new().top_k(10).seed(8)),
    );
    assert_eq!(tokens, plain, "autodiff and plain backends agree");
    let masked = x.top_k_mask_logits(3);
    assert_eq!(masked.dims(), [4, 100]);
}

/// The device and the host fallback draw from the same random word in the same order: they agree
/// on every row except, rarely, at a boundary between two tokens.
#[test]
fn sampling_device_agrees_with_host() {
    let device = gpu_device();
    let mut rng = rng(6);
    let rows = 512;
    let vocab = 700;
    let values = distinct_logits(&mut rng, rows * vocab, 3.0);
    let seeds: Vec<i64> = (0..rows as i64).collect();
    let on_device = to_vec_i64(
        matrix::<Fused>(&values, rows, &device).sample(
            &SamplingParams::new()
                .top_k(100)
                .top_p(0.8)
                .seed_per_row(ints::<Fused>(seeds.clone(), &device)),
        ),
    );
    let host_device = Default::default();
    let on_host = to_vec_i64(
        matrix::<NdArray>(&values, rows, &host_device).sample(
            &SamplingParams::new()
                .top_k(100)
                .top_p(0.8)
                .seed_per_row(ints::<NdArray>(seeds, &host_device)),
        ),
    );
    let agree = on_device
        .iter()
        .zip(&on_host)
        .filter(|(a, b)| a == b)
        .count();
    assert!(agree >= rows * 99 / 100, "{agree} of {rows} rows agree");
}

#[test]
fn sampling_ndarray() {
    let device = Default::default();
    exact_argmax::<NdArray>(&device);
    filters::<NdArray>(&device);
    statistics::<NdArray>(&device, 4096);
    reproducibility::<NdArray>(&device);
    invalid_rows::<NdArray>(&device);
    errors::<NdArray>(&device);
}

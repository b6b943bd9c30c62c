//! Sampling on the host, for any Burn backend: reads the rows back, filters them with the f64
//! [`reference`](mod@reference), and draws with the host Philox. What `NdArray` uses; on a
//! device backend it is correct but slow (a read-back per call).

use super::SamplingError;
use super::error::check;
use super::params::{FilterOutput, RowTensors, ScalarParams};
use super::philox::draw_word;
use super::reference::{self, RowSettings};
use burn::tensor::backend::Backend;
use burn::tensor::ops::{FloatTensor, IntTensor};
use burn::tensor::{DType, Element, TensorData, TensorMetadata};

fn read<E: core::fmt::Debug>(
    data: impl core::future::Future<Output = Result<TensorData, E>>,
) -> TensorData {
    burn::tensor::try_read_sync(data)
        .expect("the fallback needs a backend that can read synchronously")
        .expect("reading a tensor back to the host")
}

fn floats<B: Backend>(tensor: Option<FloatTensor<B>>) -> Option<Vec<f64>> {
    tensor.map(|t| {
        read(B::float_into_data(t))
            .convert::<f64>()
            .to_vec()
            .expect("f64 data")
    })
}

fn ints<B: Backend>(tensor: Option<IntTensor<B>>) -> Option<Vec<i64>> {
    tensor.map(|t| {
        read(B::int_into_data(t))
            .convert::<i64>()
            .to_vec()
            .expect("i64 data")
    })
}

/// The rows and their per-row settings, read to the host.
struct HostRows {
    vocab: usize,
    values: Vec<f64>,
    settings: Vec<RowSettings>,
    keys: Vec<([u32; 2], u32)>,
}

fn host_rows<B: Backend>(
    input: FloatTensor<B>,
    rows: RowTensors<B>,
    scalars: &ScalarParams,
) -> Result<(HostRows, DType, B::Device), SamplingError> {
    let shape = input.shape();
    let dtype = input.dtype();
    let checked = check::<B>(&shape, dtype, &rows, scalars, B::IntElem::dtype())?;
    let device = B::float_device(&input);
    let values: Vec<f64> = read(B::float_into_data(input))
        .convert::<f64>()
        .to_vec()
        .expect("f64 data");
    let temperatures = floats::<B>(rows.temperature);
    let ks = ints::<B>(rows.top_k);
    let ps = floats::<B>(rows.top_p);
    let min_ps = floats::<B>(rows.min_p);
    let seeds = ints::<B>(rows.seed);
    let vocab = checked.vocab;
    let settings = (0..checked.batch)
        .map(|row| RowSettings {
            temperature: temperatures
                .as_ref()
                .map_or(scalars.temperature, |t| t[row] as f32),
            top_k: match &ks {
                Some(ks) => usize::try_from(ks[row]).ok().filter(|&k| k > 0),
                None => scalars.top_k,
            },
            top_p: ps.as_ref().map_or(scalars.top_p, |p| p[row] as f32),
            min_p: min_ps.as_ref().map_or(scalars.min_p, |m| m[row] as f32),
            order: scalars.order,
            source: scalars.source,
        })
        .collect();
    let keys = (0..checked.batch)
        .map(|row| match &seeds {
            Some(seeds) => ([seeds[row] as u32, 0], 0),
            None => (
                [scalars.seed as u32, (scalars.seed >> 32) as u32],
                row as u32,
            ),
        })
        .collect();
    Ok((
        HostRows {
            vocab,
            values,
            settings,
            keys,
        },
        dtype,
        device,
    ))
}

/// One token per row and a validity flag (1 valid, 0 invalid), on the host.
pub fn sample<B: Backend>(
    input: FloatTensor<B>,
    rows: RowTensors<B>,
    scalars: &ScalarParams,
) -> Result<(IntTensor<B>, IntTensor<B>), SamplingError> {
    let (host, _, device) = host_rows::<B>(input, rows, scalars)?;
    let batch = host.settings.len();
    let mut tokens = Vec::with_capacity(batch);
    let mut valid = Vec::with_capacity(batch);
    for row in 0..batch {
        let values = &host.values[row * host.vocab..(row + 1) * host.vocab];
        let (key, stream) = host.keys[row];
        match reference::filter_row(values, &host.settings[row]) {
            Some(filtered) => {
                let word = draw_word(key, stream, scalars.offset);
                tokens.push(reference::draw(&filtered.probabilities, word) as i64);
                valid.push(1i64);
            }
            None => {
                tokens.push(reference::argmax(values) as i64);
                valid.push(0);
            }
        }
    }
    let int = |v: Vec<i64>| {
        B::int_from_data(
            TensorData::new(v, [batch]).convert_dtype(B::IntElem::dtype()),
            &device,
        )
    };
    Ok((int(tokens), int(valid)))
}

/// The filtered rows, on the host: masked logits or renormalised probabilities; invalid rows
/// come back unchanged.
pub fn filter<B: Backend>(
    input: FloatTensor<B>,
    rows: RowTensors<B>,
    scalars: &ScalarParams,
    output: FilterOutput,
) -> Result<FloatTensor<B>, SamplingError> {
    let (host, dtype, device) = host_rows::<B>(input, rows, scalars)?;
    let batch = host.settings.len();
    let mut out = Vec::with_capacity(host.values.len());
    for row in 0..batch {
        let values = &host.values[row * host.vocab..(row + 1) * host.vocab];
        match reference::filter_row(values, &host.settings[row]) {
            Some(filtered) => match output {
                FilterOutput::MaskedLogits => out.extend(
                    values
                        .iter()
                        .zip(&filtered.keep)
                        .map(|(&v, &keep)| if keep { v } else { f64::NEG_INFINITY }),
                ),
                FilterOutput::Probabilities => out.extend(filtered.probabilities),
            },
            None => out.extend_from_slice(values),
        }
    }
    let data = TensorData::new(out, [batch, host.vocab]).convert_dtype(dtype);
    Ok(B::float_from_data(data, &device))
}

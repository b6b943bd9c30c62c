//! A tiny character-level language model generates text with every sampling mode.
//!
//! ```text
//! cargo run --release --example generate -- [--chars 200] [--steps 120]
//! ```
//! The model predicts the next character from the two before it (one row of logits per context,
//! trained with Adam on the opening of *Alice's Adventures in Wonderland*, shipped in
//! `examples/data/alice.txt`). Training runs on the host (`Autodiff<NdArray>`), so the weights
//! are the same on every machine; generation runs on the default device
//! (`burn_topk::device::default_device()`) with the whole loop on the device: the next logits are
//! gathered by the sampled tokens, and the text is read back once at the end. With the default
//! seed, the output is the same on every run.

use burn::backend::{Autodiff, NdArray};
use burn::module::{Module, Param};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use burn_topk::sampling::{FilterOrder, Sampler, SamplingParams};
use std::time::Instant;

#[cfg(feature = "cuda")]
type Device = burn::backend::Cuda;
#[cfg(not(feature = "cuda"))]
type Device = burn::backend::Wgpu;
type Train = Autodiff<NdArray>;

const TEXT: &str = include_str!("data/alice.txt");

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

/// Logits of the next character for each two-character context: `table[a * vocab + b]`.
#[derive(Module, Debug)]
struct CharModel<B: Backend> {
    table: Param<Tensor<B, 2>>,
}

fn main() {
    let chars = flag("--chars", 200);
    let steps = flag("--steps", 120);

    // The alphabet and the text as ids.
    let mut alphabet: Vec<char> = TEXT.chars().collect();
    alphabet.sort_unstable();
    alphabet.dedup();
    let vocab = alphabet.len();
    let id = |c: char| alphabet.binary_search(&c).expect("a character of the text") as i64;
    let ids: Vec<i64> = TEXT.chars().map(id).collect();
    let contexts: Vec<i64> = ids.windows(3).map(|w| w[0] * vocab as i64 + w[1]).collect();
    let targets: Vec<i64> = ids.windows(3).map(|w| w[2]).collect();
    let n = contexts.len();

    // Training, on the host: deterministic, so the weights are the same everywhere.
    let host = Default::default();
    let started = Instant::now();
    let mut model = CharModel::<Train> {
        table: Param::from_tensor(Tensor::zeros([vocab * vocab, vocab], &host)),
    };
    let mut optimizer = AdamConfig::new().init();
    let contexts_t = Tensor::<Train, 1, Int>::from_data(TensorData::new(contexts, [n]), &host);
    let targets_t =
        Tensor::<Train, 1, Int>::from_data(TensorData::new(targets, [n]), &host).reshape([n, 1]);
    let mut loss_value = f32::NAN;
    for _ in 0..steps {
        let logits = model.table.val().select(0, contexts_t.clone());
        let loss = -log_softmax(logits, 1).gather(1, targets_t.clone()).mean();
        loss_value = loss.clone().into_scalar();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(0.3, model, grads);
    }
    println!(
        "trained a {vocab}-character model on {} characters: {steps} Adam steps, loss {loss_value:.3} \
         nats/char, {:.1} s",
        TEXT.len(),
        started.elapsed().as_secs_f32()
    );

    // Generation, on the device.
    let device = burn_topk::device::default_device();
    let table: Tensor<Device, 2> = Tensor::from_data(model.table.val().into_data(), &device);
    let probabilities = softmax(table.clone(), 1);
    let start = [id('A'), id('l')];
    let modes: Vec<(&str, SamplingParams<Device>, bool)> = vec![
        ("greedy", SamplingParams::greedy(), false),
        (
            "temperature 0.8",
            SamplingParams::new().temperature(0.8),
            false,
        ),
        ("top-k 5", SamplingParams::new().top_k(5), false),
        ("top-p 0.9", SamplingParams::new().top_p(0.9), false),
        ("min-p 0.2", SamplingParams::new().min_p(0.2), false),
        (
            "top-k 10 + top-p 0.8, joint",
            SamplingParams::new()
                .top_k(10)
                .top_p(0.8)
                .order(FilterOrder::Joint),
            false,
        ),
        (
            "from probabilities, top-p 0.9",
            SamplingParams::new().top_p(0.9).from_probabilities(),
            true,
        ),
    ];
    for (name, params, from_probs) in modes {
        let started = Instant::now();
        let source = if from_probs { &probabilities } else { &table };
        let mut sampler = Sampler::new(params);
        let mut context = Tensor::<Device, 1, Int>::from_data(
            TensorData::new(vec![start[0] * vocab as i64 + start[1]], [1]),
            &device,
        );
        let mut generated = Vec::with_capacity(chars);
        for _ in 0..chars {
            let logits = source.clone().select(0, context.clone());
            let token = sampler.sample(logits);
            // The next context, on the device: (previous character, new character).
            context = (context % vocab as i64) * vocab as i64 + token.clone();
            generated.push(token);
        }
        let text: String = Tensor::cat(generated, 0)
            .into_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .expect("token ids")
            .into_iter()
            .map(|t| alphabet[t as usize])
            .collect();
        println!(
            "\n[{name}] ({:.2} s)\nAl{text}",
            started.elapsed().as_secs_f32()
        );
    }
}

//! What the bench binaries share: the runtime the features select, its plain CubeCL backend, the
//! median, and GPU timing through `client.profile`, with the host's launch gaps hidden behind a
//! busy kernel.

use burn::tensor::{DType, Distribution, Tensor};
use cubecl::Runtime;

#[cfg(feature = "cuda")]
pub type Rt = cubecl::cuda::CudaRuntime;
/// The CubeCL backend without fusion (a launch per call, so `client.profile` times the kernels).
#[cfg(feature = "cuda")]
pub type Plain = burn_cubecl::CubeBackend<Rt, f32, i32, u8>;
#[cfg(not(feature = "cuda"))]
pub type Rt = cubecl::wgpu::WgpuRuntime;
#[cfg(not(feature = "cuda"))]
pub type Plain = burn_cubecl::CubeBackend<Rt, f32, i32, u32>;

pub type Device = <Rt as Runtime>::Device;

/// The median of `v` (the upper one for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// GPU time of the work `work` enqueues, in µs.
pub fn profile<O: Send + 'static>(device: &Device, work: impl FnOnce() -> O + Send) -> f64 {
    let client = Rt::client(device);
    let (_, duration) = client.profile(work, "burn-topk bench").expect("profiling");
    let ticks = cubecl::future::block_on(duration.resolve());
    ticks.duration().as_secs_f64() * 1e6
}

/// A copy of a large buffer that keeps the GPU busy while the host queues the calls to time
/// behind it: the GPU then runs them back to back, and the host's own time per call (launch
/// preparation, about 10 µs per CubeCL launch on CUDA) is not counted as device time. Also
/// measures the copy bandwidth, the yardstick for "one read".
pub struct Busy {
    input: Tensor<Plain, 1>,
    /// GPU time of the busy kernel alone, µs (median).
    pub alone_us: f64,
}

#[allow(dead_code)]
impl Busy {
    /// A busy kernel over 1 GiB (4 MiB with `quick`, for CPU adapters), about 0.7 ms on an H100.
    pub fn new(device: &Device, quick: bool) -> Self {
        let len: usize = if quick { 1 << 20 } else { 1 << 28 };
        let input = Tensor::<Plain, 1>::random([len], Distribution::Default, device);
        let mut busy = Busy {
            input,
            alone_us: 0.0,
        };
        busy.launch();
        <Plain as burn::tensor::backend::Backend>::sync(device).expect("sync");
        busy.alone_us = median((0..5).map(|_| profile(device, || busy.launch())).collect());
        busy
    }

    /// Queues the busy kernel.
    pub fn launch(&self) {
        let _ = self.input.clone().mul_scalar(1.0);
    }

    /// The bytes of the busy kernel's buffer.
    pub fn bytes(&self) -> usize {
        4 * self.input.shape().num_elements()
    }

    /// The measured copy bandwidth, GB/s (the busy kernel reads and writes its buffer).
    pub fn copy_gbps(&self) -> f64 {
        (2 * self.bytes()) as f64 / self.alone_us / 1e3
    }

    /// µs to read `bytes` once at the copy bandwidth.
    pub fn read_us(&self, bytes: usize) -> f64 {
        bytes as f64 / self.copy_gbps() / 1e3
    }

    /// Device time of one `call`, µs: the GPU time of `calls` calls queued behind the busy
    /// kernel, minus the busy kernel alone (timed in between), over `calls`; median of `samples`.
    pub fn per_call(
        &self,
        device: &Device,
        calls: usize,
        samples: usize,
        mut call: impl FnMut() + Send,
    ) -> f64 {
        let mut with = Vec::new();
        let mut alone = Vec::new();
        for _ in 0..samples {
            with.push(profile(device, || {
                self.launch();
                for _ in 0..calls {
                    call();
                }
            }));
            alone.push(profile(device, || self.launch()));
        }
        ((median(with) - median(alone)) / calls as f64).max(0.0)
    }
}

/// The dtype named after `--dtype`: `f32`, `bf16` or `f16`.
#[allow(dead_code)]
pub fn parse_dtype(name: &str) -> DType {
    match name.to_lowercase().as_str() {
        "f32" => DType::F32,
        "bf16" => DType::BF16,
        "f16" => DType::F16,
        other => panic!("--dtype takes f32, bf16 or f16, got {other:?}"),
    }
}

/// `B:V:K,...` (rows, row length, k) as listed after `--shapes`.
#[allow(dead_code)]
pub fn parse_shapes(list: &str) -> Vec<(usize, usize, usize)> {
    list.split(',')
        .map(|shape| {
            let n: Vec<usize> = shape
                .split(':')
                .map(|x| x.parse().expect("B:V:K numbers"))
                .collect();
            assert_eq!(n.len(), 3, "a shape is B:V:K");
            (n[0], n[1], n[2])
        })
        .collect()
}

/// The shapes a bench runs as (dtype, rows, row length, ks) groups, one input per group: the
/// listed `shapes` in `dtype` (those with the same rows and length share a group), else
/// [`grid`].
#[allow(dead_code)]
pub fn shape_groups(
    shapes: Option<&[(usize, usize, usize)]>,
    dtype: DType,
    quick: bool,
) -> Vec<(DType, usize, usize, Vec<usize>)> {
    let mut groups: Vec<(DType, usize, usize, Vec<usize>)> = Vec::new();
    match shapes {
        Some(shapes) => {
            for &(batch, vocab, k) in shapes {
                match groups.iter_mut().find(|g| g.1 == batch && g.2 == vocab) {
                    Some(group) => group.3.push(k),
                    None => groups.push((dtype, batch, vocab, vec![k])),
                }
            }
        }
        None => {
            let (batches, vocabs, ks, dtypes) = grid(quick);
            for &dtype in dtypes {
                for &batch in batches {
                    for &vocab in vocabs {
                        groups.push((dtype, batch, vocab, ks.to_vec()));
                    }
                }
            }
        }
    }
    groups
}

/// The kernels issue's grid as (batches, row lengths, k, dtypes); `quick` is a tiny one for CPU
/// adapters such as lavapipe. (The sampling bench has a grid of its own.)
#[allow(dead_code)]
pub fn grid(
    quick: bool,
) -> (
    &'static [usize],
    &'static [usize],
    &'static [usize],
    &'static [DType],
) {
    if quick {
        (&[1, 8], &[32 << 10], &[1, 50, 256], &[DType::F32])
    } else {
        (
            &[1, 8, 64, 256],
            &[32 << 10, 128 << 10, 256 << 10, 1 << 20],
            &[1, 50, 256, 1024, 4096],
            &[DType::F32, DType::BF16],
        )
    }
}

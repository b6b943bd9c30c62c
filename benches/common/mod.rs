//! What the bench binaries share: the runtime the features select, its plain CubeCL backend, the
//! median, and GPU timing through `client.profile`.

use burn::tensor::DType;
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

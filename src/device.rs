//! Picking a device: the best one the build supports.

/// The device the examples and tests run on: CUDA device 0 when built with the `cuda` feature.
#[cfg(feature = "cuda")]
pub fn default_device() -> burn::backend::cuda::CudaDevice {
    burn::backend::cuda::CudaDevice::new(0)
}

/// The device the examples and tests run on: the best wgpu adapter present, a discrete GPU first,
/// then an integrated or virtual one, then a software adapter (`WgpuDevice::Cpu`, e.g. Mesa's
/// lavapipe on machines with no GPU). `CUBECL_WGPU_DEFAULT_DEVICE` is not consulted here; set the
/// device yourself to override.
#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
pub fn default_device() -> burn::backend::wgpu::WgpuDevice {
    use burn::backend::wgpu::WgpuDevice;
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::PRIMARY,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapters = cubecl::future::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY));
    let has = |kind: wgpu::DeviceType| adapters.iter().any(|a| a.get_info().device_type == kind);
    if has(wgpu::DeviceType::DiscreteGpu) {
        WgpuDevice::DiscreteGpu(0)
    } else if has(wgpu::DeviceType::IntegratedGpu) {
        WgpuDevice::IntegratedGpu(0)
    } else if has(wgpu::DeviceType::VirtualGpu) {
        WgpuDevice::VirtualGpu(0)
    } else {
        WgpuDevice::Cpu
    }
}

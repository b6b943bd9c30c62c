// One cube per row reading a row of 128k f32 (a max over it), to measure what a single cube can
// read: the ceiling for the one-cube-per-row kernels (NOTES.md, "Profiling the streaming kernel").
// On the GPU machine: nvcc -O3 -arch=sm_90 -o read_row benches/read_row.cu && ./read_row
#include <cstdio>
#include <cuda_runtime.h>
template <int U>
__global__ void __launch_bounds__(1024) readrow(const float4* __restrict__ x, int n4, float* out) {
  float acc = 0.f;
  const float4* row = x + (size_t)blockIdx.x * n4;
  for (int base = threadIdx.x; base < n4; base += U * blockDim.x) {
    float4 v[U];
#pragma unroll
    for (int u = 0; u < U; u++) { int i = base + u * blockDim.x; v[u] = i < n4 ? row[i] : make_float4(0,0,0,0); }
#pragma unroll
    for (int u = 0; u < U; u++) acc = fmaxf(acc, fmaxf(fmaxf(v[u].x, v[u].y), fmaxf(v[u].z, v[u].w)));
  }
  if (acc == 12345.f) out[0] = acc;
}
template <int U> float run(const float4* x, int n4, int blocks, int threads, float* out) {
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
  for (int i = 0; i < 3; i++) readrow<U><<<blocks, threads>>>(x, n4, out);
  cudaEventRecord(a);
  int reps = 50;
  for (int i = 0; i < reps; i++) readrow<U><<<blocks, threads>>>(x + (size_t)(i % 8) * blocks * n4, n4, out);
  cudaEventRecord(b); cudaEventSynchronize(b);
  float ms; cudaEventElapsedTime(&ms, a, b); return ms * 1000 / reps;
}
int main() {
  size_t total = (size_t)8 * 256 * 131072;  // 8 rotating copies of 256 rows of 128k
  float4* x; cudaMalloc(&x, total * 4); cudaMemset(x, 0, total * 4);
  float* out; cudaMalloc(&out, 4);
  int n4 = 131072 / 4;
  for (int blocks : {1, 64, 132}) for (int threads : {256, 512, 1024}) {
    printf("blocks %3d threads %4d: U1 %6.1f  U2 %6.1f  U4 %6.1f  U8 %6.1f us (per row 512 KB)\n", blocks, threads,
      run<1>(x, n4, blocks, threads, out), run<2>(x, n4, blocks, threads, out), run<4>(x, n4, blocks, threads, out), run<8>(x, n4, blocks, threads, out));
  }
  // empty-ish kernel: launch + tiny work
  printf("n4=256 (1 KB) 1 block 1024: %.1f us\n", run<1>(x, 256, 1, 1024, out));
  return 0;
}

// One cube per row reading a row of 128k f32 (a max over it), to measure what a single cube can
// read: the ceiling for the one-cube-per-row kernels (NOTES.md, "Profiling the streaming kernel").
// On the GPU machine: nvcc -O3 -arch=sm_90 -o read_row benches/read_row.cu && ./read_row
#include <cstdio>
#include <cuda_runtime.h>
#include "read_row.cuh"
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

// The floor under one-launch and two-launch top-k shapes, in hand-written CUDA: cubes that only read
// rows of 128k f32 (a max over each part of a row), timed the way `benches/topk.rs` times (a busy
// copy first so the host's launch gaps are hidden, then n calls, minus the busy copy alone; median
// of 7), on inputs rotating over 2 GiB so that no call reads from L2. `parts` cubes read one row
// each (parts > 1: with `merge`, a second launch reduces a row's parts, as two-stage does; without
// it, what a one-launch multi-cube row would cost if cubes could hand results over). Answers
// whether the CubeCL floor kernels (`benches/floor`) sit at the hardware's floor.
// On the GPU machine: bash benches/gpu.sh rawfloor (or nvcc -O3 -arch=sm_90a -o read_floor
// benches/read_floor.cu && ./read_floor; `./read_floor ncu` runs a few launches for ncu).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <cuda_runtime.h>
#include "read_part.cuh"
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA %s line %d\n", cudaGetErrorString(e), __LINE__); exit(1); } } while (0)

__global__ void busy(const float4* a, float4* b, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) b[i] = a[i];
}

__global__ void merge_parts(const float* in, int parts, float* out, int rows) {
  int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r < rows) {
    float b = in[r * parts];
    for (int j = 1; j < parts; j++) b = fmaxf(b, in[r * parts + j]);
    out[r] = b;
  }
}

const int N4 = 131072 / 4;
const size_t ROW_FLOATS = (size_t)512 << 20;  // 2 GiB of rows
const size_t BUSY4 = (size_t)1 << 26;         // 1 GiB busy copy
float4 *X, *B1, *B2;
float *parts_out, *rows_out;
bool MERGE = true;

template <int U> void call(int rows, int threads, int parts, int i) {
  size_t copies = ROW_FLOATS / 4 / ((size_t)rows * N4);
  const float4* x = X + (i % copies) * rows * N4;
  read_part<U><<<rows * parts, threads>>>(x, N4, parts, parts_out);
  if (parts > 1 && MERGE) merge_parts<<<(rows + 127) / 128, 128>>>(parts_out, parts, rows_out, rows);
}

float median_ms(std::vector<float> v) { std::sort(v.begin(), v.end()); return v[v.size() / 2]; }

// µs per call: n calls queued behind the busy copy, minus the busy copy alone.
float timed(void (*f)(int, int, int, int), int rows, int threads, int parts, int n) {
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a)); CK(cudaEventCreate(&b));
  std::vector<float> with, alone;
  for (int r = 0; r < 7; r++) {
    float ms;
    CK(cudaEventRecord(a)); busy<<<1056, 512>>>(B1, B2, BUSY4);
    for (int i = 0; i < n; i++) f(rows, threads, parts, i);
    CK(cudaEventRecord(b)); CK(cudaEventSynchronize(b)); CK(cudaEventElapsedTime(&ms, a, b));
    with.push_back(ms);
    CK(cudaEventRecord(a)); busy<<<1056, 512>>>(B1, B2, BUSY4);
    CK(cudaEventRecord(b)); CK(cudaEventSynchronize(b)); CK(cudaEventElapsedTime(&ms, a, b));
    alone.push_back(ms);
  }
  CK(cudaGetLastError());
  CK(cudaEventDestroy(a)); CK(cudaEventDestroy(b));
  return (median_ms(with) - median_ms(alone)) * 1000.f / n;
}

int main(int argc, char** argv) {
  CK(cudaMalloc(&X, ROW_FLOATS * 4)); CK(cudaMalloc(&B1, BUSY4 * 16)); CK(cudaMalloc(&B2, BUSY4 * 16));
  CK(cudaMalloc(&parts_out, 1 << 20)); CK(cudaMalloc(&rows_out, 1 << 20));
  // Distinct values, not zeros (zeros can read faster than real data).
  std::vector<float> chunk(1 << 24);
  for (size_t i = 0; i < chunk.size(); i++) chunk[i] = (float)((i * 2654435761u) % 100003) * 1e-3f;
  for (size_t off = 0; off < ROW_FLOATS; off += chunk.size())
    CK(cudaMemcpy((float*)X + off, chunk.data(), chunk.size() * 4, cudaMemcpyHostToDevice));
  if (argc > 1) {  // a few launches of the main shapes, for ncu
    for (int i = 0; i < 30; i++) { call<8>(64, 1024, 1, i); call<8>(64, 512, 2, i); call<16>(64, 512, 1, i); call<8>(256, 1024, 1, i); }
    CK(cudaDeviceSynchronize());
    return 0;
  }
  // Checked once: every row's max, one cube per row and two parts merged, against the host's.
  for (int parts : {1, 2}) {
    MERGE = true;
    call<8>(64, 1024, parts, 0);
    std::vector<float> got(64);
    CK(cudaMemcpy(got.data(), parts == 1 ? parts_out : rows_out, 64 * 4, cudaMemcpyDeviceToHost));
    for (int r = 0; r < 64; r++) {
      float want = -1e30f;
      for (size_t j = 0; j < 131072; j++) want = std::max(want, chunk[((size_t)r * 131072 + j) % chunk.size()]);
      if (got[r] != want) { printf("row %d max %f, want %f\n", r, got[r], want); return 1; }
    }
  }
  printf("rows threads parts merge | U=4 U=8 U=16 float4 in flight per unit (us per call)\n");
  for (int rows : {1, 64, 256}) for (int threads : {512, 1024}) for (int parts : {1, 2, 4}) for (int merge : {0, 1}) {
    if (rows * parts > 1056 || (parts == 1 && merge)) continue;
    MERGE = merge;
    int n = rows >= 128 ? 50 : 100;
    float u4 = timed(call<4>, rows, threads, parts, n), u8 = timed(call<8>, rows, threads, parts, n);
    float u16 = timed(call<16>, rows, threads, parts, n);
    printf("%4d %5d %2d %d | %6.2f %6.2f %6.2f\n", rows, threads, parts, merge, u4, u8, u16);
  }
  cudaEvent_t a, b; float ms;
  CK(cudaEventCreate(&a)); CK(cudaEventCreate(&b));
  CK(cudaEventRecord(a)); for (int i = 0; i < 10; i++) busy<<<1056, 512>>>(B1, B2, BUSY4);
  CK(cudaEventRecord(b)); CK(cudaEventSynchronize(b)); CK(cudaEventElapsedTime(&ms, a, b));
  printf("copy bandwidth %.0f GB/s\n", 2.0 * BUSY4 * 16 * 10 / (ms * 1e-3) / 1e9);
  return 0;
}

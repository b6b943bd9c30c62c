// The read kernel shared by read_floor.cu and lean_topk.cu: cube c reads part c % parts of row c /
// parts (rows of n4 float4) with U loads in flight per unit and writes that part's max to out[c].
#pragma once
#include <cuda_runtime.h>
template <int U>
__global__ void __launch_bounds__(1024) read_part(const float4* __restrict__ x, int n4, int parts, float* out) {
  int row = blockIdx.x / parts, part = blockIdx.x % parts;
  int len = n4 / parts;
  const float4* p = x + (size_t)row * n4 + (size_t)part * len;
  float acc = -1e30f;
  for (int base = threadIdx.x; base < len; base += U * blockDim.x) {
    float4 v[U];
#pragma unroll
    for (int u = 0; u < U; u++) {
      int i = base + u * blockDim.x;
      v[u] = i < len ? p[i] : make_float4(-1e30f, -1e30f, -1e30f, -1e30f);
    }
#pragma unroll
    for (int u = 0; u < U; u++) acc = fmaxf(acc, fmaxf(fmaxf(v[u].x, v[u].y), fmaxf(v[u].z, v[u].w)));
  }
  for (int o = 16; o; o >>= 1) acc = fmaxf(acc, __shfl_xor_sync(0xffffffff, acc, o));
  __shared__ float warps[32];
  if ((threadIdx.x & 31) == 0) warps[threadIdx.x >> 5] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    float b = warps[0];
    for (int w = 1; w < blockDim.x / 32; w++) b = fmaxf(b, warps[w]);
    out[blockIdx.x] = b;
  }
}

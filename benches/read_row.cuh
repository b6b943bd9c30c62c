// The read kernel shared by read_row.cu and lean_topk.cu: one cube per row of `n4` float4, a max
// over it with U loads in flight per unit (what a single cube can read).
#pragma once
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

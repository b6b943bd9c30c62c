// Prototype of a lean one-cube-per-row top-k (f32, largest, k <= threads), to measure what the
// streaming kernel could reach and where its time goes, phase by phase (clock64 in cube 0).
// On the GPU machine: nvcc -O3 -arch=sm_90 -o lean benches/lean_topk.cu && ./lean
// The buffer is never compacted mid-row: a case whose buffer overflows ("overflow N" is printed:
// 512 units at k = 256, or 1M-element rows) comes out WRONG by design; it only shows the cost.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>
#include "read_part.cuh"
#include <vector>

__device__ __forceinline__ unsigned key_of(float f) {
  unsigned u = __float_as_uint(f);
  unsigned mag = u & 0x7fffffffu;
  unsigned k = (u == mag) ? (u | 0x80000000u) : ~u;
  if (mag > 0x7f800000u) k = 0xffffffffu;
  if (mag == 0) k = 0x80000000u;
  return k;
}
__device__ __forceinline__ float float_of_key(unsigned k) {
  unsigned b = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
  return __uint_as_float(b);
}

// Loads the VPT float4 of each unit starting at float4 `base` (past the row: -inf).
template <int THREADS, int VPT>
__device__ __forceinline__ void load_batch(const float4* row, int n4, int base, float4 (&v)[VPT]) {
#pragma unroll
  for (int u = 0; u < VPT; u++) {
    int i = base + threadIdx.x + u * THREADS;
    v[u] = i < n4 ? row[i] : make_float4(-INFINITY, -INFINITY, -INFINITY, -INFINITY);
  }
}

// This unit's largest key in its batch `v`.
template <int VPT>
__device__ __forceinline__ unsigned max_key(const float4 (&v)[VPT]) {
  unsigned m = 0;
#pragma unroll
  for (int u = 0; u < VPT; u++) {
    m = max(m, max(max(key_of(v[u].x), key_of(v[u].y)), max(key_of(v[u].z), key_of(v[u].w))));
  }
  return m;
}

// The stream: one float compare per element against the primed threshold (`lof`, key `lo`), the
// entries that pass appended to the buffer. `v` holds the first batch. Returns this unit's
// largest appended key (0 for none).
template <int THREADS, int VPT, int CAP>
__device__ __forceinline__ unsigned stream_row(const float4* row, int n4, float4 (&v)[VPT], float lof,
                                               unsigned lo, unsigned* skey, unsigned* sidx, unsigned* count) {
  unsigned mymax = 0;
  for (int base = 0;; base += VPT * THREADS) {
#pragma unroll
    for (int u = 0; u < VPT; u++) {
      float e[4] = {v[u].x, v[u].y, v[u].z, v[u].w};
#pragma unroll
      for (int l = 0; l < 4; l++) {
        if (!(e[l] < lof)) {
          unsigned kk = key_of(e[l]);
          if (kk >= lo) {
            unsigned s = atomicAdd(count, 1u);
            mymax = max(mymax, kk);
            if (s < CAP) { skey[s] = kk; sidx[s] = (base + u * THREADS + threadIdx.x) * 4 + l; }
          }
        }
      }
    }
    if (base + VPT * THREADS >= n4) break;
    load_batch<THREADS, VPT>(row, n4, base + VPT * THREADS, v);
  }
  return mymax;
}

// Lane `lane` of warp 0 holds the counts `c` of bins 255 - 8 lane ... 248 - 8 lane (from the
// top): a warp scan finds the bin holding the `remaining`-th entry, written to st as (bin, entries
// above it, entries in it).
__device__ __forceinline__ void select_bin(int lane, const unsigned (&c)[8], unsigned* st, unsigned remaining) {
  unsigned sum = 0;
#pragma unroll
  for (int i = 0; i < 8; i++) sum += c[i];
  unsigned inc = sum;
#pragma unroll
  for (int d = 1; d < 32; d <<= 1) {
    unsigned o = __shfl_up_sync(0xffffffffu, inc, d);
    if (lane >= d) inc += o;
  }
  unsigned above = inc - sum;
  if (above < remaining && remaining <= inc) {
#pragma unroll
    for (int i = 0; i < 8; i++) {
      if (above < remaining && remaining <= above + c[i]) { st[0] = 255 - (lane * 8 + i); st[1] = above; st[2] = c[i]; }
      above += c[i];
    }
  }
}

// Warp 0 finds the bin (from the top) holding the `remaining`-th entry; clears the histogram.
__device__ __forceinline__ void find_digit(unsigned* hist, unsigned* st, unsigned remaining) {
  if (threadIdx.x < 32) {
    int lane = threadIdx.x;
    unsigned c[8];
#pragma unroll
    for (int i = 0; i < 8; i++) {
      int bin = 255 - (lane * 8 + i);
      c[i] = hist[bin];
      hist[bin] = 0;
    }
    select_bin(lane, c, st, remaining);
  }
  __syncthreads();
}

template <int THREADS, int VPT, int CAP, int PRIME_PASSES>
__global__ void __launch_bounds__(THREADS)
    lean(const float4* __restrict__ x, int n4, int k, float* outv, int* outi, long long* ts) {
  __shared__ unsigned skey[CAP];
  __shared__ unsigned sidx[CAP];
  __shared__ unsigned hist[256];
  __shared__ unsigned st[8];
  __shared__ unsigned count, count2;
  const int tid = threadIdx.x;
  const float4* row = x + (size_t)blockIdx.x * n4;
  long long t0 = clock64();
  if (tid < 256) hist[tid] = 0;
  if (tid == 0) { count = 0; count2 = 0; }
  float4 v[VPT];
  load_batch<THREADS, VPT>(row, n4, 0, v);
  // Prime: the k-th best of the units' maxima, to 8 * PRIME_PASSES bits, bounds the row's k-th.
  unsigned m = max_key(v);
  __syncthreads();
  unsigned prefix = 0, mask = 0, remaining = k;
  for (int p = 0; p < PRIME_PASSES; p++) {
    int shift = 24 - 8 * p;
    if ((m & mask) == prefix) atomicAdd(&hist[(m >> shift) & 255], 1u);
    __syncthreads();
    find_digit(hist, st, remaining);
    prefix |= st[0] << shift;
    mask |= 255u << shift;
    remaining -= st[1];
  }
  const unsigned lo = prefix;
  const float lof = float_of_key(lo);
  long long t1 = clock64();
  // Stream: one float compare per element.
  stream_row<THREADS, VPT, CAP>(row, n4, v, lof, lo, skey, sidx, &count);
  __syncthreads();
  long long t2 = clock64();
  unsigned n = min(count, (unsigned)CAP);
  if (count > CAP && tid == 0) printf("overflow %u\n", count);
  // Exact select: digit passes over the buffer until few enough survive to rank.
  prefix = 0; mask = 0; remaining = k;
  unsigned above_total = 0, retained = n;
  for (int shift = 24; shift >= 0 && retained > 2u * k + 32u; shift -= 8) {
    for (unsigned j = tid; j < n; j += THREADS) {
      unsigned kk = skey[j];
      if ((kk & mask) == prefix) atomicAdd(&hist[(kk >> shift) & 255], 1u);
    }
    __syncthreads();
    find_digit(hist, st, remaining);
    prefix |= st[0] << shift;
    mask |= 255u << shift;
    remaining -= st[1];
    above_total += st[1];
    retained = above_total + st[2];
  }
  // Gather the survivors behind the buffer, then rank them.
  unsigned* rkey = skey + n;
  unsigned* ridx = sidx + n;
  for (unsigned j = tid; j < n; j += THREADS) {
    unsigned kk = skey[j];
    if ((kk & mask) >= prefix) {
      unsigned s = atomicAdd(&count2, 1u);
      if (n + s < CAP) { rkey[s] = kk; ridx[s] = sidx[j]; }
    }
  }
  __syncthreads();
  long long t3 = clock64();
  unsigned r = min(count2, CAP - n);
  for (unsigned j = tid; j < r; j += THREADS) {
    unsigned kk = rkey[j], ii = ridx[j], rank = 0;
    for (unsigned o = 0; o < r; o++) {
      unsigned ok = rkey[o], oi = ridx[o];
      rank += (ok > kk || (ok == kk && oi < ii));
    }
    if (rank < (unsigned)k) {
      outv[(size_t)blockIdx.x * k + rank] = float_of_key(kk);
      outi[(size_t)blockIdx.x * k + rank] = ii;
    }
  }
  __syncthreads();
  long long t4 = clock64();
  if (tid == 0 && blockIdx.x == 0 && ts) {
    ts[0] = t1 - t0; ts[1] = t2 - t1; ts[2] = t3 - t2; ts[3] = t4 - t3; ts[4] = n; ts[5] = r;
  }
}


// v2: histograms binned relative to the range [lo, hi] of what they count (so the bins spread),
// 8 copies per bin, and a rank split over several units per entry with one 64-bit compare.
constexpr int COPIES = 8;
// Threads 0..255 sum bin (from the top) into scan; warp 0 finds the remaining-th; clears.
__device__ __forceinline__ void find_digit8(unsigned* hist, unsigned* scan, unsigned* st, unsigned remaining) {
  int tid = threadIdx.x;
  if (tid < 256) {
    int bin = 255 - tid;
    unsigned c = 0;
#pragma unroll
    for (int i = 0; i < COPIES; i++) { c += hist[bin * COPIES + i]; hist[bin * COPIES + i] = 0; }
    scan[tid] = c;
  }
  __syncthreads();
  if (tid < 32) {
    unsigned c[8];
#pragma unroll
    for (int i = 0; i < 8; i++) c[i] = scan[tid * 8 + i];
    select_bin(tid, c, st, remaining);
  }
  __syncthreads();
}
__device__ __forceinline__ int bits_of(unsigned x) { return 32 - __clz(x); }

template <int THREADS>
__device__ __forceinline__ void cube_minmax(unsigned lo_in, unsigned hi_in, unsigned* red, unsigned& lo, unsigned& hi) {
  unsigned a = lo_in, b = hi_in;
#pragma unroll
  for (int d = 16; d > 0; d >>= 1) { a = min(a, __shfl_xor_sync(0xffffffffu, a, d)); b = max(b, __shfl_xor_sync(0xffffffffu, b, d)); }
  int w = threadIdx.x / 32;
  if ((threadIdx.x & 31) == 0) { red[2 * w] = a; red[2 * w + 1] = b; }
  __syncthreads();
  lo = red[0]; hi = red[1];
  for (int i = 1; i < THREADS / 32; i++) { lo = min(lo, red[2 * i]); hi = max(hi, red[2 * i + 1]); }
}

template <int THREADS, int VPT, int CAP>
__global__ void __launch_bounds__(THREADS)
    lean2(const float4* __restrict__ x, int n4, int k, float* outv, int* outi, long long* ts) {
  __shared__ unsigned skey[CAP];
  __shared__ unsigned sidx[CAP];
  __shared__ unsigned long long packed[1024];
  __shared__ unsigned hist[256 * COPIES];
  __shared__ unsigned scan[256];
  __shared__ unsigned red[64];
  __shared__ unsigned st[8];
  __shared__ unsigned count, count2;
  const int tid = threadIdx.x;
  const float4* row = x + (size_t)blockIdx.x * n4;
  long long t0 = clock64();
  for (int i = tid; i < 256 * COPIES; i += THREADS) hist[i] = 0;
  if (tid == 0) { count = 0; count2 = 0; }
  float4 v[VPT];
  load_batch<THREADS, VPT>(row, n4, 0, v);
  unsigned m = max_key(v);
  // Prime: the k-th best unit maximum, by passes over [min, max] of the maxima.
  unsigned base_key, top_key;
  cube_minmax<THREADS>(m, m, red, base_key, top_key);
  unsigned remaining = k, retained = THREADS;
  int shift = max(bits_of(top_key - base_key) - 8, 0);
  for (;;) {
    unsigned d = m - base_key;
    if (m >= base_key && (d >> shift) < 256u) atomicAdd(&hist[((d >> shift) & 255) * COPIES + (tid & (COPIES - 1))], 1u);
    __syncthreads();
    find_digit8(hist, scan, st, remaining);
    base_key += st[0] << shift;
    remaining -= st[1];
    retained = (k - remaining) + st[2];
    if (shift == 0 || retained <= (unsigned)k + 16) break;
    shift = max(shift - 8, 0);
  }
  const unsigned lo = base_key;
  const float lof = float_of_key(lo);
  long long t1 = clock64();
  unsigned mymax = stream_row<THREADS, VPT, CAP>(row, n4, v, lof, lo, skey, sidx, &count);
  __syncthreads();
  unsigned dummy;
  cube_minmax<THREADS>(0xffffffffu, mymax, red + 0, dummy, top_key);  // red reused: sync inside
  long long t2 = clock64();
  unsigned n = min(count, (unsigned)CAP);
  if (count > CAP && tid == 0) printf("overflow %u\n", count);
  base_key = lo;
  remaining = k;
  retained = n;
  const unsigned target = (unsigned)k + 32;
  if (n > target) {
    shift = max(bits_of(top_key - base_key) - 8, 0);
    for (;;) {
      for (unsigned j = tid; j < n; j += THREADS) {
        unsigned d = skey[j] - base_key;
        if (skey[j] >= base_key && (d >> shift) < 256u) atomicAdd(&hist[((d >> shift) & 255) * COPIES + (tid & (COPIES - 1))], 1u);
      }
      __syncthreads();
      find_digit8(hist, scan, st, remaining);
      base_key += st[0] << shift;
      remaining -= st[1];
      retained = (k - remaining) + st[2];
      if (shift == 0 || retained <= target) break;
      shift = max(shift - 8, 0);
    }
  }
  // Gather: every entry at or above base_key (the k-th's bin's lower edge), packed for ranking.
  for (unsigned j = tid; j < n; j += THREADS) {
    unsigned kk = skey[j];
    if (kk >= base_key) {
      unsigned s = atomicAdd(&count2, 1u);
      if (s < 1024) packed[s] = ((unsigned long long)kk << 32) | (unsigned)~sidx[j];
    }
  }
  __syncthreads();
  long long t3 = clock64();
  unsigned r = min(count2, 1024u);
  // Rank: `parts` units per entry, each counting a slice; partial counts summed in shared.
  unsigned parts = max(THREADS / max(r, 1u), 1u);
  unsigned chunk = (r + parts - 1) / parts;
  for (unsigned t = tid; t < r * parts; t += THREADS) {
    unsigned i = t % r, part = t / r;
    unsigned long long me = packed[i];
    unsigned lo_o = part * chunk, hi_o = min(lo_o + chunk, r);
    unsigned above = 0;
#pragma unroll 4
    for (unsigned o = lo_o; o < hi_o; o++) above += packed[o] > me;
    if (above) atomicAdd(&hist[i], above);
  }
  __syncthreads();
  for (unsigned i = tid; i < r; i += THREADS) {
    unsigned rank = hist[i];
    if (rank < (unsigned)k) {
      unsigned long long me = packed[i];
      outv[(size_t)blockIdx.x * k + rank] = float_of_key((unsigned)(me >> 32));
      outi[(size_t)blockIdx.x * k + rank] = ~(unsigned)me;
    }
  }
  long long t4 = clock64();
  if (tid == 0 && blockIdx.x == 0 && ts) {
    ts[0] = t1 - t0; ts[1] = t2 - t1; ts[2] = t3 - t2; ts[3] = t4 - t3; ts[4] = n; ts[5] = r;
  }
}


static const int ROT = 8;
template <class L> float time_it(L launch) {
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
  for (int i = 0; i < 5; i++) launch(i);
  cudaEventRecord(a);
  int reps = 50;
  for (int i = 0; i < reps; i++) launch(i);
  cudaEventRecord(b); cudaEventSynchronize(b);
  float ms; cudaEventElapsedTime(&ms, a, b); return ms * 1000 / reps;
}

template <int THREADS, int VPT, int CAP, int PP>
void case_(const float* hx, const float4* x, int batch, int len, int k, float* outv, int* outi, long long* ts, double ghz) {
  int n4 = len / 4;
  float us = time_it([&](int i) {
    if constexpr (PP != 0) lean<THREADS, VPT, CAP, PP><<<batch, THREADS>>>(x + (size_t)(i % ROT) * batch * n4, n4, k, outv, outi, nullptr);
    else lean2<THREADS, VPT, CAP><<<batch, THREADS>>>(x + (size_t)(i % ROT) * batch * n4, n4, k, outv, outi, nullptr);
  });
  cudaMemset(outi, 0xff, 4 * batch * k);
  if constexpr (PP != 0) lean<THREADS, VPT, CAP, PP><<<batch, THREADS>>>(x, n4, k, outv, outi, ts);
  else lean2<THREADS, VPT, CAP><<<batch, THREADS>>>(x, n4, k, outv, outi, ts);
  cudaError_t err = cudaDeviceSynchronize();
  long long h[6]; cudaMemcpy(h, ts, sizeof h, cudaMemcpyDeviceToHost);
  // Check row 0 and the last row against a CPU sort.
  int bad = 0;
  for (int rr : {0, batch - 1}) {
    std::vector<std::pair<float, int>> e(len);
    for (int j = 0; j < len; j++) e[j] = {hx[(size_t)rr * len + j], j};
    std::partial_sort(e.begin(), e.begin() + k, e.end(), [](auto& a, auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
    std::vector<float> gv(k); std::vector<int> gi(k);
    cudaMemcpy(gv.data(), outv + (size_t)rr * k, k * 4, cudaMemcpyDeviceToHost);
    cudaMemcpy(gi.data(), outi + (size_t)rr * k, k * 4, cudaMemcpyDeviceToHost);
    for (int j = 0; j < k; j++) bad += gi[j] != e[j].second;
  }
  printf("threads %4d vpt %d cap %4d pp %d | b %3d V %7d k %4d: %6.1f us | prime %5.2f stream %5.2f select %5.2f rank %5.2f us | buffer %lld ranked %lld | %s%s\n",
         THREADS, VPT, CAP, PP, batch, len, k, us, h[0] / ghz / 1e3, h[1] / ghz / 1e3, h[2] / ghz / 1e3, h[3] / ghz / 1e3, h[4], h[5],
         bad ? "WRONG" : "ok", err ? cudaGetErrorString(err) : "");
}

int main() {
  int clk; cudaDeviceGetAttribute(&clk, cudaDevAttrClockRate, 0);
  double ghz = clk / 1e6;
  printf("SM clock %.3f GHz\n", ghz);
  const int maxb = 256, maxlen = 131072;
  size_t total = (size_t)ROT * maxb * maxlen;
  std::vector<float> hx(total);
  srand(1);
  for (size_t i = 0; i < total; i++) hx[i] = (float)rand() / RAND_MAX * 20.f - 10.f;
  float4* x; cudaMalloc(&x, total * 4); cudaMemcpy(x, hx.data(), total * 4, cudaMemcpyHostToDevice);
  float* outv; cudaMalloc(&outv, maxb * 4096 * 4);
  int* outi; cudaMalloc(&outi, maxb * 4096 * 4);
  long long* ts; cudaMalloc(&ts, 64);
  float* out; cudaMalloc(&out, maxb * 4);
  printf("empty-ish 1 block: %.1f us\n", time_it([&](int i) { read_part<1><<<1, 1024>>>(x, 256, 1, out); }));
  for (int b : {1, 64, 256}) {
    printf("read_part 1024x4: b %3d %.1f us\n", b, time_it([&](int i) { read_part<4><<<b, 1024>>>(x + (size_t)(i % ROT) * b * maxlen / 4, maxlen / 4, 1, out); }));
    for (int k : {1, 50, 256}) {
      case_<1024, 4, 4096, 2>(hx.data(), x, b, maxlen, k, outv, outi, ts, ghz);
      case_<1024, 4, 3072, 0>(hx.data(), x, b, maxlen, k, outv, outi, ts, ghz);
      case_<512, 8, 3072, 0>(hx.data(), x, b, maxlen, k, outv, outi, ts, ghz);
      case_<512, 4, 3072, 0>(hx.data(), x, b, maxlen, k, outv, outi, ts, ghz);
    }
  }
  for (int len : {32768, 262144, 1048576}) {
    case_<1024, 4, 3072, 0>(hx.data(), x, 1, len, 50, outv, outi, ts, ghz);
    case_<512, 8, 3072, 0>(hx.data(), x, 1, len, 50, outv, outi, ts, ghz);
  }
  return 0;
}

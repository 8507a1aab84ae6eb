// Kernel gradient of an NHWC convolution on x86 CPUs (AVX2 + FMA), as an XLA FFI handler.
//
//   dW[i, j, ci, co] = sum_{n, ho, wo} x[n, ho*sh + i - pt, wo*sw + j - pl, ci]
//                                      * dy[n, ho, wo, co]
//
// (x outside its bounds is the convolution's zero padding). This is the direct form: no
// im2col matrix is materialised. For each tap (i, j), a block of 1-12 input channels and 8-32
// output channels keeps its partial sums in up to 12 AVX registers while it streams one
// image's rows of x and dy (both NHWC, so the channels it reads are contiguous); images are
// the outer loop, so an image's x and dy stay in L2 across the taps and channel blocks.
// Work is split by images into up to kTasks tasks, one partial sum each, run on XLA's
// intra-op thread pool and summed in task order (bitwise the same on any number of cores).
//
// Built at run time by hyperproto/models/cpu_kernels.py (g++ -O3 -mavx2 -mfma); the Python
// side checks the CPU's flags first and falls back to XLA when anything is missing.

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int64_t kTasks = 16;  // 8 and 32 were slower on 2 cores (--layers).
constexpr int64_t kPartialBytes = 64 << 20;  // Cap on the partial sums' memory.

struct Geometry {
  int64_t h, w, cin, ho, wo, cout, kh, kw, sh, sw, pt, pl;
};

// One (tap, input-channel block, output-channel block) over image n, added to dw.
template <int CI, int CV>
void Block(const float* x, const float* dy, float* dw, const Geometry& g, int64_t n,
           int64_t i, int64_t j, int64_t ci0, int64_t co0) {
  __m256 acc[CI][CV];
#pragma GCC unroll 16
  for (int a = 0; a < CI; ++a)
#pragma GCC unroll 8
    for (int b = 0; b < CV; ++b) acc[a][b] = _mm256_setzero_ps();
  // Output columns whose input column wo*sw + j - pl lies inside [0, w).
  const int64_t first = std::max<int64_t>(0, (g.pl - j + g.sw - 1) / g.sw);
  const int64_t last_num = g.w - 1 + g.pl - j;
  const int64_t end = last_num < 0 ? 0 : std::min<int64_t>(g.wo, last_num / g.sw + 1);
  for (int64_t ho = 0; ho < g.ho; ++ho) {
    const int64_t hx = ho * g.sh + i - g.pt;
    if (hx < 0 || hx >= g.h) continue;
    const float* x_row = x + (n * g.h + hx) * g.w * g.cin + ci0;
    const float* dy_row = dy + (n * g.ho + ho) * g.wo * g.cout + co0;
    for (int64_t wo = first; wo < end; ++wo) {
      const float* xp = x_row + (wo * g.sw + j - g.pl) * g.cin;
      const float* dp = dy_row + wo * g.cout;
      __m256 d[CV];
#pragma GCC unroll 8
      for (int b = 0; b < CV; ++b) d[b] = _mm256_loadu_ps(dp + 8 * b);
#pragma GCC unroll 16
      for (int a = 0; a < CI; ++a) {
        const __m256 xv = _mm256_broadcast_ss(xp + a);
#pragma GCC unroll 8
        for (int b = 0; b < CV; ++b) acc[a][b] = _mm256_fmadd_ps(xv, d[b], acc[a][b]);
      }
    }
  }
  float* out = dw + ((i * g.kw + j) * g.cin + ci0) * g.cout + co0;
#pragma GCC unroll 16
  for (int a = 0; a < CI; ++a)
#pragma GCC unroll 8
    for (int b = 0; b < CV; ++b) {
      float* q = out + a * g.cout + 8 * b;
      _mm256_storeu_ps(q, _mm256_add_ps(_mm256_loadu_ps(q), acc[a][b]));
    }
}

// Output channels not in a block of 8 (plain loops; no backbone here has them).
void Remainder(const float* x, const float* dy, float* dw, const Geometry& g, int64_t n,
               int64_t i, int64_t j, int64_t co0) {
  float* out = dw + (i * g.kw + j) * g.cin * g.cout;
  for (int64_t ho = 0; ho < g.ho; ++ho) {
    const int64_t hx = ho * g.sh + i - g.pt;
    if (hx < 0 || hx >= g.h) continue;
    for (int64_t wo = 0; wo < g.wo; ++wo) {
      const int64_t wx = wo * g.sw + j - g.pl;
      if (wx < 0 || wx >= g.w) continue;
      const float* xp = x + ((n * g.h + hx) * g.w + wx) * g.cin;
      const float* dp = dy + ((n * g.ho + ho) * g.wo + wo) * g.cout;
      for (int64_t ci = 0; ci < g.cin; ++ci)
        for (int64_t co = co0; co < g.cout; ++co) out[ci * g.cout + co] += xp[ci] * dp[co];
    }
  }
}

// Register budget: CI * CV accumulators + CV loads + 1 broadcast <= 16 ymm registers, and
// at least 8 accumulators to cover the FMA latency. With 8 or 16 output channels, prefers
// a CI that divides Cin (16 = 4 x 4 rather than 6 + 6 + 3 + 1); else, and with 32 or more
// (measured: 3 x 10 + 1 x 2 beats 2 x 16 for Cin = 32), the widest blocks, then smaller.
template <int CV, int CI>
bool Even(const float* x, const float* dy, float* dw, const Geometry& g, int64_t n,
          int64_t i, int64_t j, int64_t co0) {
  if (g.cin % CI) return false;
  for (int64_t ci = 0; ci < g.cin; ci += CI) Block<CI, CV>(x, dy, dw, g, n, i, j, ci, co0);
  return true;
}

template <int CV>
void AllInputChannels(const float* x, const float* dy, float* dw, const Geometry& g,
                      int64_t n, int64_t i, int64_t j, int64_t co0) {
  constexpr int kCI = CV == 1 ? 12 : (CV == 2 ? 6 : 3);
  if (CV == 1 && (Even<1, 12>(x, dy, dw, g, n, i, j, co0) ||
                  Even<1, 8>(x, dy, dw, g, n, i, j, co0))) return;
  if (CV == 2 && (Even<2, 6>(x, dy, dw, g, n, i, j, co0) ||
                  Even<2, 4>(x, dy, dw, g, n, i, j, co0))) return;
  int64_t ci = 0;
  for (; ci + kCI <= g.cin; ci += kCI) Block<kCI, CV>(x, dy, dw, g, n, i, j, ci, co0);
  for (; ci + 3 <= g.cin; ci += 3) Block<3, CV>(x, dy, dw, g, n, i, j, ci, co0);
  for (; ci < g.cin; ++ci) Block<1, CV>(x, dy, dw, g, n, i, j, ci, co0);
}

// Adds images [n0, n1)'s contribution to dw (zeroed by the caller).
void KernelGrad(const float* x, const float* dy, float* dw, const Geometry& g, int64_t n0,
                int64_t n1) {
  for (int64_t n = n0; n < n1; ++n)  // Images outermost: one image's x and dy stay in L2.
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        int64_t co = 0;
        for (; co + 32 <= g.cout; co += 32) AllInputChannels<4>(x, dy, dw, g, n, i, j, co);
        for (; co + 16 <= g.cout; co += 16) AllInputChannels<2>(x, dy, dw, g, n, i, j, co);
        for (; co + 8 <= g.cout; co += 8) AllInputChannels<1>(x, dy, dw, g, n, i, j, co);
        if (co < g.cout) Remainder(x, dy, dw, g, n, i, j, co);
      }
}

// Shared by the calling thread and the pool's tasks; outlives the call if a pool task
// starts late (it then finds no work left and only drops its reference).
struct Work {
  const float* x;
  const float* dy;
  Geometry g;
  int64_t batch, tasks, size;
  std::vector<std::vector<float>> partial;
  std::atomic<int64_t> next{0};
  int64_t done = 0;
  std::mutex mu;
  std::condition_variable cv;

  void Drain() {  // Runs tasks until none is left to start.
    for (int64_t t; (t = next.fetch_add(1)) < tasks;) {
      const int64_t n0 = batch * t / tasks, n1 = batch * (t + 1) / tasks;
      KernelGrad(x, dy, partial[t].data(), g, n0, n1);
      std::lock_guard<std::mutex> lock(mu);
      if (++done == tasks) cv.notify_all();
    }
  }
};

ffi::Error ConvKernelGradImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                              ffi::Buffer<ffi::F32> dy, ffi::ResultBuffer<ffi::F32> dw,
                              int64_t stride_h, int64_t stride_w, int64_t pad_top,
                              int64_t pad_left) {
  const auto xd = x.dimensions(), dyd = dy.dimensions(), wd = dw->dimensions();
  if (xd.size() != 4 || dyd.size() != 4 || wd.size() != 4 || xd[0] != dyd[0] ||
      wd[2] != xd[3] || wd[3] != dyd[3] || stride_h < 1 || stride_w < 1) {
    return ffi::Error::InvalidArgument(
        "hyperproto_conv_kernel_grad: expected x [B,H,W,Cin], dy [B,Ho,Wo,Cout] and a "
        "[kh,kw,Cin,Cout] result with strides >= 1");
  }
  if (wd[0] * wd[1] * wd[2] * wd[3] == 0) return ffi::Error::Success();
  auto work = std::make_shared<Work>();
  work->x = x.typed_data();
  work->dy = dy.typed_data();
  work->g = Geometry{xd[1], xd[2], xd[3], dyd[1], dyd[2], dyd[3], wd[0], wd[1],
                     stride_h,  stride_w,  pad_top, pad_left};
  work->batch = xd[0];
  work->size = wd[0] * wd[1] * wd[2] * wd[3];
  // A fixed split of the batch, summed in a fixed order: the result is the same bits
  // whatever the number of threads (which only decides who runs which task).
  const int64_t memory_cap = std::max<int64_t>(1, kPartialBytes / (4 * work->size));
  work->tasks = std::max<int64_t>(1, std::min({work->batch, kTasks, memory_cap}));
  work->partial.assign(work->tasks, std::vector<float>(work->size, 0.f));
  const int64_t helpers = std::min<int64_t>(work->tasks, pool.num_threads()) - 1;
  for (int64_t t = 0; t < helpers; ++t) pool.Schedule([work] { work->Drain(); });
  work->Drain();
  {
    std::unique_lock<std::mutex> lock(work->mu);
    work->cv.wait(lock, [&] { return work->done == work->tasks; });
  }
  float* out = dw->typed_data();
  for (int64_t k = 0; k < work->size; ++k) {
    float sum = 0.f;
    for (int64_t t = 0; t < work->tasks; ++t) sum += work->partial[t][k];
    out[k] = sum;
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(HyperprotoConvKernelGrad, ConvKernelGradImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("stride_h")
                                  .Attr<int64_t>("stride_w")
                                  .Attr<int64_t>("pad_top")
                                  .Attr<int64_t>("pad_left"));

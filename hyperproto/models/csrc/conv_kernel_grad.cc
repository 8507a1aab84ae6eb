// Kernel gradient of an NHWC convolution on x86 CPUs (AVX2 + FMA), as an XLA FFI handler.
//
//   dW[i, j, ci, co] = sum_{n, ho, wo} x[n, ho*sh + i - pt, wo*sw + j - pl, ci]
//                                      * dy[n, ho, wo, co]
//
// (x outside its bounds is the convolution's zero padding). This is the direct form: no
// im2col matrix is materialised. Each image is copied into a zero-padded buffer; then for
// each kernel row i, a block of 6 (tap, input channel) pairs m = j * Cin + ci (contiguous
// in a padded input row, so a block may span taps) and 16 output channels keeps its 12
// partial sums in AVX registers while it streams the image's pixels of x and dy (both
// NHWC). Blocks of 32 output channels (12 sums as 3 x 4 vectors, plus 4 loaded vectors,
// overflow the 16 registers) were 1.4-1.7x slower. Work is split by images into up to
// kTasks tasks, one partial sum each, run on XLA's intra-op thread pool and summed in task
// order (bitwise the same on any number of cores).
//
// Built at run time by hyperproto/models/cpu_kernels.py (g++ -O3 -mavx2 -mfma), with
// conv_forward.cc; the Python side checks the CPU's flags first and falls back to pure JAX
// when anything is missing.

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "common.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int64_t kTasks = 16;  // 8 and 32 were slower on 2 cores (--layers).
constexpr int64_t kPartialBytes = 64 << 20;  // Cap on the partial sums' memory.

struct Geometry {
  int64_t h, w, cin, ho, wo, cout, kh, kw, sh, sw, pt, pl;
  int64_t hp, wp;  // The padded input's size.
};

// dw[i, m0 : m0 + CI, co0 : co0 + 8CV] += one image's sum over output pixels, where
// m = j * Cin + ci runs over a kernel row's (tap, input channel) pairs: for a pixel they
// are contiguous in the padded input row, so a block may span several taps.
template <int CI, int CV>
void Block(const float* xpad, const float* dy, float* dw, const Geometry& g, int64_t i,
           int64_t m0, int64_t co0) {
  __m256 acc[CI][CV];
#pragma GCC unroll 16
  for (int a = 0; a < CI; ++a)
#pragma GCC unroll 8
    for (int b = 0; b < CV; ++b) acc[a][b] = _mm256_setzero_ps();
  const int64_t pixel_step = g.sw * g.cin;
  for (int64_t ho = 0; ho < g.ho; ++ho) {
    const int64_t r = ho * g.sh + i;  // The padded input row: skipped if all padding.
    if (r < g.pt || r >= g.pt + g.h) continue;
    const float* xr = xpad + r * g.wp * g.cin + m0;
    const float* dr = dy + ho * g.wo * g.cout + co0;
    for (int64_t wo = 0; wo < g.wo; ++wo) {
      const float* xp = xr + wo * pixel_step;
      __m256 d[CV];
#pragma GCC unroll 8
      for (int b = 0; b < CV; ++b) d[b] = _mm256_loadu_ps(dr + wo * g.cout + 8 * b);
#pragma GCC unroll 16
      for (int a = 0; a < CI; ++a) {
        const __m256 xv = _mm256_broadcast_ss(xp + a);
#pragma GCC unroll 8
        for (int b = 0; b < CV; ++b) acc[a][b] = _mm256_fmadd_ps(xv, d[b], acc[a][b]);
      }
    }
  }
  float* out = dw + (i * g.kw * g.cin + m0) * g.cout + co0;
#pragma GCC unroll 16
  for (int a = 0; a < CI; ++a)
#pragma GCC unroll 8
    for (int b = 0; b < CV; ++b) {
      float* q = out + a * g.cout + 8 * b;
      _mm256_storeu_ps(q, _mm256_add_ps(_mm256_loadu_ps(q), acc[a][b]));
    }
}

// A kernel row's kw * Cin pairs in blocks of CI (CI * CV accumulators + CV loads +
// 1 broadcast fit the 16 AVX registers), then the rest in one narrower block.
template <int CV, int CI>
void KernelRow(const float* xpad, const float* dy, float* dw, const Geometry& g, int64_t i,
               int64_t co0) {
  static_assert(CI <= 12, "the remainder switch covers CI <= 12");
  const int64_t run = g.kw * g.cin;
  int64_t m = 0;
  for (; m + CI <= run; m += CI) Block<CI, CV>(xpad, dy, dw, g, i, m, co0);
  switch (run - m) {
    case 1: Block<1, CV>(xpad, dy, dw, g, i, m, co0); break;
    case 2: Block<2, CV>(xpad, dy, dw, g, i, m, co0); break;
    case 3: Block<3, CV>(xpad, dy, dw, g, i, m, co0); break;
    case 4: Block<4, CV>(xpad, dy, dw, g, i, m, co0); break;
    case 5: Block<5, CV>(xpad, dy, dw, g, i, m, co0); break;
    case 6: Block<6, CV>(xpad, dy, dw, g, i, m, co0); break;
    case 7: Block<7, CV>(xpad, dy, dw, g, i, m, co0); break;
    case 8: Block<8, CV>(xpad, dy, dw, g, i, m, co0); break;
    case 9: Block<9, CV>(xpad, dy, dw, g, i, m, co0); break;
    case 10: Block<10, CV>(xpad, dy, dw, g, i, m, co0); break;
    case 11: Block<11, CV>(xpad, dy, dw, g, i, m, co0); break;
    default: break;
  }
}

// Output channels not in a block of 8 (plain loops; no backbone here has them).
void Remainder(const float* xpad, const float* dy, float* dw, const Geometry& g,
               int64_t co0) {
  const int64_t run = g.kw * g.cin;
  for (int64_t i = 0; i < g.kh; ++i)
    for (int64_t ho = 0; ho < g.ho; ++ho) {
      const float* xr = xpad + (ho * g.sh + i) * g.wp * g.cin;
      for (int64_t wo = 0; wo < g.wo; ++wo) {
        const float* xp = xr + wo * g.sw * g.cin;
        const float* dp = dy + (ho * g.wo + wo) * g.cout;
        float* out = dw + i * run * g.cout;
        for (int64_t m = 0; m < run; ++m)
          for (int64_t co = co0; co < g.cout; ++co) out[m * g.cout + co] += xp[m] * dp[co];
      }
    }
}

// Adds one image's contribution to dw, after padding it into `xpad` (border zero).
void Image(const float* x, const float* dy, float* dw, const Geometry& g, float* xpad) {
  hyperproto::PadImage(x, g.h, g.w, g.cin, g.wp, g.pt, g.pl, xpad);
  for (int64_t i = 0; i < g.kh; ++i) {
    int64_t co = 0;
    for (; co + 16 <= g.cout; co += 16) KernelRow<2, 6>(xpad, dy, dw, g, i, co);
    for (; co + 8 <= g.cout; co += 8) KernelRow<1, 12>(xpad, dy, dw, g, i, co);
  }
  const int64_t co = g.cout - g.cout % 8;
  if (co < g.cout) Remainder(xpad, dy, dw, g, co);
}

ffi::Error ConvKernelGradImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                              ffi::Buffer<ffi::F32> dy, ffi::ResultBuffer<ffi::F32> dw,
                              int64_t stride_h, int64_t stride_w, int64_t pad_top,
                              int64_t pad_left) {
  const auto xd = x.dimensions(), dyd = dy.dimensions(), wd = dw->dimensions();
  if (xd.size() != 4 || dyd.size() != 4 || wd.size() != 4 || xd[0] != dyd[0] ||
      wd[2] != xd[3] || wd[3] != dyd[3] || stride_h < 1 || stride_w < 1 || pad_top < 0 ||
      pad_left < 0) {
    return ffi::Error::InvalidArgument(
        "hyperproto_conv_kernel_grad: expected x [B,H,W,Cin], dy [B,Ho,Wo,Cout] and a "
        "[kh,kw,Cin,Cout] result with strides >= 1 and pads >= 0");
  }
  if (wd[0] * wd[1] * wd[2] * wd[3] == 0) return ffi::Error::Success();
  const float* xp = x.typed_data();
  const float* dyp = dy.typed_data();
  Geometry g{xd[1], xd[2], xd[3], dyd[1], dyd[2], dyd[3], wd[0], wd[1],
             stride_h, stride_w, pad_top, pad_left, 0, 0};
  // Large enough for every tap of every output, and for all of x at its offset.
  g.hp = std::max((g.ho - 1) * g.sh + g.kh, pad_top + g.h);
  g.wp = std::max((g.wo - 1) * g.sw + g.kw, pad_left + g.w);
  const int64_t batch = xd[0], size = wd[0] * wd[1] * wd[2] * wd[3];
  // A fixed split of the batch, summed in a fixed order: the result is the same bits
  // whatever the number of threads (which only decides who runs which task).
  const int64_t memory_cap = std::max<int64_t>(1, kPartialBytes / (4 * size));
  const int64_t tasks = std::max<int64_t>(1, std::min({batch, kTasks, memory_cap}));
  std::vector<std::vector<float>> partial(tasks, std::vector<float>(size, 0.f));
  hyperproto::ParallelFor(pool, tasks, [&](int64_t t) {
    std::vector<float> xpad(g.hp * g.wp * g.cin, 0.f);
    for (int64_t n = batch * t / tasks; n < batch * (t + 1) / tasks; ++n)
      Image(xp + n * g.h * g.w * g.cin, dyp + n * g.ho * g.wo * g.cout, partial[t].data(),
            g, xpad.data());
  });
  float* out = dw->typed_data();
  for (int64_t k = 0; k < size; ++k) {
    float sum = 0.f;
    for (int64_t t = 0; t < tasks; ++t) sum += partial[t][k];
    out[k] = sum;
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(HyperprotoConvKernelGrad, ConvKernelGradImpl,
                              hyperproto::ConvBinding());

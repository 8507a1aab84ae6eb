// Forward pass of an NHWC convolution on x86 CPUs (AVX2 + FMA), as an XLA FFI handler.
//
//   y[n, ho, wo, co] = sum_{i, j, ci} x[n, ho*sh + i - pt, wo*sw + j - pl, ci] * w[i, j, ci, co]
//
// (x outside its bounds is the zero padding). Also the input gradient of a stride-1
// convolution: dx = conv(dy, w flipped in space with Cin and Cout swapped), see conv.py.
//
// Direct form, no im2col: each image is copied into a zero-padded buffer, then a tile of
// P output pixels x 8*CV output channels keeps its sums in P*CV AVX registers over the
// reduction (i, j, ci), broadcasting one input value per pixel and loading CV weight
// vectors per step. Within one kernel row i, (j, ci) is contiguous both in the padded
// input row and in the weights (packed [Cout / 8CV][kh][kw][Cin][8CV]), so the inner loop
// is one run of kw*Cin steps. Kernel rows are taken in passes whose weights fit in L1
// (partial sums go through y). Images are independent tasks on XLA's intra-op thread pool:
// every output is computed by one thread in a fixed order (same bits on any core count).
//
// Built at run time by hyperproto/models/cpu_kernels.py, with conv_kernel_grad.cc.

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int64_t kL1WeightBytes = 16 << 10;  // 16 KB: measured best of 16/28/all (--layers).
constexpr int64_t kTasksPerThread = 4;

struct Geometry {
  int64_t cin, ho, wo, cout, kh, kw, sh, sw;
  int64_t hp, wp;  // The padded input's size.
};

// y[ho, wo0 : wo0 + P, co0 : co0 + 8CV] of one image, summed over kernel rows [i0, i1)
// (added to what y holds unless i0 == 0). `w` points at the channel block's weights.
template <int P, int CV>
inline void Tile(const float* xpad, const float* w, float* y, const Geometry& g,
                 int64_t ho, int64_t wo0, int64_t co0, int64_t i0, int64_t i1) {
  float* out = y + (ho * g.wo + wo0) * g.cout + co0;
  __m256 acc[P][CV];
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
    for (int b = 0; b < CV; ++b)
      acc[p][b] = i0 ? _mm256_loadu_ps(out + p * g.cout + 8 * b) : _mm256_setzero_ps();
  const int64_t run = g.kw * g.cin, pixel_step = g.sw * g.cin;
  for (int64_t i = i0; i < i1; ++i) {
    const float* xr = xpad + ((ho * g.sh + i) * g.wp + wo0 * g.sw) * g.cin;
    const float* wr = w + i * run * 8 * CV;
    for (int64_t k = 0; k < run; ++k) {
      __m256 wv[CV];
#pragma GCC unroll 4
      for (int b = 0; b < CV; ++b) wv[b] = _mm256_loadu_ps(wr + k * 8 * CV + 8 * b);
#pragma GCC unroll 8
      for (int p = 0; p < P; ++p) {
        const __m256 xv = _mm256_broadcast_ss(xr + p * pixel_step + k);
#pragma GCC unroll 4
        for (int b = 0; b < CV; ++b) acc[p][b] = _mm256_fmadd_ps(xv, wv[b], acc[p][b]);
      }
    }
  }
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
    for (int b = 0; b < CV; ++b) _mm256_storeu_ps(out + p * g.cout + 8 * b, acc[p][b]);
}

// One output row in tiles of P pixels (P * CV accumulators + CV weights + 1 broadcast
// fit the 16 AVX registers), then the rest of the row in one narrower tile.
template <int CV, int P>
void Row(const float* xpad, const float* w, float* y, const Geometry& g, int64_t ho,
         int64_t co0, int64_t i0, int64_t i1) {
  static_assert(P <= 8, "the remainder switch covers P <= 8");
  int64_t wo = 0;
  for (; wo + P <= g.wo; wo += P) Tile<P, CV>(xpad, w, y, g, ho, wo, co0, i0, i1);
  switch (g.wo - wo) {
    case 1: Tile<1, CV>(xpad, w, y, g, ho, wo, co0, i0, i1); break;
    case 2: Tile<2, CV>(xpad, w, y, g, ho, wo, co0, i0, i1); break;
    case 3: Tile<3, CV>(xpad, w, y, g, ho, wo, co0, i0, i1); break;
    case 4: Tile<4, CV>(xpad, w, y, g, ho, wo, co0, i0, i1); break;
    case 5: Tile<5, CV>(xpad, w, y, g, ho, wo, co0, i0, i1); break;
    case 6: Tile<6, CV>(xpad, w, y, g, ho, wo, co0, i0, i1); break;
    case 7: Tile<7, CV>(xpad, w, y, g, ho, wo, co0, i0, i1); break;
    default: break;
  }
}

// Output channels per block: 16 (2 vectors x 4 pixels) where Cout allows, else 8 (1 x 8).
// Measured (--layers): 4 pixels as fast as 5 or 6, blocks of 32 channels (4 x 3) no faster.
int VectorsPerBlock(int64_t cout) { return cout % 16 == 0 ? 2 : 1; }

// One image: pads it into `xpad` (whose border is zero), then every output.
void Image(const float* x, const float* w, float* y, const Geometry& g, int64_t h,
           int64_t wdt, int64_t pt, int64_t pl, float* xpad) {
  hyperproto::PadImage(x, h, wdt, g.cin, g.wp, pt, pl, xpad);
  const int cv = VectorsPerBlock(g.cout);
  const int64_t block = 8 * cv, per_block = g.kh * g.kw * g.cin * block;
  const int64_t row_bytes = g.kw * g.cin * block * sizeof(float);
  const int64_t rows = std::clamp<int64_t>(kL1WeightBytes / row_bytes, 1, g.kh);
  for (int64_t cb = 0; cb * block < g.cout; ++cb) {
    const float* wb = w + cb * per_block;
    for (int64_t i0 = 0; i0 < g.kh; i0 += rows) {
      const int64_t i1 = std::min(g.kh, i0 + rows);
      for (int64_t ho = 0; ho < g.ho; ++ho) {
        if (cv == 2) {
          Row<2, 4>(xpad, wb, y, g, ho, cb * block, i0, i1);
        } else {
          Row<1, 8>(xpad, wb, y, g, ho, cb * block, i0, i1);
        }
      }
    }
  }
}

ffi::Error ConvForwardImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                           ffi::Buffer<ffi::F32> w, ffi::ResultBuffer<ffi::F32> y,
                           int64_t stride_h, int64_t stride_w, int64_t pad_top,
                           int64_t pad_left) {
  const auto xd = x.dimensions(), wd = w.dimensions(), yd = y->dimensions();
  if (xd.size() != 4 || wd.size() != 4 || yd.size() != 4 || xd[0] != yd[0] ||
      wd[2] != xd[3] || wd[3] != yd[3] || wd[3] % 8 || stride_h < 1 || stride_w < 1 ||
      pad_top < 0 || pad_left < 0) {
    return ffi::Error::InvalidArgument(
        "hyperproto_conv_forward: expected x [B,H,W,Cin], w [kh,kw,Cin,Cout] and a "
        "[B,Ho,Wo,Cout] result with Cout a multiple of 8, strides >= 1 and pads >= 0");
  }
  const int64_t batch = xd[0], h = xd[1], wdt = xd[2];
  Geometry g{xd[3], yd[1], yd[2], yd[3], wd[0], wd[1], stride_h, stride_w, 0, 0};
  // Large enough for every tap of every output, and for all of x at its offset.
  g.hp = std::max((g.ho - 1) * g.sh + g.kh, pad_top + h);
  g.wp = std::max((g.wo - 1) * g.sw + g.kw, pad_left + wdt);
  if (batch * g.ho * g.wo * g.cout == 0) return ffi::Error::Success();
  // Weights packed [Cout / 8CV][kh][kw][Cin][8CV]: a block's weights are contiguous.
  const int64_t block = 8 * VectorsPerBlock(g.cout), taps = g.kh * g.kw * g.cin;
  std::vector<float> packed(taps * g.cout);
  const float* wp = w.typed_data();
  for (int64_t cb = 0; cb < g.cout / block; ++cb)
    for (int64_t t = 0; t < taps; ++t)
      std::memcpy(&packed[(cb * taps + t) * block], wp + t * g.cout + cb * block,
                  block * sizeof(float));
  const float* xp = x.typed_data();
  float* yp = y->typed_data();
  const int64_t tasks =
      std::clamp<int64_t>(kTasksPerThread * pool.num_threads(), 1, batch);
  hyperproto::ParallelFor(pool, tasks, [&](int64_t t) {
    std::vector<float> xpad(g.hp * g.wp * g.cin, 0.f);
    for (int64_t n = batch * t / tasks; n < batch * (t + 1) / tasks; ++n)
      Image(xp + n * h * wdt * g.cin, packed.data(), yp + n * g.ho * g.wo * g.cout, g, h,
            wdt, pad_top, pad_left, xpad.data());
  });
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(HyperprotoConvForward, ConvForwardImpl, hyperproto::ConvBinding());

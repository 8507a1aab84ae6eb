// Helpers shared by the kernels here: a parallel loop on XLA's intra-op thread pool, their
// common FFI call signature, and zero padding of one image.

#ifndef HYPERPROTO_CSRC_COMMON_H_
#define HYPERPROTO_CSRC_COMMON_H_

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>

#include "xla/ffi/api/ffi.h"

namespace hyperproto {

// Calls fn(t) for t in [0, tasks) on the calling thread and up to pool.num_threads() - 1
// pool threads, and returns when every call has returned. Which thread runs which task
// depends on timing, so `fn` must give the same result wherever it runs.
inline void ParallelFor(xla::ffi::ThreadPool& pool, int64_t tasks,
                        std::function<void(int64_t)> fn) {
  // Shared with the pool threads; outlives this call if one starts late (it then finds
  // no task left, never touches `fn`'s captures, and only drops its reference).
  struct State {
    std::function<void(int64_t)> fn;
    int64_t tasks;
    std::atomic<int64_t> next{0};
    int64_t done = 0;
    std::mutex mu;
    std::condition_variable cv;

    void Drain() {
      for (int64_t t; (t = next.fetch_add(1)) < tasks;) {
        fn(t);
        std::lock_guard<std::mutex> lock(mu);
        if (++done == tasks) cv.notify_all();
      }
    }
  };
  auto state = std::make_shared<State>();
  state->fn = std::move(fn);
  state->tasks = tasks;
  const int64_t helpers = std::min<int64_t>(tasks, pool.num_threads()) - 1;
  for (int64_t t = 0; t < helpers; ++t) pool.Schedule([state] { state->Drain(); });
  state->Drain();
  std::unique_lock<std::mutex> lock(state->mu);
  state->cv.wait(lock, [&] { return state->done == state->tasks; });
}

// The call signature both kernels share (cpu_kernels._call passes it): two float32
// operands, one float32 result, the strides and the top/left padding (the bottom/right
// padding follows from the shapes).
inline auto ConvBinding() {
  return xla::ffi::Ffi::Bind()
      .Ctx<xla::ffi::ThreadPool>()
      .Arg<xla::ffi::Buffer<xla::ffi::F32>>()
      .Arg<xla::ffi::Buffer<xla::ffi::F32>>()
      .Ret<xla::ffi::Buffer<xla::ffi::F32>>()
      .Attr<int64_t>("stride_h")
      .Attr<int64_t>("stride_w")
      .Attr<int64_t>("pad_top")
      .Attr<int64_t>("pad_left");
}

// Copies one NHWC image x [h, w, c] into `xpad` [hp, wp, c] at row pt, column pl. The
// rest of `xpad` (its zero border) is left as it is, so one zeroed buffer serves every
// image of a batch.
inline void PadImage(const float* x, int64_t h, int64_t w, int64_t c, int64_t wp,
                     int64_t pt, int64_t pl, float* xpad) {
  for (int64_t r = 0; r < h; ++r)
    std::memcpy(xpad + ((r + pt) * wp + pl) * c, x + r * w * c, w * c * sizeof(float));
}

}  // namespace hyperproto

#endif  // HYPERPROTO_CSRC_COMMON_H_

// SIMD matmul kernels on the quantized blocks (Highway: compiled for every x86 target, picked at run time).
//
// Every output is summed exactly as ops/dot_reference.cc sums it (llama.cpp's x86 order: for the types it repacks,
// Q4_0, IQ4_NL, Q2_K and Q4_K, one float per row; for the others ggml's AVX2 vec_dot: exact integer lanes per
// block, one float FMA per block into eight float lanes, lanes added pairwise at the end; F16/BF16 the reference's
// own eight lanes), so the kernels give the reference's bits on every target, for any tile shape, thread count or
// batch size. Freedom lies only in how the exact integer lanes are computed and in how many outputs are in flight
// at once:
//
// - Every quantized type is laid out one row per vector lane (row lanes: 8 rows a register on AVX2, 16 on
//   AVX-512), the activations broadcast, the vec_dot types with one float vector per lane position. No horizontal
//   sums, and the float work is per kLanes outputs. F16/BF16, whose reference has eight lanes per row, put a row's
//   eight lanes in a vector's (HalfLanes). AVX-512 VNNI (and AVX-VNNI on AVX2) adds the int8 and int16
//   dot-product instructions (vpdpbusd, vpdpwssd), which replace ggml's maddubs/madd/add sequences with the same
//   exact sums.
// - Weights are stored in slots of kLanes rows (ops/packed_weight.h), each tile's chunks in the order it reads
//   them; a tile of T tokens decodes each chunk once for all T.
//
// The primitives are in simd_vectors-inl.h, the tiles of the 32-value types in simd_legacy-inl.h, those of the
// super-block types in simd_kquants-inl.h, the F16/BF16 tile and the tile runner in simd_matmul-inl.h; this file
// has the dispatch. AVX2 with AVX-VNNI is a pass of its own, simd_matmul_avx_vnni.cc.
// SSE4, which has no FMA, rounds each of the tiles' FMAs once in software (V::Fma), or multiplies and adds where the
// product is exact (F16, BF16), and runs every type in tiles of four rows. The other targets (SSSE3, scalar,
// non-x86) run the reference kernels, on rows left row-major.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/simd_matmul.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "ops/simd_matmul-inl.h"

#if HWY_ONCE
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <ranges>
#include <vector>

#include "ops/activation_quant.h"
#include "ops/amx_matmul.h"
#include "util/error.h"
#include "util/parallel.h"

namespace lowbit {

HWY_EXPORT(MatmulRows);
HWY_EXPORT(PackRows);
HWY_EXPORT(PassTarget);
HWY_EXPORT(FmaLanes);
HWY_EXPORT(HalfToFloatLanes);

namespace {
// The AVX3_DL kernels are built with GFNI (Q3_K's fields), which Highway 1.0.3 does not check for that target: on a
// CPU without it, which no CPU with the target's other features has been, every kernel runs its AVX3 code.
[[maybe_unused]] const bool gfni_checked = [] {
  if (!cpu_has_gfni()) hwy::DisableTargets(HWY_AVX3_DL);
  return true;
}();

std::atomic<StreamAhead> stream_ahead{StreamAhead::kByCpu};
std::atomic<bool> avx_vnni_allowed{true};
}  // namespace

StreamAhead set_stream_ahead(StreamAhead policy) { return stream_ahead.exchange(policy); }

bool stream_ahead_near() {
  switch (stream_ahead.load(std::memory_order_relaxed)) {
    case StreamAhead::kFar: return false;
    case StreamAhead::kNear: return true;
    default: return !cpu_is_amd();
  }
}

bool set_avx_vnni(bool allowed) { return avx_vnni_allowed.exchange(allowed); }

bool cpu_runs_avx_vnni_kernels() { return cpu_has_avx_vnni() && cpu_has_gfni(); }

bool avx_vnni_in_use() {
  return cpu_runs_avx_vnni_kernels() && avx_vnni_allowed.load(std::memory_order_relaxed) &&
         HWY_DYNAMIC_DISPATCH(PassTarget)() == HWY_AVX2;
}

// The AVX-VNNI kernels pack as the AVX2 ones: eight rows a slot, the same chunks.
int simd_pack_rows(DType type) { return HWY_DYNAMIC_DISPATCH(PackRows)(type); }

bool simd_matmul_supports(DType type) { return reference_row_dot(type) != nullptr; }

void pin_simd_target(const std::string& name, std::string_view where) {
  const bool vnni = name == "AVX2_VNNI";
  std::string runs;
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    const std::string target_name = hwy::TargetName(target);
    if (target_name == (vnni ? "AVX2" : name) && (!vnni || cpu_runs_avx_vnni_kernels())) {
      hwy::SetSupportedTargetsForTest(target);
      set_avx_vnni(vnni);
      return;
    }
    runs += (runs.empty() ? "" : ", ") + target_name;
    if (target == HWY_AVX2 && cpu_runs_avx_vnni_kernels()) runs += ", AVX2_VNNI";
  }
  fail(where, "'{}' is not a SIMD target this build and CPU run ({})", name, runs);
}

void simd_fma(const float* a, const float* b, const float* c, float* out, size_t n) {
  HWY_DYNAMIC_DISPATCH(FmaLanes)(a, b, c, out, n);
}

void simd_half_to_float(const uint16_t* h, float* out, size_t n) { HWY_DYNAMIC_DISPATCH(HalfToFloatLanes)(h, out, n); }

namespace {

// Generation splits each call's weight bytes between the threads in proportion to how fast each has read lately.
// The cores here are not equal: with equal shares, one of two threads read its half 15 % slower than the other for
// a whole run (which one changed from run to run), so the faster waited at the end of every call, 16-22 % of its
// time. Which thread computes a chunk never changes its bits, so the outputs stay the same.
class ThreadBalance {
 public:
  static constexpr int kMaxThreads = 64;
  ThreadBalance() {
    for (auto& v : speed_) v.gbps.store(10.0, std::memory_order_relaxed);  // all equal at first
  }
  // The cumulative shares: thread i takes the bytes in [shares[i], shares[i + 1]).
  std::vector<double> shares(int n) const {
    std::vector<double> s(static_cast<size_t>(n) + 1, 0.0);
    if (n > kMaxThreads) {
      for (int i = 0; i <= n; ++i) s[static_cast<size_t>(i)] = static_cast<double>(i) / n;
      return s;
    }
    for (int i = 0; i < n; ++i) s[static_cast<size_t>(i) + 1] = s[static_cast<size_t>(i)] + speed_[i].gbps.load(std::memory_order_relaxed);
    for (double& v : s) v /= s.back();
    s.back() = 1.0;
    return s;
  }
  // Thread i read `bytes` in `seconds`: a running average of its speed (each thread writes only its own).
  void record(int i, double bytes, double seconds) {
    if (i >= kMaxThreads || bytes <= 0 || seconds <= 0) return;
    const double speed = speed_[i].gbps.load(std::memory_order_relaxed);
    speed_[i].gbps.store(speed + kWeight * (bytes / seconds / 1e9 - speed), std::memory_order_relaxed);
  }

 private:
  static constexpr double kWeight = 0.125;
  // A line each: a thread's write at the end of a call would otherwise take the line from under the others.
  struct alignas(64) Speed {
    std::atomic<double> gbps;
  };
  std::array<Speed, kMaxThreads> speed_;
};

ThreadBalance& generation_balance() {
  static ThreadBalance balance;
  return balance;
}

// Each call's rows are computed in fixed chunks of kChunkRows (whole packed tiles), each by one thread: the bits do
// not depend on the thread count.
constexpr int64_t kChunkRows = 2 * kMaxPackRows;
size_t chunks_of(int64_t n_out) { return static_cast<size_t>((n_out + kChunkRows - 1) / kChunkRows); }

// One weight of a call: where its bytes are, which activations it takes, and where its chunks sit among the
// call's (numbered over the weights in turn).
struct MatmulWork {
  DType type;
  const uint8_t* data;
  WeightLayout layout;
  int64_t n_in, n_out;
  size_t act;  // its activations' first row in CallPlan::act_rows
  float* y;
  size_t first_chunk, bytes_before;  // the call's chunks and weight bytes before this weight's
};
// What a call works out before its threads start, in vectors each calling thread keeps from call to call: a
// generation call lasts tens of microseconds, and allocating them afresh was 0.7 of the 5.1 us a call spent before
// its threads started (Q4_0, -t 2).
struct CallPlan {
  std::vector<QuantizedActivations> acts;  // their memory kept too: a prompt batch's are megabytes (README, the allocator)
  std::vector<ActRow> act_rows;            // n_tokens rows per activation type in use
  std::vector<MatmulWork> work;
  std::vector<size_t> starts;  // each thread's first chunk
  StealingRanges ranges;

  // Chunk c is worked out from the weights, not listed: a list (a thousand entries for the output head) was lines
  // the caller wrote every call and the other threads then fetched from its core.
  const MatmulWork& weight_of(size_t c) const {
    size_t i = work.size() - 1;
    while (work[i].first_chunk > c) --i;
    return work[i];
  }
  int64_t first_row(const MatmulWork& w, size_t c) const { return static_cast<int64_t>(c - w.first_chunk) * kChunkRows; }
  // Weight bytes of chunks [0, c), for c up to the call's count of chunks.
  size_t bytes_before(size_t c) const {
    const MatmulWork& w = weight_of(c);
    return w.bytes_before + w.layout.row_bytes * static_cast<size_t>(std::min(w.n_out, first_row(w, c)));
  }
};

}  // namespace

void matmul_simd_shared_input(std::span<const MatmulTarget> targets, const float* x, int64_t n_tokens, int threads) {
  // The calling thread's plan, by reference: a lambda that named the thread_local itself would, run on a worker,
  // read the worker's.
  thread_local CallPlan this_threads_plan;
  CallPlan& plan = this_threads_plan;
  std::vector<QuantizedActivations>& acts = plan.acts;
  std::vector<ActRow>& act_rows = plan.act_rows;
  std::vector<MatmulWork>& work = plan.work;
  act_rows.clear();
  work.clear();
  size_t n_acts = 0, chunks = 0, bytes = 0;
  for (const MatmulTarget& t : targets) {
    const Tensor& w = *t.w;
    const DType at = activation_type(w.type());
    const int64_t n_in = w.ne()[0];
    size_t i = 0;
    while (i < n_acts && !(acts[i].type() == at && acts[i].row_bytes() == row_bytes(at, n_in))) ++i;
    if (i == n_acts) {
      if (n_acts == acts.size()) acts.emplace_back();
      quantize_activations(acts[n_acts], at, x, n_tokens, n_in, threads);
      for (int64_t k = 0; k < n_tokens; ++k) act_rows.push_back(acts[n_acts].kernel_row(k));
      ++n_acts;
    }
    const WeightLayout layout = weight_layout(w);
    const int64_t n_out = w.info.n_rows();
    work.push_back({w.type(), w.data, layout, n_in, n_out, i * static_cast<size_t>(n_tokens), t.y, chunks, bytes});
    chunks += chunks_of(n_out);
    bytes += layout.row_bytes * static_cast<size_t>(n_out);
  }
  const MatmulRowsFn rows = HWY_DYNAMIC_DISPATCH(MatmulRows);
  const MatmulRowsFn vnni_rows = avx_vnni_in_use() ? avx_vnni_matmul_rows() : nullptr;
  const int n_threads = std::min(static_cast<int>(std::clamp<size_t>(chunks, 1, static_cast<size_t>(threads))),
                                 n_tokens == 1 ? threads_for_bytes(bytes, threads) : threads);
  // Chunks [begin, end), one kernel call per weight they cover: a call per chunk cost its dispatch and its stream's
  // restart every 32 rows.
  const auto run_chunks = [&](size_t begin, size_t end, const ActRow* act) {
    while (begin < end) {
      const MatmulWork& wk = plan.weight_of(begin);
      const size_t weight_end = std::min(end, wk.first_chunk + chunks_of(wk.n_out));
      const int64_t r0 = plan.first_row(wk, begin), r1 = std::min(wk.n_out, plan.first_row(wk, weight_end));
      if (amx_matmul_takes(wk.type, n_tokens))
        amx_matmul_rows(wk.type, wk.data, wk.layout, act + wk.act, n_tokens, r0, r1, wk.n_out, wk.y);
      else
        (vnni_rows && avx_vnni_takes(wk.type, n_tokens > 1) ? vnni_rows : rows)(
            wk.type, wk.data, wk.layout, act + wk.act, wk.n_in, n_tokens, r0, r1, wk.n_out, wk.y);
      begin = weight_end;
    }
  };
  if (n_threads == 1) {
    run_chunks(0, chunks, act_rows.data());
    return;
  }
  if (n_tokens > 1) {
    // A batch's chunks are compute, not a stream: hand them out as threads free up, so a thread that loses its
    // core for a while (a noisy neighbour) does not hold the others at the end.
    parallel_for_dynamic(static_cast<int64_t>(chunks), n_threads, [&](int64_t c) {
      run_chunks(static_cast<size_t>(c), static_cast<size_t>(c) + 1, act_rows.data());
    });
    return;
  }
  // Generation: each thread takes one contiguous range of chunks, so it reads one stream, and the ranges hold
  // shares of the weight bytes rather than of the chunk count: Q/K/V or gate/up in one call may mix types (Q4_K_M's
  // Q6_K attn_v beside Q4_K), and the time goes with the bytes read. Thread i starts on the chunks that start in
  // its share [shares[i], shares[i+1]) of the bytes, and whoever finishes first takes chunks from the end of the
  // other's (StealingRanges).
  const std::vector<double> shares = generation_balance().shares(n_threads);
  std::vector<size_t>& starts = plan.starts;
  starts.resize(static_cast<size_t>(n_threads) + 1);
  for (size_t i = 0; i < starts.size(); ++i) {
    const auto share = static_cast<size_t>(static_cast<double>(bytes) * shares[i]);
    const auto all = std::views::iota(size_t{0}, chunks);  // the first chunk whose bytes before reach the share
    starts[i] = static_cast<size_t>(std::ranges::partition_point(all, [&](size_t c) { return plan.bytes_before(c) < share; }) - all.begin());
  }
  StealingRanges& ranges = plan.ranges;
  ranges.reset(starts);
  parallel_region(n_threads, [&](int me, int) {
    const auto t0 = std::chrono::steady_clock::now();
    // The caller's activations, but this thread's own extras (for Q8_0 as many bytes again as the blocks).
    const ActRow* act = act_rows.data();
    if (me != 0) {
      thread_local CallPlan mine;
      if (mine.acts.size() < n_acts) mine.acts.resize(n_acts);
      mine.act_rows.clear();
      for (size_t i = 0; i < n_acts; ++i) {
        mine.acts[i].mirror(acts[i]);
        for (int64_t k = 0; k < n_tokens; ++k) mine.act_rows.push_back(mine.acts[i].kernel_row(k));
      }
      act = mine.act_rows.data();
    }
    size_t read = 0;
    for (StealingRanges::Items items; !(items = ranges.next(me)).empty();) {
      run_chunks(items.begin, items.end, act);
      read += plan.bytes_before(items.end) - plan.bytes_before(items.begin);
    }
    generation_balance().record(me, static_cast<double>(read),
                                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  });
}

void matmul_simd(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads) {
  const MatmulTarget one{&w, y};
  matmul_simd_shared_input(std::span<const MatmulTarget>(&one, 1), x, n_tokens, threads);
}

}  // namespace lowbit
#endif  // HWY_ONCE

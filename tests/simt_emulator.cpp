// The fiber scheduler and memory checks behind tests/simt_emulator.h.
#include "tests/simt_emulator.h"

#include <ucontext.h>

#include <deque>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace minivl::simt {
namespace {

constexpr size_t kStackBytes = 256 * 1024;

struct Copy {
  void* dst;
  const void* src;
  bool valid;
};
void perform(const Copy& c) {
  if (c.valid) {
    std::memcpy(c.dst, c.src, 16);
  } else {
    std::memset(c.dst, 0, 16);
  }
}

enum class State { runnable, block_wait, warp_wait, done };

struct Fiber {
  ucontext_t ctx;
  std::unique_ptr<char[]> stack;
  ThreadIndices idx;
  State state = State::runnable;
  uint64_t wait_gen = 0;
  std::vector<Copy> open;                  // issued, not yet committed
  std::deque<std::vector<Copy>> groups;    // committed, not yet complete (deferred mode)
};

struct Block {
  std::vector<Fiber> fibers;
  uint64_t block_gen = 0;
  int block_arrived = 0;
  std::vector<uint64_t> warp_gen;
  std::vector<int> warp_arrived;
  std::vector<WarpScratch> scratch;
  unsigned char* smem = nullptr;
  size_t smem_bytes = 0;
  CopyMode copies = CopyMode::deferred;
  const std::function<void()>* body = nullptr;
  std::string error;
};

Block* g_block = nullptr;
Fiber* g_fiber = nullptr;
ucontext_t g_scheduler;
std::vector<std::pair<const unsigned char*, size_t>> g_globals;

Fiber& self() {
  if (g_fiber == nullptr) throw std::runtime_error("simt: device function called outside simt::launch");
  return *g_fiber;
}
int warp_of(const Fiber& f) { return int(f.idx.thread_idx.x / 32); }

void yield() { swapcontext(&g_fiber->ctx, &g_scheduler); }

void fiber_entry() {
  try {
    (*g_block->body)();
    bool pending = !g_fiber->open.empty();
    for (const std::vector<Copy>& g : g_fiber->groups) pending |= !g.empty();
    if (pending) throw std::runtime_error("cp.async copies still pending when the thread exited");
  } catch (const std::exception& e) {
    if (g_block->error.empty())
      g_block->error = "thread " + std::to_string(g_fiber->idx.thread_idx.x) + " of block " +
                       std::to_string(g_fiber->idx.block_idx.x) + ": " + e.what();
  }
  g_fiber->state = State::done;  // uc_link returns to the scheduler
}

bool ready(const Block& b, const Fiber& f) {
  switch (f.state) {
    case State::runnable: return true;
    case State::block_wait: return b.block_gen > f.wait_gen;
    case State::warp_wait: return b.warp_gen[size_t(warp_of(f))] > f.wait_gen;
    default: return false;
  }
}

void run_block(Block& b, unsigned block, std::mt19937_64& rng) {
  const unsigned threads = unsigned(b.fibers.size());
  for (unsigned t = 0; t < threads; ++t) {
    Fiber& f = b.fibers[t];
    f.idx.thread_idx = {t, 0, 0};
    f.idx.block_idx = {block, 0, 0};
    f.idx.block_dim = {threads, 1, 1};
    f.state = State::runnable;
    f.wait_gen = 0;
    f.open.clear();
    f.groups.clear();
    if (!f.stack) f.stack = std::make_unique<char[]>(kStackBytes);
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack.get();
    f.ctx.uc_stack.ss_size = kStackBytes;
    f.ctx.uc_link = &g_scheduler;
    makecontext(&f.ctx, fiber_entry, 0);
  }
  b.block_gen = 0;
  b.block_arrived = 0;
  std::fill(b.warp_gen.begin(), b.warp_gen.end(), 0);
  std::fill(b.warp_arrived.begin(), b.warp_arrived.end(), 0);
  std::memset(b.smem, 0xff, b.smem_bytes);  // NaN in every float type: unwritten reads show
  std::vector<unsigned> candidates;
  for (;;) {
    candidates.clear();
    bool all_done = true;
    for (unsigned t = 0; t < threads; ++t) {
      all_done &= b.fibers[t].state == State::done;
      if (ready(b, b.fibers[t])) candidates.push_back(t);
    }
    if (all_done) break;
    if (candidates.empty()) throw std::runtime_error("simt: deadlock in block " + std::to_string(block) +
                                                     ": a barrier that not every thread of the block (or warp) reaches");
    Fiber& f = b.fibers[candidates[size_t(rng() % candidates.size())]];
    f.state = State::runnable;
    g_fiber = &f;
    swapcontext(&g_scheduler, &f.ctx);
    g_fiber = nullptr;
    if (!b.error.empty()) throw std::runtime_error("simt: " + b.error);
  }
}

}  // namespace

const ThreadIndices& current() { return self().idx; }
int lane_id() { return int(self().idx.thread_idx.x % 32); }

void block_barrier() {
  Fiber& f = self();
  Block& b = *g_block;
  if (++b.block_arrived == int(b.fibers.size())) {
    b.block_arrived = 0;
    ++b.block_gen;
    yield();  // still a switch point, so the schedule varies
    return;
  }
  f.state = State::block_wait;
  f.wait_gen = b.block_gen;
  yield();
}

void warp_barrier() {
  Fiber& f = self();
  Block& b = *g_block;
  const size_t w = size_t(warp_of(f));
  const int lanes = int(std::min<size_t>(32, b.fibers.size() - w * 32));
  if (++b.warp_arrived[w] == lanes) {
    b.warp_arrived[w] = 0;
    ++b.warp_gen[w];
    yield();
    return;
  }
  f.state = State::warp_wait;
  f.wait_gen = b.warp_gen[w];
  yield();
}

WarpScratch& warp_scratch() { return g_block->scratch[size_t(warp_of(self()))]; }

void launch(const Launch& config, unsigned char* smem, size_t smem_capacity, const std::function<void()>& body) {
  if (config.smem_bytes > smem_capacity)
    throw std::runtime_error("simt: the launch asks for more shared memory than the buffer");
  if (config.threads == 0 || config.threads > 1024) throw std::runtime_error("simt: bad block size");
  Block b;
  b.fibers.resize(config.threads);
  const size_t warps = (config.threads + 31) / 32;
  b.warp_gen.assign(warps, 0);
  b.warp_arrived.assign(warps, 0);
  b.scratch.resize(warps);
  b.smem = smem;
  b.smem_bytes = config.smem_bytes;
  b.copies = config.copies;
  b.body = &body;
  std::mt19937_64 rng(config.seed);
  g_block = &b;
  try {
    for (unsigned block = 0; block < config.blocks; ++block) run_block(b, block, rng);
  } catch (...) {
    g_block = nullptr;
    throw;
  }
  g_block = nullptr;
}

void register_global(const void* p, size_t bytes) { g_globals.emplace_back(static_cast<const unsigned char*>(p), bytes); }
void clear_globals() { g_globals.clear(); }

void check_smem(const void* p, size_t bytes, const char* what) {
  const auto* c = static_cast<const unsigned char*>(p);
  const Block& b = *g_block;
  if (c < b.smem || c + bytes > b.smem + b.smem_bytes)
    throw std::runtime_error(std::string(what) + ": address outside the block's " + std::to_string(b.smem_bytes) +
                             " bytes of shared memory (offset " + std::to_string(c - b.smem) + ")");
  if ((c - b.smem) % 16 != 0) throw std::runtime_error(std::string(what) + ": not 16-byte aligned");
}

void cp_async(void* dst, const void* src, bool valid) {
  Fiber& f = self();
  check_smem(dst, 16, "cp.async destination");
  if (valid) {
    const auto* s = static_cast<const unsigned char*>(src);
    bool inside = false;
    for (const auto& [base, bytes] : g_globals) inside |= s >= base && s + 16 <= base + bytes;
    if (!inside) throw std::runtime_error("cp.async source outside every registered global buffer");
    if (reinterpret_cast<uintptr_t>(src) % 16 != 0) throw std::runtime_error("cp.async source not 16-byte aligned");
  }
  if (g_block->copies == CopyMode::immediate) {
    perform({dst, src, valid});
  } else {
    f.open.push_back({dst, src, valid});
  }
}

void cp_async_commit() {
  Fiber& f = self();
  f.groups.push_back(std::move(f.open));
  f.open.clear();
}

void cp_async_wait(int pending) {
  Fiber& f = self();
  while (int(f.groups.size()) > pending) {
    for (const Copy& c : f.groups.front()) perform(c);
    f.groups.pop_front();
  }
}

}  // namespace minivl::simt

// The caching allocator: 64-byte aligned buffers kept in size classes and reused, so a steady
// training loop stops asking the system for memory after its first step. A request takes the
// smallest cached block of at least its class and at most twice it: decoding asks for sizes
// that change every step (hypotheses finish, caches grow), and exact classes alone would keep
// allocating fresh (page-faulting) memory and never reuse it.
#include <sys/mman.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#include "core/tensor_impl.h"

namespace attend {
namespace {

constexpr size_t kAlignment = 64;
constexpr size_t kHugePage = size_t{2} << 20;

// Size classes: multiples of 64 bytes below 4 KiB, then four classes per power of two, so a
// reused block wastes at most a quarter of itself.
size_t RoundToClass(size_t bytes) {
  if (bytes == 0) bytes = 1;
  if (bytes <= 4096) return (bytes + kAlignment - 1) / kAlignment * kAlignment;
  size_t pow2 = 4096;
  while (pow2 * 2 < bytes) pow2 *= 2;
  size_t step = pow2 / 4;
  return (bytes + step - 1) / step * step;
}

struct Cache {
  std::mutex mu;
  std::map<size_t, std::vector<void*>> free_blocks;  // no empty lists
  AllocatorStats stats;
};

thread_local AllocationLimitGuard* current_limit = nullptr;

Cache& GetCache() {
  static Cache* cache = new Cache();  // never destroyed: storages may outlive static teardown
  return *cache;
}

// A block of at least *capacity bytes; *capacity becomes the block's own size.
void* Acquire(size_t* capacity_io) {
  Cache& c = GetCache();
  size_t capacity = *capacity_io;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_blocks.lower_bound(capacity);
    if (it != c.free_blocks.end() && it->first <= 2 * capacity) {
      void* p = it->second.back();
      it->second.pop_back();
      capacity = *capacity_io = it->first;
      if (it->second.empty()) c.free_blocks.erase(it);
      c.stats.cache_hits++;
      c.stats.bytes_cached -= capacity;
      c.stats.bytes_in_use += capacity;
      if (c.stats.bytes_in_use > c.stats.peak_bytes_in_use)
        c.stats.peak_bytes_in_use = c.stats.bytes_in_use;
      return p;
    }
  }
  // Large buffers are aligned to 2 MiB and offered transparent huge pages: streaming through
  // tens of MiB with 4 KiB pages spends a measurable share of the time in TLB misses. They are
  // whole huge pages: aligned_alloc needs a size that is a multiple of the alignment (C11), and
  // the block, counted and cached under its real size, is then all huge-page backed.
  const bool huge = capacity >= kHugePage;
  if (huge) capacity = *capacity_io = (capacity + kHugePage - 1) / kHugePage * kHugePage;
  void* p = std::aligned_alloc(huge ? kHugePage : kAlignment, capacity);
  ATTEND_CHECK(p != nullptr, "allocator: out of memory allocating ", capacity, " bytes");
  if (huge) madvise(p, capacity, MADV_HUGEPAGE);
  std::lock_guard<std::mutex> lock(c.mu);
  c.stats.system_allocs++;
  c.stats.bytes_in_use += capacity;
  if (c.stats.bytes_in_use > c.stats.peak_bytes_in_use)
    c.stats.peak_bytes_in_use = c.stats.bytes_in_use;
  return p;
}

void Release(void* p, size_t capacity) {
  Cache& c = GetCache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.free_blocks[capacity].push_back(p);
  c.stats.bytes_cached += capacity;
  c.stats.bytes_in_use -= capacity;
}

}  // namespace

Storage::~Storage() {
  if (data) Release(data, capacity);
}

AllocationLimitGuard::AllocationLimitGuard(uint64_t max_bytes, std::string what)
    : max_bytes_(max_bytes), what_(std::move(what)), outer_(current_limit) {
  current_limit = this;
}

AllocationLimitGuard::~AllocationLimitGuard() { current_limit = outer_; }

void AllocationLimitGuard::Request(uint64_t bytes) {
  ATTEND_CHECK(bytes <= max_bytes_ - requested_, what_, ": a request for ", bytes,
               " bytes of tensors would pass the limit of ", max_bytes_, " (", requested_,
               " requested so far)");
  requested_ += bytes;
}

std::shared_ptr<Storage> AllocateStorage(size_t bytes) {
  if (current_limit != nullptr) current_limit->Request(bytes);
  auto s = std::make_shared<Storage>();
  s->capacity = RoundToClass(bytes);
  s->bytes = bytes;
  s->data = Acquire(&s->capacity);
  return s;
}

AllocatorStats GetAllocatorStats() {
  Cache& c = GetCache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.stats;
}

void ResetPeakBytes() {
  Cache& c = GetCache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.stats.peak_bytes_in_use = c.stats.bytes_in_use;
}

void EmptyCache() {
  Cache& c = GetCache();
  std::lock_guard<std::mutex> lock(c.mu);
  for (auto& [cap, blocks] : c.free_blocks) {
    for (void* p : blocks) std::free(p);
    c.stats.bytes_cached -= cap * blocks.size();
  }
  c.free_blocks.clear();
}

}  // namespace attend

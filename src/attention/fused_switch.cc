// The process-wide switch between the fused attention kernels and their compositions.
#include <atomic>

#include "attend/attention.h"

namespace attend::attention {
namespace {
std::atomic<bool> fused_enabled{true};
}  // namespace

void SetFusedKernels(bool enabled) { fused_enabled.store(enabled, std::memory_order_relaxed); }
bool FusedKernels() { return fused_enabled.load(std::memory_order_relaxed); }

}  // namespace attend::attention

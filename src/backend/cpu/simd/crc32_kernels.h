// CRC-32 by carry-less multiplication (Highway, dispatched once per call): the contract of the
// scalar twin ref::Crc32 in backend/cpu/reference/crc32.h, bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>

namespace attend::cpu::simd {

// CRC-32 of `size` bytes continuing from the CRC-32 `crc` of what came before (0 to start).
uint32_t Crc32(const void* data, size_t size, uint32_t crc = 0);

}  // namespace attend::cpu::simd

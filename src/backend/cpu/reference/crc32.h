// Scalar reference for CRC-32 (the zlib / PNG / safetensors-metadata checksum: polynomial
// 0x04C11DB7, bits reflected, register and result inverted): the readable definition, slicing
// by 8 bytes, and the oracle of the carry-less folding twin (backend/cpu/simd/crc32_kernels.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace attend::cpu::ref {

struct Crc32Tables {
  uint32_t t[8][256];
  Crc32Tables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (int k = 1; k < 8; ++k)
      for (int i = 0; i < 256; ++i) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
  }
};

inline const Crc32Tables& Crc32TablesOnce() {
  static const Crc32Tables tables;
  return tables;
}

// The register after `size` more bytes, without the inversions: Crc32 (below) is
// ~Crc32Update(~crc, ...).
inline uint32_t Crc32Update(uint32_t reg, const uint8_t* p, size_t size) {
  const auto& t = Crc32TablesOnce().t;
  while (size >= 8) {
    uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
    lo ^= reg;
    reg = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
          t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
    p += 8;
    size -= 8;
  }
  while (size-- > 0) reg = t[0][(reg ^ *p++) & 0xff] ^ (reg >> 8);
  return reg;
}

// CRC-32 of `size` bytes continuing from the CRC-32 `crc` of what came before (0 to start).
inline uint32_t Crc32(const void* data, size_t size, uint32_t crc = 0) {
  return ~Crc32Update(~crc, static_cast<const uint8_t*>(data), size);
}

}  // namespace attend::cpu::ref

/* CRC-32C (Castagnoli), masked as TFRecord files mask it: the checksum of every event-file record.
 * TensorBoard's writer computes it in a Python loop over bytes (~0.15 us a byte, a few hundred
 * microseconds for one step's NAS record); this is the same function in C, table-driven, a byte at a
 * time (a few microseconds). */
#include <stddef.h>
#include <stdint.h>

static uint32_t table[256];

/* filled when the library is loaded, before any thread can call in */
__attribute__((constructor)) static void fill_table(void) {
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1; /* reflected Castagnoli polynomial */
    table[i] = c;
  }
}

uint32_t nas_masked_crc32c(const uint8_t *data, size_t n) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
  crc ^= 0xFFFFFFFFu;
  return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
}

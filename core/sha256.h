/* daecl — SHA-256 (FIPS 180-4): a plugin file's fingerprint in a run's
 * provenance, and the opencl backend's program-cache keys (it compiles this
 * file in, since plugins never link libdaecl). */
#ifndef DAECL_CORE_SHA256_H
#define DAECL_CORE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define DAECL_SHA256_BYTES 32

typedef struct daecl_sha256 {
    uint32_t h[8];
    uint64_t n_bytes;
    unsigned char block[64];
    size_t used;
} daecl_sha256;

void daecl_sha256_init(daecl_sha256 *s);
void daecl_sha256_update(daecl_sha256 *s, const void *data, size_t n);
void daecl_sha256_final(daecl_sha256 *s, unsigned char out[DAECL_SHA256_BYTES]);

/* The digest as 64 lowercase hex digits and a NUL. */
void daecl_sha256_hex(const unsigned char d[DAECL_SHA256_BYTES], char hex[2 * DAECL_SHA256_BYTES + 1]);

#endif

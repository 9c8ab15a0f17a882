/* Helpers for the pipeline tests: reference records, canaried buffers, counters. */
#ifndef KCAPI_AIO_PIPEUTIL_H
#define KCAPI_AIO_PIPEUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "testutil.h"

#define PU_MAX 32
#define PU_CANARY 16

/* Cipher i of tu_ciphers: 0..2 CBC, 3..5 CTR, 6..8 GCM. */
int pu_is_cbc(int ci);
int pu_is_gcm(int ci);
size_t pu_keylen(int ci);

/*
 * One record alone through the default provider's ordinary EVP calls.
 * GCM: ivlen is set first; encrypting writes tag (taglen bytes), decrypting
 * checks it. Returns 1 when every call succeeded.
 */
int pu_ref(int ci, int enc, int pad, const unsigned char *key, const unsigned char *iv, size_t ivlen,
           const unsigned char *aad, size_t aadlen, const unsigned char *in, size_t inl,
           unsigned char *out, size_t *outl, unsigned char *tag, size_t taglen);

/* A buffer with PU_CANARY guard bytes on both sides; pu_free checks them. */
unsigned char *pu_alloc(size_t len);
void pu_free(unsigned char *p, size_t len);
int pu_canaries_ok(const unsigned char *p, size_t len);

/* One counter of kcapi-aio ("batches_software", ...), read through the provider params. */
struct pu_counters { uint64_t batches, ops, batches_aio, batches_sync, batches_sw, ops_sw, io_submit, kernel_ops, max_inflight; };
void pu_counters(struct pu_counters *c);
/* The error queue as one line, with each error's detail text (and cleared). */
const char *pu_errors(void);

#endif

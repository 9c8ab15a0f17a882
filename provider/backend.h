/*
 * Backend choice: a key runs in the kernel (AIO or sync) when the probe and
 * the configuration allow, in software otherwise; single ops the kernel
 * can't take fall back to software one by one. Every fallback is counted
 * with its reason. Mode code sees only ka_run().
 */
#ifndef KCAPI_AIO_BACKEND_H
#define KCAPI_AIO_BACKEND_H

#include "prov.h"

typedef struct ka_key KA_KEY;

KA_KEY *ka_key_new(KA_PROV *p, enum kaio_mode mode, const unsigned char *key, size_t keylen);
KA_KEY *ka_key_dup(const KA_KEY *k);
void ka_key_free(KA_KEY *k);

/*
 * Runs n independent ops (n <= KAIO_MAX_BATCH). Every op ends with status 0
 * or KAIO_EBADMSG (GCM tag mismatch). Returns 0 (error raised) only when
 * neither the kernel nor software could run an op.
 */
int ka_run(KA_KEY *k, struct kaio_op *ops, size_t n);

/* Whether this key's work goes to the kernel (else: why not). */
int ka_key_in_kernel(KA_KEY *k, enum kaio_reason *why);

/* A software GCM stream under this key (for patterns one op can't express). */
struct sw_gcm;
struct sw_gcm *ka_key_gcm_stream(KA_KEY *k, int enc, const unsigned char *iv, size_t ivlen);

/* Which backend a new key of this mode would use, and why (for the report). */
enum kaio_path ka_backend_choice(const KA_PROV *p, enum kaio_mode mode, enum kaio_reason *why);

/* ---- the software backend (backend_sw.c): libcrypto's default provider ---- */

typedef struct sw_key SW_KEY;
SW_KEY *sw_key_new(KA_PROV *p, enum kaio_mode mode, const unsigned char *key, size_t keylen);
void sw_key_free(SW_KEY *s);
/* Runs ops in software; 0 (error raised) on a libcrypto failure. */
int sw_run(SW_KEY *s, struct kaio_op *ops, size_t n);

/*
 * A streaming GCM operation in software, for the patterns one kernel
 * operation can't express (data over several updates, tag set late, ...).
 */
typedef struct sw_gcm SW_GCM;
SW_GCM *sw_gcm_new(KA_PROV *p, const unsigned char *key, size_t keylen, int enc,
                   const unsigned char *iv, size_t ivlen);
SW_GCM *sw_gcm_dup(const SW_GCM *g);
void sw_gcm_free(SW_GCM *g);
int sw_gcm_aad(SW_GCM *g, const unsigned char *aad, size_t len);
int sw_gcm_update(SW_GCM *g, const unsigned char *in, unsigned char *out, size_t len);
/* enc: writes the 16-byte tag; dec: checks taglen bytes of tag. 1 ok, 0 mismatch. */
int sw_gcm_final(SW_GCM *g, unsigned char *tag, size_t taglen);

#endif

/*
 * AES-GCM with OpenSSL's rules (IV states, tag handling, TLS 1.2 nonces).
 *
 * A message whose AAD all comes before one data update (TLS 1.2 and 1.3,
 * EVP_Cipher, pipelines) is one backend op: the kernel's gcm(aes) where the
 * key runs in the kernel. Any other pattern is answered exactly by a
 * software stream; a message that turns out to continue after a one-op
 * update is replayed into the stream from the saved input, so no pattern
 * ever changes the bytes. Output is never deferred to final.
 */
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cipher.h"
#include "pipeline.h"

#define GCM_IV_MAX 128            /* OpenSSL's limit on GCM IV length */
#define GCM_TAG 16
#define GCM_TLS_AAD 13
#define GCM_TLS_FIXED 4
#define GCM_TLS_EXPLICIT 8
#define GCM_AAD_BUFFER_MAX 65536  /* beyond this, stream the AAD instead of buffering it */
#define UNSET ((size_t)-1)
/* OpenSSL 3.2+'s OSSL_CIPHER_PARAM_AEAD_IV_GENERATED, spelled out for 3.0 headers. */
#define GCM_PARAM_IV_GENERATED "iv-generated"

enum iv_state { IV_UNINIT, IV_BUFFERED, IV_COPIED, IV_FINISHED };

typedef struct {
    KA_CTX base;
    size_t ivlen;
    unsigned char iv[GCM_IV_MAX];
    enum iv_state iv_state;
    int iv_gen;                    /* TLS: fixed part set, invocation part generated */
    int iv_gen_rand;               /* the IV (or its invocation part) came from our DRBG */
    size_t taglen;                 /* UNSET until a tag is set (dec) or made (enc) */
    unsigned char tag[GCM_TAG];
    unsigned char tls_aad[GCM_TLS_AAD];
    size_t tls_aad_len;            /* UNSET unless the next update is a TLS record */
    size_t tls_aad_pad;
    uint64_t tls_enc_records;

    /* The message under way (between the IV taking effect and final). */
    unsigned char msg_iv[GCM_IV_MAX];
    unsigned char *aad;            /* buffered AAD, for a one-op message */
    size_t aadlen, aadcap;
    int data_seen;                 /* some data was processed */
    int one_op;                    /* the data so far went through one backend op */
    int tag_counted;               /* that op's tag failure is already counted */
    unsigned char *saved;          /* that op's input, in case the message continues */
    size_t savedlen, savedcap;
    SW_GCM *stream;                /* software stream, once the pattern needs one */
} GCM_CTX;

static int grow(unsigned char **buf, size_t *cap, size_t need)
{
    unsigned char *n;
    size_t c = *cap ? *cap : 256;

    if (need <= *cap)
        return 1;
    while (c < need)
        c *= 2;
    if ((n = OPENSSL_clear_realloc(*buf, *cap, c)) == NULL)
        return 0;
    *buf = n;
    *cap = c;
    return 1;
}

/* The IV takes effect: a new message starts (OpenSSL's "setiv"). */
static void msg_start(GCM_CTX *c)
{
    memcpy(c->msg_iv, c->iv, c->ivlen);
    c->aadlen = 0;
    c->data_seen = 0;
    c->one_op = 0;
    c->tag_counted = 0;
    c->savedlen = 0;
    sw_gcm_free(c->stream);
    c->stream = NULL;
}

/*
 * A software stream for a message, counted as a fallback, fed its AAD and
 * replaying the input one op already did (saved, NULL if none). NULL on failure.
 */
static SW_GCM *gcm_stream_open(KA_KEY *key, int enc, const unsigned char *iv, size_t ivlen,
                               const unsigned char *aad, size_t aadlen,
                               const unsigned char *saved, size_t savedlen,
                               enum kaio_reason in_kernel_why)
{
    unsigned char *scratch = NULL;
    enum kaio_reason why;
    SW_GCM *s;
    int ok;

    kaio_count_fallback(ka_key_in_kernel(key, &why) ? in_kernel_why : why, 1);
    if ((s = ka_key_gcm_stream(key, enc, iv, ivlen)) == NULL)
        return NULL;
    ok = sw_gcm_aad(s, aad, aadlen);
    if (ok && saved != NULL && savedlen > 0) {
        /* Same input again: the stream's state now matches what was output. */
        ok = (scratch = OPENSSL_malloc(savedlen)) != NULL
            && sw_gcm_update(s, saved, scratch, savedlen);
        OPENSSL_clear_free(scratch, savedlen);
    }
    if (!ok) {
        sw_gcm_free(s);
        return NULL;
    }
    return s;
}

/* Moves the message to a software stream, replaying what one op already did. */
static int msg_stream(GCM_CTX *c, enum kaio_reason in_kernel_why)
{
    if (c->stream != NULL)
        return 1;
    c->stream = gcm_stream_open(c->base.key, c->base.enc, c->msg_iv, c->ivlen, c->aad, c->aadlen,
                                c->one_op ? c->saved : NULL, c->savedlen, in_kernel_why);
    c->one_op = 0;
    return c->stream != NULL;
}

static int msg_aad(GCM_CTX *c, const unsigned char *in, size_t len)
{
    if (c->stream == NULL) {
        if (c->data_seen)
            goto after_data;
        if ((c->aadlen + len > GCM_AAD_BUFFER_MAX || !ka_key_in_kernel(c->base.key, NULL))
            && !msg_stream(c, KAIO_R_PATTERN))
            return 0;
    }
    if (c->stream != NULL) {
        if (!sw_gcm_aad(c->stream, in, len))
            goto after_data;
        return 1;
    }
    if (len > 0) {
        if (!grow(&c->aad, &c->aadcap, c->aadlen + len)) {
            ka_raise(c->base.prov, KA_R_MALLOC, NULL);
            return 0;
        }
        memcpy(c->aad + c->aadlen, in, len);
        c->aadlen += len;
    }
    return 1;
after_data:
    ka_raise(c->base.prov, KA_R_AAD_AFTER_DATA, "GCM AAD must come before the data");
    return 0;
}

/* One whole message as one op. */
static void gcm_fill_op(struct kaio_op *op, int enc, const unsigned char *iv, size_t ivlen,
                        const unsigned char *aad, size_t aadlen, const unsigned char *in,
                        unsigned char *out, size_t len, unsigned char *tag, size_t taglen)
{
    memset(op, 0, sizeof(*op));
    op->encrypt = enc;
    op->iv = iv;
    op->ivlen = ivlen;
    op->aad = aad;
    op->aadlen = aadlen;
    op->in = in;
    op->out = out;
    op->len = len;
    op->tag = tag;
    op->taglen = taglen;
}

/* One backend op for the whole message so far: AAD buffered, this data, the tag. */
static int msg_one_op(GCM_CTX *c, const unsigned char *in, unsigned char *out, size_t len,
                      int *status)
{
    struct kaio_op op;

    gcm_fill_op(&op, c->base.enc, c->msg_iv, c->ivlen, c->aad, c->aadlen, in, out, len, c->tag,
                c->base.enc ? GCM_TAG : c->taglen);
    if (!ka_run(c->base.key, &op, 1))
        return 0;
    *status = op.status;
    return 1;
}

static int msg_data(GCM_CTX *c, const unsigned char *in, unsigned char *out, size_t len)
{
    int status;

    if (len == 0)
        return 1;
    if (c->stream == NULL && !c->data_seen && ka_key_in_kernel(c->base.key, NULL)
        && (c->base.enc || c->taglen != UNSET)) {
        /* Keep the input: if more data follows, the stream replays it. */
        if (!grow(&c->saved, &c->savedcap, len)) {
            ka_raise(c->base.prov, KA_R_MALLOC, NULL);
            return 0;
        }
        memcpy(c->saved, in, len);
        c->savedlen = len;
        if (!msg_one_op(c, in, out, len, &status))
            return 0;
        c->data_seen = 1;
        if (status == 0) {
            c->one_op = 1;
            return 1;
        }
        /*
         * The tag covers more than this update, or is wrong: decrypt in the
         * stream, which releases the plaintext as OpenSSL does and fails at final.
         */
        c->one_op = 0;
        c->savedlen = 0;
        c->tag_counted = 1;
        if (!msg_stream(c, KAIO_R_TAG_REPLAY))
            return 0;
        return sw_gcm_update(c->stream, c->saved, out, len);
    }
    if (c->stream == NULL && !msg_stream(c, KAIO_R_PATTERN))
        return 0;
    c->data_seen = 1;
    if (!sw_gcm_update(c->stream, in, out, len)) {
        ka_raise(c->base.prov, KA_R_DATA_TOO_LONG, "GCM message too long");
        return 0;
    }
    return 1;
}

static int msg_final(GCM_CTX *c)
{
    int status = 0;

    if (!c->base.enc && c->taglen == UNSET) {
        ka_raise(c->base.prov, KA_R_INVALID_TAG, "set the tag before finishing a GCM decryption");
        return 0;
    }
    if (c->stream != NULL) {
        if (!sw_gcm_final(c->stream, c->tag, c->base.enc ? GCM_TAG : c->taglen))
            status = KAIO_EBADMSG;
    } else if (!c->one_op) {
        /* AAD only: one op with no data. */
        if (!msg_one_op(c, NULL, NULL, 0, &status))
            return 0;
    }
    if (status != 0) {
        if (c->stream != NULL && !c->tag_counted)
            kaio_count(KAIO_C_TAG_FAILURES, 1);
        ka_raise(c->base.prov, KA_R_TAG_MISMATCH, "GCM tag verification failed");
        return 0;
    }
    if (c->base.enc)
        c->taglen = GCM_TAG;
    return 1;
}

static void ctr64_inc(unsigned char *ctr)
{
    int i;

    for (i = 7; i >= 0; i--)
        if (++ctr[i] != 0)
            break;
}

/* TLS 1.2: next explicit nonce from the invocation counter. */
static int tls_iv_gen(GCM_CTX *c, unsigned char *out, size_t olen)
{
    if (!c->iv_gen || !c->base.key_set)
        return 0;
    msg_start(c);
    if (olen == 0 || olen > c->ivlen)
        olen = c->ivlen;
    memcpy(out, c->iv + c->ivlen - olen, olen);
    ctr64_inc(c->iv + c->ivlen - 8);
    c->iv_state = IV_COPIED;
    return 1;
}

/* TLS 1.2: the peer's explicit nonce. */
static int tls_iv_inv(GCM_CTX *c, const unsigned char *in, size_t inl)
{
    if (!c->iv_gen || !c->base.key_set || c->base.enc || inl > c->ivlen)
        return 0;
    memcpy(c->iv + c->ivlen - inl, in, inl);
    msg_start(c);
    c->iv_state = IV_COPIED;
    return 1;
}

int ka_gcm_tls_fixed_ok(size_t len, size_t ivlen)
{
    /* Written without len + GCM_TLS_EXPLICIT, which a huge len wraps. */
    return len >= GCM_TLS_FIXED && len <= ivlen && ivlen - len >= GCM_TLS_EXPLICIT;
}

static int tls_iv_fixed(GCM_CTX *c, const unsigned char *iv, size_t len)
{
    if (len == (size_t)-1) {
        memcpy(c->iv, iv, c->ivlen);
    } else {
        if (!ka_gcm_tls_fixed_ok(len, c->ivlen))
            return 0;
        memcpy(c->iv, iv, len);
        if (c->base.enc) {
            if (!ka_rand(c->base.prov, c->iv + len, c->ivlen - len))
                return 0;
            c->iv_gen_rand = 1;
        }
    }
    c->iv_gen = 1;
    c->iv_state = IV_BUFFERED;
    return 1;
}

static size_t tls_aad_set(GCM_CTX *c, const unsigned char *aad, size_t len)
{
    size_t reclen;

    if (len != GCM_TLS_AAD)
        return 0;
    memcpy(c->tls_aad, aad, len);
    c->tls_aad_len = len;
    reclen = (size_t)c->tls_aad[len - 2] << 8 | c->tls_aad[len - 1];
    /* The record length in the AAD excludes the explicit nonce, and the tag on open. */
    if (reclen < GCM_TLS_EXPLICIT)
        return 0;
    reclen -= GCM_TLS_EXPLICIT;
    if (!c->base.enc) {
        if (reclen < GCM_TAG)
            return 0;
        reclen -= GCM_TAG;
    }
    c->tls_aad[len - 2] = (unsigned char)(reclen >> 8);
    c->tls_aad[len - 1] = (unsigned char)reclen;
    return GCM_TAG;
}

/* A whole TLS 1.2 record, in place: explicit nonce || payload || tag. */
static int tls_record(GCM_CTX *c, unsigned char *out, size_t *outl, const unsigned char *in, size_t len)
{
    struct kaio_op op = { 0 };
    int ok = 0;

    *outl = 0;
    if (!c->base.key_set) {
        ka_raise_no_key(&c->base);
        goto done;
    }
    if (in == NULL || out != in || len < GCM_TLS_EXPLICIT + GCM_TAG) {
        ka_raise(c->base.prov, KA_R_TLS_RECORD, "TLS records are processed in place and carry a nonce and a tag");
        goto done;
    }
    if (c->base.enc && ++c->tls_enc_records == 0) {
        ka_raise(c->base.prov, KA_R_TOO_MANY_RECORDS, NULL);
        goto done;
    }
    if (c->base.enc ? !tls_iv_gen(c, out, GCM_TLS_EXPLICIT) : !tls_iv_inv(c, out, GCM_TLS_EXPLICIT)) {
        ka_raise(c->base.prov, KA_R_TLS_RECORD, "TLS nonce not set up");
        goto done;
    }
    len -= GCM_TLS_EXPLICIT + GCM_TAG;
    op.encrypt = c->base.enc;
    op.iv = c->msg_iv;
    op.ivlen = c->ivlen;
    op.aad = c->tls_aad;
    op.aadlen = c->tls_aad_len;
    op.in = in + GCM_TLS_EXPLICIT;
    op.out = out + GCM_TLS_EXPLICIT;
    op.len = len;
    op.tag = (unsigned char *)in + GCM_TLS_EXPLICIT + len;
    op.taglen = GCM_TAG;
    if (!ka_run(c->base.key, &op, 1))
        goto done;
    if (op.status != 0) {
        OPENSSL_cleanse(out + GCM_TLS_EXPLICIT, len);
        ka_raise(c->base.prov, KA_R_TAG_MISMATCH, "TLS record failed authentication");
        goto done;
    }
    *outl = c->base.enc ? len + GCM_TLS_EXPLICIT + GCM_TAG : len;
    ok = 1;
done:
    c->iv_state = IV_FINISHED;
    c->tls_aad_len = UNSET;
    return ok;
}

/* OpenSSL's gcm_cipher_internal: AAD (out == NULL), data, or final (in == NULL). */
static int gcm_process(GCM_CTX *c, unsigned char *out, size_t *outl, const unsigned char *in, size_t len)
{
    if (c->tls_aad_len != UNSET)
        return tls_record(c, out, outl, in, len);
    *outl = 0;
    if (!c->base.key_set) {
        ka_raise_no_key(&c->base);
        return 0;
    }
    if (c->iv_state == IV_FINISHED) {
        ka_raise(c->base.prov, KA_R_FINISHED, "set a new IV before the next GCM message");
        return 0;
    }
    if (c->iv_state == IV_UNINIT) {
        /* Encrypting without an IV: OpenSSL makes a random one (12 bytes or more). */
        if (!c->base.enc || c->ivlen < 12 || !ka_rand(c->base.prov, c->iv, c->ivlen)) {
            ka_raise(c->base.prov, KA_R_NO_IV_SET, NULL);
            return 0;
        }
        c->iv_gen_rand = 1;
        c->iv_state = IV_BUFFERED;
    }
    if (c->iv_state == IV_BUFFERED) {
        msg_start(c);
        c->iv_state = IV_COPIED;
    }
    if (in == NULL) {
        if (!msg_final(c))
            return 0;
        c->iv_state = IV_FINISHED;
        return 1;
    }
    if (out == NULL ? !msg_aad(c, in, len) : !msg_data(c, in, out, len))
        return 0;
    /* OpenSSL reports AAD as processed bytes too. */
    *outl = len;
    return 1;
}

/* out == NULL means AAD and in == NULL means final (OpenSSL's convention), so only
 * overlap and impossible lengths are refused here. */
static int gcm_check_bufs(GCM_CTX *c, const unsigned char *out, const unsigned char *in, size_t inl)
{
    if (inl > KA_MAX_LEN) {
        ka_raise(c->base.prov, KA_R_DATA_TOO_LONG, "%zu bytes (a negative length?)", inl);
        return 0;
    }
    if (out != NULL && in != NULL && in != out && (uintptr_t)out < (uintptr_t)in + inl
        && (uintptr_t)in < (uintptr_t)out + inl) {
        ka_raise(c->base.prov, KA_R_OVERLAP, "input and output overlap without being the same buffer");
        return 0;
    }
    return 1;
}

static int gcm_update(void *vctx, unsigned char *out, size_t *outl, size_t outsize,
                      const unsigned char *in, size_t inl)
{
    GCM_CTX *c = vctx;

    if (inl == 0) {
        *outl = 0;
        return 1;
    }
    if (outsize < inl) {
        ka_raise(c->base.prov, KA_R_OUTPUT_BUFFER_TOO_SMALL, NULL);
        return 0;
    }
    return gcm_check_bufs(c, out, in, inl) && gcm_process(c, out, outl, in, inl);
}

static int gcm_final(void *vctx, unsigned char *out, size_t *outl, size_t outsize)
{
    GCM_CTX *c = vctx;

    (void)out;
    (void)outsize;
    if (!gcm_process(c, NULL, outl, NULL, 0))
        return 0;
    *outl = 0;
    return 1;
}

static int gcm_cipher(void *vctx, unsigned char *out, size_t *outl, size_t outsize,
                      const unsigned char *in, size_t inl)
{
    GCM_CTX *c = vctx;

    if (outsize < inl) {
        ka_raise(c->base.prov, KA_R_OUTPUT_BUFFER_TOO_SMALL, NULL);
        return 0;
    }
    if (!gcm_check_bufs(c, out, in, inl) || !gcm_process(c, out, outl, in, inl))
        return 0;
    *outl = inl;
    return 1;
}

static int gcm_set_ctx_params(void *vctx, const OSSL_PARAM params[]);
static int gcm_pipe_set_tags(GCM_CTX *c, const OSSL_PARAM *param);
static int gcm_pipe_get_tags(GCM_CTX *c, const OSSL_PARAM *param);

static int gcm_init(GCM_CTX *c, const unsigned char *key, size_t keylen, const unsigned char *iv,
                    size_t ivlen, const OSSL_PARAM params[], int enc)
{
    /* A message keeps the direction it started in: one begun as an encryption and
     * finished as a decryption would end without its tag being checked. */
    if ((enc ? 1 : 0) != c->base.enc && c->iv_state == IV_COPIED)
        c->iv_state = IV_FINISHED;
    c->base.enc = enc;
    c->base.pipeline = 0;
    if (iv != NULL) {
        if (ivlen == 0 || ivlen > GCM_IV_MAX) {
            ka_raise(c->base.prov, KA_R_INVALID_IV_LENGTH, "%zu bytes (1 to 128 allowed)", ivlen);
            return 0;
        }
        c->ivlen = ivlen;
        memcpy(c->iv, iv, ivlen);
        c->iv_state = IV_BUFFERED;
    }
    if (key != NULL) {
        if (!ka_ctx_setkey(&c->base, key, keylen))
            return 0;
        c->tls_enc_records = 0;
    }
    return gcm_set_ctx_params(c, params);
}

static int gcm_einit(void *vctx, const unsigned char *key, size_t keylen, const unsigned char *iv,
                     size_t ivlen, const OSSL_PARAM params[])
{
    return gcm_init(vctx, key, keylen, iv, ivlen, params, 1);
}

static int gcm_dinit(void *vctx, const unsigned char *key, size_t keylen, const unsigned char *iv,
                     size_t ivlen, const OSSL_PARAM params[])
{
    return gcm_init(vctx, key, keylen, iv, ivlen, params, 0);
}

static int gcm_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    GCM_CTX *c = vctx;
    OSSL_PARAM *p;
    const char *iv_keys[] = { OSSL_CIPHER_PARAM_IV, OSSL_CIPHER_PARAM_UPDATED_IV };
    size_t i;

    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_PIPELINE_AEAD_TAG)) != NULL
        && !gcm_pipe_get_tags(c, p))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_IVLEN)) != NULL
        && !OSSL_PARAM_set_size_t(p, c->ivlen))
        goto fail;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_KEYLEN)) != NULL
        && !OSSL_PARAM_set_size_t(p, c->base.keylen))
        goto fail;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_AEAD_TAGLEN)) != NULL
        && !OSSL_PARAM_set_size_t(p, c->taglen != UNSET ? c->taglen : GCM_TAG))
        goto fail;
    for (i = 0; i < 2; i++) {
        if ((p = OSSL_PARAM_locate(params, iv_keys[i])) == NULL)
            continue;
        if (c->iv_state == IV_UNINIT) {
            ka_raise(c->base.prov, KA_R_NO_IV_SET, "no GCM IV set or generated yet");
            return 0;
        }
        /* The size the caller gives is checked for an octet pointer too, as the
         * default provider's GCM does: EVP_CIPHER_CTX_iv() says 16 bytes. */
        if (c->ivlen > p->data_size) {
            ka_raise(c->base.prov, KA_R_INVALID_IV_LENGTH, "IV buffer of %zu bytes, %zu needed",
                     p->data_size, c->ivlen);
            return 0;
        }
        if (!ka_param_set_octets(p, c->iv, c->ivlen))
            goto fail;
    }
    if ((p = OSSL_PARAM_locate(params, GCM_PARAM_IV_GENERATED)) != NULL
        && !OSSL_PARAM_set_uint(p, (unsigned int)c->iv_gen_rand))
        goto fail;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_AEAD_TLS1_AAD_PAD)) != NULL
        && !OSSL_PARAM_set_size_t(p, c->tls_aad_pad))
        goto fail;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_AEAD_TAG)) != NULL) {
        if (p->data_size == 0 || p->data_size > GCM_TAG || !c->base.enc || c->taglen == UNSET) {
            ka_raise(c->base.prov, KA_R_INVALID_TAG,
                     "the tag is read after an encryption's final, 1 to 16 bytes");
            return 0;
        }
        if (!OSSL_PARAM_set_octet_string(p, c->tag, p->data_size))
            goto fail;
    }
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_AEAD_TLS1_GET_IV_GEN)) != NULL) {
        if (p->data == NULL || p->data_type != OSSL_PARAM_OCTET_STRING
            || !tls_iv_gen(c, p->data, p->data_size)) {
            ka_raise(c->base.prov, KA_R_FAILED_TO_GET_PARAMETER, "%s", p->key);
            return 0;
        }
    }
    return 1;
fail:
    ka_raise(c->base.prov, KA_R_FAILED_TO_SET_PARAMETER, "%s", p->key);
    return 0;
}

static int gcm_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    GCM_CTX *c = vctx;
    const OSSL_PARAM *p;
    size_t sz;

    if (params == NULL)
        return 1;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_PIPELINE_AEAD_TAG)) != NULL
        && !gcm_pipe_set_tags(c, p))
        return 0;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_AEAD_TAG)) != NULL) {
        unsigned char tag[GCM_TAG];
        void *vp = tag;

        if (!OSSL_PARAM_get_octet_string(p, &vp, GCM_TAG, &sz))
            goto fail;
        if (sz == 0 || c->base.enc) {
            ka_raise(c->base.prov, KA_R_INVALID_TAG, c->base.enc ? "the tag is set only to decrypt"
                                                              : "empty tag");
            return 0;
        }
        memcpy(c->tag, tag, sz);
        c->taglen = sz;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_AEAD_IVLEN)) != NULL) {
        if (!OSSL_PARAM_get_size_t(p, &sz))
            goto fail;
        if (sz == 0 || sz > GCM_IV_MAX) {
            ka_raise(c->base.prov, KA_R_INVALID_IV_LENGTH, "%zu bytes (1 to 128 allowed)", sz);
            return 0;
        }
        if (c->ivlen != sz) {
            /* An IV set or made at the old length is no longer usable. */
            if (c->iv_state != IV_UNINIT)
                c->iv_state = IV_FINISHED;
            c->ivlen = sz;
        }
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_AEAD_TLS1_AAD)) != NULL) {
        if (p->data_type != OSSL_PARAM_OCTET_STRING)
            goto fail;
        if ((sz = tls_aad_set(c, p->data, p->data_size)) == 0) {
            ka_raise(c->base.prov, KA_R_INVALID_AAD, "TLS AAD must be 13 bytes with a sane length");
            return 0;
        }
        c->tls_aad_pad = sz;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_AEAD_TLS1_IV_FIXED)) != NULL) {
        if (p->data_type != OSSL_PARAM_OCTET_STRING || !tls_iv_fixed(c, p->data, p->data_size))
            goto fail;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_AEAD_TLS1_SET_IV_INV)) != NULL) {
        if (p->data == NULL || p->data_type != OSSL_PARAM_OCTET_STRING
            || !tls_iv_inv(c, p->data, p->data_size))
            goto fail;
    }
    return 1;
fail:
    ka_raise(c->base.prov, KA_R_FAILED_TO_GET_PARAMETER, "%s", p->key);
    return 0;
}

static const OSSL_PARAM gcm_gettable_ctx[] = {
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_KEYLEN, NULL),
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_IVLEN, NULL),
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_AEAD_TAGLEN, NULL),
    OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_IV, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_UPDATED_IV, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, NULL, 0),
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_AEAD_TLS1_AAD_PAD, NULL),
    OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TLS1_GET_IV_GEN, NULL, 0),
    OSSL_PARAM_uint(GCM_PARAM_IV_GENERATED, NULL),
    OSSL_PARAM_octet_ptr(OSSL_CIPHER_PARAM_PIPELINE_AEAD_TAG, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM gcm_settable_ctx[] = {
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, NULL),
    OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TLS1_AAD, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TLS1_IV_FIXED, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TLS1_SET_IV_INV, NULL, 0),
    OSSL_PARAM_octet_ptr(OSSL_CIPHER_PARAM_PIPELINE_AEAD_TAG, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM *gcm_gettable_ctx_params(void *cctx, void *provctx)
{
    (void)cctx;
    (void)provctx;
    return gcm_gettable_ctx;
}

static const OSSL_PARAM *gcm_settable_ctx_params(void *cctx, void *provctx)
{
    (void)cctx;
    (void)provctx;
    return gcm_settable_ctx;
}

static void *gcm_newctx(void *provctx, size_t keylen)
{
    GCM_CTX *c = OPENSSL_zalloc(sizeof(*c));

    if (c == NULL)
        return NULL;
    ka_ctx_init(&c->base, provctx, KAIO_GCM, keylen);
    c->ivlen = KAIO_GCM_KERNEL_IVLEN;
    c->taglen = UNSET;
    c->tls_aad_len = UNSET;
    return c;
}

static void gcm_freectx(void *vctx)
{
    GCM_CTX *c = vctx;

    if (c == NULL)
        return;
    ka_ctx_cleanup(&c->base);
    sw_gcm_free(c->stream);
    OPENSSL_clear_free(c->aad, c->aadcap);
    OPENSSL_clear_free(c->saved, c->savedcap);
    OPENSSL_clear_free(c, sizeof(*c));
}

static void *gcm_dupctx(void *vctx)
{
    GCM_CTX *src = vctx, *d = OPENSSL_malloc(sizeof(*d));

    if (d == NULL)
        return NULL;
    *d = *src;
    d->aad = NULL;
    d->saved = NULL;
    d->stream = NULL;
    d->base.key = NULL;
    if (!ka_ctx_dup(&d->base, &src->base)
        || (src->aadcap > 0 && (d->aad = OPENSSL_memdup(src->aad, src->aadcap)) == NULL)
        || (src->savedcap > 0 && (d->saved = OPENSSL_memdup(src->saved, src->savedcap)) == NULL)
        || (src->stream != NULL && (d->stream = sw_gcm_dup(src->stream)) == NULL)) {
        gcm_freectx(d);
        return NULL;
    }
    return d;
}

/*
 * Pipelines: each pipe is one message. Its AAD is buffered and goes with its
 * data in one op, so a data update is one batch of one op per pipe, and a
 * final is at most one batch (pipes with AAD only). Patterns one op can't
 * express (more data after the op, decrypting before the tag is known, a
 * tag changed after the op) move that pipe to a software stream, counted,
 * as the single-record code does. A pipe that fails verification in its op
 * never releases plaintext: the output is wiped and the final fails. Only
 * if more data follows (the tag covered more than that op) is the message
 * replayed in a stream, and the withheld bytes come out with the next ones.
 */
static int gcm_pipe_init(void *vctx, const unsigned char *key, size_t keylen, size_t numpipes,
                         const unsigned char **iv, size_t ivlen, const OSSL_PARAM params[], int enc)
{
    GCM_CTX *c = vctx;

    return ka_pipe_init(&c->base, key, keylen, numpipes, iv, ivlen, 1, GCM_IV_MAX, enc)
        && gcm_set_ctx_params(c, params);
}

static int gcm_pipe_einit(void *vctx, const unsigned char *key, size_t keylen, size_t numpipes,
                          const unsigned char **iv, size_t ivlen, const OSSL_PARAM params[])
{
    return gcm_pipe_init(vctx, key, keylen, numpipes, iv, ivlen, params, 1);
}

static int gcm_pipe_dinit(void *vctx, const unsigned char *key, size_t keylen, size_t numpipes,
                          const unsigned char **iv, size_t ivlen, const OSSL_PARAM params[])
{
    return gcm_pipe_init(vctx, key, keylen, numpipes, iv, ivlen, params, 0);
}

/* The pipe's message moves to a software stream (replaying its one op, if any). */
static int gcm_pipe_stream(GCM_CTX *c, KA_PIPES *ps, KA_PIPE *p)
{
    if (p->stream != NULL)
        return 1;
    p->stream = gcm_stream_open(c->base.key, ps->enc, p->iv, ps->ivlen, p->aad, p->aadlen,
                                p->one_op ? p->saved : NULL, p->savedlen, KAIO_R_PATTERN);
    p->one_op = 0;
    return p->stream != NULL;
}

/*
 * More data for a pipe whose op failed verification: the tag covers a longer
 * message. Its stream replays the withheld input into out, then this input
 * (copied first: in place, the replay overwrites it).
 */
static int gcm_pipe_resume(GCM_CTX *c, KA_PIPES *ps, KA_PIPE *p, unsigned char *out,
                           const unsigned char *in, size_t inl)
{
    unsigned char *copy = ka_pipe_scratch(&c->base, inl);
    int ok;

    if (copy == NULL)
        return 0;
    memcpy(copy, in, inl);
    ok = gcm_pipe_stream(c, ps, p) && sw_gcm_update(p->stream, p->saved, out, p->savedlen)
        && sw_gcm_update(p->stream, copy, out + p->savedlen, inl);
    OPENSSL_clear_free(copy, inl);
    if (!ok)
        ka_raise(c->base.prov, KA_R_BACKEND, "GCM stream for a continued pipe");
    return ok;
}

static int gcm_pipe_aad(GCM_CTX *c, KA_PIPES *ps, size_t n, size_t *outl,
                        const unsigned char **in, const size_t *inl)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (inl[i] > 0 && ps->pipe[i].data_seen) {
            ka_raise(c->base.prov, KA_R_AAD_AFTER_DATA, "pipe %zu: GCM AAD must come before the data", i);
            return 0;
        }
    for (i = 0; i < n; i++) {
        KA_PIPE *p = &ps->pipe[i];

        if (inl[i] == 0)
            continue;
        if (!grow(&p->aad, &p->aadcap, p->aadlen + inl[i])) {
            ka_raise(c->base.prov, KA_R_MALLOC, NULL);
            return 0;
        }
        memcpy(p->aad + p->aadlen, in[i], inl[i]);
        p->aadlen += inl[i];
        outl[i] = inl[i];
    }
    return 1;
}

/* In place, a withheld pipe's output trails its input by the withheld bytes. */
static size_t gcm_pipe_lag(const KA_PIPES *ps, size_t i)
{
    return ps->pipe[i].withheld ? ps->pipe[i].savedlen : 0;
}

static int gcm_pipe_update(void *vctx, size_t n, unsigned char **out, size_t *outl,
                           const size_t *outsize, const unsigned char **in, const size_t *inl)
{
    GCM_CTX *c = vctx;
    KA_PIPES *ps;
    struct kaio_op ops[KA_MAX_PIPES];
    size_t idx[KA_MAX_PIPES], nops = 0, i, k;

    if ((ps = ka_pipe_check_update(&c->base, n, out, outl, outsize, in, inl, 1, gcm_pipe_lag)) == NULL)
        return 0;
    if (out == NULL)
        return gcm_pipe_aad(c, ps, n, outl, in, inl);
    for (i = 0; i < n; i++) {
        size_t need = inl[i] + (inl[i] > 0 && ps->pipe[i].withheld ? ps->pipe[i].savedlen : 0);

        if (outsize[i] < need) {
            ka_raise(c->base.prov, KA_R_OUTPUT_BUFFER_TOO_SMALL, "pipe %zu: room for %zu bytes, %zu needed",
                     i, outsize[i], need);
            return 0;
        }
    }
    for (i = 0; i < n; i++) {
        KA_PIPE *p = &ps->pipe[i];

        outl[i] = 0;
        if (inl[i] == 0)
            continue;
        if (p->withheld && !gcm_pipe_resume(c, ps, p, out[i], in[i], inl[i]))
            return 0;
        if (p->withheld) {
            outl[i] = p->savedlen + inl[i];
            p->withheld = 0;
            continue;
        }
        if (p->stream == NULL && !p->data_seen && (ps->enc || p->taglen > 0)) {
            /* Keep the input: if more data follows, the stream replays it. */
            if (!grow(&p->saved, &p->savedcap, inl[i])) {
                ka_raise(c->base.prov, KA_R_MALLOC, NULL);
                return 0;
            }
            memcpy(p->saved, in[i], inl[i]);
            p->savedlen = inl[i];
            p->data_seen = 1;
            gcm_fill_op(&ops[nops], ps->enc, p->iv, ps->ivlen, p->aad, p->aadlen, in[i], out[i], inl[i],
                        p->tag, ps->enc ? GCM_TAG : p->taglen);
            idx[nops++] = i;
            continue;
        }
        p->data_seen = 1;
        if (!gcm_pipe_stream(c, ps, p))
            return 0;
        if (!sw_gcm_update(p->stream, in[i], out[i], inl[i])) {
            ka_raise(c->base.prov, KA_R_DATA_TOO_LONG, "pipe %zu: GCM message too long", i);
            return 0;
        }
        outl[i] = inl[i];
    }
    if (nops > 0 && !ka_run(c->base.key, ops, nops))
        return 0;
    for (k = 0; k < nops; k++) {
        KA_PIPE *p = &ps->pipe[idx[k]];

        if (ops[k].status == 0) {
            p->one_op = 1;
            outl[idx[k]] = inl[idx[k]];
        } else {
            OPENSSL_cleanse(out[idx[k]], inl[idx[k]]);
            p->withheld = 1;
        }
    }
    return 1;
}

static int gcm_pipe_final(void *vctx, size_t n, unsigned char **out, size_t *outl,
                          const size_t *outsize)
{
    GCM_CTX *c = vctx;
    KA_PIPES *ps;
    struct kaio_op ops[KA_MAX_PIPES];
    size_t idx[KA_MAX_PIPES], nops = 0, i, k;
    int failed[KA_MAX_PIPES] = { 0 }, ok = 1;

    if ((ps = ka_pipe_check_final(&c->base, n, out, outl, outsize)) == NULL)
        return 0;
    for (i = 0; i < n; i++) {
        KA_PIPE *p = &ps->pipe[i];

        outl[i] = 0;
        if (p->withheld) {
            failed[i] = 1;
        } else if (!ps->enc && p->taglen == 0) {
            ka_raise(c->base.prov, KA_R_INVALID_TAG, "pipe %zu: no tag set (pipeline-tag) before the final", i);
            failed[i] = 2;
        } else if (p->stream != NULL) {
            if (!sw_gcm_final(p->stream, p->tag, ps->enc ? GCM_TAG : p->taglen))
                failed[i] = 1;
        } else if (!p->one_op) {
            /* AAD only: one op with no data. */
            gcm_fill_op(&ops[nops], ps->enc, p->iv, ps->ivlen, p->aad, p->aadlen, NULL, NULL, 0, p->tag,
                        ps->enc ? GCM_TAG : p->taglen);
            idx[nops++] = i;
        }
    }
    if (nops > 0 && !ka_run(c->base.key, ops, nops))
        return 0;
    for (k = 0; k < nops; k++)
        if (ops[k].status != 0)
            failed[idx[k]] = 1;
    for (i = 0; i < n; i++) {
        if (failed[i] == 1)
            ka_raise(c->base.prov, KA_R_TAG_MISMATCH, "pipe %zu: GCM tag verification failed", i);
        if (failed[i])
            ok = 0;
        else if (ps->enc)
            ps->pipe[i].taglen = GCM_TAG;
    }
    ps->finished = 1;
    return ok;
}

/* "pipeline-tag", decrypting: every pipe's expected tag. */
static int gcm_pipe_set_tags(GCM_CTX *c, const OSSL_PARAM *param)
{
    KA_PIPES *ps = c->base.pipes;
    unsigned char **tags;
    size_t taglen, i;

    if (!ka_pipe_tag_param(&c->base, param, &tags, &taglen))
        return 0;
    if (ps->enc || ps->finished) {
        ka_raise(c->base.prov, KA_R_INVALID_TAG, "pipe tags are set to decrypt, before the final");
        return 0;
    }
    for (i = 0; i < ps->n; i++) {
        KA_PIPE *p = &ps->pipe[i];

        /* Its op verified another tag: this one is checked by a stream over the same message. */
        if (p->one_op && (taglen != p->taglen || CRYPTO_memcmp(p->tag, tags[i], taglen) != 0)
            && !gcm_pipe_stream(c, ps, p))
            return 0;
        memcpy(p->tag, tags[i], taglen);
        p->taglen = taglen;
    }
    return 1;
}

/* "pipeline-tag", encrypting: every pipe's tag, after the final. */
static int gcm_pipe_get_tags(GCM_CTX *c, const OSSL_PARAM *param)
{
    KA_PIPES *ps = c->base.pipes;
    unsigned char **tags;
    size_t taglen, i;

    if (!ka_pipe_tag_param(&c->base, param, &tags, &taglen))
        return 0;
    if (!ps->enc || !ps->finished) {
        ka_raise(c->base.prov, KA_R_INVALID_TAG, "pipe tags are read after an encryption's final");
        return 0;
    }
    for (i = 0; i < ps->n; i++)
        memcpy(tags[i], ps->pipe[i].tag, taglen);
    return 1;
}

#define GCM_ALG(bits)                                                                        \
    static void *gcm##bits##_newctx(void *provctx)                                           \
    {                                                                                        \
        return gcm_newctx(provctx, bits / 8);                                                \
    }                                                                                        \
    static int gcm##bits##_get_params(OSSL_PARAM params[])                                   \
    {                                                                                        \
        return ka_cipher_get_params(params, EVP_CIPH_GCM_MODE, 1, bits / 8, 1,               \
                                    KAIO_GCM_KERNEL_IVLEN);                                  \
    }                                                                                        \
    KA_CIPHER_DISPATCH(ka_aes##bits##gcm_functions, gcm##bits##_newctx, gcm##bits##_get_params, \
        { OSSL_FUNC_CIPHER_FREECTX, (void (*)(void))gcm_freectx },                          \
        { OSSL_FUNC_CIPHER_DUPCTX, (void (*)(void))gcm_dupctx },                            \
        { OSSL_FUNC_CIPHER_ENCRYPT_INIT, (void (*)(void))gcm_einit },                       \
        { OSSL_FUNC_CIPHER_DECRYPT_INIT, (void (*)(void))gcm_dinit },                       \
        { OSSL_FUNC_CIPHER_UPDATE, (void (*)(void))gcm_update },                            \
        { OSSL_FUNC_CIPHER_FINAL, (void (*)(void))gcm_final },                              \
        { OSSL_FUNC_CIPHER_CIPHER, (void (*)(void))gcm_cipher },                            \
        { OSSL_FUNC_CIPHER_PIPELINE_ENCRYPT_INIT, (void (*)(void))gcm_pipe_einit },         \
        { OSSL_FUNC_CIPHER_PIPELINE_DECRYPT_INIT, (void (*)(void))gcm_pipe_dinit },         \
        { OSSL_FUNC_CIPHER_PIPELINE_UPDATE, (void (*)(void))gcm_pipe_update },              \
        { OSSL_FUNC_CIPHER_PIPELINE_FINAL, (void (*)(void))gcm_pipe_final },                \
        { OSSL_FUNC_CIPHER_GET_CTX_PARAMS, (void (*)(void))gcm_get_ctx_params },            \
        { OSSL_FUNC_CIPHER_SET_CTX_PARAMS, (void (*)(void))gcm_set_ctx_params },            \
        { OSSL_FUNC_CIPHER_GETTABLE_CTX_PARAMS, (void (*)(void))gcm_gettable_ctx_params },  \
        { OSSL_FUNC_CIPHER_SETTABLE_CTX_PARAMS, (void (*)(void))gcm_settable_ctx_params })

GCM_ALG(128);
GCM_ALG(192);
GCM_ALG(256);

/*
 * kcapi-aio-seal: seals a file as a stream of independent AES-GCM records,
 * and opens it again, handing n records at a time to one pipeline call
 * (OpenSSL 3.5's EVP_CipherPipeline*) of the kcapi-aio provider, which makes
 * each call one batch (in the kernel: one io_submit). --stats shows it.
 *
 *   kcapi-aio-seal seal|open -k KEYHEX [-r RECORD_SIZE] [-n PIPES] [-i IN] [-o OUT]
 *                  [--provider-path DIR] [--stats]
 *
 * Format, version 1 (integers big-endian):
 *
 *   header, 20 bytes
 *     magic         8  "KAIOSEAL"
 *     version       1  1
 *     key length    1  16, 24 or 32: AES-128/192/256-GCM
 *     reserved      2  0
 *     record size   4  R: plaintext bytes per record, 1 .. 16 MiB
 *     nonce prefix  4  random, chosen per file
 *   records 0, 1, ..., N-1 (N >= 1), each
 *     nonce        12  nonce prefix || record index (8 bytes)
 *     ciphertext    L  L = R, except the last record: 0 <= L <= R
 *     tag          16  the GCM tag
 *
 * Record i is AES-GCM with the nonce as its 12-byte IV and the 29 bytes
 *     AAD = header (20) || index (8) || last (1: 0x01 for record N-1, else 0x00)
 * and nothing follows the last record. An empty input is one record, L = 0.
 *
 * Why: prefix || counter never repeats a nonce within a file, and the random
 * prefix keeps files apart (it is 32 bits: seal well under 2^16 files per
 * key). The header in the AAD binds every record to its file's parameters
 * and prefix; the index makes a moved record fail; the last flag makes a
 * dropped tail or appended data fail. A reader learns a record is the last
 * by reaching the end of the input, and the tag says whether the writer
 * agreed. Each record is readable alone (see test/seal/).
 *
 * Test only: KCAPI_AIO_SEAL_NONCE_PREFIX=8 hex digits fixes the nonce prefix
 * so outputs can be compared; with one key it reuses nonces across files.
 *
 * Exit status: 0 done; 1 the input failed to open (authentication, format)
 * or an I/O or provider error; 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rand.h>

#include "kcapi-aio/names.h"
#include "tool_module_dir.h"

#define PROG "kcapi-aio-seal"
#define MAGIC "KAIOSEAL"
#define VERSION 1
#define HDR_LEN 20
#define NONCE_LEN 12
#define TAG_LEN 16
#define AAD_LEN (HDR_LEN + 8 + 1)
#define REC_OVERHEAD (NONCE_LEN + TAG_LEN)
#define MAX_PIPES 32 /* EVP_MAX_PIPES */
#define MAX_RECORD (16u << 20)
#define ENV_NONCE_PREFIX "KCAPI_AIO_SEAL_NONCE_PREFIX"

struct tool {
    OSSL_LIB_CTX *lc;
    OSSL_PROVIDER *prov, *dflt;
    EVP_CIPHER *cipher;
    EVP_CIPHER_CTX *ctx;
    unsigned char key[32];
    size_t keylen;
    int keyed;                  /* ctx holds cipher and key: later inits reuse them */
    size_t npipes;
    unsigned long long batches, singles, records;
};

/* One pipeline call's records: pointers into the caller's buffers. */
struct batch {
    size_t m;
    const unsigned char *iv[MAX_PIPES], *aad[MAX_PIPES], *in[MAX_PIPES];
    size_t inl[MAX_PIPES], aadl[MAX_PIPES];
    unsigned char *out[MAX_PIPES], *tag[MAX_PIPES];
};

static void put_be(unsigned char *p, uint64_t v, int n)
{
    while (n-- > 0) {
        p[n] = (unsigned char)v;
        v >>= 8;
    }
}

static uint64_t get_be(const unsigned char *p, int n)
{
    uint64_t v = 0;

    while (n-- > 0)
        v = v << 8 | *p++;
    return v;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Exactly len bytes of hex into out; 0 on anything else. */
static int parse_hex(const char *s, unsigned char *out, size_t len)
{
    size_t i;

    if (strlen(s) != 2 * len)
        return 0;
    for (i = 0; i < len; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

        if (hi < 0 || lo < 0)
            return 0;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 1;
}

static int parse_size(const char *s, unsigned long long lo, unsigned long long hi, size_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < lo || v > hi)
        return 0;
    *out = (size_t)v;
    return 1;
}

static void openssl_error(const char *what)
{
    fprintf(stderr, PROG ": %s\n", what);
    ERR_print_errors_fp(stderr);
}

/* As many bytes as the stream has, up to len; -1 on a read error. */
static long long read_full(FILE *f, unsigned char *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        size_t r = fread(buf + got, 1, len - got, f);

        if (r == 0)
            break;
        got += r;
    }
    return ferror(f) ? -1 : (long long)got;
}

/* After a full read: is the stream over? 1 yes, 0 no, -1 read error. */
static int at_eof(FILE *f)
{
    int c = fgetc(f);

    if (c == EOF)
        return ferror(f) ? -1 : 1;
    ungetc(c, f);
    return 0;
}

/*
 * One pipeline call: init, AAD, data, final, tags. The first call passes the
 * cipher and key; later ones pass NULL for both so the context (and the
 * provider's key, in the kernel a keyed socket) is reused: passing the cipher
 * again would reset the context and make a new key every batch.
 */
static int pipe_run(struct tool *t, int enc, struct batch *b)
{
    size_t outl[MAX_PIPES], outsize[MAX_PIPES], i;
    unsigned char *fout[MAX_PIPES], **tags = b->tag;
    const EVP_CIPHER *c = t->keyed ? NULL : t->cipher;
    const unsigned char *k = t->keyed ? NULL : t->key;
    OSSL_PARAM tp[2] = { OSSL_PARAM_END, OSSL_PARAM_END };
    int ok;

    tp[0] = OSSL_PARAM_construct_octet_ptr(OSSL_CIPHER_PARAM_PIPELINE_AEAD_TAG, (void **)&tags, TAG_LEN);
    ok = enc ? EVP_CipherPipelineEncryptInit(t->ctx, c, k, t->keylen, b->m, b->iv, NONCE_LEN)
             : EVP_CipherPipelineDecryptInit(t->ctx, c, k, t->keylen, b->m, b->iv, NONCE_LEN);
    if (ok)
        t->keyed = 1;
    /* Decrypting, the expected tags go in before the data. */
    ok = ok && (enc || EVP_CIPHER_CTX_set_params(t->ctx, tp));
    ok = ok && EVP_CipherPipelineUpdate(t->ctx, NULL, outl, NULL, b->aad, b->aadl);
    for (i = 0; i < b->m; i++)
        outsize[i] = b->inl[i];
    ok = ok && EVP_CipherPipelineUpdate(t->ctx, b->out, outl, outsize, b->in, b->inl);
    for (i = 0; ok && i < b->m; i++) {
        fout[i] = b->out[i] + outl[i];
        outsize[i] = outl[i] <= b->inl[i] ? b->inl[i] - outl[i] : 0;
    }
    if (ok) {
        size_t fl[MAX_PIPES];

        ok = EVP_CipherPipelineFinal(t->ctx, fout, fl, outsize);
        for (i = 0; ok && i < b->m; i++)
            if (outl[i] + fl[i] != b->inl[i]) {
                fprintf(stderr, PROG ": pipe %zu gave %zu bytes for %zu\n", i, outl[i] + fl[i], b->inl[i]);
                ok = 0;
            }
    }
    ok = ok && (!enc || EVP_CIPHER_CTX_get_params(t->ctx, tp));
    if (!ok) {
        /* Start the next call from a clean context. */
        EVP_CIPHER_CTX_reset(t->ctx);
        t->keyed = 0;
    }
    return ok;
}

static void make_header(unsigned char *h, size_t keylen, size_t rsize, const unsigned char *prefix)
{
    memcpy(h, MAGIC, 8);
    h[8] = VERSION;
    h[9] = (unsigned char)keylen;
    h[10] = h[11] = 0;
    put_be(h + 12, rsize, 4);
    memcpy(h + 16, prefix, 4);
}

static void make_nonce(unsigned char *n, const unsigned char *hdr, uint64_t index)
{
    memcpy(n, hdr + 16, 4);
    put_be(n + 4, index, 8);
}

static void make_aad(unsigned char *a, const unsigned char *hdr, uint64_t index, int last)
{
    memcpy(a, hdr, HDR_LEN);
    put_be(a + HDR_LEN, index, 8);
    a[HDR_LEN + 8] = last ? 1 : 0;
}

static int write_all(FILE *f, const void *p, size_t len)
{
    if (len > 0 && fwrite(p, 1, len, f) != len) {
        fprintf(stderr, PROG ": write error: %s\n", strerror(errno));
        return 0;
    }
    return 1;
}

static int nonce_prefix(struct tool *t, unsigned char *prefix)
{
    const char *env = getenv(ENV_NONCE_PREFIX);

    if (env != NULL) {
        if (!parse_hex(env, prefix, 4)) {
            fprintf(stderr, PROG ": %s must be 8 hex digits\n", ENV_NONCE_PREFIX);
            return 0;
        }
        return 1;
    }
    if (RAND_bytes_ex(t->lc, prefix, 4, 0) <= 0) {
        openssl_error("no random nonce prefix");
        return 0;
    }
    return 1;
}

static int seal(struct tool *t, FILE *in, FILE *out, size_t rsize)
{
    unsigned char hdr[HDR_LEN], prefix[4];
    unsigned char nonce[MAX_PIPES][NONCE_LEN], aad[MAX_PIPES][AAD_LEN], tag[MAX_PIPES][TAG_LEN];
    size_t n = t->npipes, cap = n * rsize, i;
    unsigned char *pt = malloc(cap), *ct = malloc(cap);
    uint64_t index = 0;
    int done = 0, ok = 0;

    if (pt == NULL || ct == NULL) {
        fprintf(stderr, PROG ": out of memory (%zu pipes of %zu bytes)\n", n, rsize);
        goto end;
    }
    if (!nonce_prefix(t, prefix))
        goto end;
    make_header(hdr, t->keylen, rsize, prefix);
    if (!write_all(out, hdr, HDR_LEN))
        goto end;
    while (!done) {
        long long got = read_full(in, pt, cap);
        struct batch b = { 0 };
        int e = 0;

        if (got < 0) {
            fprintf(stderr, PROG ": read error: %s\n", strerror(errno));
            goto end;
        }
        /* The last record must be known before it is sealed: look one byte ahead. */
        if ((size_t)got < cap || (e = at_eof(in)) == 1)
            done = 1;
        else if (e < 0) {
            fprintf(stderr, PROG ": read error: %s\n", strerror(errno));
            goto end;
        }
        b.m = got == 0 ? (index == 0) : ((size_t)got + rsize - 1) / rsize;
        if (b.m == 0)
            break;
        for (i = 0; i < b.m; i++) {
            int last = done && i == b.m - 1;

            make_nonce(nonce[i], hdr, index + i);
            make_aad(aad[i], hdr, index + i, last);
            b.iv[i] = nonce[i];
            b.aad[i] = aad[i];
            b.aadl[i] = AAD_LEN;
            b.in[i] = pt + i * rsize;
            b.inl[i] = i < b.m - 1 ? rsize : (size_t)got - i * rsize;
            b.out[i] = ct + i * rsize;
            b.tag[i] = tag[i];
        }
        if (!pipe_run(t, 1, &b)) {
            fprintf(stderr, PROG ": sealing records %llu..%llu failed\n", (unsigned long long)index,
                    (unsigned long long)(index + b.m - 1));
            ERR_print_errors_fp(stderr);
            goto end;
        }
        t->batches++;
        for (i = 0; i < b.m; i++)
            if (!write_all(out, nonce[i], NONCE_LEN) || !write_all(out, b.out[i], b.inl[i])
                || !write_all(out, tag[i], TAG_LEN))
                goto end;
        index += b.m;
        t->records += b.m;
    }
    ok = 1;
end:
    if (pt != NULL)
        OPENSSL_cleanse(pt, cap);
    free(pt);
    free(ct);
    return ok;
}

/* "bytes A..B" of the plaintext, or where an empty record sits. */
static void describe(char *buf, size_t size, uint64_t index, size_t rsize, size_t len)
{
    unsigned long long a = (unsigned long long)index * rsize;

    if (len > 0)
        snprintf(buf, size, "bytes %llu..%llu", a, a + len - 1);
    else
        snprintf(buf, size, "empty, at byte %llu", a);
}

/* What has been written when record 'bad' is refused. */
static void report_written(uint64_t bad, size_t rsize, int out_is_file)
{
    if (bad == 0)
        fprintf(stderr, PROG ": nothing was written%s\n", out_is_file ? " (the output file is empty)" : "");
    else
        fprintf(stderr, PROG ": written: records 0..%llu (bytes 0..%llu), each verified; nothing of record %llu or after\n",
                (unsigned long long)(bad - 1), (unsigned long long)bad * rsize - 1, (unsigned long long)bad);
}

/*
 * Why did record b->..[j] fail alone? Try it with the other last flag: a
 * record that verifies as "not last" at the end of the input means the tail
 * was dropped; one that verifies as "last" with data after it means data
 * was appended. Neither is released.
 */
static const char *diagnose(struct tool *t, struct batch *b, size_t j, unsigned char *aad, int last)
{
    struct batch one = { 0 };
    const char *why = "authentication failed";

    one.m = 1;
    one.iv[0] = b->iv[j];
    one.aad[0] = aad;
    one.aadl[0] = AAD_LEN;
    one.in[0] = b->in[j];
    one.inl[0] = b->inl[j];
    one.out[0] = b->out[j];
    one.tag[0] = b->tag[j];
    aad[HDR_LEN + 8] = last ? 0 : 1;
    if (pipe_run(t, 0, &one))
        why = last ? "authentication failed: this record is not the last one, the input is truncated after it"
                   : "authentication failed: this record is the last one, yet data follows it";
    aad[HDR_LEN + 8] = last ? 1 : 0;
    ERR_clear_error();
    OPENSSL_cleanse(b->out[j], b->inl[j]);
    t->singles++;
    return why;
}

static int open_stream(struct tool *t, FILE *in, FILE *out, int out_is_file)
{
    unsigned char hdr[HDR_LEN];
    unsigned char aad[MAX_PIPES][AAD_LEN];
    size_t n = t->npipes, rsize, chunk, cap, i;
    unsigned char *buf = NULL, *pt = NULL;
    uint64_t index = 0;
    long long got = read_full(in, hdr, HDR_LEN);
    int ok = 0, eof = 0;

    if (got < 0) {
        fprintf(stderr, PROG ": read error: %s\n", strerror(errno));
        return 0;
    }
    if (got < HDR_LEN || memcmp(hdr, MAGIC, 8) != 0) {
        fprintf(stderr, PROG ": not a sealed stream (no %s header)\n", MAGIC);
        return 0;
    }
    rsize = (size_t)get_be(hdr + 12, 4);
    if (hdr[8] != VERSION || hdr[10] != 0 || hdr[11] != 0 || rsize == 0 || rsize > MAX_RECORD
        || (hdr[9] != 16 && hdr[9] != 24 && hdr[9] != 32)) {
        fprintf(stderr, PROG ": unsupported header (version %u, key length %u, record size %zu)\n",
                hdr[8], hdr[9], rsize);
        return 0;
    }
    if (hdr[9] != t->keylen) {
        fprintf(stderr, PROG ": the stream was sealed with a %u-byte key, -k gives %zu bytes\n", hdr[9], t->keylen);
        return 0;
    }
    chunk = rsize + REC_OVERHEAD;
    cap = n * chunk;
    if ((buf = malloc(cap)) == NULL || (pt = malloc(n * rsize)) == NULL) {
        fprintf(stderr, PROG ": out of memory (%zu pipes of %zu bytes)\n", n, rsize);
        goto end;
    }
    while (!eof) {
        struct batch b = { 0 };
        size_t m, good, j;
        const char *why = NULL;
        char where[96], shape[320] = "";
        int e = 0;

        got = read_full(in, buf, cap);
        if (got < 0) {
            fprintf(stderr, PROG ": read error: %s\n", strerror(errno));
            goto end;
        }
        if ((size_t)got < cap || (e = at_eof(in)) == 1)
            eof = 1;
        else if (e < 0) {
            fprintf(stderr, PROG ": read error: %s\n", strerror(errno));
            goto end;
        }
        if (got == 0) {
            if (index > 0)
                break;
            fprintf(stderr, PROG ": record 0 (from byte 0): missing: the input ends after the header (truncated)\n");
            report_written(0, rsize, out_is_file);
            goto end;
        }
        m = ((size_t)got + chunk - 1) / chunk;
        /*
         * A record whose shape is wrong ends the batch before the cipher sees
         * it; it is reported only if the records before it verify.
         */
        for (good = 0; good < m; good++) {
            const unsigned char *r = buf + good * chunk;
            size_t len = good < m - 1 ? chunk : (size_t)got - good * chunk;
            uint64_t at = index + good;

            if (len < REC_OVERHEAD) {
                snprintf(shape, sizeof(shape), "record %llu (from byte %llu): truncated: %zu bytes, a record has at least %d",
                         (unsigned long long)at, (unsigned long long)at * rsize, len, REC_OVERHEAD);
                break;
            }
            b.inl[good] = len - REC_OVERHEAD;
            if (memcmp(r, hdr + 16, 4) != 0 || get_be(r + 4, 8) != at) {
                describe(where, sizeof(where), at, rsize, b.inl[good]);
                if (memcmp(r, hdr + 16, 4) != 0)
                    snprintf(shape, sizeof(shape), "record %llu (%s): out of place: its nonce prefix is not "
                             "this file's (a record of another file, or corrupted)", (unsigned long long)at, where);
                else
                    snprintf(shape, sizeof(shape), "record %llu (%s): out of place: its nonce names record %llu "
                             "(reordered, or corrupted)", (unsigned long long)at, where,
                             (unsigned long long)get_be(r + 4, 8));
                break;
            }
            make_aad(aad[good], hdr, at, eof && good == m - 1);
            b.iv[good] = r;
            b.aad[good] = aad[good];
            b.aadl[good] = AAD_LEN;
            b.in[good] = r + NONCE_LEN;
            b.out[good] = pt + good * rsize;
            /* The tag stays in the read buffer: decrypting only reads it. */
            b.tag[good] = (unsigned char *)r + NONCE_LEN + b.inl[good];
        }
        b.m = good;
        j = good;
        if (b.m > 0) {
            if (pipe_run(t, 0, &b)) {
                t->batches++;
            } else {
                /* Which record? Each alone, in order: those before it are then verified. */
                ERR_clear_error();
                t->batches++;
                for (j = 0; j < b.m; j++) {
                    struct batch one = { 0 };

                    one.m = 1;
                    one.iv[0] = b.iv[j];
                    one.aad[0] = b.aad[j];
                    one.aadl[0] = AAD_LEN;
                    one.in[0] = b.in[j];
                    one.inl[0] = b.inl[j];
                    one.out[0] = b.out[j];
                    one.tag[0] = b.tag[j];
                    t->singles++;
                    if (!pipe_run(t, 0, &one))
                        break;
                }
                if (j == b.m) {
                    fprintf(stderr, PROG ": records %llu..%llu failed together but verify one by one: "
                            "a provider error; none of them was written\n",
                            (unsigned long long)index, (unsigned long long)(index + b.m - 1));
                    report_written(index, rsize, out_is_file);
                    goto end;
                }
                ERR_clear_error();
                why = diagnose(t, &b, j, aad[j], eof && j == m - 1);
                describe(where, sizeof(where), index + j, rsize, b.inl[j]);
                fprintf(stderr, PROG ": record %llu (%s): %s\n", (unsigned long long)(index + j), where, why);
            }
        }
        for (i = 0; i < j; i++)
            if (!write_all(out, b.out[i], b.inl[i]))
                goto end;
        t->records += j;
        if (why == NULL && shape[0] != '\0') {
            fprintf(stderr, PROG ": %s\n", shape);
            why = shape;
        }
        if (why != NULL) {
            if (fflush(out) != 0)
                fprintf(stderr, PROG ": write error: %s\n", strerror(errno));
            report_written(index + j, rsize, out_is_file);
            goto end;
        }
        index += m;
    }
    ok = 1;
end:
    if (pt != NULL)
        OPENSSL_cleanse(pt, n * rsize);
    free(pt);
    free(buf);
    return ok;
}

static void print_stats(struct tool *t, int sealing)
{
    static char counters[16384];
    OSSL_PARAM p[] = {
        OSSL_PARAM_utf8_string(KCAPI_AIO_PARAM_COUNTERS, counters, sizeof(counters)),
        OSSL_PARAM_END
    };
    char *line, *save = NULL;

    fprintf(stderr, "%s: %llu record(s) %s in %llu pipeline call(s) of up to %zu record(s)",
            PROG, t->records, sealing ? "sealed" : "opened", t->batches, t->npipes);
    if (t->singles > 0)
        fprintf(stderr, " + %llu single-record call(s) to find a failed record", t->singles);
    fprintf(stderr, "\n");
    counters[0] = '\0';
    if (!OSSL_PROVIDER_get_params(t->prov, p)) {
        openssl_error("the provider did not give its counters");
        return;
    }
    fprintf(stderr, "kcapi-aio counters:\n");
    for (line = strtok_r(counters, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
        fprintf(stderr, "  %s\n", line);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " seal|open -k KEYHEX [-r RECORD_SIZE] [-n PIPES] [-i IN] [-o OUT]\n"
            "                      [--provider-path DIR] [--stats]\n"
            "  seal: IN (default stdin) -> OUT (default stdout) as AES-GCM records of RECORD_SIZE\n"
            "        bytes (default 16384, at most %u), each with its own nonce and tag\n"
            "  open: the reverse; the record size comes from the stream. A record that fails to\n"
            "        verify is named, nothing of it or after it is written, and the exit status is 1\n"
            "  -k KEYHEX   16, 24 or 32 bytes of key in hex (AES-128/192/256-GCM)\n"
            "  -n PIPES    records per pipeline call, 1..%d (default 16)\n"
            "  --provider-path DIR  where kcapi-aio.so is (default: $OPENSSL_MODULES, else the build\n"
            "                       tree's when run from there, else OpenSSL's module directory)\n"
            "  --stats     print the provider's counters at the end (stderr)\n",
            MAX_RECORD, MAX_PIPES);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "provider-path", required_argument, NULL, 'P' },
        { "stats", no_argument, NULL, 'S' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    struct tool t = { 0 };
    const char *keyhex = NULL, *inpath = NULL, *outpath = NULL, *path = NULL, *mode;
    size_t rsize = 16384, klen;
    FILE *in = stdin, *out = stdout;
    int opt, stats = 0, sealing, rc = 1;
    char name[16];

    t.npipes = 16;
    while ((opt = getopt_long(argc, argv, "k:r:n:i:o:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'k': keyhex = optarg; break;
        case 'r':
            if (!parse_size(optarg, 1, MAX_RECORD, &rsize)) {
                fprintf(stderr, PROG ": -r: a record size from 1 to %u\n", MAX_RECORD);
                return 2;
            }
            break;
        case 'n':
            if (!parse_size(optarg, 1, MAX_PIPES, &t.npipes)) {
                fprintf(stderr, PROG ": -n: 1 to %d pipes\n", MAX_PIPES);
                return 2;
            }
            break;
        case 'i': inpath = optarg; break;
        case 'o': outpath = optarg; break;
        case 'P': path = optarg; break;
        case 'S': stats = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1 || keyhex == NULL) {
        usage(stderr);
        return 2;
    }
    mode = argv[optind];
    if (strcmp(mode, "seal") != 0 && strcmp(mode, "open") != 0) {
        usage(stderr);
        return 2;
    }
    sealing = mode[0] == 's';
    klen = strlen(keyhex) / 2;
    if ((klen != 16 && klen != 24 && klen != 32) || !parse_hex(keyhex, t.key, klen)) {
        fprintf(stderr, PROG ": -k: 32, 48 or 64 hex digits (a 16, 24 or 32-byte key)\n");
        return 2;
    }
    t.keylen = klen;

    /* The provider, explicitly, in a library context of our own. */
    t.lc = OSSL_LIB_CTX_new();
    if (path == NULL && getenv("OPENSSL_MODULES") == NULL)
        path = tool_module_dir();
    if (t.lc == NULL || (path != NULL && !OSSL_PROVIDER_set_default_search_path(t.lc, path))) {
        openssl_error("no library context");
        goto end;
    }
    if ((t.prov = OSSL_PROVIDER_load(t.lc, KCAPI_AIO_NAME)) == NULL) {
        fprintf(stderr, PROG ": cannot load the %s provider%s%s\n", KCAPI_AIO_NAME,
                path != NULL ? " from " : "", path != NULL ? path : "");
        ERR_print_errors_fp(stderr);
        goto end;
    }
    /* default: the random nonce prefix (and whatever kcapi-aio does not serve). */
    if ((t.dflt = OSSL_PROVIDER_load(t.lc, "default")) == NULL) {
        openssl_error("cannot load the default provider");
        goto end;
    }
    snprintf(name, sizeof(name), "AES-%zu-GCM", klen * 8);
    if ((t.cipher = EVP_CIPHER_fetch(t.lc, name, KCAPI_AIO_PROPS)) == NULL) {
        fprintf(stderr, PROG ": %s has no %s\n", KCAPI_AIO_NAME, name);
        ERR_print_errors_fp(stderr);
        goto end;
    }
    if (!EVP_CIPHER_can_pipeline(t.cipher, sealing)) {
        fprintf(stderr, PROG ": %s from %s cannot pipeline (%s)\n", name, KCAPI_AIO_NAME,
                sealing ? "encrypt" : "decrypt");
        goto end;
    }
    if ((t.ctx = EVP_CIPHER_CTX_new()) == NULL) {
        openssl_error("out of memory");
        goto end;
    }

    if (inpath != NULL && strcmp(inpath, "-") != 0 && (in = fopen(inpath, "rb")) == NULL) {
        fprintf(stderr, PROG ": %s: %s\n", inpath, strerror(errno));
        goto end;
    }
    if (outpath != NULL && strcmp(outpath, "-") != 0 && (out = fopen(outpath, "wb")) == NULL) {
        fprintf(stderr, PROG ": %s: %s\n", outpath, strerror(errno));
        goto end;
    }
    if (sealing ? seal(&t, in, out, rsize) : open_stream(&t, in, out, out != stdout))
        rc = 0;
    if (fflush(out) != 0 || ferror(out)) {
        fprintf(stderr, PROG ": write error: %s\n", strerror(errno));
        rc = 1;
    }
    if (stats)
        print_stats(&t, sealing);
end:
    if (in != NULL && in != stdin)
        fclose(in);
    if (out != NULL && out != stdout && fclose(out) != 0 && rc == 0) {
        fprintf(stderr, PROG ": write error: %s\n", strerror(errno));
        rc = 1;
    }
    OPENSSL_cleanse(t.key, sizeof(t.key));
    EVP_CIPHER_CTX_free(t.ctx);
    EVP_CIPHER_free(t.cipher);
    OSSL_PROVIDER_unload(t.dflt);
    OSSL_PROVIDER_unload(t.prov);
    OSSL_LIB_CTX_free(t.lc);
    return rc;
}

#include "etest.h"

#include <check.h>

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef AF_ALG
#define AF_ALG 38
#endif

void et_need_kernel(const char *test)
{
    const struct kaio_caps *c = kaio_probe();
    const char *req = getenv("KAIO_REQUIRE_KERNEL");
    int m, ok = c->af_alg;

    for (m = 0; m < KAIO_NMODES; m++)
        ok = ok && c->mode[m].available;
    if (ok)
        return;
    if (!c->af_alg)
        printf("SKIP %s: kernel has no AF_ALG (%s: %s)\n", test,
               kaio_reason_name(KAIO_R_NO_AF_ALG), strerror(c->af_alg_err));
    else
        for (m = 0; m < KAIO_NMODES; m++)
            if (!c->mode[m].available)
                printf("SKIP %s: %s: %s (%s)\n", test, c->mode[m].alg,
                       kaio_reason_name(c->mode[m].reason), strerror(c->mode[m].err));
    fflush(stdout);
    if (req != NULL && strcmp(req, "1") == 0) {
        printf("FAIL %s: KAIO_REQUIRE_KERNEL=1 but the kernel cannot run it\n", test);
        exit(1);
    }
    exit(ET_SKIP);
}

static const char *cipher_name(enum kaio_mode mode, size_t keylen)
{
    static const char *const names[3][3] = {
        { "AES-128-CBC", "AES-192-CBC", "AES-256-CBC" },
        { "AES-128-CTR", "AES-192-CTR", "AES-256-CTR" },
        { "AES-128-GCM", "AES-192-GCM", "AES-256-GCM" },
    };

    return names[mode][(keylen - 16) / 8];
}

int et_ref(enum kaio_mode mode, const unsigned char *key, size_t keylen, int enc,
           const unsigned char *iv, size_t ivlen, const unsigned char *aad, size_t aadlen,
           const unsigned char *in, size_t len, unsigned char *out, unsigned char *tag,
           size_t taglen)
{
    EVP_CIPHER *c = tu_fetch(tu_ref(), cipher_name(mode, keylen));
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    unsigned char dummy[16];
    int ol = 0, ok = 1;

    ck_assert(x != NULL);
    ck_assert(EVP_CipherInit_ex2(x, c, NULL, NULL, enc, NULL));
    if (mode == KAIO_GCM) {
        OSSL_PARAM p[2] = { OSSL_PARAM_construct_size_t("ivlen", &ivlen), OSSL_PARAM_END };

        ck_assert(EVP_CIPHER_CTX_set_params(x, p));
    }
    ck_assert(EVP_CipherInit_ex2(x, NULL, key, iv, enc, NULL));
    EVP_CIPHER_CTX_set_padding(x, 0);
    if (mode == KAIO_GCM && !enc)
        ck_assert(EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, (int)taglen, tag));
    if (aadlen)
        ck_assert(EVP_CipherUpdate(x, NULL, &ol, aad, (int)aadlen));
    if (len)
        ck_assert(EVP_CipherUpdate(x, out, &ol, in, (int)len));
    if (EVP_CipherFinal_ex(x, dummy, &ol) != 1)
        ok = 0;
    if (mode == KAIO_GCM && enc)
        ck_assert(EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, (int)taglen, tag));
    ck_assert_msg(ok || (mode == KAIO_GCM && !enc), "reference cipher failed");
    EVP_CIPHER_CTX_free(x);
    EVP_CIPHER_free(c);
    return ok;
}

static size_t pick_len(enum kaio_mode mode, const struct et_shape *s)
{
    size_t len = tu_rand_below(s->maxlen + 1);

    if (mode == KAIO_CBC)
        len -= len % KAIO_BLOCK;
    if (len == 0 && !s->allow_empty)
        len = KAIO_BLOCK;
    return len;
}

static void make_op(struct et_batch *b, size_t i, const struct et_shape *s)
{
    static const int tags[] = { 16, 16, 16, 12, 13, 14, 15, 8, 4 };
    struct kaio_op *op = &b->ops[i];
    struct et_rec *r = &b->r[i];
    size_t len = pick_len(b->mode, s);
    /* Room for the largest length, so a test may change len afterwards. */
    size_t alloc = (s->maxlen > len ? s->maxlen : len) + 1;
    int inplace = s->inplace < 0 ? (int)tu_rand_below(2) : s->inplace;

    memset(op, 0, sizeof(*op));
    memset(r, 0, sizeof(*r));
    op->encrypt = s->encrypt < 0 ? (int)tu_rand_below(2) : s->encrypt;
    tu_rand_bytes(r->iv, sizeof(r->iv));
    op->iv = r->iv;
    op->ivlen = b->mode == KAIO_GCM ? KAIO_GCM_KERNEL_IVLEN : KAIO_BLOCK;
    r->in = malloc(alloc);
    r->orig = malloc(alloc);
    r->ref = malloc(alloc);
    r->out = inplace ? r->in : malloc(alloc);
    ck_assert(r->in && r->orig && r->ref && r->out);
    tu_rand_bytes(r->orig, len);
    op->len = len;
    op->in = r->in;
    op->out = r->out;
    if (b->mode == KAIO_GCM) {
        op->aadlen = tu_rand_below(s->maxaad + 1);
        if (!s->allow_empty && op->aadlen == 0 && len == 0)
            op->aadlen = 1;
        r->aad = malloc((s->maxaad > op->aadlen ? s->maxaad : op->aadlen) + 1);
        ck_assert(r->aad != NULL);
        tu_rand_bytes(r->aad, op->aadlen);
        op->aad = r->aad;
        op->taglen = s->taglen ? (size_t)s->taglen : (size_t)tags[tu_rand_below(9)];
        op->tag = r->tag;
    }
    et_reref(b, i);
}

void et_reref(struct et_batch *b, size_t i)
{
    struct kaio_op *op = &b->ops[i];
    struct et_rec *r = &b->r[i];

    if (b->mode == KAIO_GCM && !op->encrypt) {
        /* A decryption needs a real ciphertext and tag: encrypt the
         * plaintext first; the plaintext is then the expected output. */
        unsigned char *pt = malloc(op->len ? op->len : 1);

        ck_assert(pt != NULL);
        memcpy(pt, r->orig, op->len);
        et_ref(KAIO_GCM, b->key, b->keylen, 1, r->iv, op->ivlen, r->aad, op->aadlen, pt, op->len,
               r->orig, r->tag, op->taglen);
        memcpy(r->ref, pt, op->len);
        memcpy(r->reftag, r->tag, op->taglen);
        free(pt);
        r->ref_ok = 1;
    } else {
        r->ref_ok = et_ref(b->mode, b->key, b->keylen, op->encrypt, r->iv, op->ivlen, r->aad,
                           op->aadlen, r->orig, op->len, r->ref, r->reftag, op->taglen);
    }
    memcpy(r->in, r->orig, op->len);
}

void et_make(struct et_batch *b, enum kaio_mode mode, size_t keylen, size_t n,
             const struct et_shape *s)
{
    size_t i;

    memset(b, 0, sizeof(*b));
    b->mode = mode;
    b->keylen = keylen;
    b->n = n;
    tu_rand_bytes(b->key, keylen);
    for (i = 0; i < n; i++)
        make_op(b, i, s);
}

void et_check_op(const struct et_batch *b, size_t i, const char *what)
{
    const struct kaio_op *op = &b->ops[i];
    const struct et_rec *r = &b->r[i];
    char label[160];

    snprintf(label, sizeof(label), "%s: %s-%zu op %zu/%zu (%s, len %zu, aad %zu, tag %zu, %s)",
             what, kaio_mode_name(b->mode), b->keylen * 8, i, b->n, op->encrypt ? "enc" : "dec",
             op->len, op->aadlen, op->taglen, op->in == op->out ? "in place" : "out of place");
    if (!r->ref_ok) {
        ck_assert_msg(op->status == KAIO_EBADMSG, "%s: status %d, want EBADMSG", label, op->status);
        return;
    }
    ck_assert_msg(op->status == 0, "%s: status %d reason %s err %d", label, op->status,
                  kaio_reason_name(op->reason), op->err);
    ck_assert_msg(tu_same(label, op->out, op->len, r->ref, op->len), "%s: output differs", label);
    if (b->mode == KAIO_GCM && op->encrypt)
        ck_assert_msg(tu_same(label, op->tag, op->taglen, r->reftag, op->taglen), "%s: tag differs",
                      label);
}

void et_check(const struct et_batch *b, const char *what)
{
    size_t i;

    for (i = 0; i < b->n; i++)
        et_check_op(b, i, what);
}

void et_free(struct et_batch *b)
{
    size_t i;

    for (i = 0; i < b->n; i++) {
        struct et_rec *r = &b->r[i];

        if (r->out != r->in)
            free(r->out);
        free(r->in);
        free(r->orig);
        free(r->ref);
        free(r->aad);
    }
    b->n = 0;
}

struct kaio_key *et_key(const struct et_batch *b)
{
    enum kaio_reason why = KAIO_R_NONE;
    int err = 0;
    struct kaio_key *k = kaio_key_new(b->mode, b->key, b->keylen, &why, &err);

    ck_assert_msg(k != NULL, "kaio_key_new(%s, %zu): %s (%s)", kaio_mode_name(b->mode), b->keylen,
                  kaio_reason_name(why), strerror(err));
    return k;
}

int et_main(Suite *s, const char *kernel_test)
{
    SRunner *sr;
    int failed;

    if (kernel_test != NULL)
        et_need_kernel(kernel_test);
    sr = srunner_create(s);
    tu_seed();
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

unsigned et_count_alg_fds(void)
{
    unsigned n = 0;
    int fd;

    for (fd = 0; fd < 4096; fd++) {
        int dom = 0;
        socklen_t l = sizeof(dom);

        if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) == 0 && dom == AF_ALG)
            n++;
    }
    return n;
}

/*
 * A daemon closes every fd >= 3 (closefrom, close_range) while a kcapi-aio
 * context is alive, and new sockets take exactly the numbers kcapi-aio's had:
 *   tcp  a listening loopback TCP socket (with a connection waiting) and
 *        connected TCP pairs;
 *   alg  someone else's AF_ALG sockets, same algorithm, another key;
 *   key  a second kcapi-aio context (another key), then files.
 * The context's next calls (single EVP calls, and pipelines where OpenSSL has
 * them) must give the default provider's bytes, all in the kernel; not a byte
 * may reach a TCP peer and no waiting connection may be taken; the foreign
 * AF_ALG sockets must still give their own correct output; the second
 * context must still work and lose no socket; neither the calls nor freeing
 * the context may close or replace any fd of someone else.
 *
 * Not a Check suite: Check keeps fds of its own, which closing every fd would
 * take away. Exit 0 pass, 1 fail (or a hang, after a generous alarm), 77
 * without AF_ALG (a failure with KAIO_REQUIRE_KERNEL=1). KCAPI_AIO_BACKEND
 * (aio, sync) chooses the kernel path; an argument (tcp, alg, key) runs only
 * the cases of that taker.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if_alg.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "testutil.h"

#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef SOL_ALG
#define SOL_ALG 279
#endif
#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

#define MAXFD 1024
#define PIPES 4
#define HANG_SECONDS                                                                               \
    120 /* per case; a case takes milliseconds natively, well under 1 s in the lab */

enum { M_CBC, M_CTR, M_GCM, NMODES };
enum { T_TCP, T_ALG, T_KEY, NTAKERS };

static const char *const cipher_names[NMODES] = {"AES-128-CBC", "AES-256-CTR", "AES-192-GCM"};
static const size_t keylens[NMODES] = {16, 32, 24};
static const char *const alg_names[NMODES] = {"cbc(aes)", "ctr(aes)", "gcm(aes)"};
static const char *const taker_names[NTAKERS] = {"tcp", "alg", "key"};

static char what[128];
static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s: ", what);                                                    \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static void hung(int sig)
{
    static const char msg[] = ": a call hung (a record sent to a socket that is not ours?)\n";

    (void)sig;
    (void)!write(2, "FAIL ", 5);
    (void)!write(2, what, strlen(what));
    (void)!write(2, msg, sizeof(msg) - 1);
    _exit(1);
}

/* A counter of kcapi-aio; a failure to read it fails the test. */
static uint64_t counter(const char *name)
{
    uint64_t v = 0;

    CHECK(tu_counter_read(name, &v), "counter %s: %s", name, tu_errors());
    return v;
}

/* ---------------- fds ---------------- */

/* What an fd is: a socket's cookie, else device and inode; 0 when closed. */
static uint64_t identity(int fd)
{
    uint64_t c = 0;
    socklen_t l = sizeof(c);
    struct stat st;

    if (fcntl(fd, F_GETFD) < 0)
        return 0;
    if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &l) == 0)
        return c;
    if (fstat(fd, &st) < 0)
        return 0;
    return ((uint64_t)st.st_dev << 40) ^ (uint64_t)st.st_ino ^ (1ull << 63);
}

struct fdset {
    int n;
    int fd[MAXFD];
    uint64_t id[MAXFD];
};

static void snapshot(struct fdset *s)
{
    int fd;

    s->n = 0;
    for (fd = 3; fd < MAXFD; fd++) {
        uint64_t id = identity(fd);

        if (id != 0) {
            s->fd[s->n] = fd;
            s->id[s->n++] = id;
        }
    }
}

/* Every fd of s is still open and still the same object. */
static void check_untouched(const struct fdset *s, const char *when)
{
    int i;

    for (i = 0; i < s->n; i++)
        CHECK(identity(s->fd[i]) == s->id[i], "%s: fd %d (not kcapi-aio's) was closed or replaced",
              when, s->fd[i]);
}

static int count_alg(const struct fdset *s)
{
    int i, n = 0;

    for (i = 0; i < s->n; i++) {
        int dom = 0;
        socklen_t l = sizeof(dom);

        n += getsockopt(s->fd[i], SOL_SOCKET, SO_DOMAIN, &dom, &l) == 0 && dom == AF_ALG;
    }
    return n;
}

/* What a daemon does after start-up. */
static void close_from_3(void)
{
    int fd;

#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
        return;
#endif
    for (fd = 3; fd < MAXFD; fd++)
        close(fd);
}

/* Holds the numbers of e with placeholders, so that new fds land elsewhere
 * until put_at moves them onto those numbers. */
static void hold(const struct fdset *e)
{
    int i;

    for (i = 0; i < e->n; i++)
        CHECK(dup2(0, e->fd[i]) == e->fd[i], "dup2 onto %d: %s", e->fd[i], strerror(errno));
}

/* Moves fd onto number at (the taker gets exactly our old number). */
static int put_at(int fd, int at)
{
    if (fd < 0 || fd == at)
        return fd;
    CHECK(dup2(fd, at) == at, "dup2 onto %d: %s", at, strerror(errno));
    close(fd);
    return at;
}

/* ---------------- raw AF_ALG: someone else's sockets ---------------- */

static int alg_tfm(int m, const unsigned char *key)
{
    struct sockaddr_alg sa;
    int fd = socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.salg_family = AF_ALG;
    strcpy((char *)sa.salg_type, m == M_GCM ? "aead" : "skcipher");
    strcpy((char *)sa.salg_name, alg_names[m]);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        setsockopt(fd, SOL_ALG, ALG_SET_KEY, key, (socklen_t)keylens[m]) < 0 ||
        (m == M_GCM && setsockopt(fd, SOL_ALG, ALG_SET_AEAD_AUTHSIZE, NULL, 16) < 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Encrypts len bytes on op socket fd (GCM: no AAD, the tag follows); 0 or -1. */
static int alg_encrypt(int m, int fd, const unsigned char *iv, const unsigned char *in, size_t len,
                       unsigned char *out)
{
    union {
        char buf[CMSG_SPACE(sizeof(uint32_t)) * 2 + CMSG_SPACE(sizeof(struct af_alg_iv) + 16)];
        struct cmsghdr align;
    } cm;
    struct iovec io = {(void *)in, len};
    struct msghdr msg;
    struct cmsghdr *c;
    struct af_alg_iv *aiv;
    uint32_t op = ALG_OP_ENCRYPT, zero = 0;
    size_t ivlen = m == M_GCM ? 12 : 16, outlen = len + (m == M_GCM ? 16 : 0);

    memset(&cm, 0, sizeof(cm));
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &io;
    msg.msg_iovlen = 1;
    msg.msg_control = cm.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(op)) + CMSG_SPACE(sizeof(*aiv) + ivlen) +
                         (m == M_GCM ? CMSG_SPACE(sizeof(zero)) : 0);
    c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_ALG;
    c->cmsg_type = ALG_SET_OP;
    c->cmsg_len = CMSG_LEN(sizeof(op));
    memcpy(CMSG_DATA(c), &op, sizeof(op));
    c = CMSG_NXTHDR(&msg, c);
    c->cmsg_level = SOL_ALG;
    c->cmsg_type = ALG_SET_IV;
    c->cmsg_len = CMSG_LEN(sizeof(*aiv) + ivlen);
    aiv = (struct af_alg_iv *)CMSG_DATA(c);
    aiv->ivlen = (uint32_t)ivlen;
    memcpy(aiv->iv, iv, ivlen);
    if (m == M_GCM) {
        c = CMSG_NXTHDR(&msg, c);
        c->cmsg_level = SOL_ALG;
        c->cmsg_type = ALG_SET_AEAD_ASSOCLEN;
        c->cmsg_len = CMSG_LEN(sizeof(zero));
        memcpy(CMSG_DATA(c), &zero, sizeof(zero));
    }
    if (sendmsg(fd, &msg, MSG_DONTWAIT) != (ssize_t)len)
        return -1;
    return read(fd, out, outlen) == (ssize_t)outlen ? 0 : -1;
}

/* ---------------- EVP ---------------- */

static EVP_CIPHER *ours_c[NMODES], *ref_c[NMODES];

/* One whole message through c (CBC without padding; GCM: 12-byte IV, 16-byte tag). */
static int evp_once(int m, const EVP_CIPHER *c, int enc, const unsigned char *key,
                    const unsigned char *iv, const unsigned char *aad, size_t aadlen,
                    const unsigned char *in, size_t len, unsigned char *out, unsigned char *tag)
{
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int ok, l1 = 0, l2 = 0, la = 0;

    ok = x != NULL && EVP_CipherInit_ex2(x, c, key, iv, enc, NULL) &&
         EVP_CIPHER_CTX_set_padding(x, 0);
    if (ok && m == M_GCM && aadlen)
        ok = EVP_CipherUpdate(x, NULL, &la, aad, (int)aadlen);
    if (ok && m == M_GCM && !enc)
        ok = EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, 16, tag);
    ok = ok && EVP_CipherUpdate(x, out, &l1, in, (int)len) &&
         EVP_CipherFinal_ex(x, out + l1, &l2) && (size_t)(l1 + l2) == len;
    if (ok && m == M_GCM && enc)
        ok = EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, 16, tag);
    EVP_CIPHER_CTX_free(x);
    return ok;
}

/* A record: its IV, AAD, input and expected output. */
struct rec {
    unsigned char iv[16], aad[13], tag[16], reftag[16];
    unsigned char *in, *out, *ref;
    size_t len;
};

static void rec_make(struct rec *r, int m, const unsigned char *key, size_t len, int enc)
{
    memset(r, 0, sizeof(*r));
    tu_rand_bytes(r->iv, sizeof(r->iv));
    tu_rand_bytes(r->aad, sizeof(r->aad));
    r->len = len;
    r->in = malloc(len);
    r->out = malloc(len);
    r->ref = malloc(len);
    if (r->in == NULL || r->out == NULL || r->ref == NULL)
        abort();
    tu_rand_bytes(r->in, len);
    if (!enc) {
        /* Decrypt what the default provider made. */
        unsigned char *pt = malloc(len);

        if (pt == NULL)
            abort();
        memcpy(pt, r->in, len);
        if (!evp_once(m, ref_c[m], 1, key, r->iv, r->aad, 13, pt, len, r->in, r->reftag))
            abort();
        memcpy(r->ref, pt, len);
        memcpy(r->tag, r->reftag, 16);
        free(pt);
        return;
    }
    if (!evp_once(m, ref_c[m], 1, key, r->iv, r->aad, 13, r->in, len, r->ref, r->reftag))
        abort();
}

static void rec_check(const struct rec *r, int m, int enc, const char *which)
{
    CHECK(memcmp(r->out, r->ref, r->len) == 0, "%s: output differs from the default provider's",
          which);
    if (m == M_GCM && enc)
        CHECK(memcmp(r->tag, r->reftag, 16) == 0, "%s: tag differs from the default provider's",
              which);
}

static void rec_free(struct rec *r)
{
    free(r->in);
    free(r->out);
    free(r->ref);
}

/*
 * One live context of ours. Single calls: CBC/CTR keep one stream going
 * (each step is one more EVP_EncryptUpdate, the reference is the same stream
 * through the default provider); GCM starts a new message per step with only
 * a new IV (the key stays). Pipelines: each step re-initialises with only new
 * IVs (cipher and key NULL: the same key handle) and runs PIPES records each
 * way.
 */
struct live {
    int m, pipe, step;
    unsigned char key[32];
    EVP_CIPHER_CTX *x, *ref; /* single CBC/CTR: ours and the reference stream */
};

static int live_new(struct live *L, int m, int pipe)
{
    unsigned char iv[16];

    memset(L, 0, sizeof(*L));
    L->m = m;
    L->pipe = pipe;
    tu_rand_bytes(L->key, sizeof(L->key));
    tu_rand_bytes(iv, sizeof(iv));
    L->x = EVP_CIPHER_CTX_new();
    if (L->x == NULL)
        return 0;
    if (pipe || m == M_GCM)
        return 1;
    L->ref = EVP_CIPHER_CTX_new();
    return L->ref != NULL && EVP_EncryptInit_ex2(L->x, ours_c[m], L->key, iv, NULL) &&
           EVP_CIPHER_CTX_set_padding(L->x, 0) &&
           EVP_EncryptInit_ex2(L->ref, ref_c[m], L->key, iv, NULL) &&
           EVP_CIPHER_CTX_set_padding(L->ref, 0);
}

static void live_free(struct live *L)
{
    EVP_CIPHER_CTX_free(L->x);
    EVP_CIPHER_CTX_free(L->ref);
}

static void step_single(struct live *L, const char *tag)
{
    /* CTR: a partial block every time, so each call runs as two records
     * coalesced on the ecb(aes) sockets, the same ones each time. */
    size_t len = L->m == M_CBC ? 4096 : 4096 + 7;
    struct rec r;
    int l = 0, lr = 0, lf = 0;
    char which[96];

    snprintf(which, sizeof(which), "%s single call %d", tag, L->step);
    if (L->m != M_GCM) {
        rec_make(&r, L->m, L->key, len, 1);
        CHECK(EVP_EncryptUpdate(L->x, r.out, &l, r.in, (int)len) && (size_t)l == len,
              "%s: update: %s", which, tu_errors());
        CHECK(EVP_EncryptUpdate(L->ref, r.ref, &lr, r.in, (int)len) && (size_t)lr == len,
              "%s: reference: %s", which, tu_errors());
        rec_check(&r, L->m, 1, which);
        rec_free(&r);
        L->step++;
        return;
    }
    rec_make(&r, L->m, L->key, len, 1);
    CHECK(EVP_EncryptInit_ex2(L->x, L->step ? NULL : ours_c[L->m], L->step ? NULL : L->key, r.iv,
                              NULL) &&
              EVP_EncryptUpdate(L->x, NULL, &lr, r.aad, 13) &&
              EVP_EncryptUpdate(L->x, r.out, &l, r.in, (int)len) &&
              EVP_EncryptFinal_ex(L->x, r.out + l, &lf) && (size_t)(l + lf) == len &&
              EVP_CIPHER_CTX_ctrl(L->x, EVP_CTRL_AEAD_GET_TAG, 16, r.tag),
          "%s: %s", which, tu_errors());
    rec_check(&r, L->m, 1, which);
    rec_free(&r);
    L->step++;
}

#ifdef KAIO_HAVE_EVP_PIPELINE
static void step_pipe_dir(struct live *L, int enc, const char *tag)
{
    struct rec r[PIPES];
    const unsigned char *ivs[PIPES], *in[PIPES];
    unsigned char *out[PIPES], *tags[PIPES];
    size_t inl[PIPES], outl[PIPES], outsize[PIPES], i;
    void *tagarray = tags;
    OSSL_PARAM tp[2] = {OSSL_PARAM_END, OSSL_PARAM_END};
    int ok, first = L->step == 0, gcm = L->m == M_GCM;
    char which[96];

    snprintf(which, sizeof(which), "%s pipeline %d %s", tag, L->step, enc ? "encrypt" : "decrypt");
    for (i = 0; i < PIPES; i++) {
        rec_make(&r[i], L->m, L->key, 1024 + 16 * i + (L->m == M_CBC ? 0 : i), enc);
        ivs[i] = r[i].iv;
        tags[i] = r[i].tag;
    }
    /* The first init gives the key; later ones keep it (cipher and key NULL). */
    ok = enc ? EVP_CipherPipelineEncryptInit(L->x, first ? ours_c[L->m] : NULL,
                                             first ? L->key : NULL, first ? keylens[L->m] : 0,
                                             PIPES, ivs, gcm ? 12 : 16)
             : EVP_CipherPipelineDecryptInit(L->x, first ? ours_c[L->m] : NULL,
                                             first ? L->key : NULL, first ? keylens[L->m] : 0,
                                             PIPES, ivs, gcm ? 12 : 16);
    CHECK(ok, "%s: init: %s", which, tu_errors());
    if (L->m == M_CBC)
        CHECK(EVP_CIPHER_CTX_set_padding(L->x, 0), "%s: padding: %s", which, tu_errors());
    if (gcm) {
        for (i = 0; i < PIPES; i++) {
            in[i] = r[i].aad;
            inl[i] = 13;
        }
        CHECK(EVP_CipherPipelineUpdate(L->x, NULL, outl, NULL, in, inl), "%s: AAD: %s", which,
              tu_errors());
        tp[0] = OSSL_PARAM_construct_octet_ptr(OSSL_CIPHER_PARAM_PIPELINE_AEAD_TAG, &tagarray, 16);
        if (!enc)
            CHECK(EVP_CIPHER_CTX_set_params(L->x, tp), "%s: tags: %s", which, tu_errors());
    }
    for (i = 0; i < PIPES; i++) {
        in[i] = r[i].in;
        inl[i] = r[i].len;
        out[i] = r[i].out;
        outsize[i] = r[i].len;
    }
    CHECK(EVP_CipherPipelineUpdate(L->x, out, outl, outsize, in, inl), "%s: update: %s", which,
          tu_errors());
    for (i = 0; i < PIPES; i++) {
        CHECK(outl[i] == r[i].len, "%s: pipe %zu gave %zu bytes", which, i, outl[i]);
        outsize[i] = 0;
        out[i] = r[i].out + r[i].len;
    }
    CHECK(EVP_CipherPipelineFinal(L->x, out, outl, outsize), "%s: final: %s", which, tu_errors());
    if (gcm && enc)
        CHECK(EVP_CIPHER_CTX_get_params(L->x, tp), "%s: get tags: %s", which, tu_errors());
    for (i = 0; i < PIPES; i++) {
        char w[128];

        snprintf(w, sizeof(w), "%s, pipe %zu", which, i);
        rec_check(&r[i], L->m, enc, w);
        rec_free(&r[i]);
    }
    L->step++;
}
#endif

/* One step: the call(s) a program would make next on its live context. */
static void step(struct live *L, const char *tag)
{
#ifdef KAIO_HAVE_EVP_PIPELINE
    if (L->pipe) {
        int first = L->step == 0;

        step_pipe_dir(L, 1, tag);
        if (!first)
            step_pipe_dir(L, 0, tag); /* decryption: CBC runs coalesced, on other sockets */
        return;
    }
#endif
    step_single(L, tag);
}

/* ---------------- the takers ---------------- */

struct tcp_fill {
    int lfd, waiting, n, fd[MAXFD];
};

/* Onto the numbers of e: a listener at the first (where the tfm was) with a
 * connection waiting, connected TCP sockets at the others (client and server
 * ends by turns; their peers elsewhere). */
static void fill_tcp(struct tcp_fill *t, const struct fdset *e)
{
    int port, i;

    t->n = 0;
    t->waiting = -1;
    hold(e);
    t->lfd = put_at(tu_tcp_listen(&port), e->fd[0]);
    CHECK(t->lfd >= 0, "loopback TCP listener: %s", strerror(errno));
    if (t->lfd < 0)
        return;
    for (i = 1; i < e->n; i++) {
        int c = tu_tcp_connect(port), s = accept4(t->lfd, NULL, NULL, SOCK_CLOEXEC);

        CHECK(c >= 0 && s >= 0, "TCP pair: %s", strerror(errno));
        if (c < 0 || s < 0)
            return;
        if (i % 2)
            c = put_at(c, e->fd[i]);
        else
            s = put_at(s, e->fd[i]);
        t->fd[t->n++] = c;
        t->fd[t->n++] = s;
    }
    t->waiting = tu_tcp_connect(port);
    CHECK(t->waiting >= 0, "TCP connect: %s", strerror(errno));
}

static void check_tcp(const struct tcp_fill *t)
{
    int i, a;

    for (i = 0; i < t->n; i++)
        CHECK(tu_bytes_waiting(t->fd[i]) == 0, "%d bytes arrived on TCP socket %d",
              tu_bytes_waiting(t->fd[i]), t->fd[i]);
    CHECK(tu_bytes_waiting(t->waiting) == 0, "bytes arrived on the waiting TCP client");
    if (t->lfd < 0)
        return;
    a = accept4(t->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    CHECK(a >= 0, "the connection waiting on listener %d was taken (%s)", t->lfd, strerror(errno));
    if (a >= 0) {
        CHECK(tu_bytes_waiting(a) == 0, "bytes arrived on the waiting connection");
        close(a);
    }
}

struct alg_fill {
    int m, tfm, n, op[MAXFD];
    unsigned char key[32];
};

/* Onto the numbers of e: someone else's tfm of the same algorithm (another
 * key) at the first, its op sockets at the others. */
static void fill_alg(struct alg_fill *f, int m, const struct fdset *e)
{
    int i;

    f->m = m;
    f->n = 0;
    tu_rand_bytes(f->key, sizeof(f->key));
    hold(e);
    f->tfm = put_at(alg_tfm(m, f->key), e->fd[0]);
    CHECK(f->tfm >= 0, "foreign AF_ALG %s: %s", alg_names[m], strerror(errno));
    if (f->tfm < 0)
        return;
    for (i = 1; i < e->n; i++) {
        int op = accept4(f->tfm, NULL, NULL, SOCK_CLOEXEC);

        CHECK(op >= 0, "foreign accept: %s", strerror(errno));
        if (op < 0)
            return;
        f->op[f->n++] = put_at(op, e->fd[i]);
    }
}

/* Each foreign op socket, and a new one from the foreign tfm, still encrypt
 * under the foreign key. */
static void check_alg(const struct alg_fill *f)
{
    unsigned char iv[16], in[256], out[256 + 16], ref[256 + 16];
    int i;

    for (i = 0; i <= f->n; i++) {
        int fd = i < f->n ? f->op[i] : accept4(f->tfm, NULL, NULL, SOCK_CLOEXEC);

        tu_rand_bytes(iv, sizeof(iv));
        tu_rand_bytes(in, sizeof(in));
        CHECK(evp_once(f->m, ref_c[f->m], 1, f->key, iv, NULL, 0, in, sizeof(in), ref,
                       ref + sizeof(in)),
              "foreign reference");
        CHECK(fd >= 0 && alg_encrypt(f->m, fd, iv, in, sizeof(in), out) == 0,
              "foreign op socket %d: %s", fd, strerror(errno));
        CHECK(memcmp(out, ref, sizeof(in) + (f->m == M_GCM ? 16 : 0)) == 0,
              "foreign op socket %d no longer gives its own output", fd);
        if (i == f->n && fd >= 0)
            close(fd);
    }
}

/* ---------------- a case ---------------- */

static void run_case(int m, int taker, int pipe)
{
    struct live A, B;
    struct fdset before, others;
    struct tcp_fill tcp;
    struct alg_fill alg;
    uint64_t sw0, lost0, lost1, fdlost0;
    char fdlost_name[128];
    int i, null_fds = 0, nalg;

    snprintf(what, sizeof(what), "%s %s %s", cipher_names[m], pipe ? "pipeline" : "single",
             taker_names[taker]);
    snprintf(fdlost_name, sizeof(fdlost_name), "fallback[%s]",
             "socket fd closed or taken over, no new socket");
    alarm(HANG_SECONDS);
    sw0 = counter("ops_software");
    fdlost0 = counter(fdlost_name);
    if (!live_new(&A, m, pipe)) {
        CHECK(0, "context: %s", tu_errors());
        return;
    }
    step(&A, "before");
    snapshot(&before);
    nalg = count_alg(&before);
    CHECK(nalg >= 2, "the context holds %d AF_ALG sockets (the kernel did not run it?)", nalg);

    close_from_3();
    memset(&B, 0, sizeof(B));
    memset(&tcp, 0, sizeof(tcp));
    memset(&alg, 0, sizeof(alg));
    if (taker == T_TCP)
        fill_tcp(&tcp, &before);
    else if (taker == T_ALG)
        fill_alg(&alg, m, &before);
    else {
        /* Its sockets take the numbers as the kernel hands them out. */
        CHECK(live_new(&B, m, pipe), "second context: %s", tu_errors());
        step(&B, "second key");
        for (i = 0; i < before.n; i++)
            if (identity(before.fd[i]) == 0) {
                put_at(open("/dev/null", O_RDONLY | O_CLOEXEC), before.fd[i]);
                null_fds++;
            }
    }
    snapshot(&others);
    for (i = 0; i < before.n; i++)
        CHECK(identity(before.fd[i]) != 0, "fd %d, kcapi-aio's before, was not taken",
              before.fd[i]);

    lost0 = counter("fds_lost");
    step(&A, "after");
    step(&A, "again");
    lost1 = counter("fds_lost");
    CHECK(lost1 > lost0, "no fd was found taken over (fds_lost %llu -> %llu)",
          (unsigned long long)lost0, (unsigned long long)lost1);
    check_untouched(&others, "after the calls");
    if (taker == T_TCP)
        check_tcp(&tcp);
    else if (taker == T_ALG)
        check_alg(&alg);
    else {
        uint64_t l = counter("fds_lost");

        step(&B, "second key");
        CHECK(counter("fds_lost") == l, "the second context lost sockets");
    }
    live_free(&A);
    check_untouched(&others, "after freeing the context");
    live_free(&B);
    CHECK(counter("ops_software") == sw0, "%llu records ran in software",
          (unsigned long long)(counter("ops_software") - sw0));
    CHECK(counter(fdlost_name) == fdlost0, "records given up for lost fds");
    printf("%-11s %-8s %-3s: fds taken %d (of which AF_ALG %d), kcapi-aio found %llu lost%s\n",
           cipher_names[m], pipe ? "pipeline" : "single", taker_names[taker], before.n, nalg,
           (unsigned long long)(lost1 - lost0), null_fds ? ", rest filled with files" : "");
    close_from_3();
    alarm(0);
}

int main(int argc, char **argv)
{
    const char *req = getenv("KAIO_REQUIRE_KERNEL"), *only = argc > 1 ? argv[1] : NULL;
    int fd = socket(AF_ALG, SOCK_SEQPACKET, 0), m, t, pipe, npipe = 1;

    if (fd < 0) {
        printf("test_fd_takeover: no AF_ALG here (%s)%s\n", strerror(errno),
               req != NULL && *req == '1' ? ": required" : ": skipped");
        return req != NULL && *req == '1' ? 1 : 77;
    }
    close(fd);
    signal(SIGALRM, hung);
    signal(SIGPIPE, SIG_IGN);
    for (m = 0; m < NMODES; m++) {
        ours_c[m] = tu_load_ours() ? EVP_CIPHER_fetch(tu_load_ours(), cipher_names[m], NULL) : NULL;
        ref_c[m] = tu_load_ref() ? EVP_CIPHER_fetch(tu_load_ref(), cipher_names[m], NULL) : NULL;
        if (ours_c[m] == NULL || ref_c[m] == NULL) {
            fprintf(stderr, "FAIL: fetch %s: %s\n", cipher_names[m], tu_errors());
            return 1;
        }
    }
#ifdef KAIO_HAVE_EVP_PIPELINE
    npipe = 2;
#else
    printf(
        "pipeline cases: not built (this OpenSSL has no pipeline API; the 3.5 build runs them)\n");
#endif
    /* Nothing of the test itself above fd 2, so every fd the context's first
     * calls open is kcapi-aio's. */
    close_from_3();
    for (m = 0; m < NMODES; m++)
        for (t = 0; t < NTAKERS; t++)
            for (pipe = 0; pipe < npipe; pipe++)
                if (only == NULL || strcmp(only, taker_names[t]) == 0)
                    run_case(m, t, pipe);
    for (m = 0; m < NMODES; m++) {
        EVP_CIPHER_free(ours_c[m]);
        EVP_CIPHER_free(ref_c[m]);
    }
    printf("test_fd_takeover: %s (backend %s)\n", failures ? "FAILED" : "passed",
           getenv("KCAPI_AIO_BACKEND") ? getenv("KCAPI_AIO_BACKEND") : "auto");
    return failures ? 1 : 0;
}

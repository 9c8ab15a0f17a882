/*
 * Process-level state of the engine: settings, the fork generation, the fd
 * budget, and the kernel capability probe (cached, redone in a forked child).
 */
#include "internal.h"
#include "kaio_test.h"
#include "sys.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/cryptouser.h>
#include <linux/netlink.h>

/* ---------------- settings, fork generation, fd budget ---------------- */

static atomic_uint fork_gen = 1;
static atomic_uint fd_budget_setting;
static atomic_uint fds_held;
static atomic_int aio_disabled;
static _Atomic size_t chunk_limit;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* Kept trivial on purpose: a child only learns it is a child. */
static void atfork_child(void)
{
    atomic_fetch_add(&fork_gen, 1);
}

static void init_process(void)
{
    pthread_atfork(NULL, NULL, atfork_child);
}

void kaio_init(void)
{
    pthread_once(&init_once, init_process);
}

unsigned kaio_fork_generation(void)
{
    return atomic_load_explicit(&fork_gen, memory_order_relaxed);
}

void kaio_set_fd_budget(unsigned int fds)
{
    atomic_store(&fd_budget_setting, fds);
}

unsigned kaio_fd_budget(void)
{
    unsigned b = atomic_load(&fd_budget_setting);

    return b ? b : KAIO_DEFAULT_FD_BUDGET;
}

int kaio_fd_reserve(void)
{
    unsigned cur = atomic_load(&fds_held);

    do {
        if (cur >= kaio_fd_budget())
            return -1;
    } while (!atomic_compare_exchange_weak(&fds_held, &cur, cur + 1));
    return 0;
}

void kaio_fd_release(void)
{
    atomic_fetch_sub(&fds_held, 1);
}

unsigned kaio_fds_held(void)
{
    return atomic_load(&fds_held);
}

void kaio_set_aio_disabled(int disabled)
{
    atomic_store(&aio_disabled, disabled != 0);
}

int kaio_aio_disabled(void)
{
    return atomic_load_explicit(&aio_disabled, memory_order_relaxed);
}

static atomic_int coalesce;

void kaio_set_coalesce(int on)
{
    atomic_store(&coalesce, on != 0);
}

int kaio_coalesce(void)
{
    return atomic_load_explicit(&coalesce, memory_order_relaxed);
}

static atomic_int async_batch;

void kaio_set_async_batch(int on)
{
    atomic_store(&async_batch, on != 0);
}

int kaio_async_batch(void)
{
    return atomic_load_explicit(&async_batch, memory_order_relaxed);
}

void kaio_set_chunk_limit(size_t bytes)
{
    atomic_store(&chunk_limit, bytes);
}

size_t kaio_chunk_limit(void)
{
    return atomic_load_explicit(&chunk_limit, memory_order_relaxed);
}

/* ---------------- algorithms ---------------- */

const char *kaio_alg_name(enum kaio_mode m)
{
    static const char *const n[KAIO_NMODES] = { "cbc(aes)", "ctr(aes)", "gcm(aes)" };

    return (unsigned)m < KAIO_NMODES ? n[m] : "";
}

const char *kaio_alg_type(enum kaio_mode m)
{
    return m == KAIO_GCM ? "aead" : "skcipher";
}

/* An AF_ALG socket bound to name (an algorithm or a driver name); fd or -errno. */
static int alg_open_name(enum kaio_mode m, const char *name)
{
    struct sockaddr_alg sa;
    int fd, r;

    memset(&sa, 0, sizeof(sa));
    sa.salg_family = AF_ALG;
    strcpy((char *)sa.salg_type, kaio_alg_type(m));
    if (strlen(name) >= sizeof(sa.salg_name))
        return -ENAMETOOLONG;
    strcpy((char *)sa.salg_name, name);
    fd = kaio_sys_socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fd;
    r = kaio_sys_bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    if (r < 0) {
        kaio_sys_close(fd);
        return r;
    }
    return fd;
}

int kaio_alg_open(enum kaio_mode m)
{
    const struct kaio_mode_caps *mc = &kaio_probe()->mode[m];

    /* The driver the probe classified, by name: if it is gone (module
     * removed), binding fails and the key runs in software rather than on
     * whatever the kernel would pick instead. */
    return alg_open_name(m, mc->driver[0] ? mc->driver : kaio_alg_name(m));
}

/* ---------------- probe ---------------- */

static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint probe_gen; /* fork generation the cache was made in; 0 = none */
static struct kaio_caps probe_caps;       /* as found */
static struct kaio_caps probe_caps_noaio; /* the same with AIO hidden */

#define CRYPTO_ALG_KERN_DRIVER_ONLY 0x00001000u

/* A driver's CRYPTO_ALG_* flags over NETLINK_CRYPTO (module crypto_user);
 * 0 when the kernel answered. */
static int driver_flags(const char *driver, uint32_t *flags)
{
    struct {
        struct nlmsghdr h;
        struct crypto_user_alg a;
    } req;
    union {
        struct nlmsghdr h;
        char buf[4096];
    } resp;
    const struct crypto_user_alg *a;
    ssize_t r;

    memset(&req, 0, sizeof(req));
    req.h.nlmsg_len = sizeof(req);
    req.h.nlmsg_type = CRYPTO_MSG_GETALG;
    req.h.nlmsg_flags = NLM_F_REQUEST;
    snprintf(req.a.cru_driver_name, sizeof(req.a.cru_driver_name), "%s", driver);
    r = kaio_sys_netlink_query(NETLINK_CRYPTO, &req, sizeof(req), &resp, sizeof(resp));
    if (r < (ssize_t)NLMSG_LENGTH(sizeof(*a)) || resp.h.nlmsg_type != CRYPTO_MSG_GETALG
        || resp.h.nlmsg_len < NLMSG_LENGTH(sizeof(*a)) || (ssize_t)resp.h.nlmsg_len > r)
        return -1;
    a = NLMSG_DATA(&resp.h);
    *flags = a->cru_flags;
    return 0;
}

/*
 * Which driver AF_ALG binds for a mode, and what runs it. /proc/crypto lists
 * every driver of the algorithm (read while a bound socket keeps template
 * instances registered); the highest-priority one that AF_ALG can bind by its
 * driver name is the one binding the algorithm name gives. Linux 7.2 lists a
 * device first yet refuses to bind it: that one is kept as "listed".
 */
static void find_driver(const char *text, enum kaio_mode m, struct kaio_mode_caps *mc)
{
    struct kaio_crypto_entry list[16];
    size_t n = kaio_crypto_drivers(text, kaio_alg_name(m), list, 16), i;
    int known = 0;

    for (i = 0; i < n; i++) {
        int fd = alg_open_name(m, list[i].driver);

        if (fd >= 0) {
            kaio_sys_close(fd);
            break;
        }
    }
    if (i == n) {
        /* Nothing binds by driver name: unknown, so counted as a device. */
        mc->drv_class = kaio_driver_classify(text, "", 0, 0, &known);
        return;
    }
    snprintf(mc->driver, sizeof(mc->driver), "%s", list[i].driver);
    snprintf(mc->module, sizeof(mc->module), "%s", list[i].module);
    mc->drv_flags_known = driver_flags(mc->driver, &mc->drv_flags) == 0;
    mc->drv_class = kaio_driver_classify(text, mc->driver, mc->drv_flags, mc->drv_flags_known, &known);
    mc->drv_known = known;
    if (i > 0) {
        uint32_t f = 0;
        int fk = driver_flags(list[0].driver, &f) == 0;

        snprintf(mc->listed, sizeof(mc->listed), "%s", list[0].driver);
        mc->listed_class = kaio_driver_classify(text, list[0].driver, f, fk, &known);
    }
    /* Devices have scatter-gather limits of their own (virtio-crypto stalls
     * on one 128 KiB operation): their operations stay small. */
    if (mc->drv_class == KAIO_DRV_DEVICE)
        mc->op_cap = KAIO_DEVICE_MAX_OP;
}

/* Known answers, so the AIO probe checks output and not only completion:
 * FIPS-197 C.1 (AES-128) through CBC with a zero IV and through CTR with the
 * plaintext as counter block; GCM test case 2 (all-zero key, IV, block). */
static const unsigned char kat_key[16] = { 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                           0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f };
static const unsigned char kat_pt[16] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                          0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
static const unsigned char kat_ct[16] = { 0x69, 0xc4, 0xe0, 0xd8, 0x6a, 0x7b, 0x04, 0x30,
                                          0xd8, 0xcd, 0xb7, 0x80, 0x70, 0xb4, 0xc5, 0x5a };
static const unsigned char kat_gcm[32] = {
    0x03, 0x88, 0xda, 0xce, 0x60, 0xb6, 0xa3, 0x92, 0xf3, 0x28, 0xc2, 0xb9, 0x71, 0xb2, 0xfe, 0x78,
    0xab, 0x6e, 0x47, 0xd4, 0x2c, 0xec, 0x13, 0xbd, 0xf5, 0x3a, 0x67, 0xb2, 0x12, 0x57, 0xbd, 0xdf,
};

/* One real AIO encryption on a fresh tfm; 0 when it completed correctly. */
static int probe_aio_submit(enum kaio_mode m, io_context_t ctx)
{
    unsigned char key[16] = { 0 }, iv[16] = { 0 }, in[16] = { 0 }, out[32];
    const unsigned char *expect = kat_gcm;
    size_t ivlen = 16, outlen = 16;
    char cbuf[CMSG_SPACE(sizeof(uint32_t)) + CMSG_SPACE(sizeof(struct af_alg_iv) + 16)];
    struct msghdr msg;
    struct cmsghdr *c;
    struct iovec iov = { in, sizeof(in) };
    struct af_alg_iv *aiv;
    struct iocb cb, *cbs[1] = { &cb };
    struct io_event ev;
    struct timespec ts = { 5, 0 };
    int tfm, op = -1, r;

    if (m == KAIO_CBC) {
        memcpy(key, kat_key, 16);
        memcpy(in, kat_pt, 16);
        expect = kat_ct;
    } else if (m == KAIO_CTR) {
        memcpy(key, kat_key, 16);
        memcpy(iv, kat_pt, 16);
        expect = kat_ct;
    } else {
        ivlen = 12;
        outlen = 32;
    }
    tfm = alg_open_name(m, kaio_alg_name(m));
    if (tfm < 0)
        return tfm;
    r = kaio_sys_setsockopt(tfm, SOL_ALG, ALG_SET_KEY, key, 16);
    if (r == 0 && m == KAIO_GCM)
        r = kaio_sys_setsockopt(tfm, SOL_ALG, ALG_SET_AEAD_AUTHSIZE, NULL, 16);
    if (r == 0)
        r = op = kaio_sys_accept(tfm);
    if (r < 0)
        goto out;
    memset(cbuf, 0, sizeof(cbuf));
    memset(&msg, 0, sizeof(msg));
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof(cbuf);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_ALG;
    c->cmsg_type = ALG_SET_OP;
    c->cmsg_len = CMSG_LEN(sizeof(uint32_t));
    *(uint32_t *)CMSG_DATA(c) = ALG_OP_ENCRYPT;
    c = CMSG_NXTHDR(&msg, c);
    c->cmsg_level = SOL_ALG;
    c->cmsg_type = ALG_SET_IV;
    c->cmsg_len = CMSG_LEN(sizeof(*aiv) + ivlen);
    aiv = (struct af_alg_iv *)CMSG_DATA(c);
    aiv->ivlen = (uint32_t)ivlen;
    memcpy(aiv->iv, iv, ivlen);
    msg.msg_controllen = CMSG_SPACE(sizeof(uint32_t)) + CMSG_SPACE(sizeof(*aiv) + ivlen);
    r = (int)kaio_sys_sendmsg(op, &msg, MSG_DONTWAIT);
    if (r < 0)
        goto out;
    memset(out, 0, sizeof(out));
    io_prep_pread(&cb, op, out, outlen, 0);
    r = kaio_sys_io_submit(ctx, 1, cbs);
    if (r != 1) {
        r = r < 0 ? r : -EAGAIN;
        goto out;
    }
    r = kaio_sys_io_getevents(ctx, 1, 1, &ev, &ts);
    if (r != 1) {
        /* Never leave a request pointing at this stack frame. */
        kaio_sys_io_destroy(ctx);
        r = r < 0 ? r : -ETIMEDOUT;
        goto out_nodestroy;
    }
    r = (long)ev.res == (long)outlen && memcmp(out, expect, outlen) == 0 ? 0
        : (long)ev.res < 0                                               ? (int)(long)ev.res
                                                                         : -EIO;
out:
    kaio_sys_io_destroy(ctx);
out_nodestroy:
    if (op >= 0)
        kaio_sys_close(op);
    kaio_sys_close(tfm);
    return r;
}

static void probe_run(struct kaio_caps *caps)
{
    static char text[256 * 1024]; /* under probe_lock */
    int fds[KAIO_NMODES], fd, m, have_text = 0;
    io_context_t ctx = 0;

    memset(caps, 0, sizeof(*caps));
    for (m = 0; m < KAIO_NMODES; m++) {
        fds[m] = -1;
        snprintf(caps->mode[m].alg, sizeof(caps->mode[m].alg), "%s", kaio_alg_name(m));
    }
    fd = kaio_sys_socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        caps->af_alg = 1;
        kaio_sys_close(fd);
    } else {
        caps->af_alg_err = -fd;
    }
    for (m = 0; m < KAIO_NMODES; m++) {
        struct kaio_mode_caps *mc = &caps->mode[m];

        if (!caps->af_alg) {
            mc->reason = KAIO_R_NO_AF_ALG;
            mc->err = caps->af_alg_err;
            continue;
        }
        fds[m] = alg_open_name(m, kaio_alg_name(m));
        if (fds[m] >= 0) {
            mc->available = 1;
        } else {
            mc->reason = fds[m] == -EMFILE || fds[m] == -ENFILE ? KAIO_R_FD_BUDGET : KAIO_R_ALG_MISSING;
            mc->err = -fds[m];
        }
    }
    if (caps->af_alg && kaio_sys_read_file("/proc/crypto", text, sizeof(text)) > 0)
        have_text = 1;
    for (m = 0; m < KAIO_NMODES; m++) {
        if (have_text && caps->mode[m].available)
            find_driver(text, m, &caps->mode[m]);
        else if (caps->mode[m].available)
            caps->mode[m].drv_class = KAIO_DRV_DEVICE; /* no /proc/crypto: unknown, a device */
        if (fds[m] >= 0)
            kaio_sys_close(fds[m]);
    }

    /* AIO: a context must be creatable and, where AF_ALG exists, one real
     * encryption must come back right (7.2 runs it synchronously: still right). */
    caps->aio_err = -kaio_sys_io_setup(1, &ctx);
    if (caps->aio_err == 0) {
        int done = 0;

        for (m = 0; m < KAIO_NMODES && !done; m++) {
            if (!caps->mode[m].available)
                continue;
            caps->aio_err = -probe_aio_submit(m, ctx);
            done = 1;
        }
        if (!done)
            kaio_sys_io_destroy(ctx);
        caps->aio = caps->aio_err == 0;
    }
}

const struct kaio_caps *kaio_probe(void)
{
    unsigned gen;

    kaio_init();
    gen = kaio_fork_generation();
    if (atomic_load_explicit(&probe_gen, memory_order_acquire) != gen) {
        pthread_mutex_lock(&probe_lock);
        if (atomic_load(&probe_gen) != gen) {
            int m, transient;

            probe_run(&probe_caps);
            probe_caps_noaio = probe_caps;
            probe_caps_noaio.aio = 0;
            /* Out of fds is a passing state, not a kernel property: not cached. */
            transient = probe_caps.af_alg_err == EMFILE || probe_caps.af_alg_err == ENFILE;
            for (m = 0; m < KAIO_NMODES; m++)
                transient |= probe_caps.mode[m].reason == KAIO_R_FD_BUDGET;
            if (!transient)
                atomic_store_explicit(&probe_gen, gen, memory_order_release);
        }
        pthread_mutex_unlock(&probe_lock);
    }
    return kaio_aio_disabled() ? &probe_caps_noaio : &probe_caps;
}

/* Kernel-lab self-check, independent of the provider: AF_ALG exists and the
 * kernel's cbc(aes), ctr(aes) and gcm(aes) give the published answers (NIST
 * SP 800-38A F.2.1 / F.5.1, GCM spec test case 4), and socket AIO works.
 *
 *   klab-afalg-check [--gcm=yes|no] [--aio=yes|no]
 *
 * --gcm=no expects gcm(aes) to be missing (bind fails with ENOENT) and
 * --aio=no expects io_setup to fail with EAGAIN: the lab's no-gcm and no-aio
 * scenarios use them to prove they removed what they say. Exit 0 when every
 * check holds, 1 otherwise. */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <linux/aio_abi.h>
#include <linux/if_alg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#ifndef SOL_ALG
#define SOL_ALG 279
#endif

static int failures;

static void report(int ok, const char *what, const char *detail)
{
    printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", what, detail ? ": " : "", detail ? detail : "");
    if (!ok)
        failures++;
}

static size_t unhex(const char *s, unsigned char *out)
{
    size_t n = 0;
    for (; s[0] && s[1]; s += 2) {
        unsigned v;
        sscanf(s, "%2x", &v);
        out[n++] = (unsigned char)v;
    }
    return n;
}

/* A keyed tfm socket, or -errno. */
static int tfm_open(const char *type, const char *name, const unsigned char *key, size_t klen,
                    unsigned authsize)
{
    struct sockaddr_alg sa = { .salg_family = AF_ALG };
    int fd = socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    snprintf((char *)sa.salg_type, sizeof(sa.salg_type), "%s", type);
    snprintf((char *)sa.salg_name, sizeof(sa.salg_name), "%s", name);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        setsockopt(fd, SOL_ALG, ALG_SET_KEY, key, (socklen_t)klen) < 0 ||
        (authsize && setsockopt(fd, SOL_ALG, ALG_SET_AEAD_AUTHSIZE, NULL, authsize) < 0)) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* Queue one operation (op, IV, assoclen, data) on an op socket. */
static int op_send(int op, int encrypt, const unsigned char *iv, size_t ivlen, uint32_t assoclen,
                   const unsigned char *in, size_t inlen)
{
    union {
        char buf[CMSG_SPACE(sizeof(uint32_t)) + CMSG_SPACE(sizeof(struct af_alg_iv) + 16) +
                 CMSG_SPACE(sizeof(uint32_t))];
        struct cmsghdr align;
    } c;
    struct iovec iov = { .iov_base = (void *)in, .iov_len = inlen };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf,
                          .msg_controllen = sizeof(c.buf) };
    memset(&c, 0, sizeof(c));
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_ALG;
    cm->cmsg_type = ALG_SET_OP;
    cm->cmsg_len = CMSG_LEN(sizeof(uint32_t));
    *(uint32_t *)CMSG_DATA(cm) = encrypt ? ALG_OP_ENCRYPT : ALG_OP_DECRYPT;
    cm = CMSG_NXTHDR(&msg, cm);
    cm->cmsg_level = SOL_ALG;
    cm->cmsg_type = ALG_SET_IV;
    cm->cmsg_len = CMSG_LEN(sizeof(struct af_alg_iv) + ivlen);
    struct af_alg_iv *aiv = (struct af_alg_iv *)CMSG_DATA(cm);
    aiv->ivlen = (uint32_t)ivlen;
    memcpy(aiv->iv, iv, ivlen);
    cm = CMSG_NXTHDR(&msg, cm);
    cm->cmsg_level = SOL_ALG;
    cm->cmsg_type = ALG_SET_AEAD_ASSOCLEN;
    cm->cmsg_len = CMSG_LEN(sizeof(uint32_t));
    *(uint32_t *)CMSG_DATA(cm) = assoclen;
    ssize_t n = sendmsg(op, &msg, 0);
    return n == (ssize_t)inlen ? 0 : -1;
}

/* One synchronous operation; returns bytes read or -errno. */
static ssize_t one_op(int tfm, int encrypt, const unsigned char *iv, size_t ivlen, uint32_t assoclen,
                      const unsigned char *in, size_t inlen, unsigned char *out, size_t outlen)
{
    int op = accept4(tfm, NULL, NULL, SOCK_CLOEXEC);
    if (op < 0)
        return -errno;
    ssize_t r = -1;
    if (op_send(op, encrypt, iv, ivlen, assoclen, in, inlen) == 0)
        r = read(op, out, outlen);
    if (r < 0)
        r = -errno;
    close(op);
    return r;
}

static void check_bytes(const char *what, ssize_t got, const unsigned char *out,
                        const unsigned char *want, size_t wantlen)
{
    char detail[96];
    if (got < 0) {
        snprintf(detail, sizeof(detail), "%s", strerror((int)-got));
        report(0, what, detail);
    } else if ((size_t)got != wantlen || memcmp(out, want, wantlen) != 0) {
        snprintf(detail, sizeof(detail), "wrong output (%zd bytes)", got);
        report(0, what, detail);
    } else {
        report(1, what, NULL);
    }
}

static const char *cbc_key = "2b7e151628aed2a6abf7158809cf4f3c";
static const char *cbc_iv = "000102030405060708090a0b0c0d0e0f";
static const char *cbc_pt = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51";
static const char *cbc_ct = "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2";

static void check_cbc(void)
{
    unsigned char key[16], iv[16], pt[32], ct[32], out[32];
    unhex(cbc_key, key), unhex(cbc_iv, iv), unhex(cbc_pt, pt), unhex(cbc_ct, ct);
    int tfm = tfm_open("skcipher", "cbc(aes)", key, 16, 0);
    if (tfm < 0) {
        report(0, "cbc(aes) bind+setkey", strerror(-tfm));
        return;
    }
    check_bytes("cbc(aes) encrypt (SP 800-38A F.2.1)", one_op(tfm, 1, iv, 16, 0, pt, 32, out, 32), out, ct, 32);
    check_bytes("cbc(aes) decrypt (SP 800-38A F.2.2)", one_op(tfm, 0, iv, 16, 0, ct, 32, out, 32), out, pt, 32);
    close(tfm);
}

static void check_ctr(void)
{
    unsigned char key[16], iv[16], pt[32], ct[32], out[32];
    unhex(cbc_key, key), unhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", iv), unhex(cbc_pt, pt);
    unhex("874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff", ct);
    int tfm = tfm_open("skcipher", "ctr(aes)", key, 16, 0);
    if (tfm < 0) {
        report(0, "ctr(aes) bind+setkey", strerror(-tfm));
        return;
    }
    check_bytes("ctr(aes) encrypt (SP 800-38A F.5.1)", one_op(tfm, 1, iv, 16, 0, pt, 32, out, 32), out, ct, 32);
    close(tfm);
}

static void check_gcm(int expect)
{
    unsigned char key[16], iv[12], aad[20], pt[60], ct[60], tag[16], buf[20 + 60 + 16], out[sizeof(buf)];
    unhex("feffe9928665731c6d6a8f9467308308", key), unhex("cafebabefacedbaddecaf888", iv);
    unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2", aad);
    unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39", pt);
    unhex("42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091", ct);
    unhex("5bc94fbc3221a5db94fae95ae7121a47", tag);
    int tfm = tfm_open("aead", "gcm(aes)", key, 16, 16);
    if (!expect) {
        report(tfm == -ENOENT, "gcm(aes) is absent (bind fails with ENOENT)",
               tfm == -ENOENT ? NULL : tfm >= 0 ? "it is present" : strerror(-tfm));
        if (tfm >= 0)
            close(tfm);
        return;
    }
    if (tfm < 0) {
        report(0, "gcm(aes) bind+setkey", strerror(-tfm));
        return;
    }
    /* Encrypt: TX = AAD||PT, RX = AAD||CT||TAG. */
    unsigned char want[sizeof(buf)];
    memcpy(buf, aad, 20), memcpy(buf + 20, pt, 60);
    memcpy(want, aad, 20), memcpy(want + 20, ct, 60), memcpy(want + 80, tag, 16);
    check_bytes("gcm(aes) encrypt (GCM spec test case 4)", one_op(tfm, 1, iv, 12, 20, buf, 80, out, 96), out, want, 96);
    /* Decrypt: TX = AAD||CT||TAG, RX = AAD||PT. */
    memcpy(want + 20, pt, 60);
    memcpy(buf + 20, ct, 60), memcpy(buf + 80, tag, 16);
    check_bytes("gcm(aes) decrypt", one_op(tfm, 0, iv, 12, 20, buf, 96, out, 80), out, want, 80);
    buf[80] ^= 1;
    ssize_t r = one_op(tfm, 0, iv, 12, 20, buf, 96, out, 80);
    report(r == -EBADMSG, "gcm(aes) rejects a bad tag with EBADMSG", r == -EBADMSG ? NULL : r < 0 ? strerror((int)-r) : "accepted");
    close(tfm);
}

/* Two independent CBC records (own IVs, own op sockets) in one io_submit. */
static void check_aio(int expect)
{
    aio_context_t ctx = 0;
    long rc = syscall(SYS_io_setup, 16, &ctx);
    int err = rc < 0 ? errno : 0;
    if (!expect) {
        report(rc < 0 && err == EAGAIN, "io_setup fails with EAGAIN (aio-max-nr is 0)",
               rc == 0 ? "it succeeded" : err != EAGAIN ? strerror(err) : NULL);
        if (rc == 0)
            syscall(SYS_io_destroy, ctx);
        return;
    }
    if (rc < 0) {
        report(0, "io_setup", strerror(err));
        return;
    }
    unsigned char key[16], iv[2][16], pt[32], ct[32], out[2][16];
    unhex(cbc_key, key), unhex(cbc_iv, iv[0]), unhex(cbc_pt, pt), unhex(cbc_ct, ct);
    memcpy(iv[1], ct, 16); /* record 2 = block 2 of the chain, with its own IV */
    int tfm = tfm_open("skcipher", "cbc(aes)", key, 16, 0), op[2] = { -1, -1 };
    struct iocb cb[2], *cbp[2] = { &cb[0], &cb[1] };
    struct io_event ev[2];
    const char *fail = NULL;
    memset(cb, 0, sizeof(cb));
    for (int i = 0; i < 2 && !fail; i++) {
        if (tfm < 0 || (op[i] = accept4(tfm, NULL, NULL, SOCK_CLOEXEC)) < 0 ||
            op_send(op[i], 1, iv[i], 16, 0, pt + 16 * i, 16) < 0)
            fail = "socket setup";
        cb[i].aio_fildes = (uint32_t)op[i];
        cb[i].aio_lio_opcode = IOCB_CMD_PREAD;
        cb[i].aio_buf = (uint64_t)(uintptr_t)out[i];
        cb[i].aio_nbytes = 16;
        cb[i].aio_data = (uint64_t)i;
    }
    if (!fail && syscall(SYS_io_submit, ctx, 2L, cbp) != 2)
        fail = "io_submit";
    struct timespec ts = { 30, 0 };
    if (!fail && syscall(SYS_io_getevents, ctx, 2L, 2L, ev, &ts) != 2)
        fail = "io_getevents";
    for (int i = 0; i < 2 && !fail; i++)
        if (ev[i].res != 16 || memcmp(out[ev[i].data], ct + 16 * ev[i].data, 16) != 0)
            fail = "wrong result";
    report(!fail, "AIO: 2 CBC records, 2 op sockets, one io_submit", fail);
    for (int i = 0; i < 2; i++)
        if (op[i] >= 0)
            close(op[i]);
    if (tfm >= 0)
        close(tfm);
    syscall(SYS_io_destroy, ctx);
}

/* Which kernel drivers served the algorithms: informational. */
static void show_drivers(void)
{
    FILE *f = fopen("/proc/crypto", "r");
    char line[256], name[128] = "";
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "name : %127s", name) == 1)
            continue;
        char drv[128];
        if (sscanf(line, "driver : %127s", drv) == 1 &&
            (!strcmp(name, "cbc(aes)") || !strcmp(name, "ctr(aes)") || !strcmp(name, "gcm(aes)")))
            printf("info %s -> %s\n", name, drv);
    }
    fclose(f);
}

int main(int argc, char **argv)
{
    int gcm = 1, aio = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--gcm=no"))
            gcm = 0;
        else if (!strcmp(argv[i], "--aio=no"))
            aio = 0;
        else if (strcmp(argv[i], "--gcm=yes") && strcmp(argv[i], "--aio=yes")) {
            fprintf(stderr, "usage: %s [--gcm=yes|no] [--aio=yes|no]\n", argv[0]);
            return 2;
        }
    }
    struct utsname u;
    if (uname(&u) == 0)
        printf("info kernel %s\n", u.release);
    int fd = socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    report(fd >= 0, "AF_ALG socket", fd >= 0 ? NULL : strerror(errno));
    if (fd < 0)
        return 1;
    close(fd);
    check_cbc();
    check_ctr();
    check_gcm(gcm);
    check_aio(aio);
    show_drivers();
    printf("%s: %d failure(s)\n", failures ? "FAIL" : "PASS", failures);
    return failures ? 1 : 0;
}

/*
 * TLS CBC record padding and constant-time unpadding (provider/tls_cbc.c).
 *
 *   tls-cbc                  functional tests, checked against a plain
 *                            (branchy, obviously right) model of the rules
 *   tls-cbc consttime        the same function on records whose bytes are
 *                            marked undefined for valgrind memcheck: any
 *                            branch or memory index that depends on them is a
 *                            memcheck error (run under valgrind only)
 *   tls-cbc canary           branches on the secret outputs on purpose: proves
 *                            the marking reaches through ka_tls_cbc_unpad, so a
 *                            clean consttime run means something
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>

#include "testutil.h"
#include "tls_cbc.h"

#define BUFSZ 1024

static const unsigned int tls_versions[] = { 0x0301, 0x0302, 0x0303 };
static const size_t mac_sizes[] = { 0, 20, 32, 48 };
#define NV (sizeof(tls_versions) / sizeof(tls_versions[0]))
#define NM (sizeof(mac_sizes) / sizeof(mac_sizes[0]))
#define MAX_PAYLOAD 300

static size_t iv_len(unsigned int version)
{
    switch (version) {
    case 0x0302: case 0x0303: case 0xfeff: case 0xfefd: case 0x0100:
        return 16;
    default:
        return 0;
    }
}

/* Smallest padding_length giving a whole number of blocks. */
static size_t min_pad(size_t plen, size_t macsize)
{
    return (16 - (plen + macsize + 1) % 16) % 16;
}

/*
 * Lays out [IV] payload MAC padding in rec; returns reclen. The payload and
 * MAC are random; SSL 3.0 padding content is random but for its last byte.
 */
static size_t build(unsigned int version, unsigned char *rec, size_t plen, size_t macsize,
                    size_t padlen, unsigned char *mac)
{
    size_t off = iv_len(version), n = off + plen + macsize + padlen + 1;

    ck_assert_uint_le(n, BUFSZ);
    ck_assert_uint_eq(n % 16, 0);
    tu_rand_bytes(rec, off + plen + macsize);
    memcpy(mac, rec + off + plen, macsize);
    if (version == 0x0300)
        tu_rand_bytes(rec + off + plen + macsize, padlen);
    else
        memset(rec + off + plen + macsize, (int)padlen, padlen);
    rec[n - 1] = (unsigned char)padlen;
    return n;
}

/* The rules written the plain way, to compare with the constant-time code. */
static int model_unpad(unsigned int version, const unsigned char *rec, size_t reclen,
                       size_t macsize, const unsigned char *randmac, unsigned char *mac,
                       size_t *off, size_t *len)
{
    const unsigned char *p;
    size_t n, pl, i;
    int good;

    switch (version) {
    case 0x0300: case 0x0301: case 0x0302: case 0x0303: case 0xfeff: case 0xfefd: case 0x0100:
        break;
    default:
        return 0;
    }
    *off = iv_len(version);
    if (reclen % 16 != 0 || reclen < *off || macsize > KA_TLS_MAX_MAC)
        return 0;
    p = rec + *off;
    n = reclen - *off;
    if (1 + macsize > n)
        return 0;
    pl = p[n - 1];
    good = n >= 1 + macsize + pl;
    if (version == 0x0300)
        good = good && pl + 1 <= 16;
    else
        for (i = 0; good && i <= pl; i++)
            good = p[n - 1 - i] == pl;
    if (good)
        n -= pl + 1;
    if (macsize == 0) {
        *len = n;
        return good;
    }
    memcpy(mac, good ? p + n - macsize : randmac, macsize);
    *len = n - macsize;
    return 1;
}

/* ka_tls_cbc_unpad and the model must agree on everything they output. */
static void check_vs_model(unsigned int version, const unsigned char *rec, size_t reclen,
                           size_t macsize, const char *what)
{
    unsigned char randmac[KA_TLS_MAX_MAC], mac[KA_TLS_MAX_MAC], mmac[KA_TLS_MAX_MAC];
    size_t off = 99, len = 99, moff = 0, mlen = 0;
    int ret, mret;

    tu_rand_bytes(randmac, sizeof(randmac));
    ret = ka_tls_cbc_unpad(version, rec, reclen, macsize, randmac, mac, &off, &len);
    mret = model_unpad(version, rec, reclen, macsize, randmac, mmac, &moff, &mlen);
    ck_assert_msg(ret == mret, "%s: v=%#x reclen=%zu mac=%zu: ret %d, model %d", what, version,
                  reclen, macsize, ret, mret);
    if (ret == 0)
        return;     /* outputs unspecified */
    ck_assert_msg(off == moff && len == mlen, "%s: v=%#x reclen=%zu mac=%zu: off/len %zu/%zu, model %zu/%zu",
                  what, version, reclen, macsize, off, len, moff, mlen);
    ck_assert_msg(memcmp(mac, mmac, macsize) == 0, "%s: v=%#x reclen=%zu mac=%zu: MAC differs",
                  what, version, reclen, macsize);
}

/* Valid records: every payload length, every padding length TLS allows. */
START_TEST(test_valid_records)
{
    unsigned int version = tls_versions[_i / NM];
    size_t macsize = mac_sizes[_i % NM], off = iv_len(version);
    unsigned char rec[BUFSZ], want_mac[KA_TLS_MAX_MAC], randmac[KA_TLS_MAX_MAC], mac[KA_TLS_MAX_MAC];
    size_t plen, padlen, reclen, got_off, got_len;

    tu_rand_bytes(randmac, sizeof(randmac));
    for (plen = 0; plen <= MAX_PAYLOAD; plen++) {
        for (padlen = min_pad(plen, macsize); padlen <= 255; padlen += 16) {
            int ret;

            reclen = build(version, rec, plen, macsize, padlen, want_mac);
            memset(mac, 0xa5, sizeof(mac));
            ret = ka_tls_cbc_unpad(version, rec, reclen, macsize, randmac, mac, &got_off, &got_len);
            ck_assert_msg(ret == 1, "v=%#x mac=%zu plen=%zu pad=%zu: ret %d", version, macsize,
                          plen, padlen, ret);
            ck_assert_uint_eq(got_off, off);
            ck_assert_msg(got_len == plen, "v=%#x mac=%zu plen=%zu pad=%zu: len %zu", version,
                          macsize, plen, padlen, got_len);
            ck_assert_msg(memcmp(mac, want_mac, macsize) == 0, "v=%#x mac=%zu plen=%zu pad=%zu: MAC",
                          version, macsize, plen, padlen);
        }
    }
}
END_TEST

/*
 * One wrong padding byte, at every distance from the end: only the MAC is
 * removed and the MAC comes out as randmac (macsize 0: the call fails).
 */
START_TEST(test_bad_padding_byte)
{
    unsigned int version = tls_versions[_i / NM];
    size_t macsize = mac_sizes[_i % NM], off = iv_len(version);
    unsigned char rec[BUFSZ], want_mac[KA_TLS_MAX_MAC], randmac[KA_TLS_MAX_MAC], mac[KA_TLS_MAX_MAC];
    size_t plen, reclen, got_off, got_len, d, k;

    tu_rand_bytes(randmac, sizeof(randmac));
    for (plen = 0; plen <= MAX_PAYLOAD; plen += 7) {
        size_t pads[2] = { min_pad(plen, macsize), min_pad(plen, macsize) + 16 * ((255 - min_pad(plen, macsize)) / 16) };

        for (k = 0; k < 2; k++) {
            for (d = 1; d <= pads[k]; d++) {
                int ret;

                reclen = build(version, rec, plen, macsize, pads[k], want_mac);
                rec[reclen - 1 - d] ^= (unsigned char)(1 + tu_rand_below(255));
                memset(mac, 0xa5, sizeof(mac));
                ret = ka_tls_cbc_unpad(version, rec, reclen, macsize, randmac, mac, &got_off, &got_len);
                if (macsize == 0) {
                    ck_assert_msg(ret == 0, "v=%#x plen=%zu pad=%zu d=%zu: accepted", version, plen,
                                  pads[k], d);
                    continue;
                }
                ck_assert_msg(ret == 1, "v=%#x mac=%zu plen=%zu pad=%zu d=%zu: ret %d", version,
                              macsize, plen, pads[k], d, ret);
                ck_assert_uint_eq(got_off, off);
                ck_assert_msg(got_len == reclen - off - macsize, "v=%#x mac=%zu plen=%zu pad=%zu d=%zu: len %zu",
                              version, macsize, plen, pads[k], d, got_len);
                ck_assert_msg(memcmp(mac, randmac, macsize) == 0, "v=%#x mac=%zu plen=%zu pad=%zu d=%zu: MAC not random",
                              version, macsize, plen, pads[k], d);
            }
            /* The length byte itself changed: whatever the model says. */
            for (d = 0; d < 256; d += 17) {
                reclen = build(version, rec, plen, macsize, pads[k], want_mac);
                rec[reclen - 1] = (unsigned char)d;
                check_vs_model(version, rec, reclen, macsize, "length byte");
            }
        }
    }
}
END_TEST

/* A padding that is right byte for byte but longer than the record allows. */
START_TEST(test_padding_too_long)
{
    unsigned char rec[BUFSZ], randmac[KA_TLS_MAX_MAC], mac[KA_TLS_MAX_MAC];
    size_t off, len, macsize;
    int ret;

    tu_rand_bytes(randmac, sizeof(randmac));
    for (macsize = 0; macsize <= 48; macsize += 16) {
        /* TLS 1.0, 64 bytes: padlen up to 63 - macsize fits, one more doesn't. */
        size_t fit = 63 - macsize;

        memset(rec, (int)fit, 64);
        ret = ka_tls_cbc_unpad(0x0301, rec, 64, macsize, randmac, mac, &off, &len);
        ck_assert_int_eq(ret, 1);
        ck_assert_uint_eq(off, 0);
        ck_assert_uint_eq(len, 0);
        ck_assert(memcmp(mac, rec, macsize) == 0);

        memset(rec, (int)fit + 1, 64);
        ret = ka_tls_cbc_unpad(0x0301, rec, 64, macsize, randmac, mac, &off, &len);
        ck_assert_int_eq(ret, macsize > 0 ? 1 : 0);
        if (macsize > 0) {
            ck_assert_uint_eq(len, 64 - macsize);
            ck_assert(memcmp(mac, randmac, macsize) == 0);
        }
    }
    /* All 0xff: 256 bytes of padding would need a longer record. */
    memset(rec, 0xff, 256 + 16);
    ret = ka_tls_cbc_unpad(0x0303, rec, 256 + 16, 20, randmac, mac, &off, &len);
    ck_assert_int_eq(ret, 1);
    ck_assert_uint_eq(off, 16);
    ck_assert_uint_eq(len, 256 - 20);
    ck_assert(memcmp(mac, randmac, 20) == 0);
    /* One more block and it is a valid empty record with a 0xff.. MAC. */
    memset(rec, 0xff, 256 + 32);
    ret = ka_tls_cbc_unpad(0x0303, rec, 256 + 32, 16, randmac, mac, &off, &len);
    ck_assert_int_eq(ret, 1);
    ck_assert_uint_eq(len, 0);
    ck_assert(memcmp(mac, rec, 16) == 0);
}
END_TEST

/* Failures decided by public values only. */
START_TEST(test_public_failures)
{
    unsigned char rec[BUFSZ], randmac[KA_TLS_MAX_MAC], mac[KA_TLS_MAX_MAC];
    static const unsigned int bad_versions[] = { 0, 0x0200, 0x0304, 0xfefe, 0x0101, 0xffff, 0x10301 };
    size_t off, len, i, v, m;

    memset(rec, 0, sizeof(rec));    /* zero padding: valid whenever the length works */
    tu_rand_bytes(randmac, sizeof(randmac));
    for (i = 0; i < sizeof(bad_versions) / sizeof(bad_versions[0]); i++)
        ck_assert_int_eq(ka_tls_cbc_unpad(bad_versions[i], rec, 64, 20, randmac, mac, &off, &len), 0);
    for (v = 0; v < NV; v++) {
        for (m = 0; m < NM; m++) {
            size_t ivl = iv_len(tls_versions[v]), macsize = mac_sizes[m], reclen;

            /* Too short for padding length byte + MAC (after the explicit IV). */
            for (reclen = 0; reclen < ivl + 1 + macsize; reclen += 16)
                ck_assert_msg(ka_tls_cbc_unpad(tls_versions[v], rec, reclen, macsize, randmac, mac,
                                               &off, &len) == 0,
                              "v=%#x mac=%zu reclen=%zu accepted", tls_versions[v], macsize, reclen);
            /* The first length that works. */
            ck_assert_int_eq(ka_tls_cbc_unpad(tls_versions[v], rec, reclen, macsize, randmac, mac,
                                              &off, &len), 1);
            ck_assert_uint_eq(len, reclen - ivl - macsize - 1);
            /* Not whole blocks. */
            ck_assert_int_eq(ka_tls_cbc_unpad(tls_versions[v], rec, reclen + 1, macsize, randmac,
                                              mac, &off, &len), 0);
            ck_assert_int_eq(ka_tls_cbc_unpad(tls_versions[v], rec, reclen - 1, macsize, randmac,
                                              mac, &off, &len), 0);
        }
    }
    /* MAC larger than any digest libssl uses. */
    ck_assert_int_eq(ka_tls_cbc_unpad(0x0303, rec, 256, KA_TLS_MAX_MAC + 1, randmac, mac, &off, &len), 0);
    ck_assert_int_eq(ka_tls_cbc_unpad(0x0303, rec, 256, KA_TLS_MAX_MAC, randmac, mac, &off, &len), 1);
    /* No random MAC to substitute. */
    ck_assert_int_eq(ka_tls_cbc_unpad(0x0303, rec, 256, 20, NULL, mac, &off, &len), 0);
}
END_TEST

/* DTLS versions skip the explicit IV like TLS 1.1+. */
START_TEST(test_dtls)
{
    static const unsigned int dv[] = { 0xfeff, 0xfefd, 0x0100 };
    unsigned char rec[BUFSZ], want_mac[KA_TLS_MAX_MAC], randmac[KA_TLS_MAX_MAC], mac[KA_TLS_MAX_MAC];
    size_t i, plen, reclen, off, len;

    tu_rand_bytes(randmac, sizeof(randmac));
    for (i = 0; i < 3; i++) {
        for (plen = 0; plen < 100; plen += 3) {
            reclen = build(dv[i], rec, plen, 20, min_pad(plen, 20) + 16, want_mac);
            ck_assert_int_eq(ka_tls_cbc_unpad(dv[i], rec, reclen, 20, randmac, mac, &off, &len), 1);
            ck_assert_uint_eq(off, 16);
            ck_assert_uint_eq(len, plen);
            ck_assert(memcmp(mac, want_mac, 20) == 0);
            rec[reclen - 2] ^= 1;
            check_vs_model(dv[i], rec, reclen, 20, "dtls bad pad");
        }
    }
}
END_TEST

/* SSL 3.0: padding content is free, its length must be under one block. */
START_TEST(test_ssl3)
{
    unsigned char rec[BUFSZ], want_mac[KA_TLS_MAX_MAC], randmac[KA_TLS_MAX_MAC], mac[KA_TLS_MAX_MAC];
    size_t plen, reclen, off, len, m;

    tu_rand_bytes(randmac, sizeof(randmac));
    for (m = 0; m < NM; m++) {
        size_t macsize = mac_sizes[m];

        for (plen = 0; plen <= MAX_PAYLOAD; plen++) {
            size_t padlen = min_pad(plen, macsize);
            int ret;

            reclen = build(0x0300, rec, plen, macsize, padlen, want_mac);
            ret = ka_tls_cbc_unpad(0x0300, rec, reclen, macsize, randmac, mac, &off, &len);
            ck_assert_int_eq(ret, 1);
            ck_assert_uint_eq(off, 0);
            ck_assert_uint_eq(len, plen);
            ck_assert(memcmp(mac, want_mac, macsize) == 0);
            /* A whole extra block of padding: valid in TLS, not in SSL 3.0. */
            if (reclen + 16 <= BUFSZ) {
                reclen = build(0x0300, rec, plen, macsize, padlen + 16, want_mac);
                ret = ka_tls_cbc_unpad(0x0300, rec, reclen, macsize, randmac, mac, &off, &len);
                ck_assert_int_eq(ret, macsize > 0 ? 1 : 0);
                if (macsize > 0) {
                    ck_assert_uint_eq(len, reclen - macsize);
                    ck_assert(memcmp(mac, randmac, macsize) == 0);
                }
            }
        }
    }
}
END_TEST

/* Random records, some with good padding, some damaged, all versions. */
START_TEST(test_random_vs_model)
{
    static const unsigned int vs[] = { 0x0300, 0x0301, 0x0302, 0x0303, 0xfeff, 0xfefd, 0x0100, 0x0304 };
    static const size_t ms[] = { 0, 16, 20, 28, 32, 48, 64 };
    unsigned char rec[BUFSZ];
    int iter;

    for (iter = 0; iter < 20000; iter++) {
        unsigned int version = vs[tu_rand_below(8)];
        size_t macsize = tu_rand_below(4) == 0 ? tu_rand_below(KA_TLS_MAX_MAC + 2) : ms[tu_rand_below(7)];
        size_t reclen = 16 * tu_rand_below(40);

        if (tu_rand_below(20) == 0)
            reclen += 1 + tu_rand_below(15);
        tu_rand_bytes(rec, reclen);
        if (reclen > 0 && tu_rand_below(2) == 0) {
            size_t pl = tu_rand_below(256), i;

            for (i = 0; i <= pl && i < reclen; i++)
                rec[reclen - 1 - i] = (unsigned char)pl;
            if (tu_rand_below(3) == 0)
                rec[reclen - 1 - tu_rand_below(reclen < 300 ? reclen : 300)] ^= (unsigned char)(1 + tu_rand_below(255));
        }
        check_vs_model(version, rec, reclen, macsize, "random");
    }
}
END_TEST

START_TEST(test_pad)
{
    static const unsigned int vs[] = { 0x0300, 0x0301, 0x0302, 0x0303, 0xfefd };
    unsigned char buf[BUFSZ], randmac[KA_TLS_MAX_MAC], mac[KA_TLS_MAX_MAC];
    size_t v, inl, outl, i, off, len;

    for (v = 0; v < sizeof(vs) / sizeof(vs[0]); v++) {
        for (inl = 0; inl <= 100; inl++) {
            size_t padnum = 16 - inl % 16;

            memset(buf, 0x5c, sizeof(buf));
            /* One byte short, and inl beyond outsize. */
            ck_assert_int_eq(ka_tls_cbc_pad(vs[v], buf, inl, inl + padnum - 1, &outl), 0);
            ck_assert_int_eq(ka_tls_cbc_pad(vs[v], buf, inl + 1, inl, &outl), 0);
            ck_assert_int_eq(buf[inl], 0x5c);
            ck_assert_int_eq(ka_tls_cbc_pad(vs[v], buf, inl, inl + padnum, &outl), 1);
            ck_assert_uint_eq(outl, inl + padnum);
            ck_assert_uint_eq(outl % 16, 0);
            for (i = inl; i < outl - 1; i++)
                ck_assert_int_eq(buf[i], vs[v] == 0x0300 ? 0 : (int)padnum - 1);
            ck_assert_int_eq(buf[outl - 1], (int)padnum - 1);
            ck_assert_int_eq(buf[outl], 0x5c);
            /* Round trip, with inl counting an IV block and a 20-byte MAC when there is room. */
            if (inl >= iv_len(vs[v]) + 20) {
                tu_rand_bytes(randmac, sizeof(randmac));
                ck_assert_int_eq(ka_tls_cbc_unpad(vs[v], buf, outl, 20, randmac, mac, &off, &len), 1);
                ck_assert_uint_eq(off, iv_len(vs[v]));
                ck_assert_uint_eq(off + len + 20, inl);
                ck_assert(memcmp(mac, buf + inl - 20, 20) == 0);
            }
            if (inl >= iv_len(vs[v])) {
                ck_assert_int_eq(ka_tls_cbc_unpad(vs[v], buf, outl, 0, NULL, NULL, &off, &len), 1);
                ck_assert_uint_eq(off + len, inl);
            }
        }
    }
}
END_TEST

/* ---- constant time under valgrind ---- */

/*
 * Unpads rec with its bytes undefined, then defines the outputs again and
 * compares with the model. Returns how many memcheck errors the call raised.
 */
static unsigned ct_one(unsigned int version, unsigned char *rec, size_t reclen, size_t macsize)
{
    unsigned char randmac[KA_TLS_MAX_MAC], mac[KA_TLS_MAX_MAC], mmac[KA_TLS_MAX_MAC];
    size_t off, len, moff = 0, mlen = 0;
    unsigned before, after;
    int ret, mret;

    tu_rand_bytes(randmac, sizeof(randmac));
    mret = model_unpad(version, rec, reclen, macsize, randmac, mmac, &moff, &mlen);
    before = VALGRIND_COUNT_ERRORS;
    VALGRIND_MAKE_MEM_UNDEFINED(rec, reclen);
    ret = ka_tls_cbc_unpad(version, rec, reclen, macsize, randmac, mac, &off, &len);
    after = VALGRIND_COUNT_ERRORS;
    VALGRIND_MAKE_MEM_DEFINED(rec, reclen);
    VALGRIND_MAKE_MEM_DEFINED(&ret, sizeof(ret));
    VALGRIND_MAKE_MEM_DEFINED(&off, sizeof(off));
    VALGRIND_MAKE_MEM_DEFINED(&len, sizeof(len));
    VALGRIND_MAKE_MEM_DEFINED(mac, sizeof(mac));
    ck_assert_msg(ret == mret, "v=%#x reclen=%zu mac=%zu: ret %d, model %d", version, reclen, macsize, ret, mret);
    if (ret == 1) {
        ck_assert_uint_eq(off, moff);
        ck_assert_uint_eq(len, mlen);
        ck_assert(memcmp(mac, mmac, macsize) == 0);
    }
    return after - before;
}

START_TEST(test_consttime)
{
    static const unsigned int vs[] = { 0x0300, 0x0301, 0x0302, 0x0303, 0xfefd };
    static const size_t ms[] = { 0, 20, 32, 48, 64 };
    static const size_t plens[] = { 0, 1, 15, 16, 17, 31, 47, 100, 200, 239, 255, 256, 270, 300 };
#define NP (sizeof(plens) / sizeof(plens[0]))
    unsigned char rec[BUFSZ], want_mac[KA_TLS_MAX_MAC];
    size_t v, m, p, k, errors = 0, calls = 0;

    ck_assert_msg(RUNNING_ON_VALGRIND, "consttime mode means nothing outside valgrind");
    for (v = 0; v < 5; v++) {
        for (m = 0; m < 5; m++) {
            for (p = 0; p < NP; p++) {
                size_t lo = min_pad(plens[p], ms[m]);
                size_t hi = vs[v] == 0x0300 ? lo : lo + 16 * ((255 - lo) / 16);
                /* good short pad, good long pad, bad pad byte, bad length byte, too long (k = 0..4) */
                for (k = 0; k < 5; k++) {
                    size_t reclen = build(vs[v], rec, plens[p], ms[m], k == 1 ? hi : lo, want_mac);
                    unsigned e;

                    if (k == 2 && lo > 0)
                        rec[reclen - 1 - lo] ^= 0x40;
                    if (k == 3)
                        rec[reclen - 1] ^= 0x81;
                    if (k == 4)     /* 0xff tail: a 256-byte padding, longer than most records */
                        memset(rec + reclen - 16, 0xff, 16);
                    e = ct_one(vs[v], rec, reclen, ms[m]);
                    calls++;
                    if (e != 0)
                        fprintf(stderr, "memcheck: %u error(s) for v=%#x mac=%zu plen=%zu case %zu\n",
                                e, vs[v], ms[m], plens[p], k);
                    errors += e;
                }
            }
        }
    }
    /* Public failures still run on undefined bytes (none should be read). */
    errors += ct_one(0x0303, rec, 16, 20);
    errors += ct_one(0x0304, rec, 64, 20);
    ck_assert_msg(errors == 0, "%zu secret-dependent branches/indexes in %zu calls (see valgrind output)",
                  errors, calls);
    fprintf(stderr, "consttime: %zu calls, no secret-dependent branch or index\n", calls);
}
END_TEST

/*
 * Uses the outputs the way secrets must not be used: memcheck has to count
 * both leaks, or the consttime test could pass without checking anything.
 */
START_TEST(test_canary)
{
    unsigned char rec[BUFSZ], want_mac[KA_TLS_MAX_MAC], randmac[KA_TLS_MAX_MAC], mac[KA_TLS_MAX_MAC];
    static volatile unsigned char table[256];
    size_t off, len, reclen;
    unsigned e0, e1, e2;
    int hits;

    ck_assert_msg(RUNNING_ON_VALGRIND, "canary mode means nothing outside valgrind");
    tu_rand_bytes(randmac, sizeof(randmac));
    reclen = build(0x0303, rec, 40, 20, min_pad(40, 20), want_mac);
    VALGRIND_MAKE_MEM_UNDEFINED(rec, reclen);
    (void)ka_tls_cbc_unpad(0x0303, rec, reclen, 20, randmac, mac, &off, &len);
    /* The call keeps the compiler from making the branch a conditional move. */
    e0 = VALGRIND_COUNT_ERRORS;
    if (len == 40)
        fprintf(stderr, "canary: branched on the payload length\n");
    e1 = VALGRIND_COUNT_ERRORS;
    hits = table[mac[0]];
    e2 = VALGRIND_COUNT_ERRORS;
    VALGRIND_MAKE_MEM_DEFINED(&hits, sizeof(hits));
    fprintf(stderr, "canary: memcheck errors: branch on length %u, index by MAC byte %u\n",
            e1 - e0, e2 - e1);
    ck_assert_msg(e1 > e0, "memcheck missed a branch on the secret payload length");
    ck_assert_msg(e2 > e1, "memcheck missed a table index by a secret MAC byte");
}
END_TEST

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "functional";
    Suite *s = suite_create("tls-cbc");
    TCase *tc = tcase_create(mode);
    SRunner *sr;
    int failed;

    tu_seed();
    if (strcmp(mode, "consttime") == 0) {
        tcase_add_test(tc, test_consttime);
    } else if (strcmp(mode, "canary") == 0) {
        tcase_add_test(tc, test_canary);
    } else if (strcmp(mode, "functional") == 0) {
        tcase_add_loop_test(tc, test_valid_records, 0, (int)(NV * NM));
        tcase_add_loop_test(tc, test_bad_padding_byte, 0, (int)(NV * NM));
        tcase_add_test(tc, test_padding_too_long);
        tcase_add_test(tc, test_public_failures);
        tcase_add_test(tc, test_dtls);
        tcase_add_test(tc, test_ssl3);
        tcase_add_test(tc, test_random_vs_model);
        tcase_add_test(tc, test_pad);
    } else {
        fprintf(stderr, "usage: %s [functional|consttime|canary]\n", argv[0]);
        return 2;
    }
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    /* Under valgrind a forked child's errors would only show as an exit code: stay in one process. */
    if (RUNNING_ON_VALGRIND)
        srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

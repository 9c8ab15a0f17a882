/* TLS record parameters as libssl uses them (FACTS.md section 4): CBC with
 * "tls-version" + "tls-mac-size" (provider pads on seal, strips padding and MAC on
 * open, MAC via "tls-mac"), and GCM TLS 1.2 ("tlsivfixed", "tlsaad"/"tlsaadpad",
 * one in-place update over explicit IV || payload || tag, "tlsivgen"/"tlsivinv").
 * Records sealed by one provider are opened by the other, both ways. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evputil.h"

#define MAXREC 2048

static const unsigned int versions[] = {0x0301, 0x0302, 0x0303};
static const size_t macsizes[] = {0, 20, 32, 48};

static EVP_CIPHER_CTX *cbc_ctx(OSSL_LIB_CTX *lc, const char *cipher, int enc, const unsigned char *key,
                               const unsigned char *iv, unsigned int ver, size_t macsize)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    OSSL_PARAM p[3] = {OSSL_PARAM_construct_uint(OSSL_CIPHER_PARAM_TLS_VERSION, &ver),
                       OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_TLS_MAC_SIZE, &macsize),
                       OSSL_PARAM_construct_end()};

    ck_assert_ptr_nonnull(ctx);
    ck_assert_msg(EVP_CipherInit_ex2(ctx, ev_cipher(lc, cipher), key, iv, enc, NULL), "%s: init: %s",
                  cipher, tu_errors());
    ck_assert_msg(EVP_CIPHER_CTX_set_params(ctx, p), "%s: tls params: %s", cipher, tu_errors());
    return ctx;
}

/* One in-place record update; returns ret, sets *outl; on open also reads tls-mac. */
static int cbc_record(EVP_CIPHER_CTX *ctx, unsigned char *buf, size_t len, int *outl,
                      unsigned char *mac, size_t macsize)
{
    int ret = EVP_CipherUpdate(ctx, buf, outl, buf, (int)len);

    if (ret > 0 && mac != NULL && macsize > 0) {
        unsigned char *m = NULL;
        OSSL_PARAM p[2] = {OSSL_PARAM_construct_octet_ptr(OSSL_CIPHER_PARAM_TLS_MAC, (void **)&m, macsize),
                           OSSL_PARAM_construct_end()};

        if (!EVP_CIPHER_CTX_get_params(ctx, p) || m == NULL)
            return -100; /* the MAC must be readable after a successful open */
        memcpy(mac, m, macsize);
    }
    return ret;
}

/* Seal every payload length with 'sealer', open with 'opener'; the same records
 * sealed by both must be equal bytes; opened payloads and MACs must round-trip. */
static int cbc_cross(const char *cipher, unsigned int ver, size_t macsize, OSSL_LIB_CTX *sealer,
                     OSSL_LIB_CTX *opener, size_t step, uint64_t seed)
{
    ev_rng r = {seed};
    unsigned char key[32], iv[16];
    EVP_CIPHER_CTX *s1, *s2, *o;
    size_t plen, ivl = ver >= 0x0302 ? 16 : 0;
    int bad = 0;

    ev_bytes(&r, key, sizeof(key));
    ev_bytes(&r, iv, sizeof(iv));
    s1 = cbc_ctx(sealer, cipher, 1, key, iv, ver, macsize);
    s2 = cbc_ctx(opener, cipher, 1, key, iv, ver, macsize); /* same records, other provider */
    o = cbc_ctx(opener, cipher, 0, key, iv, ver, macsize);
    for (plen = 0; plen <= 600 && bad < 3; plen += step) {
        unsigned char rec[MAXREC], rec2[MAXREC], orig[MAXREC], mac[64];
        size_t len = ivl + plen + macsize;
        int l1 = -1, l2 = -1, lo = -1, r1, r2, ro;

        ev_bytes(&r, orig, len); /* explicit IV || payload || MAC, as libssl lays it out */
        memcpy(rec, orig, len);
        memcpy(rec2, orig, len);
        r1 = cbc_record(s1, rec, len, &l1, NULL, 0);
        r2 = cbc_record(s2, rec2, len, &l2, NULL, 0);
        if (r1 <= 0 || r2 <= 0 || l1 != l2 || memcmp(rec, rec2, (size_t)l1) != 0) {
            fprintf(stderr, "MISMATCH %s TLS %04x mac %zu payload %zu seal: ret %d/%d len %d/%d%s (%s)\n",
                    cipher, ver, macsize, plen, r1, r2, l1, l2,
                    r1 > 0 && r2 > 0 && l1 == l2 ? " bytes differ" : "", tu_errors());
            bad++;
            continue;
        }
        ro = cbc_record(o, rec, (size_t)l1, &lo, mac, macsize);
        if (ro <= 0 || (size_t)lo != plen || memcmp(rec + ivl, orig + ivl, plen) != 0 ||
            (macsize > 0 && memcmp(mac, orig + ivl + plen, macsize) != 0)) {
            fprintf(stderr, "MISMATCH %s TLS %04x mac %zu payload %zu open: ret %d len %d (want %zu)%s (%s)\n",
                    cipher, ver, macsize, plen, ro, lo, plen,
                    ro > 0 && (size_t)lo == plen ? " payload or MAC differs" : "", tu_errors());
            bad++;
        }
    }
    {
        unsigned char out[32];
        int ol = 0, rf = EVP_CipherFinal_ex(s1, out, &ol), rg = EVP_CipherFinal_ex(s2, out, &ol);

        /* final while a TLS version is set: same answer from both */
        if ((rf > 0) != (rg > 0)) {
            fprintf(stderr, "MISMATCH %s TLS %04x final after records: %d vs %d\n", cipher, ver, rf, rg);
            bad++;
        }
        ERR_clear_error();
    }
    EVP_CIPHER_CTX_free(s1);
    EVP_CIPHER_CTX_free(s2);
    EVP_CIPHER_CTX_free(o);
    return bad;
}

START_TEST(cbc_records)
{
    const char *cipher = tu_ciphers[_i];
    size_t step = (size_t)(1.0 / ev_scale() + 0.5), v, m;
    int bad = 0;

    if (step < 1)
        step = 1;
    for (v = 0; v < 3; v++)
        for (m = 0; m < 4; m++) {
            uint64_t seed = ev_case_seed((unsigned)(v * 4 + m));

            bad += cbc_cross(cipher, versions[v], macsizes[m], ev_ref(), ev_ours(), step, seed);
            bad += cbc_cross(cipher, versions[v], macsizes[m], ev_ours(), ev_ref(), step, seed + 1);
        }
    ck_assert_msg(bad == 0, "%s: %d TLS CBC record mismatch(es), see stderr", cipher, bad);
}
END_TEST

/* Tampered CBC records: raw CBC encryptions of chosen plaintexts (bad padding,
 * oversize padding, altered MAC) and bad lengths, opened by both providers. With a
 * MAC, bad padding yields success and a random MAC: then only success and length
 * are compared. */
static void cbc_tamper_one(ev_trace *t, OSSL_LIB_CTX *lc, const char *cipher, const unsigned char *key,
                           const unsigned char *iv, unsigned int ver, size_t macsize,
                           const unsigned char *ct, size_t len, int good_pad, const char *what)
{
    EVP_CIPHER_CTX *o = cbc_ctx(lc, cipher, 0, key, iv, ver, macsize);
    unsigned char buf[MAXREC], mac[64];
    int outl = -1, ret;
    size_t off = ver >= 0x0302 ? 16 : 0;

    memcpy(buf, ct, len);
    ret = cbc_record(o, buf, len, &outl, good_pad ? mac : NULL, macsize);
    ev_add(t, ret, ret > 0, outl, ret > 0 && good_pad ? buf + off : NULL,
           ret > 0 && good_pad && outl > 0 ? (size_t)outl : 0, "%s", what);
    if (good_pad && ret > 0 && macsize > 0)
        ev_add(t, 1, 1, 0, mac, macsize, "%s: mac", what);
    EVP_CIPHER_CTX_free(o);
}

static void cbc_tamper(ev_trace *t, OSSL_LIB_CTX *lc, const char *cipher, unsigned int ver,
                       size_t macsize, uint64_t seed)
{
    ev_rng r = {seed};
    unsigned char key[32], iv[16], pt[MAXREC], ct[MAXREC];
    size_t ivl = ver >= 0x0302 ? 16 : 0, k;
    EVP_CIPHER_CTX *raw = EVP_CIPHER_CTX_new();

    ev_bytes(&r, key, sizeof(key));
    ev_bytes(&r, iv, sizeof(iv));
    for (k = 0; k < 40; k++) {
        size_t plen = ev_below(&r, 100), body = ivl + plen + macsize, pad, total, i;
        int good = 1, l = 0;
        char what[96];

        pad = 16 - body % 16; /* pad bytes incl. the length byte */
        if (k % 4 == 1 && pad + 16 <= 256)
            pad += 16 * (1 + ev_below(&r, 3)); /* longer valid padding (up to 255) */
        total = body + pad;
        ev_bytes(&r, pt, body);
        for (i = body; i < total; i++)
            pt[i] = (unsigned char)(pad - 1);
        switch (k % 4) {
        case 2: /* one pad byte wrong */
            if (pad >= 2) {
                pt[body + ev_below(&r, pad - 1)] ^= 0x01;
                good = 0;
            }
            break;
        case 3: /* length byte larger than the record */
            pt[total - 1] = (unsigned char)(total + ev_below(&r, 50));
            good = 0;
            break;
        }
        ck_assert(EVP_CipherInit_ex2(raw, ev_cipher(ev_ref(), cipher), key, iv, 1, NULL));
        EVP_CIPHER_CTX_set_padding(raw, 0);
        ck_assert(EVP_CipherUpdate(raw, ct, &l, pt, (int)total));
        snprintf(what, sizeof(what), "record %zu (payload %zu pad %zu kind %zu)", k, plen, pad, k % 4);
        cbc_tamper_one(t, lc, cipher, key, iv, ver, macsize, ct, total, good || macsize == 0, what);
        /* publicly invalid: not a block multiple, and shorter than IV + MAC + 1 */
        cbc_tamper_one(t, lc, cipher, key, iv, ver, macsize, ct, total - 1, 0, "short by one");
        if (ivl + macsize + 1 > 16)
            cbc_tamper_one(t, lc, cipher, key, iv, ver, macsize, ct,
                           (ivl + macsize) / 16 * 16, 0, "too short for IV+MAC");
    }
    EVP_CIPHER_CTX_free(raw);
}

START_TEST(cbc_tampered)
{
    const char *cipher = tu_ciphers[_i];
    size_t v, m;
    int bad = 0;

    for (v = 0; v < 3; v++)
        for (m = 0; m < 4; m++) {
            ev_trace te = {0}, tg = {0};
            char desc[128];
            uint64_t seed = ev_case_seed(20 + (unsigned)(v * 4 + m));

            tg.ours = 1;
            cbc_tamper(&te, ev_ref(), cipher, versions[v], macsizes[m], seed);
            cbc_tamper(&tg, ev_ours(), cipher, versions[v], macsizes[m], seed);
            snprintf(desc, sizeof(desc), "%s TLS %04x mac %zu tampered records (seed 0x%016llx)", cipher,
                     versions[v], macsizes[m], (unsigned long long)seed);
            bad += !ev_trace_same(&te, &tg, desc);
            ev_trace_free(&te);
            ev_trace_free(&tg);
        }
    ck_assert_msg(bad == 0, "%s: %d tampered-record set(s) differ", cipher, bad);
}
END_TEST

/* ---- GCM, TLS 1.2 ---- */

static int gcm_record2(EVP_CIPHER_CTX *ctx, unsigned char *buf, size_t aadlen, size_t reclen,
                       uint64_t seq, int *outl, size_t *aadpad)
{
    unsigned char aad[13];
    OSSL_PARAM p[2];
    int i;

    for (i = 0; i < 8; i++)
        aad[i] = (unsigned char)(seq >> (56 - 8 * i));
    aad[8] = 23;
    aad[9] = 3;
    aad[10] = 3;
    aad[11] = (unsigned char)(aadlen >> 8);
    aad[12] = (unsigned char)aadlen;
    p[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TLS1_AAD, aad, 13);
    p[1] = OSSL_PARAM_construct_end();
    if (!EVP_CIPHER_CTX_set_params(ctx, p))
        return -101;
    p[0] = OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_AEAD_TLS1_AAD_PAD, aadpad);
    if (!EVP_CIPHER_CTX_get_params(ctx, p))
        return -102;
    return EVP_CipherUpdate(ctx, buf, outl, buf, (int)reclen);
}

static EVP_CIPHER_CTX *gcm_ctx(OSSL_LIB_CTX *lc, const char *cipher, int enc, const unsigned char *key,
                               const unsigned char *fixed)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    OSSL_PARAM p[2] = {OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TLS1_IV_FIXED,
                                                         (void *)fixed, 4),
                       OSSL_PARAM_construct_end()};

    ck_assert_msg(EVP_CipherInit_ex2(ctx, ev_cipher(lc, cipher), key, NULL, enc, NULL), "%s: %s", cipher,
                  tu_errors());
    ck_assert_msg(EVP_CIPHER_CTX_set_params(ctx, p), "%s: tlsivfixed: %s", cipher, tu_errors());
    return ctx;
}

/* Set "tlsaad" (as libssl: the length field is explicit IV + payload when sealing,
 * the whole record when opening), read "tlsaadpad", run the one in-place update over
 * the whole record (explicit IV || payload || tag). */
static int gcm_record(EVP_CIPHER_CTX *ctx, unsigned char *buf, size_t reclen, uint64_t seq,
                      int *outl, size_t *aadpad)
{
    return gcm_record2(ctx, buf, EVP_CIPHER_CTX_is_encrypting(ctx) ? reclen - 16 : reclen, reclen,
                       seq, outl, aadpad);
}

/* Plain GCM with the reference, to check a sealed record bit for bit. */
static void gcm_expect(const char *cipher, const unsigned char *key, const unsigned char *iv12,
                       uint64_t seq, size_t plen, const unsigned char *pt, unsigned char *ct,
                       unsigned char *tag)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    unsigned char aad[13];
    int l = 0, i;

    for (i = 0; i < 8; i++)
        aad[i] = (unsigned char)(seq >> (56 - 8 * i));
    aad[8] = 23;
    aad[9] = 3;
    aad[10] = 3;
    aad[11] = (unsigned char)(plen >> 8);
    aad[12] = (unsigned char)plen;
    ck_assert(EVP_CipherInit_ex2(c, ev_cipher(ev_ref(), cipher), key, iv12, 1, NULL));
    ck_assert(EVP_CipherUpdate(c, NULL, &l, aad, 13));
    ck_assert(EVP_CipherUpdate(c, ct, &l, pt, (int)plen));
    ck_assert(EVP_CipherFinal_ex(c, ct + l, &l));
    ck_assert(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, tag) > 0);
    EVP_CIPHER_CTX_free(c);
}

static int gcm_cross(const char *cipher, OSSL_LIB_CTX *sealer, OSSL_LIB_CTX *opener, size_t step,
                     uint64_t seed)
{
    ev_rng r = {seed};
    unsigned char key[32], fixed[4];
    EVP_CIPHER_CTX *s, *o;
    size_t plen;
    uint64_t seq = 0;
    int bad = 0;

    ev_bytes(&r, key, sizeof(key));
    ev_bytes(&r, fixed, sizeof(fixed));
    s = gcm_ctx(sealer, cipher, 1, key, fixed);
    o = gcm_ctx(opener, cipher, 0, key, fixed);
    for (plen = 0; plen <= 600 && bad < 3; plen += step, seq++) {
        unsigned char rec[MAXREC], pt[MAXREC], ect[MAXREC], etag[16], iv12[12];
        size_t reclen = 8 + plen + 16, pad1 = 0, pad2 = 0;
        int ls = -1, lo = -1, rs, ro;

        ev_bytes(&r, pt, plen);
        memset(rec, 0, 8);
        memcpy(rec + 8, pt, plen);
        rs = gcm_record(s, rec, reclen, seq, &ls, &pad1);
        if (rs <= 0 || (size_t)ls != reclen || pad1 != 16) {
            fprintf(stderr, "MISMATCH %s GCM TLS seal payload %zu: ret %d len %d aadpad %zu (%s)\n",
                    cipher, plen, rs, ls, pad1, tu_errors());
            bad++;
            continue;
        }
        /* the record must be exactly GCM(fixed || explicit, aad, payload) */
        memcpy(iv12, fixed, 4);
        memcpy(iv12 + 4, rec, 8);
        gcm_expect(cipher, key, iv12, seq, plen, pt, ect, etag);
        if (memcmp(rec + 8, ect, plen) != 0 || memcmp(rec + 8 + plen, etag, 16) != 0) {
            fprintf(stderr, "MISMATCH %s GCM TLS seal payload %zu: record is not GCM of the payload\n",
                    cipher, plen);
            bad++;
        }
        ro = gcm_record(o, rec, reclen, seq, &lo, &pad2);
        if (ro <= 0 || (size_t)lo != plen || pad2 != 16 || memcmp(rec + 8, pt, plen) != 0) {
            fprintf(stderr, "MISMATCH %s GCM TLS open payload %zu: ret %d len %d aadpad %zu (%s)\n",
                    cipher, plen, ro, lo, pad2, tu_errors());
            bad++;
        }
    }
    EVP_CIPHER_CTX_free(s);
    EVP_CIPHER_CTX_free(o);
    return bad;
}

START_TEST(gcm_records)
{
    const char *cipher = tu_ciphers[6 + _i];
    size_t step = (size_t)(1.0 / ev_scale() + 0.5);
    int bad;

    if (step < 1)
        step = 1;
    bad = gcm_cross(cipher, ev_ref(), ev_ours(), step, ev_case_seed(40));
    bad += gcm_cross(cipher, ev_ours(), ev_ref(), step, ev_case_seed(41));
    bad += gcm_cross(cipher, ev_ours(), ev_ours(), step, ev_case_seed(42));
    ck_assert_msg(bad == 0, "%s: %d GCM TLS record mismatch(es), see stderr", cipher, bad);
}
END_TEST

/* Tampered GCM records (explicit IV, payload, tag, AAD length) fail to open in both. */
static void gcm_tamper(ev_trace *t, OSSL_LIB_CTX *lc, const char *cipher, const unsigned char *key,
                       const unsigned char *fixed, unsigned char recs[][MAXREC], const size_t *lens, size_t n)
{
    size_t k;

    for (k = 0; k < n; k++) {
        EVP_CIPHER_CTX *o = gcm_ctx(lc, cipher, 0, key, fixed);
        unsigned char buf[MAXREC];
        size_t pad = 0;
        int outl = -1, ret;

        memcpy(buf, recs[k], lens[k]);
        ret = gcm_record(o, buf, lens[k], 7, &outl, &pad);
        ev_add(t, ret, ret > 0, outl, ret > 0 ? buf + 8 : NULL, ret > 0 && outl > 0 ? (size_t)outl : 0,
               "open record %zu", k);
        EVP_CIPHER_CTX_free(o);
    }
}

START_TEST(gcm_tampered)
{
    const char *cipher = tu_ciphers[6 + _i];
    ev_rng r = {ev_case_seed(50 + (unsigned)_i)};
    unsigned char key[32], fixed[4], good[MAXREC];
    static unsigned char recs[8][MAXREC];
    size_t lens[8], plen = 100, reclen = 8 + 100 + 16, k, pad;
    EVP_CIPHER_CTX *s;
    int l;
    ev_trace te = {0}, tg = {0};

    ev_bytes(&r, key, sizeof(key));
    ev_bytes(&r, fixed, sizeof(fixed));
    ev_bytes(&r, good + 8, plen);
    s = gcm_ctx(ev_ref(), cipher, 1, key, fixed);
    ck_assert(gcm_record(s, good, reclen, 7, &l, &pad) > 0);
    EVP_CIPHER_CTX_free(s);
    for (k = 0; k < 8; k++) {
        memcpy(recs[k], good, reclen);
        lens[k] = reclen;
    }
    recs[1][0] ^= 1;           /* explicit IV */
    recs[2][8 + 50] ^= 0x40;   /* payload */
    recs[3][reclen - 1] ^= 1;  /* tag */
    lens[4] = reclen - 1;      /* truncated */
    lens[5] = 8 + 16;          /* empty payload, wrong tag */
    lens[6] = 8 + 15;          /* shorter than explicit IV + tag */
    recs[7][8 + 16] ^= 0x80;   /* block boundary */
    tg.ours = 1;
    gcm_tamper(&te, ev_ref(), cipher, key, fixed, recs, lens, 8);
    gcm_tamper(&tg, ev_ours(), cipher, key, fixed, recs, lens, 8);
    ck_assert_msg(ev_trace_same(&te, &tg, cipher), "%s tampered GCM records", cipher);
    ck_assert_msg(te.r[0].ret > 0, "%s: the untampered record must open", cipher);
    for (k = 1; k < 8; k++)
        ck_assert_msg(tg.r[k].ret <= 0, "%s: tampered record %zu opened", cipher, k);
    ev_trace_free(&te);
    ev_trace_free(&tg);
}
END_TEST

/* "tlsivgen" on the sealing side and "tlsivinv" on the opening side, with plain
 * AAD/data/final around them (the non-record use of the TLS IV helpers). */
static int ivgen_cross(const char *cipher, OSSL_LIB_CTX *sealer, OSSL_LIB_CTX *opener, uint64_t seed)
{
    ev_rng r = {seed};
    unsigned char key[32], fixed[4], pt[77], ct[77], out[77], tag[16], ect[77], etag[16];
    unsigned char aad[20], inv[8], iv12[12];
    EVP_CIPHER_CTX *s, *o;
    int l = 0, round, bad = 0;

    ev_bytes(&r, key, sizeof(key));
    ev_bytes(&r, fixed, sizeof(fixed));
    s = gcm_ctx(sealer, cipher, 1, key, fixed);
    o = gcm_ctx(opener, cipher, 0, key, fixed);
    for (round = 0; round < 4; round++) {
        OSSL_PARAM p[2] = {OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TLS1_GET_IV_GEN,
                                                             inv, sizeof(inv)),
                           OSSL_PARAM_construct_end()};
        int ok;

        ev_bytes(&r, pt, sizeof(pt));
        ev_bytes(&r, aad, sizeof(aad));
        ok = EVP_CIPHER_CTX_get_params(s, p) > 0;
        ok = ok && EVP_CipherUpdate(s, NULL, &l, aad, sizeof(aad)) > 0;
        ok = ok && EVP_CipherUpdate(s, ct, &l, pt, sizeof(pt)) > 0;
        ok = ok && EVP_CipherFinal_ex(s, ct + l, &l) > 0;
        ok = ok && EVP_CIPHER_CTX_ctrl(s, EVP_CTRL_AEAD_GET_TAG, 16, tag) > 0;
        if (!ok) {
            fprintf(stderr, "MISMATCH %s tlsivgen seal round %d failed: %s\n", cipher, round, tu_errors());
            bad++;
            break;
        }
        /* check against plain GCM with IV = fixed || generated */
        {
            EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();

            memcpy(iv12, fixed, 4);
            memcpy(iv12 + 4, inv, 8);
            ck_assert(EVP_CipherInit_ex2(c, ev_cipher(ev_ref(), cipher), key, iv12, 1, NULL));
            ck_assert(EVP_CipherUpdate(c, NULL, &l, aad, sizeof(aad)));
            ck_assert(EVP_CipherUpdate(c, ect, &l, pt, sizeof(pt)));
            ck_assert(EVP_CipherFinal_ex(c, ect + l, &l));
            ck_assert(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, etag) > 0);
            EVP_CIPHER_CTX_free(c);
            if (memcmp(ct, ect, sizeof(ct)) != 0 || memcmp(tag, etag, 16) != 0) {
                fprintf(stderr, "MISMATCH %s tlsivgen round %d: output is not GCM under fixed||ivgen\n",
                        cipher, round);
                bad++;
            }
        }
        p[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TLS1_SET_IV_INV, inv, sizeof(inv));
        ok = EVP_CIPHER_CTX_set_params(o, p) > 0;
        ok = ok && EVP_CIPHER_CTX_ctrl(o, EVP_CTRL_AEAD_SET_TAG, 16, tag) > 0;
        ok = ok && EVP_CipherUpdate(o, NULL, &l, aad, sizeof(aad)) > 0;
        ok = ok && EVP_CipherUpdate(o, out, &l, ct, sizeof(ct)) > 0;
        ok = ok && EVP_CipherFinal_ex(o, out + l, &l) > 0;
        if (!ok || memcmp(out, pt, sizeof(pt)) != 0) {
            fprintf(stderr, "MISMATCH %s tlsivinv open round %d: %s (%s)\n", cipher, round,
                    ok ? "plaintext differs" : "failed", tu_errors());
            bad++;
            break;
        }
    }
    EVP_CIPHER_CTX_free(s);
    EVP_CIPHER_CTX_free(o);
    return bad;
}

START_TEST(gcm_ivgen)
{
    const char *cipher = tu_ciphers[6 + _i];
    int bad = ivgen_cross(cipher, ev_ref(), ev_ours(), ev_case_seed(60));

    bad += ivgen_cross(cipher, ev_ours(), ev_ref(), ev_case_seed(61));
    ck_assert_msg(bad == 0, "%s: tlsivgen/tlsivinv mismatch(es), see stderr", cipher);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("evp_tls_records");
    TCase *tc = ev_tcase("cbc");

    tcase_add_loop_test(tc, cbc_records, 0, 3);
    tcase_add_loop_test(tc, cbc_tampered, 0, 3);
    suite_add_tcase(s, tc);
    tc = ev_tcase("gcm");
    tcase_add_loop_test(tc, gcm_records, 0, 3);
    tcase_add_loop_test(tc, gcm_tampered, 0, 3);
    tcase_add_loop_test(tc, gcm_ivgen, 0, 3);
    suite_add_tcase(s, tc);
    return ev_run(s);
}

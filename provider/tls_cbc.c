/*
 * TLS CBC record padding (sealing) and constant-time padding + MAC removal
 * (opening), as libssl expects from a provider's AES-CBC when "tls-version"
 * and "tls-mac-size" are set.
 *
 * Opening works on decrypted, still unauthenticated bytes: any branch or
 * memory index that depends on them would give a padding oracle (Lucky 13).
 * Everything after the public length checks is therefore mask arithmetic;
 * test/tls-cbc runs this file under valgrind memcheck with the record marked
 * undefined to check that mechanically.
 */
#include <stdint.h>
#include <string.h>

#include "tls_cbc.h"

#define BLOCK 16

#define V_SSL3 0x0300
#define V_TLS1 0x0301
#define V_TLS1_1 0x0302
#define V_TLS1_2 0x0303
#define V_DTLS1 0xfeff
#define V_DTLS1_2 0xfefd
#define V_DTLS1_BAD 0x0100

/* Largest padding_length + 1 a TLS record can carry. */
#define MAX_PAD 256

/*
 * Masks are all ones (true) or all zeros (false). ct_opaque hides a value from
 * the optimiser: on masks, so it can't turn mask selects back into branches;
 * on public indexes next to secret arithmetic, so it can't fold the two into
 * one induction variable (it did: p[len - 1 - i] became a pointer stepped
 * along padlen - i, putting the secret into the load address).
 */
static inline size_t ct_opaque(size_t x)
{
    __asm__("" : "+r"(x));
    return x;
}

/* Spread the top bit over the word. */
static inline size_t ct_msb(size_t x)
{
    return ct_opaque((size_t)0 - (x >> (sizeof(x) * 8 - 1)));
}

/* a < b, unsigned, without a comparison instruction the compiler could branch on. */
static inline size_t ct_lt(size_t a, size_t b)
{
    return ct_msb(a ^ ((a ^ b) | ((a - b) ^ b)));
}

static inline size_t ct_ge(size_t a, size_t b)
{
    return ~ct_lt(a, b);
}

static inline size_t ct_is_zero(size_t x)
{
    return ct_msb(~x & (x - 1));
}

static inline size_t ct_eq(size_t a, size_t b)
{
    return ct_is_zero(a ^ b);
}

static inline unsigned char ct_sel8(size_t mask, unsigned char a, unsigned char b)
{
    unsigned char m = (unsigned char)mask;
    return (unsigned char)((m & a) | (~m & b));
}

int ka_tls_cbc_pad(unsigned int version, unsigned char *buf, size_t inl, size_t outsize,
                   size_t *outl)
{
    size_t padnum = BLOCK - (inl % BLOCK);
    unsigned char padval = (unsigned char)(padnum - 1);

    if (inl > outsize || outsize - inl < padnum)
        return 0;
    if (version == V_SSL3) {
        /* SSL 3.0 leaves the padding bytes unspecified; only the length counts. */
        memset(buf + inl, 0, padnum - 1);
        buf[inl + padnum - 1] = padval;
    } else {
        memset(buf + inl, padval, padnum);
    }
    *outl = inl + padnum;
    return 1;
}

/*
 * Rotate buf[0..n) left by r (secret, r < n) in place: one conditional
 * rotation per bit of r, each by a public amount, so no index depends on r.
 */
static void ct_rotate_left(unsigned char *buf, size_t n, size_t r)
{
    unsigned char tmp[KA_TLS_MAX_MAC];
    size_t bit, k;

    for (bit = 1; bit < n; bit <<= 1) {
        size_t take = ~ct_is_zero(r & bit);

        for (k = 0; k < n; k++)
            tmp[k] = buf[(k + bit) % n];
        for (k = 0; k < n; k++)
            buf[k] = ct_sel8(take, tmp[k], buf[k]);
    }
}

/*
 * Copies the macsize bytes ending at mac_end (secret) out of p[0..len),
 * reading the same public range of p whatever mac_end is. mac_end lies in
 * [len - MAX_PAD, len], so scanning the last macsize + MAX_PAD bytes covers it.
 */
static void ct_extract_mac(const unsigned char *p, size_t len, size_t mac_end, size_t macsize,
                           unsigned char *out)
{
    size_t mac_start = mac_end - macsize;
    size_t scan_start = len > macsize + MAX_PAD ? len - (macsize + MAX_PAD) : 0;
    size_t in_mac = 0, rotate = 0, i, j = 0;

    /*
     * Byte i goes to out[i % macsize] (j tracks that, publicly); only bytes
     * inside the MAC are ORed in, so out ends up holding the MAC rotated by
     * the slot where it started.
     */
    memset(out, 0, macsize);
    for (i = scan_start; i < len; i++) {
        size_t started = ct_eq(i, mac_start);

        in_mac = (in_mac | started) & ct_lt(i, mac_end);
        rotate |= j & started;
        out[j] |= (unsigned char)(p[ct_opaque(i)] & in_mac);
        if (++j == macsize)
            j = 0;
    }
    ct_rotate_left(out, macsize, rotate);
}

int ka_tls_cbc_unpad(unsigned int version, const unsigned char *rec, size_t reclen,
                     size_t macsize, const unsigned char *randmac, unsigned char *mac,
                     size_t *payload_off, size_t *payload_len)
{
    size_t off, len, padlen, good, mac_end, i, to_check;
    const unsigned char *p;
    int ssl3 = 0;

    *payload_off = 0;
    *payload_len = 0;
    switch (version) {
    case V_SSL3:
        ssl3 = 1;
        off = 0;
        break;
    case V_TLS1:
        off = 0;
        break;
    case V_TLS1_1:
    case V_TLS1_2:
    case V_DTLS1:
    case V_DTLS1_2:
    case V_DTLS1_BAD:
        off = BLOCK;        /* explicit IV */
        break;
    default:
        return 0;
    }
    /* Public checks: branching on lengths is fine. */
    if (reclen % BLOCK != 0 || reclen < off || macsize > KA_TLS_MAX_MAC
        || (macsize > 0 && (randmac == NULL || mac == NULL)))
        return 0;
    p = rec + off;
    len = reclen - off;
    if (1 + macsize > len)
        return 0;

    padlen = p[len - 1];
    good = ct_ge(len, 1 + macsize + padlen);
    if (ssl3) {
        /* SSL 3.0 padding is minimal and its content arbitrary: check the length only. */
        good &= ct_ge(BLOCK, padlen + 1);
    } else {
        /*
         * Every padding byte equals padlen. Look at the last 256 bytes (or
         * the whole record) whatever padlen is; bytes beyond the padding are
         * masked out of the comparison.
         */
        unsigned char diff = 0;

        to_check = len < MAX_PAD ? len : MAX_PAD;
        for (i = 0; i < to_check; i++)
            diff |= (unsigned char)(ct_ge(padlen, i) & (padlen ^ p[ct_opaque(len - 1 - i)]));
        good &= ct_is_zero(diff);
    }
    mac_end = len - (good & (padlen + 1));

    if (macsize == 0) {
        /* Encrypt-then-MAC: the record is already authenticated, a bad pad is an error. */
        *payload_off = off;
        *payload_len = mac_end;
        return (int)(good & 1);
    }

    ct_extract_mac(p, len, mac_end, macsize, mac);
    for (i = 0; i < macsize; i++)
        mac[i] = ct_sel8(good, mac[i], randmac[i]);
    *payload_off = off;
    *payload_len = mac_end - macsize;
    return 1;
}

/*
 * TLS CBC record helpers: padding added when sealing, padding and MAC removed
 * in constant time when opening (libssl leaves both to the cipher provider).
 * OpenSSL-free: the caller supplies random bytes for the bad-padding MAC.
 */
#ifndef KCAPI_AIO_TLS_CBC_H
#define KCAPI_AIO_TLS_CBC_H

#include <stddef.h>

#define KA_TLS_MAX_MAC 64   /* largest MAC libssl asks for (EVP_MAX_MD_SIZE) */

/*
 * Writes TLS (or SSL 3.0) CBC padding after the inl bytes at buf; buf has
 * room for *outl = inl + padding. Returns 0 when the record can't be padded
 * within outsize.
 */
int ka_tls_cbc_pad(unsigned int version, unsigned char *buf, size_t inl, size_t outsize,
                   size_t *outl);

/*
 * After decryption of a whole record rec[0..reclen): skips the explicit IV
 * block (TLS 1.1+, DTLS), then removes padding and the macsize-byte MAC in
 * constant time with respect to the decrypted content.
 *   *payload_off: where the payload starts in rec (0 or 16)
 *   *payload_len: payload length (bad padding: only the MAC is removed)
 *   mac:          macsize bytes: the record's MAC, or randmac when the
 *                 padding is bad, so a bad pad and a bad MAC look alike
 * Returns 0 when public values make the record impossible (unknown version,
 * reclen not whole blocks or shorter than IV + 1 + macsize, macsize above
 * KA_TLS_MAX_MAC, no randmac/mac while macsize > 0), and when macsize is 0
 * (encrypt-then-MAC, already authenticated) and the padding is bad. The
 * return value, *payload_len and mac derive from secret bytes: callers must
 * not branch on them before the MAC check (only the macsize 0 case may).
 */
int ka_tls_cbc_unpad(unsigned int version, const unsigned char *rec, size_t reclen,
                     size_t macsize, const unsigned char *randmac, unsigned char *mac,
                     size_t *payload_off, size_t *payload_len);

#endif

/*
 * seal_xcheck FILE KEYHEX INDEX: opens record INDEX of a kcapi-aio-seal
 * stream with the default provider alone, following only the format written
 * at the top of tools/kcapi-aio-seal.c, and writes its plaintext to stdout.
 * Exit 0 when the tag verifies, 1 when not, 2 on bad arguments or input.
 * Independent of the tool's code, so the format is what the comment says.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

static int unhex(const char *s, unsigned char *out, size_t max, size_t *len)
{
    size_t i, n = strlen(s);

    if (n % 2 != 0 || n / 2 > max)
        return 0;
    for (i = 0; i < n / 2; i++) {
        unsigned int v;

        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return 0;
        out[i] = (unsigned char)v;
    }
    *len = n / 2;
    return 1;
}

int main(int argc, char **argv)
{
    unsigned char key[32], hdr[20], aad[29], *rec;
    size_t keylen, rsize, chunk, got, ctlen;
    unsigned long long index, i;
    long fsize, off;
    FILE *f;
    EVP_CIPHER *c;
    EVP_CIPHER_CTX *x;
    char name[16];
    int n1 = 0, n2 = 0, ok;

    if (argc != 4 || !unhex(argv[2], key, sizeof(key), &keylen)) {
        fprintf(stderr, "usage: seal_xcheck FILE KEYHEX INDEX\n");
        return 2;
    }
    index = strtoull(argv[3], NULL, 10);
    if ((f = fopen(argv[1], "rb")) == NULL || fread(hdr, 1, 20, f) != 20
        || memcmp(hdr, "KAIOSEAL", 8) != 0 || hdr[8] != 1 || hdr[9] != keylen) {
        fprintf(stderr, "seal_xcheck: not a version 1 stream for a %zu-byte key\n", keylen);
        return 2;
    }
    rsize = (size_t)hdr[12] << 24 | (size_t)hdr[13] << 16 | (size_t)hdr[14] << 8 | hdr[15];
    chunk = 12 + rsize + 16;
    fseek(f, 0, SEEK_END);
    fsize = ftell(f);
    off = 20 + (long)(index * chunk);
    if ((rec = malloc(chunk)) == NULL || off >= fsize || fseek(f, off, SEEK_SET) != 0
        || (got = fread(rec, 1, chunk, f)) < 28) {
        fprintf(stderr, "seal_xcheck: no record %llu\n", index);
        return 2;
    }
    ctlen = got - 28;
    /* The nonce is prefix || index; the AAD is header || index || last. */
    for (i = 0; i < 8; i++)
        if (rec[4 + i] != (unsigned char)(index >> (56 - 8 * i))) {
            fprintf(stderr, "seal_xcheck: record %llu: nonce counter is not its index\n", index);
            return 1;
        }
    if (memcmp(rec, hdr + 16, 4) != 0) {
        fprintf(stderr, "seal_xcheck: record %llu: nonce prefix is not the header's\n", index);
        return 1;
    }
    memcpy(aad, hdr, 20);
    for (i = 0; i < 8; i++)
        aad[20 + i] = (unsigned char)(index >> (56 - 8 * i));
    aad[28] = off + (long)got == fsize;

    snprintf(name, sizeof(name), "AES-%zu-GCM", keylen * 8);
    c = EVP_CIPHER_fetch(NULL, name, "provider=default");
    x = EVP_CIPHER_CTX_new();
    ok = c != NULL && x != NULL
        && EVP_DecryptInit_ex2(x, c, key, rec, NULL)
        && EVP_DecryptUpdate(x, NULL, &n1, aad, sizeof(aad))
        && EVP_DecryptUpdate(x, rec + 12, &n1, rec + 12, (int)ctlen)
        && EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, 16, rec + 12 + ctlen)
        && EVP_DecryptFinal_ex(x, rec + 12 + n1, &n2);
    if (!ok) {
        fprintf(stderr, "seal_xcheck: record %llu: authentication failed\n", index);
        return 1;
    }
    fwrite(rec + 12, 1, (size_t)(n1 + n2), stdout);
    EVP_CIPHER_CTX_free(x);
    EVP_CIPHER_free(c);
    free(rec);
    fclose(f);
    return 0;
}

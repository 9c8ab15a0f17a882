/* Known-answer tests: NIST CAVP AES CBC/GCM vectors (from python3-cryptography-vectors
 * when installed) and RFC 3686 CTR vectors, plus the curated subset kept in
 * test/evp/vectors/ for machines without the Python package (the kernel lab).
 * Directories: $KAIO_CAVP_DIR (default: the Debian package's AES folder) and
 * $KAIO_EVP_VECTORS_DIR (default: the source tree's test/evp/vectors). */
#define _GNU_SOURCE /* strcasestr */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "evputil.h"

#ifndef KAIO_CAVP_DIR
#define KAIO_CAVP_DIR "/usr/lib/python3/dist-packages/cryptography_vectors/ciphers/AES"
#endif

#define MAXV 2048

typedef struct {
    unsigned char key[64], iv[256], pt[MAXV], ct[MAXV], aad[MAXV], tag[64];
    size_t keylen, ivlen, ptlen, ctlen, aadlen, taglen;
    int has_key, has_iv, has_pt, has_ct, has_tag, fail;
    int line;
} vec;

typedef struct {
    size_t run, bad, fails_checked;
} tally;

/* Encrypt or decrypt one vector with the provider under test; 1 when it matches. */
static int check(const char *file, int mode, int enc, const vec *v, tally *ta)
{
    char name[32];
    EVP_CIPHER *c;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    unsigned char out[MAXV + 32], tag[16];
    int l1 = 0, l2 = 0, ok = 1, ret;
    const unsigned char *in = enc ? v->pt : v->ct, *want = enc ? v->ct : v->pt;
    size_t inlen = enc ? v->ptlen : v->ctlen, wantlen = enc ? v->ctlen : v->ptlen;
    const char *why = NULL;

    snprintf(name, sizeof(name), "AES-%zu-%s", v->keylen * 8,
             mode == EV_CBC ? "CBC" : mode == EV_CTR ? "CTR" : "GCM");
    c = ev_cipher(ev_ours(), name);
    ta->run++;
    ret = EVP_CipherInit_ex2(ctx, c, NULL, NULL, enc, NULL);
    if (ret > 0 && mode == EV_GCM && v->ivlen != 12)
        ret = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, (int)v->ivlen, NULL);
    if (ret > 0)
        ret = EVP_CipherInit_ex2(ctx, NULL, v->key, v->iv, enc, NULL);
    if (ret > 0 && mode == EV_CBC)
        ret = EVP_CIPHER_CTX_set_padding(ctx, 0); /* CAVP data is whole blocks, unpadded */
    if (ret > 0 && mode == EV_GCM && !enc)
        ret = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, (int)v->taglen, (void *)v->tag);
    if (ret > 0 && mode == EV_GCM && v->aadlen > 0)
        ret = EVP_CipherUpdate(ctx, NULL, &l1, v->aad, (int)v->aadlen);
    if (ret <= 0) {
        why = "setup failed";
        ok = 0;
        goto done;
    }
    l1 = 0;
    if (!EVP_CipherUpdate(ctx, out, &l1, in, (int)inlen)) {
        why = "update failed";
        ok = 0;
        goto done;
    }
    ret = EVP_CipherFinal_ex(ctx, out + l1, &l2);
    if (v->fail && !enc) {
        ta->fails_checked++;
        if (ret > 0) {
            why = "a FAIL vector was accepted";
            ok = 0;
        } else if (ERR_peek_error() == 0 && ev_strict_errors()) {
            why = "a FAIL vector failed without an error on the queue";
            ok = 0;
        }
        ERR_clear_error();
        goto done;
    }
    if (ret <= 0) {
        why = "final failed";
        ok = 0;
        goto done;
    }
    if ((size_t)(l1 + l2) != wantlen || memcmp(out, want, wantlen) != 0) {
        why = enc ? "ciphertext differs" : "plaintext differs";
        ok = 0;
        goto done;
    }
    if (mode == EV_GCM && enc) {
        if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag) <= 0 ||
            memcmp(tag, v->tag, v->taglen) != 0) {
            why = "tag differs";
            ok = 0;
        }
    }
done:
    if (!ok) {
        char h1[2 * 64 + 1], h2[2 * 64 + 1];

        ev_hex(h1, sizeof(h1), want, wantlen < 64 ? wantlen : 64);
        ev_hex(h2, sizeof(h2), out, (size_t)(l1 + l2) < 64 && l1 + l2 >= 0 ? (size_t)(l1 + l2) : 64);
        if (ta->bad < 10)
            fprintf(stderr, "MISMATCH %s:%d %s %s: %s (%s)\n  expected %s\n  got      %s\n", file,
                    v->line, name, enc ? "encrypt" : "decrypt", why, tu_errors(), h1, h2);
        ta->bad++;
    }
    ERR_clear_error();
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

static void run_vec(const char *file, int mode, int section_dec, const vec *v, tally *ta)
{
    if (!v->has_key || v->keylen == 0 || (!v->has_pt && !v->fail) || !v->has_ct)
        return;
    if (mode == EV_GCM) {
        if (!v->has_tag || !v->has_iv)
            return;
        if (v->fail) {
            check(file, mode, 0, v, ta);
            return;
        }
    }
    (void)section_dec; /* vectors are checked both ways, whatever their section */
    check(file, mode, 1, v, ta);
    check(file, mode, 0, v, ta);
}

static int field(const char *line, const char *key, const char **val)
{
    size_t n = strlen(key);

    if (strncasecmp(line, key, n) != 0)
        return 0;
    line += n;
    while (*line == ' ' || *line == '\t')
        line++;
    if (*line != '=')
        return 0;
    line++;
    while (*line == ' ' || *line == '\t')
        line++;
    *val = line;
    return 1;
}

static void hexfield(const char *file, int lineno, const char *val, unsigned char *dst, size_t cap,
                     size_t *len)
{
    *len = ev_unhex(dst, cap, val);
    ck_assert_msg(*len != (size_t)-1, "%s:%d: bad hex", file, lineno);
}

/* Parse a CAVP-style file (KEY = hex records, [ENCRYPT]/[DECRYPT] sections, FAIL). */
static void run_file(const char *path, tally *ta)
{
    FILE *f = fopen(path, "r");
    static vec v;
    static char line[8192];
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    int mode, dec = 0, lineno = 0, open_rec = 0;

    if (strcasestr(base, "cbc") != NULL)
        mode = EV_CBC;
    else if (strcasestr(base, "ctr") != NULL)
        mode = EV_CTR;
    else if (strcasestr(base, "gcm") != NULL)
        mode = EV_GCM;
    else
        return;
    ck_assert_msg(f != NULL, "cannot open %s", path);
    memset(&v, 0, sizeof(v));
    while (fgets(line, sizeof(line), f) != NULL) {
        const char *val;
        char *e = line + strlen(line);

        lineno++;
        while (e > line && isspace((unsigned char)e[-1]))
            *--e = '\0';
        if (strcasecmp(line, "[ENCRYPT]") == 0 || strcasecmp(line, "[DECRYPT]") == 0) {
            if (open_rec)
                run_vec(path, mode, dec, &v, ta);
            open_rec = 0;
            dec = strcasecmp(line, "[DECRYPT]") == 0;
            continue;
        }
        if (field(line, "COUNT", &val)) {
            if (open_rec)
                run_vec(path, mode, dec, &v, ta);
            memset(&v, 0, sizeof(v));
            v.line = lineno;
            open_rec = 1;
        } else if (field(line, "KEY", &val)) {
            hexfield(path, lineno, val, v.key, sizeof(v.key), &v.keylen);
            v.has_key = 1;
        } else if (field(line, "IV", &val)) {
            hexfield(path, lineno, val, v.iv, sizeof(v.iv), &v.ivlen);
            v.has_iv = 1;
        } else if (field(line, "PLAINTEXT", &val) || field(line, "PT", &val)) {
            hexfield(path, lineno, val, v.pt, sizeof(v.pt), &v.ptlen);
            v.has_pt = 1;
        } else if (field(line, "CIPHERTEXT", &val) || field(line, "CT", &val)) {
            hexfield(path, lineno, val, v.ct, sizeof(v.ct), &v.ctlen);
            v.has_ct = 1;
        } else if (field(line, "AAD", &val)) {
            hexfield(path, lineno, val, v.aad, sizeof(v.aad), &v.aadlen);
        } else if (field(line, "TAG", &val)) {
            hexfield(path, lineno, val, v.tag, sizeof(v.tag), &v.taglen);
            v.has_tag = 1;
        } else if (strcasecmp(line, "FAIL") == 0) {
            v.fail = 1;
        }
    }
    if (open_rec)
        run_vec(path, mode, dec, &v, ta);
    fclose(f);
}

static int cmpstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every vector file in dir (sorted, for stable output); returns files read. */
static size_t run_dir(const char *dir, tally *ta)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char *names[256];
    size_t n = 0, i;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL && n < 256) {
        size_t l = strlen(e->d_name);

        if (l > 4 && (strcmp(e->d_name + l - 4, ".rsp") == 0 || strcmp(e->d_name + l - 4, ".txt") == 0))
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), cmpstr);
    for (i = 0; i < n; i++) {
        char path[4096];

        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        run_file(path, ta);
        free(names[i]);
    }
    return n;
}

static const char *dir_from(const char *env, const char *def)
{
    const char *v = getenv(env);

    return v != NULL && *v != '\0' ? v : def;
}

START_TEST(cavp)
{
    const char *root = dir_from("KAIO_CAVP_DIR", KAIO_CAVP_DIR);
    static const char *const sub[] = {"CBC", "CTR", "GCM"};
    tally ta = {0, 0, 0};
    size_t files = 0, i;
    DIR *d = opendir(root);

    if (d == NULL) {
        fprintf(stderr, "SKIP cavp: %s not present (install python3-cryptography-vectors or set "
                        "KAIO_CAVP_DIR); the curated subset still runs\n", root);
        return;
    }
    closedir(d);
    for (i = 0; i < 3; i++) {
        char path[4096];

        snprintf(path, sizeof(path), "%s/%s", root, sub[i]);
        files += run_dir(path, &ta);
    }
    fprintf(stderr, "cavp: %zu files, %zu checks (%zu FAIL vectors), %zu mismatches\n", files, ta.run,
            ta.fails_checked, ta.bad);
    ck_assert_msg(ta.run > 0, "no vectors found under %s", root);
    ck_assert_msg(ta.fails_checked > 0, "no GCM FAIL vectors found under %s", root);
    ck_assert_msg(ta.bad == 0, "%zu of %zu CAVP checks failed, see stderr", ta.bad, ta.run);
}
END_TEST

START_TEST(curated)
{
    const char *dir = dir_from("KAIO_EVP_VECTORS_DIR", KAIO_EVP_VECTORS_DIR);
    tally ta = {0, 0, 0};
    size_t files = run_dir(dir, &ta);

    fprintf(stderr, "curated: %zu files in %s, %zu checks (%zu FAIL vectors), %zu mismatches\n",
            files, dir, ta.run, ta.fails_checked, ta.bad);
    ck_assert_msg(ta.run > 0, "no vectors found in %s (set KAIO_EVP_VECTORS_DIR)", dir);
    ck_assert_msg(ta.bad == 0, "%zu of %zu curated checks failed, see stderr", ta.bad, ta.run);
}
END_TEST

/* The parser and checker must be able to fail: a corrupted vector must be caught. */
START_TEST(self_check)
{
    static vec v;
    tally ta = {0, 0, 0};
    size_t l;

    memset(&v, 0, sizeof(v));
    /* RFC 3686 test vector #1 */
    ck_assert_uint_eq(ev_unhex(v.key, sizeof(v.key), "AE6852F8121067CC4BF7A5765577F39E"), 16);
    ck_assert_uint_eq(ev_unhex(v.iv, sizeof(v.iv), "00000030000000000000000000000001"), 16);
    l = ev_unhex(v.pt, sizeof(v.pt), "53696E676C6520626C6F636B206D7367");
    ck_assert_uint_eq(ev_unhex(v.ct, sizeof(v.ct), "E4095D4FB7A7B3792D6175A3261311B8"), 16);
    v.keylen = 16;
    v.ivlen = 16;
    v.ptlen = v.ctlen = l;
    v.has_key = v.has_iv = v.has_pt = v.has_ct = 1;
    run_vec("self", EV_CTR, 0, &v, &ta);
    ck_assert_uint_eq(ta.run, 2);
    ck_assert_msg(ta.bad == 0, "RFC 3686 vector #1 failed");
    v.ct[5] ^= 1;
    fprintf(stderr, "self_check: the next MISMATCH lines are expected\n");
    run_vec("self", EV_CTR, 0, &v, &ta);
    ck_assert_uint_eq(ta.bad, 2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("evp_kat");
    TCase *tc = ev_tcase("kat");

    tcase_add_test(tc, self_check);
    tcase_add_test(tc, curated);
    tcase_add_test(tc, cavp);
    suite_add_tcase(s, tc);
    return ev_run(s);
}

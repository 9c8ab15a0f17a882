/*
 * libssl client and server in one process, over memory BIOs this test moves
 * record by record, in a library context that loads kcapi-aio next to
 * default and prefers it ("?provider=kcapi-aio"), as kcapi-aio.cnf does.
 *
 *   exchange: every AES suite libssl offers (TLS 1.3 GCM; TLS 1.2 GCM and
 *             CBC with encrypt-then-MAC on and off; TLS 1.1/1.0 CBC at
 *             security level 0), many sizes both ways, bytes compared, and
 *             the provider's counters checked against the records sent.
 *   tamper:   one bit flipped in a record (CBC padding, MAC, IV, last block;
 *             GCM tag, ciphertext, nonce): the receiver fails with
 *             bad_record_mac, the peer gets that alert, no byte of the record
 *             reaches the application, the connection is over.
 *
 * Environment:
 *   KCAPI_AIO_TLS_DEFAULT_ONLY=1   load only OpenSSL's default provider (checks
 *                                  the harness itself; counters not checked)
 *   KCAPI_AIO_TLS_MAX_SIZE=N       skip transfer sizes above N bytes (the
 *                                  kernel lab's emulated VM is slow)
 *   KCAPI_AIO_MODULE_DIR           where kcapi-aio.so is (see testutil)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "kcapi-aio/names.h"
#include "testutil.h"

#define REC_HDR 5
#define MAX_FRAG 16384

/* ------------------------------------------------------------------ */
/* library context, providers, counters                                */

struct env {
    OSSL_LIB_CTX *lc;
    OSSL_PROVIDER *ours;  /* NULL when only default is loaded */
    OSSL_PROVIDER *deflt;
    EVP_PKEY *key;
    X509 *cert;
};

static int default_only(void)
{
    const char *v = getenv("KCAPI_AIO_TLS_DEFAULT_ONLY");

    return v != NULL && *v != '\0' && strcmp(v, "0") != 0;
}

static size_t max_size(void)
{
    const char *v = getenv("KCAPI_AIO_TLS_MAX_SIZE");

    return v != NULL && *v != '\0' ? (size_t)strtoull(v, NULL, 0) : (size_t)-1;
}

/* A self-signed P-256 certificate made here: the test needs no files. */
static void make_cert(struct env *e)
{
    X509_NAME *name;

    e->key = EVP_PKEY_Q_keygen(e->lc, NULL, "EC", "P-256");
    ck_assert_msg(e->key != NULL, "keygen: %s", tu_errors());
    e->cert = X509_new_ex(e->lc, NULL);
    ck_assert_ptr_nonnull(e->cert);
    ck_assert(X509_set_version(e->cert, X509_VERSION_3));
    ck_assert(ASN1_INTEGER_set(X509_get_serialNumber(e->cert), 1));
    ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(e->cert), -3600));
    ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notAfter(e->cert), 86400));
    name = X509_get_subject_name(e->cert);
    ck_assert(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                         (const unsigned char *)"kcapi-aio.test", -1, -1, 0));
    ck_assert(X509_set_issuer_name(e->cert, name));
    ck_assert(X509_set_pubkey(e->cert, e->key));
    ck_assert_msg(X509_sign(e->cert, e->key, EVP_sha256()) > 0, "sign: %s", tu_errors());
}

static void env_init(struct env *e)
{
    memset(e, 0, sizeof(*e));
    e->lc = OSSL_LIB_CTX_new();
    ck_assert_ptr_nonnull(e->lc);
    /*
     * Pin the DRBG to default: otherwise its AES-256-CTR would be fetched
     * under "?provider=kcapi-aio" too, and every RAND_bytes (TLS explicit
     * IVs) would add operations the record arithmetic below cannot predict.
     */
    ck_assert(RAND_set_DRBG_type(e->lc, NULL, "provider=default", NULL, NULL));
    if (!default_only()) {
        OSSL_PROVIDER_set_default_search_path(e->lc, tu_module_dir());
        e->ours = OSSL_PROVIDER_load(e->lc, KCAPI_AIO_NAME);
        ck_assert_msg(e->ours != NULL, "load %s from %s: %s", KCAPI_AIO_NAME, tu_module_dir(),
                      tu_errors());
    }
    e->deflt = OSSL_PROVIDER_load(e->lc, "default");
    ck_assert_msg(e->deflt != NULL, "load default: %s", tu_errors());
    /* The user's choice, made by the test, never by the provider. */
    ck_assert(EVP_set_default_properties(e->lc, "?" KCAPI_AIO_PROPS));
    make_cert(e);
}

static void env_free(struct env *e)
{
    X509_free(e->cert);
    EVP_PKEY_free(e->key);
    if (e->ours != NULL)
        OSSL_PROVIDER_unload(e->ours);
    OSSL_PROVIDER_unload(e->deflt);
    OSSL_LIB_CTX_free(e->lc);
}

/* The counters we look at, summed over paths where that is what matters. */
struct counts {
    unsigned long long ops;        /* ops_aio + ops_sync + ops_software */
    unsigned long long ops_software;
    unsigned long long bytes;      /* bytes_kernel + bytes_software */
    unsigned long long tag_failures;
};

static void read_counts(const struct env *e, struct counts *c)
{
    char buf[8192];
    OSSL_PARAM p[2];
    char *line, *save = NULL;

    memset(c, 0, sizeof(*c));
    if (e->ours == NULL)
        return;
    buf[0] = '\0';
    p[0] = OSSL_PARAM_construct_utf8_string(KCAPI_AIO_PARAM_COUNTERS, buf, sizeof(buf));
    p[1] = OSSL_PARAM_construct_end();
    ck_assert_msg(OSSL_PROVIDER_get_params(e->ours, p), "get %s: %s", KCAPI_AIO_PARAM_COUNTERS,
                  tu_errors());
    ck_assert_msg(OSSL_PARAM_modified(&p[0]), "provider did not return %s",
                  KCAPI_AIO_PARAM_COUNTERS);
    for (line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        unsigned long long v;

        if (eq == NULL)
            continue;
        *eq = '\0';
        v = strtoull(eq + 1, NULL, 10);
        if (strcmp(line, "ops_aio") == 0 || strcmp(line, "ops_sync") == 0
            || strcmp(line, "ops_software") == 0)
            c->ops += v;
        if (strcmp(line, "ops_software") == 0)
            c->ops_software = v;
        else if (strcmp(line, "bytes_kernel") == 0 || strcmp(line, "bytes_software") == 0)
            c->bytes += v;
        else if (strcmp(line, "tag_failures") == 0)
            c->tag_failures = v;
    }
}

/* ------------------------------------------------------------------ */
/* one side of a connection                                           */

struct side {
    const char *who;
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *in;            /* records for this side to read: filled by us */
    BIO *out;           /* records this side wrote: drained by us */
    long rec_written;   /* record headers seen by the msg callback */
    long rec_read;
    int alert_sent;     /* last alert (level << 8 | description), -1: none */
    int alert_recv;
    int server_hello_etm; /* ServerHello carried encrypt_then_mac */
};

static void info_cb(const SSL *ssl, int where, int ret)
{
    struct side *s = SSL_get_app_data(ssl);

    if (s == NULL)
        return;
    /* SSL_CB_READ_ALERT and SSL_CB_WRITE_ALERT share the SSL_CB_ALERT bit. */
    if ((where & SSL_CB_ALERT) == 0)
        return;
    if (where & SSL_CB_WRITE)
        s->alert_sent = ret;
    else if (where & SSL_CB_READ)
        s->alert_recv = ret;
}

/* Does a ServerHello body list extension 22 (encrypt_then_mac)? */
static int hello_has_etm(const unsigned char *m, size_t n)
{
    size_t off = 4 + 2 + 32, end;

    if (n < off + 1 || m[0] != 2)
        return 0;
    off += 1 + m[off];              /* session id */
    off += 2 + 1;                   /* cipher, compression */
    if (n < off + 2)
        return 0;
    end = off + 2 + ((size_t)m[off] << 8 | m[off + 1]);
    off += 2;
    while (off + 4 <= end && end <= n) {
        unsigned type = (unsigned)m[off] << 8 | m[off + 1];
        size_t len = (size_t)m[off + 2] << 8 | m[off + 3];

        if (type == 22)
            return 1;
        off += 4 + len;
    }
    return 0;
}

static void msg_cb(int write_p, int version, int content_type, const void *buf, size_t len,
                   SSL *ssl, void *arg)
{
    struct side *s = SSL_get_app_data(ssl);

    (void)version;
    (void)arg;
    if (s == NULL)
        return;
    if (content_type == SSL3_RT_HEADER) {
        if (write_p)
            s->rec_written++;
        else
            s->rec_read++;
    } else if (content_type == SSL3_RT_HANDSHAKE && !write_p && len > 0
               && ((const unsigned char *)buf)[0] == 2) {
        s->server_hello_etm = hello_has_etm(buf, len);
    }
}

/* A suite to run: protocol version, cipher (list or TLS 1.3 suite), EtM. */
struct suite {
    const char *name;     /* OpenSSL's name, as SSL_CIPHER_get_name prints it */
    int version;
    int etm;              /* CBC only: encrypt-then-MAC offered */
    int cbc;
    size_t maclen;        /* CBC: HMAC length */
};

static SSL_CTX *new_ctx(const struct env *e, const struct suite *su, int server)
{
    SSL_CTX *ctx = SSL_CTX_new_ex(e->lc, NULL, server ? TLS_server_method() : TLS_client_method());
    char list[128];

    ck_assert_msg(ctx != NULL, "SSL_CTX_new_ex: %s", tu_errors());
    ck_assert(SSL_CTX_set_min_proto_version(ctx, su->version));
    ck_assert(SSL_CTX_set_max_proto_version(ctx, su->version));
    if (su->version == TLS1_3_VERSION) {
        ck_assert_msg(SSL_CTX_set_ciphersuites(ctx, su->name), "%s: %s", su->name, tu_errors());
    } else {
        /* Old protocols sign with SHA-1: allowed only at level 0. */
        snprintf(list, sizeof(list), "%s%s", su->name,
                 su->version < TLS1_2_VERSION ? ":@SECLEVEL=0" : "");
        if (su->version < TLS1_2_VERSION)
            SSL_CTX_set_security_level(ctx, 0);
        ck_assert_msg(SSL_CTX_set_cipher_list(ctx, list), "%s: %s", list, tu_errors());
    }
    if (!su->etm)
        SSL_CTX_set_options(ctx, SSL_OP_NO_ENCRYPT_THEN_MAC);
    /* No tickets: TLS 1.3 would send them after the handshake, inside the
     * window where records are counted. */
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_info_callback(ctx, info_cb);
    SSL_CTX_set_msg_callback(ctx, msg_cb);
    if (server) {
        ck_assert(SSL_CTX_use_certificate(ctx, e->cert));
        ck_assert(SSL_CTX_use_PrivateKey(ctx, e->key));
    } else {
        ck_assert(X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), e->cert));
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    return ctx;
}

static void side_init(struct side *s, const struct env *e, const struct suite *su, int server)
{
    memset(s, 0, sizeof(*s));
    s->who = server ? "server" : "client";
    s->alert_sent = s->alert_recv = -1;
    s->ctx = new_ctx(e, su, server);
    s->ssl = SSL_new(s->ctx);
    ck_assert_ptr_nonnull(s->ssl);
    s->in = BIO_new(BIO_s_mem());
    s->out = BIO_new(BIO_s_mem());
    ck_assert(s->in != NULL && s->out != NULL);
    /* An empty input is "try again", not end of file. */
    BIO_set_mem_eof_return(s->in, -1);
    BIO_set_mem_eof_return(s->out, -1);
    SSL_set_bio(s->ssl, s->in, s->out);
    SSL_set_app_data(s->ssl, s);
    if (server)
        SSL_set_accept_state(s->ssl);
    else
        SSL_set_connect_state(s->ssl);
}

static void side_free(struct side *s)
{
    SSL_free(s->ssl);   /* frees both BIOs */
    SSL_CTX_free(s->ctx);
}

/*
 * What to do to the records moving from one side to the other: flip one bit
 * of the body byte at offset off(body length) of record number `index`.
 */
typedef size_t (*tamper_off_fn)(size_t bodylen, const struct suite *su);

struct tamper {
    long index;          /* which record, counted from 0 by move(); -1 none */
    tamper_off_fn off;
    const struct suite *su;
    long seen;
    int done;
};

/* Move every whole record from a's output to b's input. */
static void move(struct side *a, struct side *b, struct tamper *t)
{
    unsigned char hdr[REC_HDR], *body;
    size_t len;

    while (BIO_ctrl_pending(a->out) >= REC_HDR) {
        ck_assert_int_eq(BIO_read(a->out, hdr, REC_HDR), REC_HDR);
        len = (size_t)hdr[3] << 8 | hdr[4];
        body = OPENSSL_malloc(len > 0 ? len : 1);
        ck_assert_ptr_nonnull(body);
        ck_assert_msg(BIO_ctrl_pending(a->out) >= len, "%s wrote a partial record", a->who);
        if (len > 0)
            ck_assert_int_eq(BIO_read(a->out, body, (int)len), (int)len);
        if (t != NULL && t->index == t->seen++) {
            size_t o = t->off(len, t->su);

            ck_assert_msg(o < len, "tamper offset %zu outside a %zu-byte record", o, len);
            body[o] ^= 0x01;
            t->done = 1;
        }
        ck_assert_int_eq(BIO_write(b->in, hdr, REC_HDR), REC_HDR);
        if (len > 0)
            ck_assert_int_eq(BIO_write(b->in, body, (int)len), (int)len);
        OPENSSL_free(body);
    }
    ck_assert_int_eq((int)BIO_ctrl_pending(a->out), 0);
}

/* Handshake; returns 1 when both ends completed, 0 (errors kept) if not. */
static int handshake(struct side *c, struct side *s)
{
    int rc = 0, rs = 0, i;

    for (i = 0; i < 64 && (rc != 1 || rs != 1); i++) {
        if (rc != 1) {
            rc = SSL_do_handshake(c->ssl);
            if (rc != 1 && SSL_get_error(c->ssl, rc) != SSL_ERROR_WANT_READ)
                return 0;
        }
        move(c, s, NULL);
        if (rs != 1) {
            rs = SSL_do_handshake(s->ssl);
            if (rs != 1 && SSL_get_error(s->ssl, rs) != SSL_ERROR_WANT_READ)
                return 0;
        }
        move(s, c, NULL);
    }
    return rc == 1 && rs == 1;
}

static void check_negotiated(const struct side *c, const struct suite *su)
{
    const SSL_CIPHER *ci = SSL_get_current_cipher(c->ssl);

    ck_assert_int_eq(SSL_version(c->ssl), su->version);
    ck_assert_ptr_nonnull(ci);
    ck_assert_str_eq(SSL_CIPHER_get_name(ci), su->name);
    ck_assert_int_eq(SSL_get_verify_result(c->ssl), X509_V_OK);
    if (su->cbc)
        ck_assert_msg(c->server_hello_etm == su->etm, "%s: encrypt-then-MAC %s, wanted %s",
                      su->name, c->server_hello_etm ? "on" : "off", su->etm ? "on" : "off");
}

/* Send n bytes from a to b through the record layer; check them. */
static void transfer(struct side *a, struct side *b, const unsigned char *data,
                     unsigned char *got, size_t n)
{
    size_t w = 0, r = 0;

    while (w < n) {
        size_t k;
        int ret = SSL_write_ex(a->ssl, data + w, n - w, &k);

        ck_assert_msg(ret == 1, "%s SSL_write of %zu: error %d: %s", a->who, n - w,
                      SSL_get_error(a->ssl, 0), tu_errors());
        w += k;
    }
    move(a, b, NULL);
    while (r < n) {
        size_t k;
        int ret = SSL_read_ex(b->ssl, got + r, n - r, &k);

        ck_assert_msg(ret == 1, "%s SSL_read at %zu of %zu: error %d: %s", b->who, r, n,
                      SSL_get_error(b->ssl, 0), tu_errors());
        r += k;
    }
    ck_assert_int_eq(SSL_pending(b->ssl), 0);
    ck_assert_msg(tu_same("transfer", data, n, got, r), "%s -> %s: %zu bytes differ", a->who,
                  b->who, n);
}

/* ------------------------------------------------------------------ */
/* suites                                                               */

#define E(n, v, etm, cbc, mac) { n, v, etm, cbc, mac }
static const struct suite suites[] = {
    E("TLS_AES_128_GCM_SHA256", TLS1_3_VERSION, 0, 0, 0),
    E("TLS_AES_256_GCM_SHA384", TLS1_3_VERSION, 0, 0, 0),
    E("ECDHE-ECDSA-AES128-GCM-SHA256", TLS1_2_VERSION, 0, 0, 0),
    E("ECDHE-ECDSA-AES256-GCM-SHA384", TLS1_2_VERSION, 0, 0, 0),
    E("ECDHE-ECDSA-AES128-SHA", TLS1_2_VERSION, 1, 1, 20),
    E("ECDHE-ECDSA-AES128-SHA", TLS1_2_VERSION, 0, 1, 20),
    E("ECDHE-ECDSA-AES256-SHA", TLS1_2_VERSION, 1, 1, 20),
    E("ECDHE-ECDSA-AES256-SHA", TLS1_2_VERSION, 0, 1, 20),
    E("ECDHE-ECDSA-AES128-SHA256", TLS1_2_VERSION, 1, 1, 32),
    E("ECDHE-ECDSA-AES128-SHA256", TLS1_2_VERSION, 0, 1, 32),
    E("ECDHE-ECDSA-AES256-SHA384", TLS1_2_VERSION, 1, 1, 48),
    E("ECDHE-ECDSA-AES256-SHA384", TLS1_2_VERSION, 0, 1, 48),
    E("ECDHE-ECDSA-AES128-SHA", TLS1_1_VERSION, 1, 1, 20),
    E("ECDHE-ECDSA-AES128-SHA", TLS1_1_VERSION, 0, 1, 20),
    E("ECDHE-ECDSA-AES256-SHA", TLS1_1_VERSION, 1, 1, 20),
    E("ECDHE-ECDSA-AES256-SHA", TLS1_1_VERSION, 0, 1, 20),
    E("ECDHE-ECDSA-AES128-SHA", TLS1_VERSION, 1, 1, 20),
    E("ECDHE-ECDSA-AES128-SHA", TLS1_VERSION, 0, 1, 20),
    E("ECDHE-ECDSA-AES256-SHA", TLS1_VERSION, 1, 1, 20),
    E("ECDHE-ECDSA-AES256-SHA", TLS1_VERSION, 0, 1, 20),
};
#undef E
#define NSUITES (sizeof(suites) / sizeof(suites[0]))

static const char *vname(int v)
{
    switch (v) {
    case TLS1_3_VERSION: return "TLSv1.3";
    case TLS1_2_VERSION: return "TLSv1.2";
    case TLS1_1_VERSION: return "TLSv1.1";
    case TLS1_VERSION: return "TLSv1.0";
    }
    return "?";
}

static const char *label(const struct suite *su)
{
    static char buf[96];

    snprintf(buf, sizeof(buf), "%s %s%s", vname(su->version), su->name,
             !su->cbc ? "" : su->etm ? " EtM" : " MtE");
    return buf;
}

/*
 * libssl (3.0 to 3.6) replaces the CBC cipher of a mac-then-encrypt
 * AES-SHA1/SHA256 suite by a "stitched" AES-CBC-HMAC-SHA cipher when one can
 * be fetched; the default provider has them on CPUs with AES-NI. Then the
 * record work is done by that cipher, not by kcapi-aio. Which one libssl gets
 * is what the same fetch (same library context and properties) returns.
 */
static const char *stitched_provider(const struct env *e, const struct suite *su)
{
    static char prov[64];
    const char *n = NULL;
    EVP_CIPHER *c;

    if (!su->cbc || su->etm)
        return NULL;
    if (strstr(su->name, "AES128-SHA256") != NULL)
        n = "AES-128-CBC-HMAC-SHA256";
    else if (strstr(su->name, "AES256-SHA256") != NULL)
        n = "AES-256-CBC-HMAC-SHA256";
    else if (strstr(su->name, "AES128-SHA") != NULL && su->maclen == 20)
        n = "AES-128-CBC-HMAC-SHA1";
    else if (strstr(su->name, "AES256-SHA") != NULL && su->maclen == 20)
        n = "AES-256-CBC-HMAC-SHA1";
    if (n == NULL)
        return NULL;
    ERR_set_mark();
    c = EVP_CIPHER_fetch(e->lc, n, NULL);
    ERR_pop_to_mark();
    if (c == NULL)
        return NULL;
    snprintf(prov, sizeof(prov), "%s", OSSL_PROVIDER_get0_name(EVP_CIPHER_get0_provider(c)));
    EVP_CIPHER_free(c);
    return prov;
}

/*
 * Can this libssl still do that protocol at all? Asked with the default
 * provider alone, so a kcapi-aio failure is never mistaken for a skip.
 */
static int protocol_available(const struct suite *su, char *why, size_t whylen)
{
    struct env e;
    struct side c, s;
    int ok;

    /* Temporarily default-only: a private env, freed before we return. */
    memset(&e, 0, sizeof(e));
    e.lc = OSSL_LIB_CTX_new();
    ck_assert_ptr_nonnull(e.lc);
    e.deflt = OSSL_PROVIDER_load(e.lc, "default");
    ck_assert_ptr_nonnull(e.deflt);
    make_cert(&e);
    side_init(&c, &e, su, 0);
    side_init(&s, &e, su, 1);
    ok = handshake(&c, &s);
    if (!ok)
        snprintf(why, whylen, "%s", tu_errors());
    side_free(&c);
    side_free(&s);
    env_free(&e);
    return ok;
}

static const size_t sizes[] = { 1, 15, 16, 17, 255, 256, 1000, 16383, 16384, 16385, 100000 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

START_TEST(test_exchange)
{
    const struct suite *su = &suites[_i];
    struct env e;
    struct side c, s;
    struct counts before, after;
    unsigned char *data, *got;
    size_t i, limit = max_size(), payload = 0;
    long records = 0, empty_fragments, crw, srw;
    const char *stitched;
    char why[1024];

    if (su->version < TLS1_2_VERSION && !protocol_available(su, why, sizeof(why))) {
        fprintf(stderr, "SKIP %s: this libssl refuses it even at security level 0: %s\n",
                label(su), why);
        return;
    }
    env_init(&e);
    side_init(&c, &e, su, 0);
    side_init(&s, &e, su, 1);
    ck_assert_msg(handshake(&c, &s), "%s: handshake failed: %s", label(su), tu_errors());
    check_negotiated(&c, su);

    data = OPENSSL_malloc(sizes[NSIZES - 1]);
    got = OPENSSL_malloc(sizes[NSIZES - 1]);
    ck_assert(data != NULL && got != NULL);
    /* TLS 1.0 CBC: libssl puts an empty record before data (the known-IV
     * countermeasure): one per SSL_write call up to 3.1, one per record from
     * 3.2's record layer on. */
    empty_fragments = su->version == TLS1_VERSION && su->cbc ? 1 : 0;

    crw = c.rec_written;
    srw = s.rec_written;
    read_counts(&e, &before);
    for (i = 0; i < NSIZES; i++) {
        size_t n = sizes[i];

        if (n > limit)
            continue;
        tu_rand_bytes(data, n);
        transfer(&c, &s, data, got, n);
        tu_rand_bytes(data, n);
        transfer(&s, &c, data, got, n);
        if (OpenSSL_version_num() >= 0x30200000L)
            records += 2 * (long)((n + MAX_FRAG - 1) / MAX_FRAG) * (1 + empty_fragments);
        else
            records += 2 * ((long)((n + MAX_FRAG - 1) / MAX_FRAG) + empty_fragments);
        payload += 2 * n;
    }
    read_counts(&e, &after);

    /* The record layer did what the sizes imply... */
    ck_assert_msg((c.rec_written - crw) + (s.rec_written - srw) == records,
                  "%s: %ld records written, expected %ld", label(su),
                  (c.rec_written - crw) + (s.rec_written - srw), records);
    /* ...and each record was encrypted once and decrypted once, by us. */
    stitched = stitched_provider(&e, su);
    if (e.ours == NULL) {
        fprintf(stderr, "%s: ok (default provider only, counters not checked)\n", label(su));
    } else if (stitched != NULL && strcmp(stitched, KCAPI_AIO_NAME) != 0) {
        fprintf(stderr,
                "NOTE %s: libssl uses the stitched AES-CBC-HMAC cipher of provider \"%s\" "
                "for this suite: kcapi-aio ran %llu ops (expected 0)\n",
                label(su), stitched, after.ops - before.ops);
        ck_assert_msg(after.ops == before.ops, "%s: %llu kcapi-aio ops, expected 0", label(su),
                      after.ops - before.ops);
    } else {
        fprintf(stderr, "%s: kcapi-aio ran %llu ops (%llu in software) over %llu bytes for %ld "
                "records\n",
                label(su), after.ops - before.ops, after.ops_software - before.ops_software,
                after.bytes - before.bytes, records);
        ck_assert_msg(after.ops - before.ops == (unsigned long long)(2 * records),
                      "%s: kcapi-aio ran %llu ops, expected %ld (%ld records, each encrypted "
                      "and decrypted once)",
                      label(su), after.ops - before.ops, 2 * records, records);
        ck_assert_msg(after.bytes - before.bytes >= payload,
                      "%s: kcapi-aio counted %llu bytes, less than the %zu payload bytes",
                      label(su), after.bytes - before.bytes, payload);
    }

    /* Orderly close: the close_notify records must go through too. */
    ck_assert_int_eq(SSL_shutdown(c.ssl), 0);
    move(&c, &s, NULL);
    ck_assert_int_eq(SSL_read(s.ssl, got, 1), 0);
    ck_assert_int_eq(SSL_get_error(s.ssl, 0), SSL_ERROR_ZERO_RETURN);
    ck_assert_int_eq(SSL_shutdown(s.ssl), 1);
    move(&s, &c, NULL);
    ck_assert_int_eq(SSL_shutdown(c.ssl), 1);

    OPENSSL_free(data);
    OPENSSL_free(got);
    side_free(&c);
    side_free(&s);
    env_free(&e);
}
END_TEST

/* ------------------------------------------------------------------ */
/* tampering                                                          */

/*
 * Offsets into a record body (after the 5-byte header). Payload is 1 byte,
 * so for TLS 1.1+ CBC mac-then-encrypt the body is IV | E(data | MAC | pad):
 * flipping IV byte k flips plaintext byte k and nothing else.
 */
static size_t off_last(size_t len, const struct suite *su)
{
    (void)su;
    return len - 1;          /* GCM tag; EtM MAC; MtE last block -> padding */
}
static size_t off_first(size_t len, const struct suite *su)
{
    (void)len;
    (void)su;
    return 0;                /* TLS 1.2 GCM nonce; TLS 1.3 data; CBC IV -> data */
}
static size_t off_mte_mac(size_t len, const struct suite *su)
{
    (void)len;
    (void)su;
    return 1;                /* IV byte 1 -> plaintext byte 1 = first MAC byte */
}
static size_t off_mte_pad(size_t len, const struct suite *su)
{
    (void)su;
    return len - 17;         /* previous block -> last plaintext byte = pad length */
}
static size_t off_etm_ct(size_t len, const struct suite *su)
{
    return len - su->maclen - 1; /* last ciphertext byte (padding once decrypted) */
}
static size_t off_gcm12_ct(size_t len, const struct suite *su)
{
    (void)len;
    (void)su;
    return 8;                /* first ciphertext byte after the explicit nonce */
}
static size_t off_tls13_type(size_t len, const struct suite *su)
{
    (void)len;
    (void)su;
    return 1;                /* the inner content type, after 1 data byte */
}

struct tcase {
    struct suite su;
    const char *what;
    tamper_off_fn off;
};

#define T13(n, w, f) { { n, TLS1_3_VERSION, 0, 0, 0 }, w, f }
#define T12G(n, w, f) { { n, TLS1_2_VERSION, 0, 0, 0 }, w, f }
#define T12C(n, etm, mac, w, f) { { n, TLS1_2_VERSION, etm, 1, mac }, w, f }
static const struct tcase tcases[] = {
    T13("TLS_AES_128_GCM_SHA256", "GCM tag", off_last),
    T13("TLS_AES_128_GCM_SHA256", "GCM ciphertext", off_first),
    T13("TLS_AES_128_GCM_SHA256", "inner content type", off_tls13_type),
    T13("TLS_AES_256_GCM_SHA384", "GCM tag", off_last),
    T13("TLS_AES_256_GCM_SHA384", "GCM ciphertext", off_first),
    T13("TLS_AES_256_GCM_SHA384", "inner content type", off_tls13_type),
    T12G("ECDHE-ECDSA-AES128-GCM-SHA256", "GCM tag", off_last),
    T12G("ECDHE-ECDSA-AES128-GCM-SHA256", "GCM ciphertext", off_gcm12_ct),
    T12G("ECDHE-ECDSA-AES128-GCM-SHA256", "GCM explicit nonce", off_first),
    T12G("ECDHE-ECDSA-AES256-GCM-SHA384", "GCM tag", off_last),
    T12G("ECDHE-ECDSA-AES256-GCM-SHA384", "GCM ciphertext", off_gcm12_ct),
    T12G("ECDHE-ECDSA-AES256-GCM-SHA384", "GCM explicit nonce", off_first),
    T12C("ECDHE-ECDSA-AES256-SHA384", 0, 48, "CBC padding byte", off_mte_pad),
    T12C("ECDHE-ECDSA-AES256-SHA384", 0, 48, "CBC MAC byte", off_mte_mac),
    T12C("ECDHE-ECDSA-AES256-SHA384", 0, 48, "CBC data byte (IV)", off_first),
    T12C("ECDHE-ECDSA-AES256-SHA384", 0, 48, "CBC last block", off_last),
    T12C("ECDHE-ECDSA-AES128-SHA", 0, 20, "CBC padding byte", off_mte_pad),
    T12C("ECDHE-ECDSA-AES128-SHA", 0, 20, "CBC MAC byte", off_mte_mac),
    T12C("ECDHE-ECDSA-AES128-SHA", 0, 20, "CBC data byte (IV)", off_first),
    T12C("ECDHE-ECDSA-AES128-SHA", 0, 20, "CBC last block", off_last),
    T12C("ECDHE-ECDSA-AES256-SHA384", 1, 48, "EtM MAC byte", off_last),
    T12C("ECDHE-ECDSA-AES256-SHA384", 1, 48, "EtM last ciphertext byte", off_etm_ct),
    T12C("ECDHE-ECDSA-AES256-SHA384", 1, 48, "EtM IV byte", off_first),
    T12C("ECDHE-ECDSA-AES128-SHA", 1, 20, "EtM MAC byte", off_last),
    T12C("ECDHE-ECDSA-AES128-SHA", 1, 20, "EtM last ciphertext byte", off_etm_ct),
    T12C("ECDHE-ECDSA-AES128-SHA", 1, 20, "EtM IV byte", off_first),
};
#undef T13
#undef T12G
#undef T12C
#define NTCASES (sizeof(tcases) / sizeof(tcases[0]))

/* Did the error queue carry SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC? */
static int queue_has_bad_record_mac(char *all, size_t alllen)
{
    unsigned long err;
    int found = 0;
    size_t used = 0;

    all[0] = '\0';
    while ((err = ERR_get_error()) != 0) {
        char one[256];

        if (ERR_GET_LIB(err) == ERR_LIB_SSL
            && ERR_GET_REASON(err) == SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC)
            found = 1;
        ERR_error_string_n(err, one, sizeof(one));
        if (used + 4 < alllen)
            used += (size_t)snprintf(all + used, alllen - used, "%s%s", used ? " | " : "", one);
    }
    return found;
}

static void run_tamper(const struct tcase *tc, int server_sends)
{
    struct env e;
    struct side c, s, *tx, *rx;
    struct tamper t;
    struct counts before, after;
    unsigned char good[1000], bad = 0x5a, buf[32768];
    size_t k;
    int ret, err, i;
    char errs[2048];
    const char *stitched;

    env_init(&e);
    side_init(&c, &e, &tc->su, 0);
    side_init(&s, &e, &tc->su, 1);
    ck_assert_msg(handshake(&c, &s), "%s: handshake failed: %s", label(&tc->su), tu_errors());
    check_negotiated(&c, &tc->su);
    tx = server_sends ? &s : &c;
    rx = server_sends ? &c : &s;

    /* A good record first: the connection works and the data arrives. */
    tu_rand_bytes(good, sizeof(good));
    transfer(tx, rx, good, buf, sizeof(good));

    /* Then one byte whose record gets one bit flipped on the way. */
    read_counts(&e, &before);
    ck_assert_int_eq(SSL_write_ex(tx->ssl, &bad, 1, &k), 1);
    memset(&t, 0, sizeof(t));
    t.off = tc->off;
    t.su = &tc->su;
    t.index = 0;
    move(tx, rx, &t);
    ck_assert(t.done);

    memset(buf, 0xee, sizeof(buf));
    ERR_clear_error();
    ret = SSL_read(rx->ssl, buf, sizeof(buf));
    err = SSL_get_error(rx->ssl, ret);
    ck_assert_msg(ret <= 0, "%s (%s, %s -> %s): the tampered record was accepted: %d bytes",
                  label(&tc->su), tc->what, tx->who, rx->who, ret);
    ck_assert_msg(err == SSL_ERROR_SSL, "%s (%s): SSL_get_error %d, wanted SSL_ERROR_SSL",
                  label(&tc->su), tc->what, err);
    ck_assert_msg(queue_has_bad_record_mac(errs, sizeof(errs)),
                  "%s (%s): no DECRYPTION_FAILED_OR_BAD_RECORD_MAC in: %s", label(&tc->su),
                  tc->what, errs);
    ck_assert_int_eq(SSL_pending(rx->ssl), 0);
    for (i = 0; i < (int)sizeof(buf); i++)
        ck_assert_msg(buf[i] == 0xee, "%s (%s): byte %d of the read buffer was written",
                      label(&tc->su), tc->what, i);
    ck_assert_msg(rx->alert_sent == (SSL3_AL_FATAL << 8 | SSL_AD_BAD_RECORD_MAC),
                  "%s (%s): %s sent alert %#x, wanted fatal bad_record_mac", label(&tc->su),
                  tc->what, rx->who, (unsigned)rx->alert_sent);
    read_counts(&e, &after);

    /* The sender receives that alert. */
    move(rx, tx, NULL);
    ret = SSL_read(tx->ssl, buf, sizeof(buf));
    ck_assert_int_le(ret, 0);
    ck_assert_msg(tx->alert_recv == (SSL3_AL_FATAL << 8 | SSL_AD_BAD_RECORD_MAC),
                  "%s (%s): %s received alert %#x, wanted fatal bad_record_mac", label(&tc->su),
                  tc->what, tx->who, (unsigned)tx->alert_recv);
    ERR_clear_error();

    /* The connection is over on the receiving side. */
    ck_assert_int_le(SSL_write(rx->ssl, good, 10), 0);
    ERR_clear_error();

    /*
     * Who did the work: the sender's encryption, the receiver's decryption
     * (the GCM tag and the MtE MAC are checked after it; EtM rejects the
     * record before any decryption), and the encryption of the alert.
     */
    stitched = stitched_provider(&e, &tc->su);
    if (e.ours != NULL) {
        unsigned long long want = 2 + (tc->su.cbc && tc->su.etm ? 0 : 1);
        unsigned long long got = after.ops - before.ops;
        unsigned long long sw = after.ops_software - before.ops_software;

        if (stitched != NULL && strcmp(stitched, KCAPI_AIO_NAME) != 0)
            want = 0;
        /*
         * TLS 1.3 opens a record with streaming EVP calls (tag, AAD, data,
         * final): when the kernel rejects the tag in the data update, the
         * provider replays the message in software so that the update still
         * returns plaintext, as EVP's GCM does, and the final fails. That
         * replay is one more software op, never more.
         */
        if (want == 3 && tc->su.version == TLS1_3_VERSION && got == 4 && sw >= 1) {
            fprintf(stderr, "NOTE %s (%s): the rejected record was opened twice (kernel, then "
                    "a software replay): %llu ops, %llu in software\n",
                    label(&tc->su), tc->what, got, sw);
            want = 4;
        }
        ck_assert_msg(got == want,
                      "%s (%s): kcapi-aio ran %llu ops (%llu in software) for the record, its "
                      "rejected decryption and the alert, expected %llu",
                      label(&tc->su), tc->what, got, sw, want);
        if (!tc->su.cbc)
            ck_assert_msg(after.tag_failures - before.tag_failures == 1,
                          "%s (%s): tag_failures went up by %llu, expected 1", label(&tc->su),
                          tc->what, after.tag_failures - before.tag_failures);
    }
    fprintf(stderr, "%s: %s flipped, %s -> %s: rejected with bad_record_mac\n", label(&tc->su),
            tc->what, tx->who, rx->who);

    side_free(&c);
    side_free(&s);
    env_free(&e);
}

START_TEST(test_tamper_c2s)
{
    run_tamper(&tcases[_i], 0);
}
END_TEST

START_TEST(test_tamper_s2c)
{
    run_tamper(&tcases[_i], 1);
}
END_TEST

/* The provider is in the library context, loaded from where we built it. */
START_TEST(test_provider_loaded)
{
    struct env e;
    EVP_CIPHER *c;
    int i;

    env_init(&e);
    if (e.ours == NULL) {
        fprintf(stderr, "default provider only: kcapi-aio not loaded\n");
    } else {
        /* Every cipher libssl asks for comes from us under these properties. */
        for (i = 0; i < 9; i++) {
            if (strstr(tu_ciphers[i], "CTR") != NULL)
                continue;
            c = EVP_CIPHER_fetch(e.lc, tu_ciphers[i], NULL);
            ck_assert_msg(c != NULL, "fetch %s: %s", tu_ciphers[i], tu_errors());
            ck_assert_str_eq(OSSL_PROVIDER_get0_name(EVP_CIPHER_get0_provider(c)),
                             KCAPI_AIO_NAME);
            EVP_CIPHER_free(c);
        }
    }
    env_free(&e);
}
END_TEST

static Suite *tls_suite(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("provider");

    tcase_add_test(tc, test_provider_loaded);
    suite_add_tcase(s, tc);

    tc = tcase_create("exchange");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_exchange, 0, (int)NSUITES);
    suite_add_tcase(s, tc);

    tc = tcase_create("tamper");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_tamper_c2s, 0, (int)NTCASES);
    tcase_add_loop_test(tc, test_tamper_s2c, 0, (int)NTCASES);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tls_suite());
    int failed;

    tu_seed();
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

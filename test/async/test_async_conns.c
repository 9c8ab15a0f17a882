/*
 * A libssl TLS server in async mode (SSL_MODE_ASYNC) on kcapi-aio, with
 * NCONN client connections over socketpairs, driven by one event loop that
 * waits on the jobs' async fds (SSL_get_all_async_fds, with
 * SSL_get_changed_async_fds kept consistent) and on the sockets. The clients
 * run OpenSSL's default provider in their own library context, not async.
 * Each client sends its data in chunks and the server echoes every chunk.
 *
 * At pseudo-random rounds (a fixed seed, a bounded number) connections die:
 *   free      the server's SSL is freed while its job is paused (when one is)
 *   shutdown  the server calls SSL_shutdown, then frees it
 *   peer      the client closes its socket; the server sees it and frees
 *   timeout   the server drops a connection whose record is in the kernel:
 *             its socket closed first, then the SSL freed
 * Checked: every surviving connection's bytes come back whole; at the end
 * (everything freed, the provider unloaded) no fd is left open (each
 * connection's eventfd went with its SSL), every AIO read submitted was reaped or waited
 * out (aio_reads == aio_reads_ended) and, under ASan, nothing touched freed
 * memory. On the lab's device (ASYNC_EXPECT=device, see test_async.c for the
 * peek rule that makes the device's completions come late under TCG) jobs
 * pause and some connections die while paused, as on CPU drivers with the
 * same rule (ASYNC_EXPECT=all, GCM too); on the host's software path no job
 * pauses and the connections die mid-transfer.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/async.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "kcapi-aio/names.h"
#include "testutil.h"

#define NCONN 16
#define CHUNK 4096
#define NCHUNK 6
#define KILLS 6
#define MAX_ROUNDS 200000

struct suite {
    const char *name;
    int tls13;
    const char *ciphers;
    int etm;
    int on_device;           /* the lab's device serves it (CBC); GCM runs in software there */
};

static const struct suite suites[] = {
    { "TLS 1.2 AES-256-CBC-SHA384 EtM", 0, "ECDHE-ECDSA-AES256-SHA384", 1, 1 },
    { "TLS 1.2 AES-256-CBC-SHA384 MtE", 0, "ECDHE-ECDSA-AES256-SHA384", 0, 1 },
    { "TLS 1.2 AES-128-GCM", 0, "ECDHE-ECDSA-AES128-GCM-SHA256", 1, 0 },
    { "TLS 1.3 AES-256-GCM", 1, "TLS_AES_256_GCM_SHA384", 1, 0 },
};

/*
 * ASYNC_EXPECT: none (default: no job pauses), device (the lab's device: the
 * CBC suites pause, GCM runs in software; nothing pauses on 7.2, where AF_ALG
 * cannot bind the device), all (every suite in the kernel, CPU drivers
 * included, with the peek rule: every suite pauses).
 */
static int expect_pause(const struct suite *su)
{
    const char *e = getenv("ASYNC_EXPECT"), *k = getenv("KLAB_KERNEL");

    if (e != NULL && strcmp(e, "all") == 0)
        return 1;
    return e != NULL && strcmp(e, "device") == 0 && (k == NULL || strcmp(k, "7.2") != 0)
           && su->on_device;
}

static int expect_none(void)
{
    const char *e = getenv("ASYNC_EXPECT");

    return e == NULL || strcmp(e, "none") == 0;
}

/* The test's own generator: the kill points do not change with TU_SEED. */
static uint32_t lcg_state = 12345;

static uint32_t lcg(void)
{
    lcg_state = lcg_state * 1103515245u + 12345u;
    return lcg_state >> 8;
}

static size_t open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    size_t n = 0;

    ck_assert_ptr_nonnull(d);
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

struct env {
    OSSL_LIB_CTX *srv, *cli;
    OSSL_PROVIDER *ours, *sdef, *cdef;
    EVP_PKEY *key;
    X509 *cert;
};

static uint64_t counter(const struct env *e, const char *name)
{
    char buf[8192], *line, *save = NULL;
    OSSL_PARAM p[2];
    size_t n = strlen(name);

    buf[0] = '\0';
    p[0] = OSSL_PARAM_construct_utf8_string(KCAPI_AIO_PARAM_COUNTERS, buf, sizeof(buf));
    p[1] = OSSL_PARAM_construct_end();
    ck_assert(OSSL_PROVIDER_get_params(e->ours, p));
    for (line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
        if (strncmp(line, name, n) == 0 && line[n] == '=')
            return strtoull(line + n + 1, NULL, 10);
    ck_abort_msg("no counter %s", name);
    return 0;
}

/* Records kcapi-aio ran, on any path. */
static uint64_t ops(const struct env *e)
{
    return counter(e, "ops_aio") + counter(e, "ops_sync") + counter(e, "ops_software")
           + counter(e, "ops_coalesced");
}

static void env_init(struct env *e)
{
    X509_NAME *name;

    memset(e, 0, sizeof(*e));
    e->srv = OSSL_LIB_CTX_new();
    e->cli = OSSL_LIB_CTX_new();
    ck_assert(e->srv != NULL && e->cli != NULL);
    /* The DRBG stays on default: its AES-CTR is not what is tested. */
    ck_assert(RAND_set_DRBG_type(e->srv, NULL, "provider=default", NULL, NULL));
    OSSL_PROVIDER_set_default_search_path(e->srv, tu_module_dir());
    e->ours = OSSL_PROVIDER_load(e->srv, KCAPI_AIO_NAME);
    ck_assert_msg(e->ours != NULL, "load %s: %s", KCAPI_AIO_NAME, tu_errors());
    e->sdef = OSSL_PROVIDER_load(e->srv, "default");
    e->cdef = OSSL_PROVIDER_load(e->cli, "default");
    ck_assert(e->sdef != NULL && e->cdef != NULL);
    ck_assert(EVP_set_default_properties(e->srv, "?" KCAPI_AIO_PROPS));

    e->key = EVP_PKEY_Q_keygen(e->cli, NULL, "EC", "P-256");
    ck_assert_msg(e->key != NULL, "keygen: %s", tu_errors());
    e->cert = X509_new_ex(e->cli, NULL);
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

static void env_free(struct env *e)
{
    X509_free(e->cert);
    EVP_PKEY_free(e->key);
    OSSL_PROVIDER_unload(e->ours);
    OSSL_PROVIDER_unload(e->sdef);
    OSSL_PROVIDER_unload(e->cdef);
    OSSL_LIB_CTX_free(e->srv);
    OSSL_LIB_CTX_free(e->cli);
}


static SSL_CTX *make_ctx(const struct env *e, const struct suite *su, int server)
{
    SSL_CTX *c = SSL_CTX_new_ex(server ? e->srv : e->cli, NULL,
                                server ? TLS_server_method() : TLS_client_method());

    ck_assert_msg(c != NULL, "SSL_CTX_new_ex: %s", tu_errors());
    if (su->tls13) {
        ck_assert(SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION));
        ck_assert(SSL_CTX_set_ciphersuites(c, su->ciphers));
    } else {
        ck_assert(SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION));
        ck_assert(SSL_CTX_set_cipher_list(c, su->ciphers));
    }
    if (!su->etm)
        SSL_CTX_set_options(c, SSL_OP_NO_ENCRYPT_THEN_MAC);
    SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
    if (server) {
        ck_assert(SSL_CTX_use_certificate(c, e->cert));
        ck_assert(SSL_CTX_use_PrivateKey(c, e->key));
        SSL_CTX_set_mode(c, SSL_MODE_ASYNC);
    } else {
        ck_assert(X509_STORE_add_cert(SSL_CTX_get_cert_store(c), e->cert));
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    }
    return c;
}

enum sstate { S_HS, S_READ, S_WRITE, S_GONE };

struct conn {
    int sfd, cfd;            /* server and client ends, -1 once closed */
    SSL *s, *c;
    /* server */
    enum sstate st;
    int waiting;             /* the last server call said SSL_ERROR_WANT_ASYNC */
    unsigned char sbuf[CHUNK];
    int spend;               /* bytes read, to echo */
    OSSL_ASYNC_FD afd[4];    /* the server's async fds as SSL_get_changed_async_fds tells */
    size_t nafd;
    /* client */
    int chs;                 /* client handshake done */
    size_t sent, got;        /* bytes written, echoed bytes read and checked */
    unsigned char data[CHUNK * NCHUNK];
    int bad;                 /* echoed bytes differ */
    int dead;                /* killed (or found dead) */
};

struct stats {
    size_t paused_kills, kills, pauses_seen, rounds;
};

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void server_gone(struct conn *k)
{
    SSL_free(k->s);
    k->s = NULL;
    close_fd(&k->sfd);
    k->st = S_GONE;
}

static void client_gone(struct conn *k)
{
    SSL_free(k->c);
    k->c = NULL;
    close_fd(&k->cfd);
}

/* The async fds the server's SSL removed and added (since its job last
 * resumed; a removal may be told again), applied as an event loop does:
 * they must give what SSL_get_all_async_fds says. */
static void track_fds(struct conn *k)
{
    OSSL_ASYNC_FD add[4], del[4], all[4];
    size_t nadd = 0, ndel = 0, nall = 0, i, x;

    ck_assert(SSL_get_changed_async_fds(k->s, NULL, &nadd, NULL, &ndel));
    ck_assert(nadd <= 4 && ndel <= 4);
    ck_assert(SSL_get_changed_async_fds(k->s, add, &nadd, del, &ndel));
    for (i = 0; i < ndel; i++)
        for (x = 0; x < k->nafd; x++)
            if (k->afd[x] == del[i]) {
                k->afd[x] = k->afd[--k->nafd];
                break;
            }
    for (i = 0; i < nadd; i++) {
        ck_assert_uint_lt(k->nafd, 4);
        k->afd[k->nafd++] = add[i];
    }
    ck_assert(SSL_get_all_async_fds(k->s, NULL, &nall));
    ck_assert_uint_eq(nall, k->nafd);
    ck_assert(SSL_get_all_async_fds(k->s, all, &nall));
    for (i = 0; i < nall; i++) {
        for (x = 0; x < k->nafd && k->afd[x] != all[i]; x++)
            ;
        ck_assert_msg(x < k->nafd, "async fd %d not told as added", (int)all[i]);
    }
}

/* One server step; 1 when something moved. */
static int server_step(struct conn *k, struct stats *st)
{
    int r = 1, e;

    ERR_clear_error();
    switch (k->st) {
    case S_HS:
        r = SSL_do_handshake(k->s);
        if (r == 1)
            k->st = S_READ;
        break;
    case S_READ:
        r = SSL_read(k->s, k->sbuf, sizeof(k->sbuf));
        if (r > 0) {
            k->spend = r;
            k->st = S_WRITE;
        }
        break;
    case S_WRITE:
        r = SSL_write(k->s, k->sbuf, k->spend);
        if (r > 0) {
            ck_assert_int_eq(r, k->spend);
            k->st = S_READ;
        }
        break;
    case S_GONE:
        return 0;
    }
    k->waiting = 0;
    if (r > 0) {
        track_fds(k);
        return 1;
    }
    e = SSL_get_error(k->s, r);
    if (e == SSL_ERROR_WANT_ASYNC) {
        k->waiting = 1;
        st->pauses_seen++;
        track_fds(k);
        ck_assert_uint_ge(k->nafd, 1);
        return 1;
    }
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        track_fds(k);
        return 0;
    }
    /* The peer went away (or a kill left it half done): the server frees. */
    ck_assert_msg(k->dead, "server side of a live connection failed: %d %s", e, tu_errors());
    server_gone(k);
    return 1;
}

/* One client step: handshake, then one chunk out and its echo back. */
static int client_step(struct conn *k)
{
    int r, e;

    if (k->c == NULL)
        return 0;
    if (k->dead && k->got == sizeof(k->data)) {
        client_gone(k); /* its peer died after the last echo */
        return 1;
    }
    ERR_clear_error();
    if (!k->chs) {
        r = SSL_do_handshake(k->c);
        if (r == 1) {
            k->chs = 1;
            return 1;
        }
    } else if (k->sent == k->got && k->sent < sizeof(k->data)) {
        r = SSL_write(k->c, k->data + k->sent, CHUNK);
        if (r > 0) {
            ck_assert_int_eq(r, CHUNK);
            k->sent += CHUNK;
            return 1;
        }
    } else if (k->got < k->sent) {
        unsigned char buf[CHUNK];

        r = SSL_read(k->c, buf, (int)(k->sent - k->got));
        if (r > 0) {
            if (memcmp(buf, k->data + k->got, (size_t)r) != 0)
                k->bad = 1;
            k->got += (size_t)r;
            return 1;
        }
    } else {
        return 0; /* all done */
    }
    e = SSL_get_error(k->c, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    ck_assert_msg(k->dead, "client of a live connection failed: %d %s", e, tu_errors());
    client_gone(k);
    return 1;
}

/* Kills one live connection, preferring one whose job is paused. */
static void kill_one(struct conn *cs, struct stats *st)
{
    size_t i, pick = NCONN, n = 0;
    unsigned how = lcg() % 4;
    struct conn *k;

    for (i = 0; i < NCONN; i++)
        if (!cs[i].dead && cs[i].s != NULL && cs[i].waiting && lcg() % ++n == 0)
            pick = i;
    if (pick == NCONN || how == 2)
        for (n = 0, i = 0; i < NCONN; i++)
            if (!cs[i].dead && cs[i].s != NULL && lcg() % ++n == 0)
                pick = i;
    if (pick == NCONN)
        return;
    k = &cs[pick];
    k->dead = 1;
    st->kills++;
    st->paused_kills += k->waiting;
    switch (how) {
    case 0: /* freed, its job maybe paused */
        server_gone(k);
        break;
    case 1: /* shut down, then freed */
        SSL_shutdown(k->s);
        server_gone(k);
        break;
    case 2: /* the peer closes: the server notices by itself */
        client_gone(k);
        return;
    default: /* timed out: the socket goes first */
        close_fd(&k->sfd);
        server_gone(k);
        break;
    }
    /* The client finds its peer gone by itself; a client still in its
     * handshake would wait for nothing if it never reads, so it goes too. */
    if (!k->chs)
        client_gone(k);
}

static int conn_done(const struct conn *k)
{
    if (k->dead)
        return k->c == NULL && k->s == NULL;
    return k->got == sizeof(k->data);
}

static void run_suite(const struct env *e, const struct suite *su, struct stats *st)
{
    SSL_CTX *sctx = make_ctx(e, su, 1), *cctx = make_ctx(e, su, 0);
    struct conn *cs = calloc(NCONN, sizeof(*cs));
    size_t i, left, kills = 0;
    int idle = 0;

    ck_assert_ptr_nonnull(cs);
    for (i = 0; i < NCONN; i++) {
        struct conn *k = &cs[i];
        int sv[2];

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
        k->sfd = sv[0];
        k->cfd = sv[1];
        k->s = SSL_new(sctx);
        k->c = SSL_new(cctx);
        ck_assert(k->s != NULL && k->c != NULL);
        ck_assert(SSL_set_fd(k->s, k->sfd) && SSL_set_fd(k->c, k->cfd));
        SSL_set_accept_state(k->s);
        SSL_set_connect_state(k->c);
        tu_rand_bytes(k->data, sizeof(k->data));
    }
    for (st->rounds = 0;; st->rounds++) {
        struct pollfd p[NCONN * 3];
        size_t m = 0;
        int moved = 0;

        ck_assert_msg(st->rounds < MAX_ROUNDS, "%s: connections never finished", su->name);
        for (left = 0, i = 0; i < NCONN; i++)
            left += !conn_done(&cs[i]);
        if (left == 0)
            break;
        /* Deaths at pseudo-random rounds, a bounded number per suite. */
        if (kills < KILLS && lcg() % 3 == 0) {
            kill_one(cs, st);
            kills++;
        }
        for (i = 0; i < NCONN; i++) {
            moved |= client_step(&cs[i]);
            if (cs[i].s != NULL && !cs[i].waiting)
                moved |= server_step(&cs[i], st);
        }
        /* Wait for a paused job's fd or a socket; paused jobs resume only
         * when their fd says so. */
        for (i = 0; i < NCONN; i++) {
            struct conn *k = &cs[i];

            if (k->s != NULL && k->waiting) {
                OSSL_ASYNC_FD fds[4];
                size_t n = 0, x;

                ck_assert(SSL_get_all_async_fds(k->s, NULL, &n));
                ck_assert_uint_ge(n, 1);
                ck_assert_uint_le(n, 4);
                ck_assert(SSL_get_all_async_fds(k->s, fds, &n));
                for (x = 0; x < n; x++)
                    p[m++] = (struct pollfd){ .fd = fds[x], .events = POLLIN };
            }
        }
        if (poll(p, m, moved || idle < 2 ? 0 : 100) < 0)
            ck_abort_msg("poll: %s", strerror(errno));
        idle = moved ? 0 : idle + 1;
        m = 0;
        for (i = 0; i < NCONN; i++) {
            struct conn *k = &cs[i];
            size_t n = 0, x, ready = 0;

            if (k->s == NULL || !k->waiting)
                continue;
            ck_assert(SSL_get_all_async_fds(k->s, NULL, &n));
            for (x = 0; x < n; x++)
                ready |= (p[m++].revents & POLLIN) != 0;
            if (ready)
                server_step(k, st);
        }
    }
    for (i = 0; i < NCONN; i++) {
        struct conn *k = &cs[i];

        if (!k->dead) {
            ck_assert_msg(!k->bad, "%s: connection %zu got wrong bytes back", su->name, i);
            ck_assert_uint_eq(k->got, sizeof(k->data));
            SSL_shutdown(k->s);
            server_gone(k);
            client_gone(k);
        }
    }
    free(cs);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

/* One suite per test: Check runs each in its own process, so each loads the
 * provider and gets the lab's fault rule afresh. */
START_TEST(dying_connections)
{
    const struct suite *su = &suites[_i];
    struct env e;
    struct stats st = { 0 };
    size_t fds0, fds1;
    uint64_t ops0, pauses, abandoned, reads, ended;

    signal(SIGPIPE, SIG_IGN);
    fds0 = open_fds();
    env_init(&e);
    ops0 = ops(&e);
    run_suite(&e, su, &st);
    /* The server's records went through kcapi-aio. */
    ck_assert_uint_ge(ops(&e) - ops0, NCONN);
    pauses = counter(&e, "async_pauses");
    abandoned = counter(&e, "async_abandoned");
    reads = counter(&e, "aio_reads");
    ended = counter(&e, "aio_reads_ended");
    printf("%s: %zu rounds, %zu kills (%zu while paused); async_pauses=%llu async_abandoned=%llu "
           "aio_reads=%llu aio_reads_ended=%llu\n",
           su->name, st.rounds, st.kills, st.paused_kills, (unsigned long long)pauses,
           (unsigned long long)abandoned, (unsigned long long)reads, (unsigned long long)ended);
    env_free(&e);
    ck_assert_uint_gt(st.kills, 0);
    /* No AIO slot held: every read submitted was reaped or waited out. */
    ck_assert_uint_eq(reads, ended);
    if (expect_pause(su)) {
        ck_assert_uint_gt(pauses, 0);
        ck_assert_uint_gt(st.paused_kills, 0);
        ck_assert_uint_gt(abandoned, 0);
    } else if (expect_none()) {
        ck_assert_uint_eq(pauses, 0);
        ck_assert_uint_eq(st.pauses_seen, 0);
    }
    /* Provider unloaded: nothing left open (each connection's eventfd was
     * closed when its SSL, and so its wait ctx, was freed). */
    fds1 = open_fds();
    ck_assert_uint_le(fds1, fds0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("async_conns");
    TCase *tc = tcase_create("conns");
    SRunner *sr;
    int failed;

    tu_seed();
    tcase_add_loop_test(tc, dying_connections, 0, (int)(sizeof(suites) / sizeof(suites[0])));
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

/* A forked child never uses its parent's sockets; fds closed under the
 * engine (daemons closing everything) are found and rebuilt, and fd numbers
 * reused by someone else (a file, a TCP connection, a listening socket) are
 * left alone: not a byte is written to them. Needs AF_ALG. */
#define _GNU_SOURCE /* accept4 */
#include "etest.h"
#include "internal.h" /* KAIO_FD_FLOOR */

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

static void fresh(struct et_batch *b)
{
    size_t i;

    for (i = 0; i < b->n; i++) {
        tu_rand_bytes(b->r[i].orig, b->ops[i].len);
        tu_rand_bytes(b->r[i].iv, 16);
        et_reref(b, i);
    }
}

START_TEST(child_rebuilds)
{
    enum kaio_mode mode = (enum kaio_mode)_i;
    struct et_shape sh = { -1, -1, 200, 16, 16, 0 };
    struct et_batch b;
    struct kaio_key *k;
    unsigned before = 0;
    int st = 0;
    pid_t pid;

    et_need_kernel("engine_fork");
    et_make(&b, mode, 16, 6, &sh);
    k = et_key(&b);
    ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, KAIO_PATH_AIO), 0);
    et_check(&b, "parent before fork");
    before = et_count_alg_fds();
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct kaio_counters c;
        unsigned tfms, ops;

        fresh(&b);
        kaio_counters_reset();
        if (kaio_key_run(k, b.ops, b.n, KAIO_PATH_AIO) != 0)
            _exit(2);
        et_check(&b, "child");
        kaio_counters_get(&c);
        kaio_key_sockets(k, &tfms, &ops);
        /* Its own tfm and op sockets, the inherited ones closed. */
        if (c.c[KAIO_C_OPS_AIO] + c.c[KAIO_C_OPS_SYNC] != b.n || tfms != 1 || et_count_alg_fds() != tfms + ops)
            _exit(3);
        kaio_key_free(k);
        _exit(et_count_alg_fds() == 0 ? 0 : 4);
    }
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
    /* The parent's sockets are untouched by the child's closing its copies. */
    ck_assert_uint_eq(et_count_alg_fds(), before);
    fresh(&b);
    ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, KAIO_PATH_AIO), 0);
    et_check(&b, "parent after child");
    kaio_key_free(k);
    ck_assert_uint_eq(kaio_fds_held(), 0);
    et_free(&b);
}
END_TEST

static unsigned close_alg_fds(int *closed, unsigned max)
{
    unsigned n = 0;
    int fd;

    for (fd = 3; fd < 4096; fd++) {
        int dom = 0;
        socklen_t l = sizeof(dom);

        if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) == 0 && dom == AF_ALG) {
            close(fd);
            if (n < max)
                closed[n] = fd;
            n++;
        }
    }
    return n;
}

START_TEST(closed_under_us)
{
    enum kaio_path path = _i % 2 ? KAIO_PATH_SYNC : KAIO_PATH_AIO;
    int reuse = _i / 2;
    struct et_shape sh = { -1, -1, 200, 0, 0, 0 };
    struct et_batch b;
    struct kaio_key *k;
    int closed[64], others[64];
    unsigned n, i;

    et_need_kernel("engine_fork");
    et_make(&b, KAIO_CBC, 16, 4, &sh);
    k = et_key(&b);
    ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, path), 0);
    n = close_alg_fds(closed, 64);
    ck_assert_uint_ge(n, 2);
    /* Someone else now owns those numbers (a file, not a socket). */
    for (i = 0; reuse && i < n; i++) {
        others[i] = open("/dev/null", O_RDONLY);
        ck_assert_int_ge(others[i], 0);
    }
    fresh(&b);
    ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, path), 0);
    et_check(&b, reuse ? "after fds closed and reused" : "after fds closed");
    kaio_key_free(k);
    for (i = 0; reuse && i < n; i++) {
        ck_assert_msg(fcntl(others[i], F_GETFD) >= 0, "fd %d of someone else was closed", others[i]);
        close(others[i]);
    }
    ck_assert_uint_eq(kaio_fds_held(), 0);
    ck_assert_uint_eq(et_count_alg_fds(), 0);
    et_free(&b);
}
END_TEST

static uint64_t cookie(int fd)
{
    uint64_t c = 0;
    socklen_t l = sizeof(c);

    return getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &l) == 0 ? c : 0;
}

/* Puts the socket fd at number at (which a placeholder holds): no other
 * number of ours moves. */
static void put_at(int fd, int at)
{
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(dup2(fd, at), at);
    close(fd);
}

/* The numbers of the engine's sockets, closed and handed to TCP sockets. */
struct takeover {
    int listening, n, lfd;
    int closed[64], other[64]; /* the numbers, and each one's peer */
    uint64_t id[64];
};

/* Closes every AF_ALG fd and puts a TCP socket on each number: connected
 * ones (a sendmsg would put the record on the wire) or listening ones with a
 * connection waiting (an accept would take it). */
static void take_over(struct takeover *t, int listening)
{
    int port, i;

    t->listening = listening;
    t->n = (int)close_alg_fds(t->closed, 64);
    ck_assert_int_ge(t->n, 2);
    ck_assert_int_le(t->n, 64);
    /* Hold every number first, so new sockets land elsewhere. */
    for (i = 0; i < t->n; i++)
        ck_assert_int_eq(dup2(2, t->closed[i]), t->closed[i]);
    t->lfd = tu_tcp_listen(&port);
    ck_assert_msg(t->lfd >= 0, "no loopback TCP: %s", strerror(errno));
    for (i = 0; i < t->n; i++) {
        if (listening) {
            int p2, l2 = tu_tcp_listen(&p2);

            ck_assert_int_ge(l2, 0);
            t->other[i] = tu_tcp_connect(p2); /* waits in l2's backlog */
            put_at(l2, t->closed[i]);
        } else {
            int cfd = tu_tcp_connect(port);

            t->other[i] = accept4(t->lfd, NULL, NULL, SOCK_CLOEXEC);
            put_at(cfd, t->closed[i]);
        }
        ck_assert_int_ge(t->other[i], 0);
        t->id[i] = cookie(t->closed[i]);
        ck_assert_uint_ne(t->id[i], 0);
    }
}

/* Nothing was written to the TCP sockets, no waiting connection taken, none
 * closed or replaced; then closes them. */
static void check_taken_over(struct takeover *t)
{
    int i;

    for (i = 0; i < t->n; i++) {
        ck_assert_msg(cookie(t->closed[i]) == t->id[i], "fd %d (someone's TCP socket) was closed or replaced",
                      t->closed[i]);
        if (t->listening) {
            int a = accept4(t->closed[i], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

            ck_assert_msg(a >= 0, "the connection waiting on fd %d was taken: %s", t->closed[i], strerror(errno));
            ck_assert_int_eq(tu_bytes_waiting(a), 0);
            close(a);
        } else {
            ck_assert_msg(tu_bytes_waiting(t->other[i]) == 0, "%d bytes went to the TCP peer of fd %d",
                          tu_bytes_waiting(t->other[i]), t->closed[i]);
        }
        ck_assert_int_eq(tu_bytes_waiting(t->listening ? t->other[i] : t->closed[i]), 0);
        close(t->closed[i]);
        close(t->other[i]);
    }
    close(t->lfd);
}

/*
 * After a batch, the numbers of the key's sockets are closed and handed to
 * TCP sockets. The next batch must still give the right bytes, write nothing
 * to them, take no connection, and neither the batch nor kaio_key_free may
 * close them.
 */
START_TEST(taken_over_by_tcp)
{
    enum kaio_mode mode = (enum kaio_mode)(_i % 3);
    enum kaio_path path = (_i / 3) % 2 ? KAIO_PATH_SYNC : KAIO_PATH_AIO;
    struct et_shape sh = { -1, -1, 300, 16, 16, 0 };
    struct takeover t;
    struct et_batch b;
    struct kaio_key *k;
    struct kaio_counters c;

    et_need_kernel("engine_fork");
    et_make(&b, mode, 16, 5, &sh);
    k = et_key(&b);
    ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, path), 0);
    take_over(&t, _i / 6);
    fresh(&b);
    kaio_counters_reset();
    ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, path), 0);
    kaio_counters_get(&c);
    et_check(&b, t.listening ? "after listening TCP sockets took the numbers" : "after TCP connections took the numbers");
    ck_assert_uint_ge(c.c[KAIO_C_FDS_LOST], 1);
    ck_assert_uint_le(c.c[KAIO_C_FDS_LOST], (uint64_t)t.n);
    kaio_key_free(k);
    check_taken_over(&t);
    ck_assert_uint_eq(kaio_fds_held(), 0);
    ck_assert_uint_eq(et_count_alg_fds(), 0);
    et_free(&b);
}
END_TEST

/* Taken over, and no new socket can be made: the ops come back not run,
 * with the reason, for the caller to run in software; still nothing written
 * to the TCP sockets. Once sockets can be made again, the key works. */
START_TEST(rebuild_fails)
{
    enum kaio_path path = _i ? KAIO_PATH_SYNC : KAIO_PATH_AIO;
    struct et_shape sh = { 1, 0, 200, 0, 0, 0 };
    struct takeover t;
    struct et_batch b;
    struct kaio_key *k;
    size_t i;

    et_need_kernel("engine_fork");
    et_make(&b, KAIO_CBC, 16, 3, &sh);
    k = et_key(&b);
    ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, path), 0);
    take_over(&t, 0);
    fresh(&b);
    ck_assert_int_eq(kaio_fault_set("socket=EIO:1:0,accept=EIO:1:0"), 0);
    ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, path), b.n);
    kaio_fault_set(NULL);
    for (i = 0; i < b.n; i++) {
        ck_assert_int_eq(b.ops[i].status, KAIO_NOT_RUN);
        ck_assert_str_eq(kaio_reason_name(b.ops[i].reason), kaio_reason_name(KAIO_R_FD_LOST));
    }
    fresh(&b);
    ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, path), 0);
    et_check(&b, "once sockets can be made again");
    kaio_key_free(k);
    check_taken_over(&t);
    ck_assert_uint_eq(kaio_fds_held(), 0);
    et_free(&b);
}
END_TEST

/* The proof costs one syscall per socket per batch: a synchronous batch of n
 * records on open sockets takes n getsockopt + n sendmsg + n recvmsg. */
START_TEST(proof_cost)
{
    struct et_shape sh = { 1, 0, 256, 0, 0, 0 };
    struct et_batch b;
    struct kaio_key *k;
    struct kaio_counters c;

    et_need_kernel("engine_fork");
    et_make(&b, KAIO_CBC, 16, 4, &sh);
    k = et_key(&b);
    ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, KAIO_PATH_SYNC), 0);
    fresh(&b);
    kaio_counters_reset();
    ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, KAIO_PATH_SYNC), 0);
    kaio_counters_get(&c);
    et_check(&b, "second batch");
    ck_assert_uint_eq(c.c[KAIO_C_SYSCALLS], 3 * b.n);
    ck_assert_uint_eq(c.c[KAIO_C_FDS_LOST], 0);
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

/* The engine's sockets live at fd numbers >= KAIO_FD_FLOOR where the limit
 * allows, above the numbers a daemon reuses first. Prints what a new key and
 * its first record cost in syscalls. */
START_TEST(fds_above_floor)
{
    struct et_shape sh = { 1, 0, 64, 0, 0, 0 };
    struct et_batch b;
    struct kaio_key *k;
    struct kaio_counters c;
    struct rlimit rl;
    int fd, seen = 0;

    et_need_kernel("engine_fork");
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    et_make(&b, KAIO_CBC, 16, 1, &sh);
    kaio_counters_reset();
    k = et_key(&b);
    ck_assert_uint_eq(kaio_key_run(k, b.ops, 1, KAIO_PATH_SYNC), 0);
    kaio_counters_get(&c);
    et_check(&b, "first record");
    for (fd = 3; fd < 4096; fd++) {
        int dom = 0;
        socklen_t l = sizeof(dom);

        if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) == 0 && dom == AF_ALG) {
            seen++;
            if (rl.rlim_cur > KAIO_FD_FLOOR + 16)
                ck_assert_msg(fd >= KAIO_FD_FLOOR, "engine socket at fd %d, below %d", fd, KAIO_FD_FLOOR);
        }
    }
    ck_assert_int_eq(seen, 2);
    printf("a new key and its first record: %llu syscalls (fd limit %llu)\n",
           (unsigned long long)c.c[KAIO_C_SYSCALLS], (unsigned long long)rl.rlim_cur);
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

START_TEST(cloexec)
{
    struct et_shape sh = { 1, 0, 64, 16, 16, 0 };
    struct et_batch b;
    struct kaio_key *k;
    int fd, seen = 0;

    et_need_kernel("engine_fork");
    et_make(&b, KAIO_GCM, 16, 3, &sh);
    k = et_key(&b);
    ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, KAIO_PATH_AIO), 0);
    for (fd = 3; fd < 4096; fd++) {
        int dom = 0;
        socklen_t l = sizeof(dom);

        if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) == 0 && dom == AF_ALG) {
            ck_assert_msg(fcntl(fd, F_GETFD) & FD_CLOEXEC, "fd %d without FD_CLOEXEC", fd);
            seen++;
        }
    }
    ck_assert_int_ge(seen, 4);
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("engine_fork");
    TCase *t = tcase_create("fork");

    tcase_set_timeout(t, 600);
    tcase_add_loop_test(t, child_rebuilds, 0, 3);
    tcase_add_loop_test(t, closed_under_us, 0, 4);
    tcase_add_loop_test(t, taken_over_by_tcp, 0, 12);
    tcase_add_loop_test(t, rebuild_fails, 0, 2);
    tcase_add_test(t, proof_cost);
    tcase_add_test(t, fds_above_floor);
    tcase_add_test(t, cloexec);
    suite_add_tcase(s, t);
    return et_main(s, "engine_fork");
}

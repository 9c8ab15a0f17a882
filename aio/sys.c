/*
 * Every syscall the engine makes, in one place: counted here (so the
 * "syscalls" counter cannot miss one) and the single spot where tests inject
 * faults. Wrappers return the result or -errno.
 */
#define _GNU_SOURCE /* accept4, dup3 */
#include "sys.h"

#include "internal.h"
#include "kaio_test.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <linux/netlink.h>
#include <time.h>
#include <unistd.h>

/* ---------------- fault rules (settings) ---------------- */

enum { FAULT_UNKNOWN = 0, FAULT_OFF, FAULT_ON };

static atomic_int fault_state;
static pthread_once_t fault_env_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kaio_fault_rule fault_rules[KAIO_FAULT_MAX_RULES];
static atomic_int fault_nrules;
static _Atomic unsigned long fault_calls[KAIO_F_NCALLS];
static _Atomic unsigned long fault_hit_count;

static const char *const call_names[KAIO_F_NCALLS] = {
    [KAIO_F_SOCKET] = "socket",         [KAIO_F_BIND] = "bind",
    [KAIO_F_SETSOCKOPT] = "setsockopt", [KAIO_F_ACCEPT] = "accept",
    [KAIO_F_SENDMSG] = "sendmsg",       [KAIO_F_READ] = "read",
    [KAIO_F_IO_SETUP] = "io_setup",     [KAIO_F_IO_SUBMIT] = "io_submit",
    [KAIO_F_IO_GETEVENTS] = "io_getevents", [KAIO_F_EVENTFD] = "eventfd",
    [KAIO_F_CLOSE] = "close",           [KAIO_F_PEEK] = "peek",
    [KAIO_F_MALLOC] = "malloc",
};

static const struct {
    const char *name;
    int err;
} err_names[] = {
    { "EBUSY", EBUSY },   { "EAGAIN", EAGAIN },     { "EINTR", EINTR },   { "EBADMSG", EBADMSG },
    { "EMFILE", EMFILE }, { "ENFILE", ENFILE },     { "EBADF", EBADF },   { "ENOTSOCK", ENOTSOCK },
    { "ENOSYS", ENOSYS }, { "EPERM", EPERM },       { "EINVAL", EINVAL }, { "ENOMEM", ENOMEM },
    { "EIO", EIO },       { "short", KAIO_FAULT_SHORT },
};

const char *kaio_fault_call_name(enum kaio_fault_call c)
{
    return (unsigned)c < KAIO_F_NCALLS ? call_names[c] : "unknown";
}

static int parse_ulong(const char *s, size_t n, unsigned long *out)
{
    unsigned long v = 0;
    size_t i;

    if (n == 0 || n > 9)
        return -1;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    *out = v;
    return 0;
}

static int parse_rule(const char *s, size_t n, struct kaio_fault_rule *r)
{
    const char *eq = memchr(s, '=', n), *p, *end = s + n, *colon;
    size_t i, wl;
    int found = 0;

    if (eq == NULL)
        return -1;
    for (i = 0; i < KAIO_F_NCALLS; i++)
        if (strlen(call_names[i]) == (size_t)(eq - s) && memcmp(s, call_names[i], eq - s) == 0)
            break;
    if (i == KAIO_F_NCALLS)
        return -1;
    r->call = (enum kaio_fault_call)i;
    p = eq + 1;
    colon = memchr(p, ':', end - p);
    wl = (size_t)((colon ? colon : end) - p);
    for (i = 0; i < sizeof(err_names) / sizeof(err_names[0]); i++)
        if (strlen(err_names[i].name) == wl && memcmp(p, err_names[i].name, wl) == 0) {
            r->err = err_names[i].err;
            found = 1;
        }
    if (!found || (r->err == KAIO_FAULT_SHORT && r->call != KAIO_F_IO_SUBMIT))
        return -1;
    r->first = 1;
    r->count = 1;
    if (colon == NULL)
        return 0;
    p = colon + 1;
    colon = memchr(p, ':', end - p);
    if (parse_ulong(p, (size_t)((colon ? colon : end) - p), &r->first) < 0 || r->first == 0)
        return -1;
    if (colon == NULL)
        return 0;
    p = colon + 1;
    return parse_ulong(p, (size_t)(end - p), &r->count);
}

int kaio_fault_parse(const char *spec, struct kaio_fault_rule *rules, size_t max)
{
    size_t n = 0;
    const char *p = spec, *comma;

    if (spec == NULL || *spec == '\0')
        return 0;
    for (;;) {
        size_t len;

        comma = strchr(p, ',');
        len = comma ? (size_t)(comma - p) : strlen(p);
        if (n == max || parse_rule(p, len, &rules[n]) < 0)
            return -1;
        n++;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return (int)n;
}

int kaio_fault_set(const char *spec)
{
    struct kaio_fault_rule r[KAIO_FAULT_MAX_RULES];
    int n = kaio_fault_parse(spec, r, KAIO_FAULT_MAX_RULES);
    size_t i;

    if (n < 0)
        return -1;
    pthread_mutex_lock(&fault_lock);
    atomic_store(&fault_state, FAULT_OFF);
    memcpy(fault_rules, r, sizeof(r[0]) * (size_t)n);
    atomic_store(&fault_nrules, n);
    for (i = 0; i < KAIO_F_NCALLS; i++)
        atomic_store(&fault_calls[i], 0);
    atomic_store(&fault_hit_count, 0);
    atomic_store(&fault_state, n > 0 ? FAULT_ON : FAULT_OFF);
    pthread_mutex_unlock(&fault_lock);
    return 0;
}

unsigned long kaio_fault_hits(void)
{
    return atomic_load(&fault_hit_count);
}

static void fault_read_env(void)
{
    const char *spec = getenv("KCAPI_AIO_FAULT");

    /* A bad spec is ignored rather than fatal: a test notices no fault hits. */
    if (atomic_load(&fault_state) == FAULT_UNKNOWN && (spec == NULL || kaio_fault_set(spec) < 0))
        atomic_store(&fault_state, FAULT_OFF);
}

/* 0: no fault; else the errno (or KAIO_FAULT_SHORT) to inject for this call. */
static int fault_check(enum kaio_fault_call c)
{
    int s = atomic_load_explicit(&fault_state, memory_order_relaxed);
    unsigned long nth;
    int i, n;

    if (s == FAULT_OFF)
        return 0;
    if (s == FAULT_UNKNOWN) {
        pthread_once(&fault_env_once, fault_read_env);
        if (atomic_load(&fault_state) != FAULT_ON)
            return 0;
    }
    nth = atomic_fetch_add(&fault_calls[c], 1) + 1;
    n = atomic_load(&fault_nrules);
    for (i = 0; i < n; i++) {
        const struct kaio_fault_rule *r = &fault_rules[i];

        if (r->call == c && nth >= r->first && (r->count == 0 || nth - r->first < r->count)) {
            atomic_fetch_add(&fault_hit_count, 1);
            return r->err;
        }
    }
    return 0;
}

/* ---------------- wrappers ---------------- */

static void counted(void)
{
    kaio_count(KAIO_C_SYSCALLS, 1);
}

#define RET(expr) ((expr) < 0 ? -errno : (expr))

int kaio_sys_socket(int domain, int type, int protocol)
{
    int f = fault_check(KAIO_F_SOCKET), r;

    if (f)
        return -f;
    counted();
    r = socket(domain, type, protocol);
    return RET(r);
}

int kaio_sys_bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    int f = fault_check(KAIO_F_BIND), r;

    if (f)
        return -f;
    counted();
    r = bind(fd, addr, len);
    return RET(r);
}

int kaio_sys_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    int f = fault_check(KAIO_F_SETSOCKOPT), r;

    if (f)
        return -f;
    counted();
    r = setsockopt(fd, level, name, val, len);
    return RET(r);
}

int kaio_sys_getsockopt_int(int fd, int level, int name, int *val)
{
    socklen_t len = sizeof(*val);
    int r;

    counted();
    r = getsockopt(fd, level, name, val, &len);
    return RET(r);
}

int kaio_sys_accept(int fd)
{
    int f = fault_check(KAIO_F_ACCEPT), r;

    if (f)
        return -f;
    counted();
    r = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    return RET(r);
}

ssize_t kaio_sys_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    int f = fault_check(KAIO_F_SENDMSG);
    ssize_t r;

    if (f)
        return -f;
    counted();
    r = sendmsg(fd, msg, flags);
    return RET(r);
}

int kaio_sys_read_fault(void)
{
    return fault_check(KAIO_F_READ);
}

int kaio_sys_read_fault_before(int f)
{
    return f == EAGAIN || f == EINTR || f == EBUSY;
}

ssize_t kaio_sys_recvmsg(int fd, struct msghdr *msg, int flags)
{
    int f = kaio_sys_read_fault();
    ssize_t r;

    if (f && kaio_sys_read_fault_before(f))
        return -f;
    counted();
    r = recvmsg(fd, msg, flags);
    r = RET(r);
    return f ? -f : r;
}

int kaio_sys_close(int fd)
{
    int f = fault_check(KAIO_F_CLOSE), r;

    if (f)
        return -f;
    counted();
    r = close(fd);
    return RET(r);
}

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

/* 1 while the kernel answers SO_COOKIE (4.13+); 0 after it said ENOPROTOOPT. */
static atomic_int have_cookie = 1;

/* 0 after F_DUPFD_CLOEXEC said the floor is beyond this process's fd limit. */
static atomic_int raise_ok = 1;

int kaio_sys_fd_raise(int fd)
{
    int r;

    if (!atomic_load_explicit(&raise_ok, memory_order_relaxed))
        return fd;
    counted();
    r = fcntl(fd, F_DUPFD_CLOEXEC, KAIO_FD_FLOOR);
    if (r < 0) {
        if (errno == EINVAL)
            atomic_store(&raise_ok, 0);
        return fd;
    }
    counted();
    close(fd);
    return r;
}

/* One fstat: the inode number of fd, which must be a socket when sock is set. */
static int fd_ino(int fd, uint64_t *ino, int sock)
{
    struct stat st;

    counted();
    if (fstat(fd, &st) < 0)
        return -errno;
    if (sock && !S_ISSOCK(st.st_mode))
        return -ENOTSOCK;
    *ino = (uint64_t)st.st_ino;
    return 0;
}

int kaio_sys_sock_id(int fd, uint64_t *id)
{
    socklen_t len = sizeof(*id);

    if (atomic_load_explicit(&have_cookie, memory_order_relaxed)) {
        /* A socket's cookie is never reused while the system runs: unlike the
         * inode number (32 bits, wraps), no later socket can match it. */
        counted();
        if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, id, &len) == 0)
            return 0;
        if (errno != ENOPROTOOPT)
            return -errno;
        atomic_store(&have_cookie, 0);
    }
    return fd_ino(fd, id, 1);
}

int kaio_sys_eventfd(void)
{
    int f = fault_check(KAIO_F_EVENTFD), r;

    if (f)
        return -f;
    counted();
    r = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return RET(r);
}

int kaio_sys_eventfd_renew(int fd)
{
    int e = kaio_sys_eventfd(), r;

    if (e < 0)
        return e;
    counted();
    r = dup3(e, fd, O_CLOEXEC);
    r = r < 0 ? -errno : 0;
    counted();
    close(e);
    return r;
}

int kaio_sys_eventfd_read(int fd)
{
    uint64_t v;
    ssize_t r;

    counted();
    r = read(fd, &v, sizeof(v));
    return r < 0 ? -errno : 0;
}

int kaio_sys_eventfd_write(int fd)
{
    uint64_t v = 1;
    ssize_t r;

    counted();
    r = write(fd, &v, sizeof(v));
    return r < 0 ? -errno : 0;
}

ssize_t kaio_sys_netlink_query(int protocol, const void *req, size_t reqlen, void *resp, size_t cap)
{
    struct timeval tv = { 2, 0 };
    ssize_t r;
    int fd;

    /* Information for the probe, not the data path: no faults injected here. */
    counted();
    fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
    if (fd < 0)
        return -errno;
    counted();
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    counted();
    r = send(fd, req, reqlen, 0);
    if (r >= 0) {
        counted();
        r = recv(fd, resp, cap, 0);
    }
    if (r < 0)
        r = -errno;
    counted();
    close(fd);
    return r;
}

ssize_t kaio_sys_read_file(const char *path, char *buf, size_t cap)
{
    size_t used = 0;
    int fd;

    counted();
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    while (used + 1 < cap) {
        ssize_t r;

        counted();
        r = read(fd, buf + used, cap - 1 - used);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        used += (size_t)r;
    }
    buf[used] = '\0';
    counted();
    close(fd);
    return (ssize_t)used;
}

int kaio_sys_io_setup(unsigned nr, io_context_t *ctx)
{
    int f = fault_check(KAIO_F_IO_SETUP);

    if (f)
        return -f;
    counted();
    return io_setup((int)nr, ctx);
}

int kaio_sys_io_destroy(io_context_t ctx)
{
    counted();
    return io_destroy(ctx);
}

int kaio_sys_io_submit(io_context_t ctx, long nr, struct iocb **iocbs)
{
    int f = fault_check(KAIO_F_IO_SUBMIT);

    if (f == KAIO_FAULT_SHORT && nr > 1)
        nr /= 2;
    else if (f > 0)
        return -f;
    counted();
    kaio_count(KAIO_C_IO_SUBMIT, 1);
    return io_submit(ctx, nr, iocbs);
}

int kaio_sys_io_getevents(io_context_t ctx, long min_nr, long nr, struct io_event *ev,
                          struct timespec *timeout)
{
    int f = fault_check(KAIO_F_IO_GETEVENTS);

    if (f > 0)
        return -f;
    counted();
    return io_getevents(ctx, min_nr, nr, ev, timeout);
}

int kaio_sys_peek_fault(void)
{
    return fault_check(KAIO_F_PEEK);
}

/* Heap allocations: not syscalls, but tests fail them the same way ("malloc"). */
void *kaio_sys_malloc(size_t n)
{
    if (fault_check(KAIO_F_MALLOC))
        return NULL;
    return malloc(n);
}

void *kaio_sys_calloc(size_t n, size_t size)
{
    if (fault_check(KAIO_F_MALLOC))
        return NULL;
    return calloc(n, size);
}

void kaio_sys_backoff(unsigned attempt)
{
    struct timespec ts = { 0, 20000L * (long)attempt };

    counted();
    nanosleep(&ts, NULL);
}

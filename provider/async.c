/*
 * OpenSSL ASYNC jobs: a kernel operation started inside a job pauses the job
 * while the kernel works, instead of blocking its thread (servers in async
 * mode then serve other connections meanwhile). The engine decides when to
 * wait; this file only maps its wait onto the job's ASYNC_WAIT_CTX.
 *
 * Each wait ctx gets an eventfd of its own, made the first time one of its
 * jobs needs one and kept until the wait ctx is freed: servers register a
 * job's fd as owned by its connection (HAProxy's fd table), so two
 * connections paused at once must never be handed the same fd, and an fd
 * they may still poll must not be closed under them.
 */
#include <openssl/async.h>
#include <openssl/crypto.h>

#include "async.h"

/* Our entry in a job's ASYNC_WAIT_CTX: the address is the key. */
static const char wait_key = 0;

/* What we keep in a wait ctx, under wait_key. */
struct job_fd {
    struct kaio_job_fd fd;
    struct kaio_pending *paused; /* the batch paused on it, NULL none */
};

/* The wait ctx is freed: a job still paused never resumes (its connection
 * is gone), so the engine absorbs the kernel's writes now; then the fd goes. */
static void wait_ctx_gone(ASYNC_WAIT_CTX *ctx, const void *key, OSSL_ASYNC_FD fd, void *custom)
{
    struct job_fd *r = custom;

    (void)ctx;
    (void)key;
    (void)fd;
    if (r->paused != NULL)
        kaio_pending_abandon(r->paused);
    kaio_job_fd_close(&r->fd);
    OPENSSL_free(r);
}

/* The current job's record, made (with its eventfd) when make is set. */
static struct job_fd *job_record(int make)
{
    ASYNC_JOB *job = ASYNC_get_current_job();
    ASYNC_WAIT_CTX *w;
    OSSL_ASYNC_FD fd;
    void *custom = NULL;
    struct job_fd *r;

    if (job == NULL || (w = ASYNC_get_wait_ctx(job)) == NULL)
        return NULL;
    if (ASYNC_WAIT_CTX_get_fd(w, &wait_key, &fd, &custom) && custom != NULL)
        return custom;
    if (!make || (r = OPENSSL_zalloc(sizeof(*r))) == NULL)
        return NULL;
    r->fd.fd = -1;
    if (kaio_job_fd_get(&r->fd) < 0) {
        OPENSSL_free(r);
        return NULL;
    }
    if (!ASYNC_WAIT_CTX_set_wait_fd(w, &wait_key, r->fd.fd, r, wait_ctx_gone)) {
        kaio_job_fd_close(&r->fd);
        OPENSSL_free(r);
        return NULL;
    }
    return r;
}

static int job_fd(void *arg, int make)
{
    struct job_fd *r = job_record(make);

    (void)arg;
    /* In a forked child the inherited fd is the parent's eventfd: renewed. */
    return r != NULL ? kaio_job_fd_get(&r->fd) : -1;
}

static int pause_job(void *arg, int fd, struct kaio_pending *p)
{
    struct job_fd *r = job_record(0);
    int ok;

    (void)arg;
    if (r == NULL || r->fd.fd != fd)
        return -1;
    r->paused = p;
    kaio_count(KAIO_C_ASYNC_PAUSES, 1);
    ok = ASYNC_pause_job();
    /* Resumed: the batch goes on, no clean-up owed any more. */
    r->paused = NULL;
    return ok ? 0 : -1;
}

static const struct kaio_wait job_wait = { job_fd, pause_job, NULL };

const struct kaio_wait *ka_async_wait(void)
{
    return ASYNC_get_current_job() != NULL ? &job_wait : NULL;
}

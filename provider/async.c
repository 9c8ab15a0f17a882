/*
 * OpenSSL ASYNC jobs: a kernel operation started inside a job pauses the job
 * while the kernel works, instead of blocking its thread (servers in async
 * mode then serve other connections meanwhile). The engine decides when to
 * wait; this file only maps its wait onto the job's ASYNC_WAIT_CTX.
 */
#include <openssl/async.h>

#include "async.h"

/* Our entry in a job's ASYNC_WAIT_CTX: the address is the key. */
static const char wait_key = 0;

/* The wait ctx is freed while the job is paused (its connection is gone): the
 * job never resumes, so the engine absorbs the kernel's writes now. */
static void job_gone(ASYNC_WAIT_CTX *ctx, const void *key, OSSL_ASYNC_FD fd, void *pending)
{
    (void)ctx;
    (void)key;
    (void)fd;
    kaio_pending_abandon(pending);
}

static int pause_job(void *arg, int fd, struct kaio_pending *p)
{
    ASYNC_JOB *job = ASYNC_get_current_job();
    ASYNC_WAIT_CTX *w;
    int ok;

    (void)arg;
    if (job == NULL || (w = ASYNC_get_wait_ctx(job)) == NULL)
        return -1;
    if (!ASYNC_WAIT_CTX_set_wait_fd(w, &wait_key, fd, p, job_gone))
        return -1;
    kaio_count(KAIO_C_ASYNC_PAUSES, 1);
    ok = ASYNC_pause_job();
    /* Resumed: the batch goes on, no clean-up owed any more. */
    ASYNC_WAIT_CTX_clear_fd(w, &wait_key);
    return ok ? 0 : -1;
}

static const struct kaio_wait job_wait = { pause_job, NULL };

const struct kaio_wait *ka_async_wait(void)
{
    return ASYNC_get_current_job() != NULL ? &job_wait : NULL;
}

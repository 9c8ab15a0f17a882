/*
 * kcapi-aio inside OpenSSL ASYNC jobs, driven directly with ASYNC_start_job:
 * a kernel operation pauses its job while a device works, the job resumes
 * when the completion's eventfd turns readable, many jobs are paused at once
 * on one thread, and a job whose wait ctx is freed while paused leaves
 * nothing behind. Every byte is checked against the default provider.
 *
 * ASYNC_EXPECT says what this run must see:
 *   none   (default) no job ever pauses (software path on a host without
 *          AF_ALG, or CPU drivers, whose AIO completes inside io_submit);
 *          async_pauses stays 0
 *   device the lab's device scenario: a device serves CBC, so jobs pause
 *          (async_pauses > 0) and the records reach the kernel; except on
 *          Linux 7.2 (KLAB_KERNEL), where AF_ALG cannot bind the device and
 *          the records run in software without a pause
 * ASYNC_KERNEL=1: the CBC records must reach the kernel (ops_aio grows).
 *
 * The lab's device answers inside io_submit under TCG (the crypto engine's
 * real-time kthread takes the request before io_submit returns and qemu's
 * builtin backend completes it on the spot), so its entry adds the engine's
 * fault rule KCAPI_AIO_FAULT=peek=EAGAIN:1:N: the first N looks for a
 * completion report none yet and the eventfd fires right after, as a slower
 * device's would. The kernel still does every record; the jobs really pause
 * in ASYNC_pause_job and resume when the eventfd polls readable.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/async.h>

#include "testutil.h"

#define NJOBS 16
#define NREC 4
#define RECLEN 4096

static int expect_pause(void)
{
    const char *e = getenv("ASYNC_EXPECT"), *k = getenv("KLAB_KERNEL");

    return e != NULL && strcmp(e, "device") == 0 && (k == NULL || strcmp(k, "7.2") != 0);
}

static int expect_kernel(void)
{
    const char *e = getenv("ASYNC_KERNEL");

    return expect_pause() || (e != NULL && strcmp(e, "1") == 0);
}

struct work {
    EVP_CIPHER_CTX *ctx;
    const unsigned char *in;
    unsigned char *out;
    size_t nrec;
    int ok;
};

/* The job: nrec CBC records, one EVP_CipherUpdate each (a TLS record's shape). */
static int job_fn(void *arg)
{
    struct work *w = *(struct work **)arg;
    size_t r;
    int outl;

    w->ok = 1;
    for (r = 0; r < w->nrec; r++)
        if (!EVP_CipherUpdate(w->ctx, w->out + r * RECLEN, &outl, w->in + r * RECLEN, RECLEN)
            || outl != RECLEN)
            w->ok = 0;
    return w->ok;
}

static EVP_CIPHER_CTX *new_ctx(OSSL_LIB_CTX *lc, const unsigned char *key, const unsigned char *iv,
                               int enc)
{
    EVP_CIPHER *c = tu_fetch(lc, "AES-128-CBC");
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(EVP_CipherInit_ex2(ctx, c, key, iv, enc, NULL), 1);
    EVP_CIPHER_CTX_set_padding(ctx, 0);
    EVP_CIPHER_free(c);
    return ctx;
}

/* The default provider's result for the same records. */
static void reference(const unsigned char *key, const unsigned char *iv, int enc,
                      const unsigned char *in, unsigned char *out, size_t len)
{
    EVP_CIPHER_CTX *ctx = new_ctx(tu_ref(), key, iv, enc);
    int outl;

    ck_assert_int_eq(EVP_CipherUpdate(ctx, out, &outl, in, (int)len), 1);
    ck_assert_int_eq(outl, (int)len);
    EVP_CIPHER_CTX_free(ctx);
}

/* Our fd in a paused job's wait ctx (exactly one), or -1 when there is none. */
static int wait_fd(ASYNC_WAIT_CTX *wc)
{
    OSSL_ASYNC_FD fd = -1;
    size_t n = 0;

    ck_assert_int_eq(ASYNC_WAIT_CTX_get_all_fds(wc, NULL, &n), 1);
    if (n == 0)
        return -1;
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_all_fds(wc, &fd, &n), 1);
    return fd;
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

struct slot {
    ASYNC_JOB *job;
    ASYNC_WAIT_CTX *wc;
    struct work w, *wp;
    unsigned char key[16], iv[16];
    unsigned char *in, *out;
    int done, paused;
};

/* Starts (or resumes) a job; 1 when it finished, 0 when it paused. */
static int step(struct slot *s)
{
    int ret = 0;

    switch (ASYNC_start_job(&s->job, s->wc, &ret, job_fn, &s->wp, sizeof(s->wp))) {
    case ASYNC_FINISH:
        ck_assert_int_eq(ret, 1);
        ck_assert_ptr_null(s->job);
        /* Resumed for good: nothing of ours is left in the wait ctx. */
        ck_assert_int_eq(wait_fd(s->wc), -1);
        return 1;
    case ASYNC_PAUSE:
        s->paused++;
        /* Paused on the kernel: the engine's eventfd is what to wait for. */
        ck_assert_int_ge(wait_fd(s->wc), 0);
        return 0;
    default:
        ck_abort_msg("ASYNC_start_job failed: %s", tu_errors());
    }
    return 0;
}

static void slot_init(struct slot *s, size_t nrec)
{
    memset(s, 0, sizeof(*s));
    tu_rand_bytes(s->key, sizeof(s->key));
    tu_rand_bytes(s->iv, sizeof(s->iv));
    s->in = malloc(nrec * RECLEN);
    s->out = calloc(1, nrec * RECLEN);
    ck_assert(s->in != NULL && s->out != NULL);
    tu_rand_bytes(s->in, nrec * RECLEN);
    s->wc = ASYNC_WAIT_CTX_new();
    ck_assert_ptr_nonnull(s->wc);
    s->w.ctx = new_ctx(tu_ours(), s->key, s->iv, 1);
    s->w.in = s->in;
    s->w.out = s->out;
    s->w.nrec = nrec;
    s->wp = &s->w;
}

static void slot_check_free(struct slot *s, size_t nrec)
{
    unsigned char *want = malloc(nrec * RECLEN);

    ck_assert_ptr_nonnull(want);
    reference(s->key, s->iv, 1, s->in, want, nrec * RECLEN);
    ck_assert(tu_same("job output", s->out, nrec * RECLEN, want, nrec * RECLEN));
    free(want);
    EVP_CIPHER_CTX_free(s->w.ctx);
    ASYNC_WAIT_CTX_free(s->wc);
    free(s->in);
    free(s->out);
}

/* Waits (poll, no timeout: the kernel completes) until a paused job's fd is readable. */
static void wait_readable(struct slot *sl, size_t n)
{
    struct pollfd p[NJOBS];
    size_t i, m = 0;

    for (i = 0; i < n; i++)
        if (!sl[i].done) {
            p[m].fd = wait_fd(sl[i].wc);
            p[m++].events = POLLIN;
        }
    if (m > 0)
        ck_assert_int_gt(poll(p, m, -1), 0);
}

/* Resumes the paused jobs when their fd says so, until all finished
 * (bounded by count). */
static void resume_all(struct slot *sl, size_t n)
{
    size_t i, left = 0, rounds;

    for (i = 0; i < n; i++)
        left += !sl[i].done;
    for (rounds = 0; left > 0; rounds++) {
        ck_assert_msg(rounds < 100000, "jobs never finished");
        wait_readable(sl, n);
        for (i = 0; i < n; i++)
            if (!sl[i].done && (sl[i].done = step(&sl[i])))
                left--;
    }
}

/* Runs n jobs: all started before any resumes, then resumed until all
 * finished. Returns the pauses seen. */
static size_t run_jobs(struct slot *sl, size_t n)
{
    size_t i, pauses = 0;

    for (i = 0; i < n; i++)
        sl[i].done = step(&sl[i]);
    resume_all(sl, n);
    for (i = 0; i < n; i++)
        pauses += (size_t)sl[i].paused;
    return pauses;
}

/* One record outside any job, checked; the thread may have paused jobs. */
static void outside_record(void)
{
    unsigned char key[16], iv[16], in[RECLEN], out[RECLEN], want[RECLEN];
    EVP_CIPHER_CTX *ctx;
    int outl;

    tu_rand_bytes(key, sizeof(key));
    tu_rand_bytes(iv, sizeof(iv));
    tu_rand_bytes(in, sizeof(in));
    ctx = new_ctx(tu_ours(), key, iv, 1);
    ck_assert_ptr_null(ASYNC_get_current_job());
    ck_assert_int_eq(EVP_CipherUpdate(ctx, out, &outl, in, RECLEN), 1);
    EVP_CIPHER_CTX_free(ctx);
    reference(key, iv, 1, in, want, RECLEN);
    ck_assert(tu_same("outside a job", out, RECLEN, want, RECLEN));
}

static void check_pauses(uint64_t before, size_t seen)
{
    uint64_t counted = tu_counter("async_pauses") - before;

    printf("async_pauses %llu, pauses seen by ASYNC_start_job %zu, max_inflight %llu\n",
           (unsigned long long)counted, seen, (unsigned long long)tu_counter("max_inflight"));
    /* Every pause the engine counts is one ASYNC_PAUSE the caller sees. */
    ck_assert_uint_eq(counted, seen);
    if (expect_pause())
        ck_assert_uint_gt(counted, 0);
    else
        ck_assert_uint_eq(counted, 0);
}

START_TEST(one_job)
{
    struct slot s;
    uint64_t p0 = tu_counter("async_pauses"), a0 = tu_counter("ops_aio");
    size_t seen;

    slot_init(&s, NREC);
    seen = run_jobs(&s, 1);
    slot_check_free(&s, NREC);
    check_pauses(p0, seen);
    if (expect_kernel())
        ck_assert_uint_ge(tu_counter("ops_aio") - a0, NREC);
}
END_TEST

START_TEST(many_jobs)
{
    static struct slot sl[NJOBS];
    uint64_t p0 = tu_counter("async_pauses"), a0 = tu_counter("ops_aio");
    size_t i, seen, first = 0;

    for (i = 0; i < NJOBS; i++)
        slot_init(&sl[i], NREC);
    /* Every job's first record is in flight before any job resumes. */
    for (i = 0; i < NJOBS; i++)
        first += (sl[i].done = step(&sl[i])) == 0;
    printf("%zu of %d jobs paused on their first record\n", first, NJOBS);
    /* A record outside any job meanwhile (blocking; with the aio backend it
     * reaps the paused jobs' completions too and hands them over). */
    outside_record();
    resume_all(sl, NJOBS);
    for (seen = 0, i = 0; i < NJOBS; i++) {
        seen += (size_t)sl[i].paused;
        slot_check_free(&sl[i], NREC);
    }
    check_pauses(p0, seen);
    if (expect_pause()) {
        /* Several jobs' reads were out at once on this one thread. */
        ck_assert_uint_gt(first, 1);
        ck_assert_uint_ge(tu_counter("max_inflight"), 2);
    }
    if (expect_kernel())
        ck_assert_uint_ge(tu_counter("ops_aio") - a0, NJOBS * NREC);
}
END_TEST

/*
 * A job paused on the kernel whose wait ctx is freed (its connection went
 * away): the kernel wrote (or writes) into the engine's own buffer, never
 * the job's output, which stays untouched; the clean-up callback waits the
 * kernel out, the key is usable and freeable, no fd is left open and the
 * thread's AIO keeps working. (OpenSSL itself never frees such a job's stack.)
 */
START_TEST(freed_while_paused)
{
    struct slot s, next;
    size_t fds0, fds1, tries;
    int paused = 0;

    fds0 = open_fds();
    /* A device may answer before the first look: try a bounded number of times. */
    for (tries = 0; tries < 20 && !paused; tries++) {
        slot_init(&s, NREC);
        if (step(&s)) {
            slot_check_free(&s, NREC);
            continue;
        }
        paused = 1;
        ASYNC_WAIT_CTX_free(s.wc); /* the clean-up callback runs here */
        s.wc = NULL;
        {
            /* The kernel wrote into the engine's buffer, not the job's:
             * the abandoned record's output is untouched (zeros). */
            unsigned char *zero = calloc(1, RECLEN);

            ck_assert_ptr_nonnull(zero);
            ck_assert(tu_same("abandoned record", s.out, RECLEN, zero, RECLEN));
            free(zero);
        }
        free(s.out);
        free(s.in);
        EVP_CIPHER_CTX_free(s.w.ctx);
    }
    printf("freed while paused: %s after %zu tries\n", paused ? "yes" : "never paused", tries);
    if (expect_pause())
        ck_assert_msg(paused, "no job paused in %zu tries", tries);
    else
        ck_assert(!paused);
    /* Nothing left open but the thread's completion eventfd, made once. */
    fds1 = open_fds();
    ck_assert_uint_le(fds1, fds0 + 1);
    /* The thread's AIO still serves new jobs, byte for byte, and leaves no fd. */
    slot_init(&next, NREC);
    run_jobs(&next, 1);
    slot_check_free(&next, NREC);
    ck_assert_uint_eq(open_fds(), fds1);
}
END_TEST

/*
 * The forked child's side of fork_while_paused: a quarter of its copies of
 * the paused jobs is given up wait ctx first, a quarter key first, the other
 * half resumed (the first time without waiting: the inherited fd is the
 * parent's and may never fire for the child), their bytes checked.
 */
static int forked_child(struct slot *sl)
{
    uint64_t r0 = tu_counter("async_fork_redone"), a0 = tu_counter("async_abandoned");
    size_t i, resumed = 0, given_up = 0;

    for (i = 0; i < NJOBS; i++) {
        if (sl[i].done)
            continue;
        if (i % 4 == 1) {
            ASYNC_WAIT_CTX_free(sl[i].wc);
            EVP_CIPHER_CTX_free(sl[i].w.ctx);
        } else if (i % 4 == 3) {
            EVP_CIPHER_CTX_free(sl[i].w.ctx);
            ASYNC_WAIT_CTX_free(sl[i].wc);
        } else {
            sl[i].done = step(&sl[i]);
            resumed++;
            continue;
        }
        sl[i].done = 2;
        given_up++;
    }
    resume_all(sl, NJOBS);
    for (i = 0; i < NJOBS; i++)
        if (sl[i].done != 2)
            slot_check_free(&sl[i], NREC);
    printf("forked child: %zu copies resumed, %zu given up, async_fork_redone +%llu\n", resumed,
           given_up, (unsigned long long)(tu_counter("async_fork_redone") - r0));
    fflush(stdout);
    if (expect_pause()) {
        ck_assert_uint_gt(resumed, 0);
        ck_assert_uint_ge(tu_counter("async_fork_redone") - r0, resumed);
        ck_assert_uint_eq(tu_counter("async_abandoned") - a0, given_up);
    }
    return 0;
}

/*
 * fork while jobs are paused on the kernel: the parent's jobs complete byte
 * for byte (the child never reads the parent's eventfd or context), and the
 * child's copies behave as forked_child says: resumed ones run their
 * in-flight records again on the child's own sockets, same bytes, in place
 * or not.
 */
START_TEST(fork_while_paused)
{
    struct slot sl[NJOBS];
    size_t i, paused = 0;
    pid_t pid;
    int status;

    for (i = 0; i < NJOBS; i++) {
        slot_init(&sl[i], NREC);
        if (i & 2) {
            /* In place, as TLS records are (half of each kind in the child). */
            memcpy(sl[i].out, sl[i].in, NREC * RECLEN);
            sl[i].w.in = sl[i].out;
        }
        sl[i].done = step(&sl[i]);
        paused += !sl[i].done;
    }
    printf("fork with %zu of %d jobs paused\n", paused, NJOBS);
    fflush(stdout);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(forked_child(sl));
    resume_all(sl, NJOBS);
    for (i = 0; i < NJOBS; i++)
        slot_check_free(&sl[i], NREC);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "forked child: status %#x", status);
    if (expect_pause())
        ck_assert_uint_gt(paused, 0);
    else
        ck_assert_uint_eq(paused, 0);
}
END_TEST

/* Outside a job nothing changes: no pause. */
START_TEST(outside_job)
{
    uint64_t p0 = tu_counter("async_pauses");

    outside_record();
    ck_assert_uint_eq(tu_counter("async_pauses"), p0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("async");
    TCase *tc = tcase_create("jobs");
    SRunner *sr;
    int failed;

    tu_seed();
    tcase_add_test(tc, outside_job);
    tcase_add_test(tc, one_job);
    tcase_add_test(tc, many_jobs);
    tcase_add_test(tc, freed_while_paused);
    tcase_add_test(tc, fork_while_paused);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

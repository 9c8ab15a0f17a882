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
 *
 * Batching: on a device, a job's reads wait in the thread's queue and the
 * job pauses before anything is submitted; the first job that runs in the
 * loop's next round submits every job's reads in one io_submit. So with c
 * jobs started in one round: no io_submit in that round, exactly one in the
 * next with c reads in flight (max_inflight == c), and never more than one
 * per round. It is on with KCAPI_AIO_ASYNC_BATCH=1 (off: one io_submit per
 * record).
 * On CPU drivers nothing waits: one io_submit per record, no pause.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/async.h>

#include "kcapi-aio/engine.h"
#include "testutil.h"

#define NJOBS 16
#define NREC 4
#define RECLEN 4096

static int expect_pause(void)
{
    const char *e = getenv("ASYNC_EXPECT"), *k = getenv("KLAB_KERNEL");

    return e != NULL && strcmp(e, "device") == 0 && (k == NULL || strcmp(k, "7.2") != 0);
}

static int batching(void)
{
    const char *e = getenv("KCAPI_AIO_ASYNC_BATCH");

    return e != NULL && strcmp(e, "1") == 0;
}

/* Check runs each test in its own process unless CK_FORK=no: counters such as
 * max_inflight then start from what the test itself did. */
static int own_process(void)
{
    const char *e = getenv("CK_FORK");

    return e == NULL || strcmp(e, "no") != 0;
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
    int fd; /* our fd in its wait ctx since its first pause, -1 before */
};

/* Starts (or resumes) a job; 1 when it finished, 0 when it paused. */
static int step(struct slot *s)
{
    int ret = 0;

    switch (ASYNC_start_job(&s->job, s->wc, &ret, job_fn, &s->wp, sizeof(s->wp))) {
    case ASYNC_FINISH:
        ck_assert_int_eq(ret, 1);
        ck_assert_ptr_null(s->job);
        /* Finished: the wait ctx keeps its fd (if it ever paused) for its
         * next job, until it is freed. */
        ck_assert_int_eq(wait_fd(s->wc), s->fd);
        return 1;
    case ASYNC_PAUSE:
        s->paused++;
        /* Paused on the kernel: the job's own eventfd is what to wait for,
         * the same at every pause of its wait ctx. */
        ck_assert_int_ge(wait_fd(s->wc), 0);
        if (s->fd >= 0)
            ck_assert_int_eq(wait_fd(s->wc), s->fd);
        s->fd = wait_fd(s->wc);
        return 0;
    default:
        ck_abort_msg("ASYNC_start_job failed: %s", tu_errors());
    }
    return 0;
}

static void slot_init(struct slot *s, size_t nrec)
{
    memset(s, 0, sizeof(*s));
    s->fd = -1;
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
 * Jobs paused at the same time each wait on an fd of their own (a server
 * such as HAProxy registers a job's fd as its connection's, and stops when
 * two connections hand it the same one); a wait ctx keeps its fd from one
 * pause to the next and closes it when it is freed, leaving no fd open.
 */
START_TEST(fd_per_wait_ctx)
{
    static struct slot sl[NJOBS];
    int fds[NJOBS];
    size_t i, x, paused = 0, fds0 = open_fds();

    for (i = 0; i < NJOBS; i++)
        slot_init(&sl[i], NREC);
    for (i = 0; i < NJOBS; i++) {
        sl[i].done = step(&sl[i]);
        paused += !sl[i].done;
    }
    for (i = 0; i < NJOBS; i++) {
        fds[i] = wait_fd(sl[i].wc);
        for (x = 0; x < i; x++)
            if (!sl[i].done && !sl[x].done)
                ck_assert_msg(fds[i] != fds[x], "jobs %zu and %zu paused on the same fd %d", x, i,
                              fds[i]);
    }
    printf("%zu of %d jobs paused at once, each on its own fd\n", paused, NJOBS);
    resume_all(sl, NJOBS);
    for (i = 0; i < NJOBS; i++) {
        /* Kept after the job finished; the same fd at every pause (step). */
        fds[i] = sl[i].fd;
        ck_assert_int_eq(wait_fd(sl[i].wc), fds[i]);
        if (fds[i] >= 0)
            ck_assert_int_ge(fcntl(fds[i], F_GETFD), 0);
    }
    for (i = 0; i < NJOBS; i++)
        slot_check_free(&sl[i], NREC);
    for (i = 0; i < NJOBS; i++)
        if (fds[i] >= 0)
            ck_assert_msg(fcntl(fds[i], F_GETFD) == -1, "fd %d open after its wait ctx was freed", fds[i]);
    ck_assert_uint_le(open_fds(), fds0);
    if (expect_pause())
        ck_assert_uint_gt(paused, 1);
    else
        ck_assert_uint_eq(paused, 0);
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
    int paused = 0, queued = 0;
    static unsigned char snap[RECLEN];
    unsigned char *held = NULL;

    fds0 = open_fds();
    /* A device may answer before the first look: try a bounded number of times. */
    for (tries = 0; tries < 20 && !paused; tries++) {
        uint64_t sub0;

        slot_init(&s, NREC); /* (the kernel probe, with its own io_submit, runs here) */
        sub0 = tu_counter("io_submit_calls");
        if (step(&s)) {
            slot_check_free(&s, NREC);
            continue;
        }
        paused = 1;
        /* Paused with its read still queued (batching), or in the kernel. */
        queued = tu_counter("io_submit_calls") == sub0;
        ASYNC_WAIT_CTX_free(s.wc); /* the clean-up callback runs here */
        s.wc = NULL;
        /* It closed the job's eventfd. */
        ck_assert_int_ge(s.fd, 0);
        ck_assert_int_eq(fcntl(s.fd, F_GETFD), -1);
        {
            /* Queued or in the kernel, its read targets the engine's buffer,
             * not the job's: the abandoned record's output is untouched
             * (zeros). */
            unsigned char *zero = calloc(1, RECLEN);

            ck_assert_ptr_nonnull(zero);
            ck_assert(tu_same("abandoned record", s.out, RECLEN, zero, RECLEN));
            free(zero);
        }
        if (queued) {
            /* Never submitted: kept, to show below that no read lands in it. */
            held = s.out;
            memcpy(snap, held, RECLEN);
        } else {
            free(s.out);
        }
        free(s.in);
        EVP_CIPHER_CTX_free(s.w.ctx);
    }
    printf("freed while paused: %s after %zu tries%s\n", paused ? "yes" : "never paused", tries,
           queued ? " (its read still queued)" : "");
    if (expect_pause())
        ck_assert_msg(paused, "no job paused in %zu tries", tries);
    else
        ck_assert(!paused);
    if (expect_pause() && batching())
        ck_assert_msg(queued, "the first pause came after the submission");
    /* Nothing left open: the job's eventfd went with its wait ctx. */
    fds1 = open_fds();
    ck_assert_uint_le(fds1, fds0);
    /* The thread's AIO still serves new jobs, byte for byte, and leaves no fd. */
    slot_init(&next, NREC);
    run_jobs(&next, 1);
    slot_check_free(&next, NREC);
    ck_assert_uint_eq(open_fds(), fds1);
    if (held != NULL) {
        /* Those io_submits carried nothing of the freed job's. */
        ck_assert(tu_same("buffer of the job freed while queued", held, RECLEN, snap, RECLEN));
        free(held);
    }
}
END_TEST

/*
 * c jobs of NREC records each, all started in one round, then resumed round
 * by round (every paused job once per round) until all finished; the
 * io_submit calls, pauses and in-flight depth are counted per round.
 */
static void batch_case(size_t c)
{
    static struct slot sl[NJOBS];
    uint64_t s0, s1, s2, s3, p0, depth1 = 0;
    size_t i, first = 0, rounds = 0, left = 0, seen = 0, recs = c * NREC;

    ck_assert_uint_le(c, NJOBS);
    for (i = 0; i < c; i++)
        slot_init(&sl[i], NREC);
    s0 = tu_counter("io_submit_calls");
    p0 = tu_counter("async_pauses");
    for (i = 0; i < c; i++)
        first += (sl[i].done = step(&sl[i])) == 0;
    s1 = s2 = tu_counter("io_submit_calls");
    for (i = 0; i < c; i++)
        left += !sl[i].done;
    while (left > 0) {
        ck_assert_msg(rounds < 100000, "jobs never finished");
        wait_readable(sl, c);
        for (i = 0; i < c; i++)
            if (!sl[i].done && (sl[i].done = step(&sl[i])))
                left--;
        if (++rounds == 1) {
            s2 = tu_counter("io_submit_calls");
            depth1 = tu_counter("max_inflight");
        }
    }
    s3 = tu_counter("io_submit_calls");
    for (i = 0; i < c; i++) {
        seen += (size_t)sl[i].paused;
        slot_check_free(&sl[i], NREC);
    }
    printf("c=%zu: %zu records, io_submit %llu (%.3f per record; %llu in the starting round, "
           "%llu in the next), %zu rounds, max_inflight %llu, async_pauses %zu\n",
           c, recs, (unsigned long long)(s3 - s0), (double)(s3 - s0) / (double)recs,
           (unsigned long long)(s1 - s0), (unsigned long long)(s2 - s1), rounds,
           (unsigned long long)tu_counter("max_inflight"), seen);
    check_pauses(p0, seen);
    if (expect_pause() && batching()) {
        /* Every job queued its first record and paused; none was submitted. */
        ck_assert_uint_eq(first, c);
        ck_assert_uint_eq(s1 - s0, 0);
        /* The next round: one io_submit carried all c jobs' reads. */
        ck_assert_uint_eq(s2 - s1, 1);
        if (own_process())
            ck_assert_uint_eq(depth1, c);
        /* Never more than one io_submit per round of the loop. */
        ck_assert_uint_le(s3 - s1, rounds);
    } else if (expect_pause()) {
        ck_assert_uint_eq(s3 - s0, recs); /* unbatched: one io_submit per record */
    } else if (expect_kernel()) {
        /* CPU drivers: each record submitted at once and complete inside
         * io_submit; no job ever waits. */
        ck_assert_uint_eq(first, 0);
        ck_assert_uint_eq(s3 - s0, recs);
        if (own_process())
            ck_assert_uint_eq(tu_counter("max_inflight"), 1);
    } else {
        ck_assert_uint_eq(s3 - s0, 0); /* software */
    }
}

START_TEST(batch_1)
{
    batch_case(1);
}
END_TEST

START_TEST(batch_4)
{
    batch_case(4);
}
END_TEST

START_TEST(batch_16)
{
    batch_case(16);
}
END_TEST

/*
 * Jobs whose reads wait in the queue and one whose wait ctx is freed before
 * any job ran again: it leaves the queue (the next round's io_submit carries
 * only the others'), the kernel never writes to its buffer, no socket or
 * fd stays behind, and the others finish byte for byte.
 */
START_TEST(freed_while_queued)
{
    static struct slot sl[4];
    uint64_t s0, s1;
    size_t i, fds0, first = 0;
    static unsigned char snap[RECLEN];
    unsigned char *out;
    int queued;

    fds0 = open_fds();
    for (i = 0; i < 4; i++)
        slot_init(&sl[i], NREC);
    s0 = tu_counter("io_submit_calls");
    for (i = 0; i < 4; i++)
        first += (sl[i].done = step(&sl[i])) == 0;
    queued = first == 4 && tu_counter("io_submit_calls") == s0;
    printf("freed while queued: %s\n", queued ? "4 jobs queued" : "no queue (not a device, or batching off)");
    if (expect_pause() && batching())
        ck_assert(queued);
    if (!queued) {
        resume_all(sl, 4);
        for (i = 0; i < 4; i++)
            slot_check_free(&sl[i], NREC);
        return;
    }
    ASYNC_WAIT_CTX_free(sl[1].wc);
    sl[1].wc = NULL;
    sl[1].done = 1;
    out = sl[1].out;
    memcpy(snap, out, RECLEN);
    s1 = tu_counter("io_submit_calls");
    ck_assert_uint_eq(s1, s0); /* taking it out submits nothing */
    resume_all(sl, 4);
    for (i = 0; i < 4; i++)
        if (i != 1)
            slot_check_free(&sl[i], NREC);
    /* The others' io_submits carried nothing of the freed job's. */
    ck_assert(tu_same("buffer of the job freed while queued", out, RECLEN, snap, RECLEN));
    free(sl[1].out);
    free(sl[1].in);
    EVP_CIPHER_CTX_free(sl[1].w.ctx);
    /* Its socket and eventfd went with it, the others' eventfds with theirs. */
    ck_assert_uint_le(open_fds(), fds0);
}
END_TEST

/* ---------------- two jobs on one engine key ---------------- */

static const char eng_tag = 0;

/* The engine's wait mapped onto the job, as the provider does it: an
 * eventfd per wait ctx, closed when the wait ctx is freed. */
struct eng_rec {
    struct kaio_job_fd f;
    struct kaio_pending *paused;
};

static void eng_gone(ASYNC_WAIT_CTX *ctx, const void *key, OSSL_ASYNC_FD fd, void *custom)
{
    struct eng_rec *r = custom;

    (void)ctx;
    (void)key;
    (void)fd;
    if (r->paused != NULL)
        kaio_pending_abandon(r->paused);
    kaio_job_fd_close(&r->f);
    free(r);
}

static struct eng_rec *eng_rec(int make)
{
    ASYNC_JOB *job = ASYNC_get_current_job();
    ASYNC_WAIT_CTX *w = job != NULL ? ASYNC_get_wait_ctx(job) : NULL;
    OSSL_ASYNC_FD fd;
    void *custom = NULL;
    struct eng_rec *r;

    if (w == NULL)
        return NULL;
    if (ASYNC_WAIT_CTX_get_fd(w, &eng_tag, &fd, &custom) && custom != NULL)
        return custom;
    if (!make)
        return NULL;
    r = calloc(1, sizeof(*r));
    ck_assert_ptr_nonnull(r);
    r->f.fd = -1;
    ck_assert_int_ge(kaio_job_fd_get(&r->f), 0);
    ck_assert_int_eq(ASYNC_WAIT_CTX_set_wait_fd(w, &eng_tag, r->f.fd, r, eng_gone), 1);
    return r;
}

static int eng_fd(void *arg, int make)
{
    struct eng_rec *r = eng_rec(make);

    (void)arg;
    return r != NULL ? kaio_job_fd_get(&r->f) : -1;
}

static int eng_pause(void *arg, int fd, struct kaio_pending *p)
{
    struct eng_rec *r = eng_rec(0);
    int ok;

    (void)arg;
    if (r == NULL || r->f.fd != fd)
        return -1;
    r->paused = p;
    ok = ASYNC_pause_job();
    r->paused = NULL;
    return ok ? 0 : -1;
}

static const struct kaio_wait eng_wait = { eng_fd, eng_pause, NULL };

struct ejob {
    struct kaio_key *k;
    struct kaio_op op;
    unsigned char iv[16], in[RECLEN], out[RECLEN];
    int block;   /* run with pauses blocked (ASYNC_block_pause) */
    ASYNC_JOB *job;
    ASYNC_WAIT_CTX *wc;
    int done, paused;
};

static int ejob_fn(void *arg)
{
    struct ejob *e = *(struct ejob **)arg;

    if (e->block)
        ASYNC_block_pause();
    kaio_key_run_wait(e->k, &e->op, 1, KAIO_PATH_AIO, &eng_wait);
    if (e->block)
        ASYNC_unblock_pause();
    return 1;
}

static void ejob_init(struct ejob *e, struct kaio_key *k)
{
    memset(e, 0, sizeof(*e));
    e->k = k;
    tu_rand_bytes(e->iv, sizeof(e->iv));
    tu_rand_bytes(e->in, sizeof(e->in));
    e->op.encrypt = 1;
    e->op.iv = e->iv;
    e->op.ivlen = 16;
    e->op.in = e->in;
    e->op.out = e->out;
    e->op.len = RECLEN;
    e->wc = ASYNC_WAIT_CTX_new();
    ck_assert_ptr_nonnull(e->wc);
}

static int estep(struct ejob *e)
{
    struct ejob *arg = e;
    int ret = 0;

    switch (ASYNC_start_job(&e->job, e->wc, &ret, ejob_fn, &arg, sizeof(arg))) {
    case ASYNC_FINISH:
        return 1;
    case ASYNC_PAUSE:
        e->paused++;
        ck_assert_int_ge(wait_fd(e->wc), 0);
        return 0;
    default:
        ck_abort_msg("ASYNC_start_job failed: %s", tu_errors());
    }
    return 0;
}

static void ejobs_finish(struct ejob *e, size_t n)
{
    size_t i, rounds;
    int left = 1;

    for (rounds = 0; left; rounds++) {
        struct pollfd p[2];
        size_t m = 0;

        ck_assert_msg(rounds < 100000, "jobs never finished");
        for (i = 0; i < n; i++)
            if (!e[i].done) {
                p[m].fd = wait_fd(e[i].wc);
                p[m++].events = POLLIN;
            }
        if (m == 0)
            break;
        ck_assert_int_gt(poll(p, m, -1), 0);
        for (left = 0, i = 0; i < n; i++) {
            if (!e[i].done)
                e[i].done = estep(&e[i]);
            left |= !e[i].done;
        }
    }
}

static void ejob_check(struct ejob *e, const unsigned char *key)
{
    unsigned char want[RECLEN];

    ck_assert_int_eq(e->op.status, 0);
    reference(key, e->iv, 1, e->in, want, RECLEN);
    ck_assert(tu_same("engine job output", e->out, RECLEN, want, RECLEN));
}

/* The engine key for the same-key tests, or NULL (the test then says why). */
static struct kaio_key *eng_key(unsigned char key[16])
{
    enum kaio_reason why = KAIO_R_NONE;
    struct kaio_key *k;
    int err = 0;

    /* This program's own engine, set as the provider's is. */
    kaio_set_async_batch(batching());
    tu_rand_bytes(key, 16);
    k = kaio_key_new(KAIO_CBC, key, 16, &why, &err);
    if (k == NULL)
        printf("skipped: no kernel key for cbc(aes) here (%s)\n", kaio_reason_name(why));
    return k;
}

/*
 * A job paused holding a key, and a second job of the same thread on that
 * key: blocking would wait for good (the holder resumes only when this
 * thread's loop runs), so the second job pauses until a round finds the key
 * free. Both finish byte for byte.
 */
START_TEST(same_key)
{
    static struct ejob e[2];
    unsigned char key[16];
    struct kaio_key *k = eng_key(key);
    size_t i;

    if (k == NULL) {
        ck_assert_msg(!expect_kernel(), "the kernel was expected to take cbc(aes)");
        return;
    }
    for (i = 0; i < 2; i++)
        ejob_init(&e[i], k);
    for (i = 0; i < 2; i++)
        e[i].done = estep(&e[i]);
    if (expect_pause() && batching()) {
        ck_assert(!e[0].done && !e[1].done); /* the first queued, the second waits for the key */
    }
    ejobs_finish(e, 2);
    printf("same key: pauses %d and %d\n", e[0].paused, e[1].paused);
    if (expect_pause() && batching())
        ck_assert_int_ge(e[1].paused, 2); /* for the key, then for its own read */
    for (i = 0; i < 2; i++) {
        ejob_check(&e[i], key);
        ASYNC_WAIT_CTX_free(e[i].wc);
    }
    kaio_key_free(k);
}
END_TEST

/*
 * The same with pauses blocked in the second job: it cannot wait, so after
 * a bounded number of tries its op comes back not run (KAIO_R_KEY_BUSY: the
 * provider then runs it in software); the holder still finishes.
 */
START_TEST(same_key_blocked)
{
    static struct ejob e[2];
    unsigned char key[16];
    struct kaio_key *k = eng_key(key);
    size_t i;

    if (k == NULL) {
        ck_assert_msg(!expect_kernel(), "the kernel was expected to take cbc(aes)");
        return;
    }
    for (i = 0; i < 2; i++)
        ejob_init(&e[i], k);
    e[1].block = 1;
    e[0].done = estep(&e[0]);
    e[1].done = estep(&e[1]);
    ck_assert(e[1].done); /* a blocked job never pauses */
    printf("same key, pauses blocked: first %s, second %s\n", e[0].done ? "finished" : "paused",
           e[1].op.status == 0 ? "ran" : kaio_reason_name(e[1].op.reason));
    if (!e[0].done) {
        ck_assert_int_eq(e[1].op.status, KAIO_NOT_RUN);
        ck_assert_int_eq(e[1].op.reason, KAIO_R_KEY_BUSY);
    } else {
        ejob_check(&e[1], key);
    }
    if (expect_pause() && batching())
        ck_assert(!e[0].done);
    ejobs_finish(e, 2);
    ejob_check(&e[0], key);
    for (i = 0; i < 2; i++)
        ASYNC_WAIT_CTX_free(e[i].wc);
    kaio_key_free(k);
}
END_TEST

/*
 * A job waiting for a key that a paused job holds, freed while it waits:
 * it held nothing and nothing of it is in the kernel, so the holder finishes,
 * the key is free again and a new job on it runs byte for byte.
 */
START_TEST(same_key_waiter_freed)
{
    static struct ejob e[3];
    unsigned char key[16];
    struct kaio_key *k = eng_key(key);
    size_t i;

    if (k == NULL) {
        ck_assert_msg(!expect_kernel(), "the kernel was expected to take cbc(aes)");
        return;
    }
    for (i = 0; i < 3; i++)
        ejob_init(&e[i], k);
    e[0].done = estep(&e[0]);
    e[1].done = estep(&e[1]);
    printf("waiter freed: holder %s, waiter %s\n", e[0].done ? "finished" : "paused",
           e[1].done ? "finished" : "paused");
    if (expect_pause() && batching())
        ck_assert(!e[0].done && !e[1].done);
    if (!e[1].done) {
        ASYNC_WAIT_CTX_free(e[1].wc); /* its clean-up has nothing to wait for */
        e[1].wc = NULL;
        e[1].done = 1;
    }
    ejobs_finish(e, 2);
    ejob_check(&e[0], key);
    /* The key is free: a new job takes it at once. */
    e[2].done = estep(&e[2]);
    ejobs_finish(&e[2], 1);
    ejob_check(&e[2], key);
    ASYNC_WAIT_CTX_free(e[0].wc);
    ASYNC_WAIT_CTX_free(e[1].wc);
    ASYNC_WAIT_CTX_free(e[2].wc);
    kaio_key_free(k);
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
 * for byte (the child never reads the parent's eventfd or context, nor
 * submits its queue), and the child's copies behave as forked_child says:
 * resumed ones run their in-flight or queued records again on the child's
 * own sockets, same bytes, in place or not.
 */
START_TEST(fork_while_paused)
{
    struct slot sl[NJOBS];
    size_t i, paused = 0;
    uint64_t r0 = tu_counter("aio_reads"), sent;
    pid_t pid;
    int status;

    for (i = 0; i < NJOBS; i++) {
        slot_init(&sl[i], NREC);
        if (i & 2) {
            /* In place, as TLS records are (half of each kind in the child). */
            memcpy(sl[i].out, sl[i].in, NREC * RECLEN);
            sl[i].w.in = sl[i].out;
        }
        if (i == NJOBS / 2 && !sl[0].done) {
            /* Job 0 runs again: with batching it submits the first half's
             * queued reads; the second half's wait in a new queue, so the
             * child copies jobs with reads in the kernel and in the queue. */
            sl[0].done = step(&sl[0]);
        }
        sl[i].done = step(&sl[i]);
    }
    for (i = 0; i < NJOBS; i++)
        paused += !sl[i].done;
    sent = tu_counter("aio_reads") - r0;
    printf("fork with %zu of %d jobs paused, %llu reads submitted\n", paused, NJOBS,
           (unsigned long long)sent);
    fflush(stdout);
    if (expect_pause() && batching()) {
        ck_assert_uint_gt(sent, 0);
        ck_assert_uint_lt(sent, paused); /* the others' reads are queued */
    }
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
    tcase_add_test(tc, fd_per_wait_ctx);
    tcase_add_test(tc, freed_while_paused);
    tcase_add_test(tc, fork_while_paused);
    tcase_add_test(tc, batch_1);
    tcase_add_test(tc, batch_4);
    tcase_add_test(tc, batch_16);
    tcase_add_test(tc, freed_while_queued);
    tcase_add_test(tc, same_key);
    tcase_add_test(tc, same_key_blocked);
    tcase_add_test(tc, same_key_waiter_freed);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

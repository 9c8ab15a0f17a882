/*
 * Threads and fork through the provider: contexts used from several threads
 * at once, and a context made in a parent used in its forked child (the child
 * must build its own kernel sockets, never use the parent's). Every output is
 * compared with the default provider. Runs on any kernel: on the host the
 * software path, in the kernel lab the AIO and sync paths.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define THREADS 4
#define RECORDS 60

struct job {
    unsigned int seed;
    int failures;
    char what[160];
};

/* Encrypts one record with a fresh context of each provider; 1 if they agree. */
static int one(EVP_CIPHER *ours, EVP_CIPHER *ref, const unsigned char *key, const unsigned char *iv,
               const unsigned char *pt, size_t len)
{
    unsigned char out[2][4096 + 32], tag[2][16];
    int outl[2], pass;

    for (pass = 0; pass < 2; pass++) {
        EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
        int n = 0, m = 0, ok;

        ok = x != NULL && EVP_EncryptInit_ex2(x, pass ? ref : ours, key, iv, NULL)
            && EVP_EncryptUpdate(x, out[pass], &n, pt, (int)len)
            && EVP_EncryptFinal_ex(x, out[pass] + n, &m);
        if (ok && EVP_CIPHER_get_mode(ref) == EVP_CIPH_GCM_MODE)
            ok = EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, 16, tag[pass]);
        else
            memset(tag[pass], 0, 16);
        EVP_CIPHER_CTX_free(x);
        if (!ok)
            return 0;
        outl[pass] = n + m;
    }
    return outl[0] == outl[1] && memcmp(out[0], out[1], (size_t)outl[0]) == 0
        && memcmp(tag[0], tag[1], 16) == 0;
}

static void *worker(void *arg)
{
    struct job *j = arg;
    unsigned char key[32], iv[16], pt[4096];
    int r, i;

    for (r = 0; r < RECORDS; r++) {
        const char *name = tu_ciphers[rand_r(&j->seed) % 9];
        EVP_CIPHER *ours = EVP_CIPHER_fetch(tu_ours(), name, NULL);
        EVP_CIPHER *ref = EVP_CIPHER_fetch(tu_ref(), name, NULL);
        size_t len = (size_t)(rand_r(&j->seed) % sizeof(pt));

        for (i = 0; i < 32; i++)
            key[i] = (unsigned char)rand_r(&j->seed);
        for (i = 0; i < 16; i++)
            iv[i] = (unsigned char)rand_r(&j->seed);
        for (i = 0; i < (int)len; i++)
            pt[i] = (unsigned char)rand_r(&j->seed);
        if (ours == NULL || ref == NULL || !one(ours, ref, key, iv, pt, len)) {
            j->failures++;
            snprintf(j->what, sizeof(j->what), "%s, %zu bytes", name, len);
        }
        EVP_CIPHER_free(ours);
        EVP_CIPHER_free(ref);
    }
    return NULL;
}

START_TEST(threads)
{
    pthread_t t[THREADS];
    struct job jobs[THREADS];
    int i;

    tu_ours();
    tu_ref();
    for (i = 0; i < THREADS; i++) {
        jobs[i].seed = (unsigned int)tu_rand32();
        jobs[i].failures = 0;
        jobs[i].what[0] = '\0';
        ck_assert(pthread_create(&t[i], NULL, worker, &jobs[i]) == 0);
    }
    for (i = 0; i < THREADS; i++) {
        ck_assert(pthread_join(t[i], NULL) == 0);
        ck_assert_msg(jobs[i].failures == 0, "thread %d: %d records differ (last: %s)", i,
                      jobs[i].failures, jobs[i].what);
    }
}
END_TEST

/* A keyed context, used once in the parent, then in a child and again in the parent. */
START_TEST(fork_child)
{
    const char *name = tu_ciphers[_i];
    EVP_CIPHER *ours = tu_fetch(tu_ours(), name), *ref = tu_fetch(tu_ref(), name);
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new(), *y = EVP_CIPHER_CTX_new();
    unsigned char key[32], iv[16], pt[1000], a[1100], b[1100];
    int n, m, status;
    pid_t pid;

    tu_rand_bytes(key, sizeof(key));
    tu_rand_bytes(iv, sizeof(iv));
    tu_rand_bytes(pt, sizeof(pt));
    ck_assert(EVP_EncryptInit_ex2(y, ref, key, iv, NULL) && EVP_EncryptUpdate(y, b, &n, pt, 1000)
              && EVP_EncryptFinal_ex(y, b + n, &m));
    /* First use in the parent opens its kernel sockets (where there are any). */
    ck_assert(EVP_EncryptInit_ex2(x, ours, key, iv, NULL) && EVP_EncryptUpdate(x, a, &n, pt, 1000)
              && EVP_EncryptFinal_ex(x, a + n, &m));
    pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        int ok = EVP_EncryptInit_ex2(x, NULL, NULL, iv, NULL) && EVP_EncryptUpdate(x, a, &n, pt, 1000)
            && EVP_EncryptFinal_ex(x, a + n, &m) && memcmp(a, b, (size_t)(n + m)) == 0;
        _exit(ok ? 0 : 1);
    }
    ck_assert(waitpid(pid, &status, 0) == pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: the child got other bytes", name);
    /* The parent's sockets are still its own and still work. */
    ck_assert(EVP_EncryptInit_ex2(x, NULL, NULL, iv, NULL) && EVP_EncryptUpdate(x, a, &n, pt, 1000)
              && EVP_EncryptFinal_ex(x, a + n, &m));
    ck_assert_msg(memcmp(a, b, (size_t)(n + m)) == 0, "%s: the parent got other bytes after the fork", name);
    EVP_CIPHER_CTX_free(x);
    EVP_CIPHER_CTX_free(y);
    EVP_CIPHER_free(ours);
    EVP_CIPHER_free(ref);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("concurrency");
    TCase *tc = tcase_create("concurrency");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 1200);
    tcase_add_test(tc, threads);
    tcase_add_loop_test(tc, fork_child, 0, 9);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

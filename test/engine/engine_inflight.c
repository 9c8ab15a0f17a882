/* In-flight depth and the device cap: a batch of n reads through one
 * io_submit has n kernel operations outstanding at once (max_inflight = n), a
 * synchronous run one; on a device driver one kernel operation carries at most
 * KAIO_DEVICE_MAX_OP bytes. Needs AF_ALG. */
#include "etest.h"

#include <string.h>

static void run_depth(enum kaio_path path, size_t n)
{
    struct et_shape sh = { 1, 0, 256, 0, 0, 0 };
    struct et_batch b;
    struct kaio_key *k;
    struct kaio_counters c;
    size_t i, want;

    et_need_kernel("engine_inflight");
    et_make(&b, KAIO_CBC, 16, n, &sh);
    for (i = 0; i < n; i++) {
        b.ops[i].len = 256;
        et_reref(&b, i);
    }
    k = et_key(&b);
    kaio_counters_reset();
    ck_assert_uint_eq(kaio_key_run(k, b.ops, n, path), 0);
    kaio_counters_get(&c);
    et_check(&b, "depth");
    /* Without AIO (lab scenario no-aio) the AIO path runs synchronously. */
    want = path == KAIO_PATH_AIO && kaio_probe()->aio ? n : 1;
    printf("%s, %zu records: max_inflight=%llu syscalls=%llu kernel_ops=%llu (driver %s)\n",
           kaio_path_name(path), n, (unsigned long long)c.max_inflight,
           (unsigned long long)c.c[KAIO_C_SYSCALLS], (unsigned long long)c.c[KAIO_C_KERNEL_OPS],
           kaio_probe()->mode[KAIO_CBC].driver);
    ck_assert_uint_eq(c.max_inflight, want);
    ck_assert_uint_eq(c.c[KAIO_C_KERNEL_OPS], n);
    kaio_key_free(k);
    et_free(&b);
}

START_TEST(depth_aio)
{
    static const size_t ns[] = { 2, 8, 16, KAIO_MAX_BATCH };

    run_depth(KAIO_PATH_AIO, ns[_i]);
}
END_TEST

START_TEST(depth_sync)
{
    run_depth(KAIO_PATH_SYNC, 16);
}
END_TEST

/* A device's operations stay under its cap: 200 KiB of CBC is 4 operations. */
START_TEST(device_cap)
{
    const struct kaio_mode_caps *mc;
    size_t len = 200 * 1024;
    struct et_shape sh = { _i, 1, 200 * 1024, 0, 0, 0 };
    struct et_batch b;
    struct kaio_key *k;
    struct kaio_counters c;

    et_need_kernel("engine_inflight");
    mc = &kaio_probe()->mode[KAIO_CBC];
    if (mc->drv_class != KAIO_DRV_DEVICE) {
        ck_assert_uint_eq(mc->op_cap, 0);
        return; /* a CPU driver has no cap of its own */
    }
    ck_assert_uint_eq(mc->op_cap, KAIO_DEVICE_MAX_OP);
    et_make(&b, KAIO_CBC, 32, 1, &sh);
    b.ops[0].len = len;
    et_reref(&b, 0);
    k = et_key(&b);
    kaio_counters_reset();
    ck_assert_uint_eq(kaio_key_run(k, b.ops, 1, KAIO_PATH_SYNC), 0);
    kaio_counters_get(&c);
    et_check(&b, "device cap");
    ck_assert_uint_eq(c.c[KAIO_C_KERNEL_OPS], (len + KAIO_DEVICE_MAX_OP - 1) / KAIO_DEVICE_MAX_OP);
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("engine_inflight");
    TCase *t = tcase_create("inflight");

    tcase_set_timeout(t, 600);
    tcase_add_loop_test(t, depth_aio, 0, 4);
    tcase_add_test(t, depth_sync);
    tcase_add_loop_test(t, device_cap, 0, 2);
    suite_add_tcase(s, t);
    return et_main(s, "engine_inflight");
}

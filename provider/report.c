/*
 * What kcapi-aio is doing, in words: the kernel probe, the backend each mode
 * gets and why, and the counters. Behind the provider params the
 * kcapi-aio-info tool prints, and the KCAPI_AIO_STATS exit report.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "kcapi-aio/names.h"

struct out {
    char *buf;
    size_t size, used;
};

static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(o->buf != NULL && o->used < o->size ? o->buf + o->used : NULL,
                  o->buf != NULL && o->used < o->size ? o->size - o->used : 0, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->used += (size_t)n;
}

static void put_counters(struct out *o)
{
    struct kaio_counters c;
    int i;

    kaio_counters_get(&c);
    for (i = 0; i < KAIO_NCOUNTERS; i++)
        put(o, "%s=%llu\n", kaio_counter_name(i), (unsigned long long)c.c[i]);
    put(o, "max_inflight=%llu\n", (unsigned long long)c.max_inflight);
    for (i = 1; i < KAIO_NREASONS; i++)
        if (c.fallback[i] > 0)
            put(o, "fallback[%s]=%llu\n", kaio_reason_name(i), (unsigned long long)c.fallback[i]);
}

size_t ka_report(const KA_PROV *p, char *buf, size_t size, int counters_only)
{
    static const char *const backends[] = { "auto", "aio", "sync", "software" };
    struct out o = { buf, size, 0 };
    const struct kaio_caps *caps;
    int m;

    if (buf != NULL && size > 0)
        buf[0] = '\0';
    if (counters_only || p == NULL) {
        put_counters(&o);
        return o.used;
    }
    caps = kaio_probe();
    put(&o, "configured backend: %s; CPU-driver modes: %s; ASYNC jobs' records batched: %s\n",
        backends[p->backend], p->cpu_drivers_kernel ? "kernel" : "software", p->async_batch ? "yes" : "no");
    put(&o, "AF_ALG: %s", caps->af_alg ? "yes" : "no");
    if (!caps->af_alg)
        put(&o, " (%s)", strerror(caps->af_alg_err));
    put(&o, "\nAIO: %s", caps->aio ? "yes" : "no");
    if (!caps->aio && caps->aio_err != 0)
        put(&o, " (%s)", strerror(caps->aio_err));
    put(&o, "\n");
    for (m = 0; m < KAIO_NMODES; m++) {
        const struct kaio_mode_caps *mc = &caps->mode[m];
        enum kaio_reason why;
        enum kaio_path path = ka_backend_choice(p, m, &why);

        put(&o, "%s: kernel %s", mc->alg[0] ? mc->alg : kaio_mode_name(m),
            mc->available ? "has it" : "lacks it");
        if (mc->available) {
            put(&o, " (driver %s, module %s, %s%s", mc->driver[0] ? mc->driver : "unknown",
                mc->module[0] ? mc->module : "unknown", kaio_driver_class_name(mc->drv_class),
                mc->drv_known ? "" : ": driver not recognised, treated as a device");
            if (mc->drv_flags_known)
                put(&o, ", flags 0x%x", (unsigned)mc->drv_flags);
            if (mc->op_cap)
                put(&o, ", at most %zu bytes per operation", mc->op_cap);
            put(&o, ")");
            if (mc->listed[0])
                put(&o, " [%s %s listed first, but AF_ALG cannot bind it]",
                    kaio_driver_class_name(mc->listed_class), mc->listed);
        }
        put(&o, "; runs on %s", path == KAIO_PATH_AIO ? "kernel (AIO for batches, sync for one)"
                                : path == KAIO_PATH_SYNC ? "kernel (sync)" : "software");
        if (why == KAIO_R_CPU_DRIVER)
            put(&o, " because: kernel driver %s runs on this CPU: in-process AES is faster"
                    " (%s = %s sends it to the kernel)",
                mc->driver, KCAPI_AIO_CFG_CPU_DRIVERS, "kernel");
        else if (why != KAIO_R_NONE)
            put(&o, " because: %s", kaio_reason_name(why));
        put(&o, "\n");
    }
    if (p->kernel_min_bytes > 0)
        put(&o, "records under %zu bytes run in software\n", p->kernel_min_bytes);
    put(&o, "counters:\n");
    put_counters(&o);
    return o.used;
}

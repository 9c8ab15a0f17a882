/* The provider's public names: provider name, config keys, params, env. */
#ifndef KCAPI_AIO_NAMES_H
#define KCAPI_AIO_NAMES_H

#define KCAPI_AIO_NAME "kcapi-aio"
#define KCAPI_AIO_VERSION "0.1.0"
#define KCAPI_AIO_PROPS "provider=kcapi-aio"

/* Keys read from the provider's section of the OpenSSL config. */
#define KCAPI_AIO_CFG_BACKEND "backend"               /* auto | aio | sync | software */
#define KCAPI_AIO_CFG_AIO_MIN_BATCH "aio_min_batch"   /* AIO from this many ops (default 2) */
#define KCAPI_AIO_CFG_FD_BUDGET "fd_budget"           /* engine fds in total (default 256) */
#define KCAPI_AIO_CFG_MIN_KERNEL_BYTES "kernel_min_bytes" /* smaller records: software (default 0) */
#define KCAPI_AIO_CFG_COALESCE "coalesce"             /* CBC decryptions of a batch as one kernel op (default 1) */
#define KCAPI_AIO_CFG_ASYNC_BATCH "async_batch"       /* 0 | 1: ASYNC jobs' reads share an io_submit (default 0) */
#define KCAPI_AIO_CFG_CPU_DRIVERS "cpu_drivers"       /* software | kernel: where auto runs modes whose
                                                         kernel driver runs on the CPU (default software) */

/* Environment: override the configured backend (tests), print counters at exit. */
#define KCAPI_AIO_ENV_BACKEND "KCAPI_AIO_BACKEND"
#define KCAPI_AIO_ENV_STATS "KCAPI_AIO_STATS"
#define KCAPI_AIO_ENV_CPU_DRIVERS "KCAPI_AIO_CPU_DRIVERS" /* overrides cpu_drivers */
#define KCAPI_AIO_ENV_ASYNC_BATCH "KCAPI_AIO_ASYNC_BATCH" /* overrides async_batch */

/* Gettable provider params (OSSL_PROVIDER_get_params), all UTF8 strings. */
#define KCAPI_AIO_PARAM_BACKEND "kcapi-aio-backend"   /* configured backend */
#define KCAPI_AIO_PARAM_REPORT "kcapi-aio-report"     /* probe + choice per algorithm + counters */
#define KCAPI_AIO_PARAM_COUNTERS "kcapi-aio-counters" /* "name=value" lines */

#endif

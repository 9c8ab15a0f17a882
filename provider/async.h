/* ASYNC jobs (async.c): how a kernel batch waits inside an OpenSSL job. */
#ifndef KCAPI_AIO_ASYNC_H
#define KCAPI_AIO_ASYNC_H

#include "kcapi-aio/engine.h"

/* The wait to hand kaio_key_run_wait: pauses the current ASYNC job; NULL
 * outside a job (the engine then blocks, as always). */
const struct kaio_wait *ka_async_wait(void);

#endif

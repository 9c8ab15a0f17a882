/* Engine internals shared by the files of aio/ (not installed). */
#ifndef KAIO_INTERNAL_H
#define KAIO_INTERNAL_H

#include "kcapi-aio/engine.h"

#include <linux/if_alg.h>
#include <stddef.h>

#ifndef SOL_ALG
#define SOL_ALG 279
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif

#define KAIO_DEFAULT_FD_BUDGET 256
#define KAIO_FD_FLOOR 256 /* engine sockets live at fd numbers >= this, where the limit allows */
#define KAIO_MAX_KERNEL_MSG (256u * 1024) /* bytes per kernel operation, at most */
#define KAIO_RETRIES 16 /* bounded EAGAIN/EBUSY/EINTR retries per call */

/* Runs the once-only process setup (atfork hook). */
void kaio_init(void);
/* Bumped in every forked child (pthread_atfork): a key or an AIO context made
 * under another generation belongs to an ancestor process. */
unsigned kaio_fork_generation(void);

/* fd budget: reserve before creating a socket, release when it is gone. */
int kaio_fd_reserve(void);
void kaio_fd_release(void);
unsigned kaio_fd_budget(void);
int kaio_aio_disabled(void);
int kaio_coalesce(void);
int kaio_async_batch(void);

/* Algorithm names per mode, and the AF_ALG socket type ("skcipher"/"aead"). */
const char *kaio_alg_name(enum kaio_mode m);
const char *kaio_alg_type(enum kaio_mode m);

/* Opens an AF_ALG socket bound to mode's algorithm; returns fd or -errno. */
int kaio_alg_open(enum kaio_mode m);

/* Test-only cap on the bytes per kernel operation (0 = none). */
size_t kaio_chunk_limit(void);

#endif

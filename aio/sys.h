/*
 * The engine's only door to the kernel: every AF_ALG, AIO and fd syscall the
 * engine makes goes through these wrappers, which count it (KAIO_C_SYSCALLS)
 * and, when a test asked for it, inject a fault (see kaio_test.h).
 *
 * All wrappers return the syscall's result, or -errno on failure (the libaio
 * convention), so callers never read errno.
 */
#ifndef KAIO_SYS_H
#define KAIO_SYS_H

#include <libaio.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

int kaio_sys_socket(int domain, int type, int protocol);
int kaio_sys_bind(int fd, const struct sockaddr *addr, socklen_t len);
int kaio_sys_setsockopt(int fd, int level, int name, const void *val, socklen_t len);
int kaio_sys_getsockopt_int(int fd, int level, int name, int *val);
int kaio_sys_accept(int fd);
ssize_t kaio_sys_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t kaio_sys_recvmsg(int fd, struct msghdr *msg, int flags);
int kaio_sys_close(int fd);
/* The identity of the socket behind fd (its SO_COOKIE; the inode number on
 * kernels without it), to tell our socket from a reused fd number; -ENOTSOCK
 * or -EBADF when fd is no socket. */
int kaio_sys_sock_id(int fd, uint64_t *id);
/* Moves a new fd to the lowest free number >= KAIO_FD_FLOOR (close-on-exec):
 * daemons reuse low numbers, so ours rarely collide with theirs. Returns the
 * new fd, or fd unchanged when the process's fd limit leaves no room there. */
int kaio_sys_fd_raise(int fd);
int kaio_sys_eventfd(void);
/* Puts a new eventfd under fd's number (dup3; close-on-exec): a forked
 * child's own in place of the one it shares with its parent. 0 or -errno. */
int kaio_sys_eventfd_renew(int fd);
/* Resets a (non-blocking) eventfd's count; 0 or -errno (-EAGAIN: it was 0). */
int kaio_sys_eventfd_read(int fd);
/* Adds 1 to an eventfd's count: makes it readable. */
int kaio_sys_eventfd_write(int fd);
/* Reads a whole (small) file such as /proc/crypto into buf, NUL-terminated. */
ssize_t kaio_sys_read_file(const char *path, char *buf, size_t cap);
/* One request on a fresh netlink socket of protocol and its first reply (up to
 * cap bytes); the reply's length or -errno. */
ssize_t kaio_sys_netlink_query(int protocol, const void *req, size_t reqlen, void *resp, size_t cap);

int kaio_sys_io_setup(unsigned nr, io_context_t *ctx);
int kaio_sys_io_destroy(io_context_t ctx);
int kaio_sys_io_submit(io_context_t ctx, long nr, struct iocb **iocbs);
int kaio_sys_io_getevents(io_context_t ctx, long min_nr, long nr, struct io_event *ev,
                          struct timespec *timeout);
/* The "read" fault for the next read (0: none), taken in op order for both
 * paths. EAGAIN/EINTR/EBUSY model a read that did not run (the real ones
 * fail before the kernel touches the data), so they are injected instead of
 * the call; others replace the result of the real call. */
int kaio_sys_read_fault(void);
int kaio_sys_read_fault_before(int err);



/* The "peek" fault for the next look without waiting (0: none). */
int kaio_sys_peek_fault(void);
/* The engine's heap allocations, so that tests can fail them (kaio_test.h). */
void *kaio_sys_malloc(size_t n);
void *kaio_sys_calloc(size_t n, size_t size);

/* Backoff before retrying after EAGAIN/EBUSY (attempt counts from 1). */
void kaio_sys_backoff(unsigned attempt);
#endif

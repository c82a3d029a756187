/* Whole reads and writes on a file descriptor. */
#ifndef YUBIN_FDIO_H
#define YUBIN_FDIO_H

#include <stddef.h>

/* Writes all len bytes (retrying short writes and EINTR); 0, or -1 with
 * errno set. */
int fd_write_all(int fd, const void *data, size_t len);

/* Gets each chunk read; a nonzero return stops the reading. */
typedef int fd_chunk_fn(void *context, const void *data, size_t len);
/* Reads fd from offset 0 to its end (pread, so the file offset stays) and
 * hands every chunk to fn: 0 at the end, -1 on a read error (errno set),
 * or fn's nonzero value. */
int fd_read_all(int fd, fd_chunk_fn *fn, void *context);

#endif

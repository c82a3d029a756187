/* Whole writes on a file descriptor. */
#ifndef YUBIN_FDIO_H
#define YUBIN_FDIO_H

#include <stddef.h>

/* Writes all len bytes (retrying short writes and EINTR); 0, or -1 with
 * errno set. */
int fd_write_all(int fd, const void *data, size_t len);

#endif

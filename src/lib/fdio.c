#include "lib/fdio.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define FD_READ_CHUNK (64 * 1024)

int fd_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int fd_read_all(int fd, fd_chunk_fn *fn, void *context)
{
	char *chunk = malloc(FD_READ_CHUNK);
	int ret = 0;
	if (chunk == NULL)
		return -1;
	for (uint64_t off = 0;;) {
		ssize_t n = pread(fd, chunk, FD_READ_CHUNK, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ret = -1;
		if (n <= 0 || (ret = fn(context, chunk, (size_t)n)) != 0)
			break;
		off += (uint64_t)n;
	}
	free(chunk);
	return ret;
}

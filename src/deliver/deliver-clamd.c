/* A clamd client: one INSTREAM scan per connection ("zINSTREAM\0", then
 * chunks of a 4-byte network-order length and the bytes, then a zero
 * length; clamd answers "stream: OK", "stream: NAME FOUND" or "... ERROR").
 * The socket is non-blocking so that every step waits at most the
 * configured timeout. */
#include "deliver/deliver-private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/xmalloc.h"

#define CLAMD_CHUNK 65536
#define CLAMD_MAX_REPLY 1024

struct deliver_clamd {
	int fd;
	int timeout_ms;
	size_t used;
	unsigned char chunk[CLAMD_CHUNK];
};

/* Waits for events on fd; -1 with *error_r on timeout or error. */
static int clamd_wait(const struct deliver_clamd *c, short events, const char **error_r)
{
	struct pollfd pfd = {.fd = c->fd, .events = events};
	int n;
	do {
		n = poll(&pfd, 1, c->timeout_ms);
	} while (n < 0 && errno == EINTR);
	if (n == 0) {
		*error_r = "clamd timed out";
		return -1;
	}
	if (n < 0) {
		*error_r = "poll on the clamd socket failed";
		return -1;
	}
	return 0;
}

static int clamd_send(struct deliver_clamd *c, const void *data, size_t len,
                      const char **error_r)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (clamd_wait(c, POLLOUT, error_r) < 0)
				return -1;
			continue;
		}
		if (n <= 0) {
			*error_r = "clamd closed the connection";
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Connects a non-blocking socket, waiting at most the timeout. */
static int clamd_connect(struct deliver_clamd *c, const struct sockaddr *sa, socklen_t len,
                         const char **error_r)
{
	c->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		*error_r = "socket() for clamd failed";
		return -1;
	}
	if (connect(c->fd, sa, len) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EAGAIN) {
		*error_r = "cannot connect to clamd";
		return -1;
	}
	if (clamd_wait(c, POLLOUT, error_r) < 0)
		return -1;
	int err = 0;
	socklen_t errlen = sizeof(err);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &errlen) < 0 || err != 0) {
		*error_r = "cannot connect to clamd";
		return -1;
	}
	return 0;
}

static int clamd_connect_unix(struct deliver_clamd *c, const char *path, const char **error_r)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sun.sun_path)) {
		*error_r = "clamd socket path too long";
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	return clamd_connect(c, (const struct sockaddr *)&sun, sizeof(sun), error_r);
}

/* "host:port" or "[v6]:port" into malloc'd host and port strings. */
static int clamd_split_host(const char *address, char **host_r, char **port_r)
{
	const char *colon = strrchr(address, ':');
	if (colon == NULL || colon[1] == '\0' || colon == address)
		return -1;
	const char *start = address, *end = colon;
	if (address[0] == '[') {
		if (colon[-1] != ']')
			return -1;
		start++;
		end--;
	}
	*host_r = xstrndup(start, (size_t)(end - start));
	*port_r = xstrdup(colon + 1);
	return 0;
}

static int clamd_connect_tcp(struct deliver_clamd *c, const char *address, const char **error_r)
{
	char *host, *port;
	if (clamd_split_host(address, &host, &port) < 0) {
		*error_r = "[virus] clamd is neither a socket path nor host:port";
		return -1;
	}
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	int ret = getaddrinfo(host, port, &hints, &res);
	free(host);
	free(port);
	if (ret != 0) {
		*error_r = "cannot resolve the clamd host";
		return -1;
	}
	ret = -1;
	for (struct addrinfo *ai = res; ai != NULL && ret < 0; ai = ai->ai_next) {
		if (c->fd >= 0)
			close(c->fd);
		ret = clamd_connect(c, ai->ai_addr, ai->ai_addrlen, error_r);
	}
	freeaddrinfo(res);
	return ret;
}

struct deliver_clamd *deliver_clamd_open(const char *address, uint64_t timeout_ms,
                                         const char **error_r)
{
	struct deliver_clamd *c = xcalloc(1, sizeof(*c));
	c->fd = -1;
	c->timeout_ms = timeout_ms > 600000 ? 600000 : (int)timeout_ms;
	int ret = strchr(address, '/') != NULL ? clamd_connect_unix(c, address, error_r)
	                                       : clamd_connect_tcp(c, address, error_r);
	if (ret == 0)
		ret = clamd_send(c, "zINSTREAM", sizeof("zINSTREAM"), error_r);
	if (ret < 0)
		deliver_clamd_abort(&c);
	return c;
}

/* Sends the buffered bytes as one chunk (a zero-length one ends the stream). */
static int clamd_flush(struct deliver_clamd *c, const char **error_r)
{
	uint32_t size = htonl((uint32_t)c->used);
	if (clamd_send(c, &size, sizeof(size), error_r) < 0 ||
	    clamd_send(c, c->chunk, c->used, error_r) < 0)
		return -1;
	c->used = 0;
	return 0;
}

int deliver_clamd_write(struct deliver_clamd *c, const void *data, size_t len,
                        const char **error_r)
{
	const unsigned char *p = data;
	while (len > 0) {
		size_t n = CLAMD_CHUNK - c->used < len ? CLAMD_CHUNK - c->used : len;
		memcpy(c->chunk + c->used, p, n);
		c->used += n;
		p += n;
		len -= n;
		if (c->used == CLAMD_CHUNK && clamd_flush(c, error_r) < 0)
			return -1;
	}
	return 0;
}

/* Reads the answer up to its NUL (or the end of the connection). */
static int clamd_read_reply(struct deliver_clamd *c, char *reply, size_t size,
                            const char **error_r)
{
	size_t len = 0;
	while (len + 1 < size) {
		ssize_t n = recv(c->fd, reply + len, size - 1 - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (clamd_wait(c, POLLIN, error_r) < 0)
				return -1;
			continue;
		}
		if (n < 0) {
			*error_r = "reading the clamd answer failed";
			return -1;
		}
		len += (size_t)n;
		if (n == 0 || memchr(reply, '\0', len) != NULL)
			break;
	}
	reply[len] = '\0';
	return 0;
}

/* "stream: OK", "stream: NAME FOUND", anything else is an error. */
static int clamd_parse_reply(char *reply, char **virus_r, const char **error_r)
{
	size_t len = strlen(reply);
	while (len > 0 && (reply[len - 1] == '\n' || reply[len - 1] == ' '))
		reply[--len] = '\0';
	if (strncmp(reply, "stream: ", 8) != 0) {
		*error_r = len == 0 ? "clamd closed without an answer" : "clamd answered an error";
		return -1;
	}
	const char *what = reply + 8;
	if (strcmp(what, "OK") == 0)
		return 0;
	size_t wlen = strlen(what);
	if (wlen > 6 && strcmp(what + wlen - 6, " FOUND") == 0) {
		*virus_r = xstrndup(what, wlen - 6);
		return 1;
	}
	*error_r = "clamd answered an error";
	return -1;
}

int deliver_clamd_finish(struct deliver_clamd **clamdp, char **virus_r, const char **error_r)
{
	struct deliver_clamd *c = *clamdp;
	char reply[CLAMD_MAX_REPLY];
	int ret = -1;
	*virus_r = NULL;
	if ((c->used == 0 || clamd_flush(c, error_r) == 0) && clamd_flush(c, error_r) == 0 &&
	    clamd_read_reply(c, reply, sizeof(reply), error_r) == 0)
		ret = clamd_parse_reply(reply, virus_r, error_r);
	deliver_clamd_abort(clamdp);
	return ret;
}

void deliver_clamd_abort(struct deliver_clamd **clamdp)
{
	struct deliver_clamd *c = *clamdp;
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c);
	*clamdp = NULL;
}

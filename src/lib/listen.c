/* Listening sockets: opened by the master (as root when a port is below
 * 1024), inherited by every worker, kept across a reload when the address
 * and port stay the same. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/net-private.h"
#include "lib/xmalloc.h"

#define LISTEN_BACKLOG 511

/* The last error text: valid until the next listener error. */
static char listen_error[512];

const struct protocol *net_protocol_find(const struct protocol *const *protocols,
					 const char *name)
{
	for (size_t i = 0; protocols != NULL && protocols[i] != NULL; i++) {
		if (strcmp(protocols[i]->name, name) == 0)
			return protocols[i];
	}
	return NULL;
}

static int sock_options(int fd, int family, bool any)
{
	int on = 1, off = 0;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0)
		return -1;
	if (family == AF_INET6 && any &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) < 0)
		return -1;
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -1;
	return 0;
}

static int sock_bind(const struct sockaddr *sa, socklen_t len, bool any)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (sock_options(fd, sa->sa_family, any) < 0 || bind(fd, sa, len) < 0 ||
	    listen(fd, LISTEN_BACKLOG) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* "*": IPv6 and IPv4 on one socket, or IPv4 alone without IPv6. */
static int listen_any(uint16_t port)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6,
				     .sin6_port = htons(port),
				     .sin6_addr = IN6ADDR_ANY_INIT };
	int fd = sock_bind((struct sockaddr *)&sin6, sizeof(sin6), true);
	if (fd >= 0 || (errno != EAFNOSUPPORT && errno != EADDRNOTAVAIL))
		return fd;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_ANY) };
	return sock_bind((struct sockaddr *)&sin, sizeof(sin), false);
}

static int listen_literal(const char *address, uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6,
				     .sin6_port = htons(port) };
	if (inet_pton(AF_INET, address, &sin.sin_addr) == 1)
		return sock_bind((struct sockaddr *)&sin, sizeof(sin), false);
	if (inet_pton(AF_INET6, address, &sin6.sin6_addr) == 1)
		return sock_bind((struct sockaddr *)&sin6, sizeof(sin6), false);
	errno = EINVAL;
	return -1;
}

static const char *format_addr(const struct config_listener *set, char *out,
			       size_t outsize)
{
	if (strchr(set->address, ':') != NULL)
		snprintf(out, outsize, "[%s]:%u", set->address, set->port);
	else
		snprintf(out, outsize, "%s:%u", set->address, set->port);
	return out;
}

static int listener_open_one(const struct config_listener *set,
			     const struct protocol *const *protocols,
			     struct net_listener *l_r)
{
	char where[128];
	l_r->set = set;
	l_r->protocol = net_protocol_find(protocols, set->protocol);
	if (l_r->protocol == NULL) {
		snprintf(listen_error, sizeof(listen_error),
			 "listener %s: unknown protocol %s", set->name,
			 set->protocol);
		return -1;
	}
	if (set->port == 0 || set->port > 65535) {
		errno = EINVAL;
		l_r->fd = -1;
	} else if (strcmp(set->address, "*") == 0) {
		l_r->fd = listen_any((uint16_t)set->port);
	} else {
		l_r->fd = listen_literal(set->address, (uint16_t)set->port);
	}
	if (l_r->fd < 0) {
		snprintf(listen_error, sizeof(listen_error),
			 "listener %s: cannot listen on %s: %s", set->name,
			 format_addr(set, where, sizeof(where)), strerror(errno));
		return -1;
	}
	return 0;
}

static size_t listener_count(const struct yubin_config *config)
{
	size_t n = 0;
	for (const struct config_listener *set = config->listeners; set != NULL;
	     set = set->next)
		n++;
	return n;
}

int net_listeners_open(struct net_listeners *ls,
		       const struct yubin_config *config,
		       const struct protocol *const *protocols,
		       const char **error_r)
{
	ls->items = xcalloc(listener_count(config), sizeof(*ls->items));
	ls->count = 0;
	for (const struct config_listener *set = config->listeners; set != NULL;
	     set = set->next) {
		if (listener_open_one(set, protocols, &ls->items[ls->count]) < 0) {
			*error_r = listen_error;
			net_listeners_close(ls);
			return -1;
		}
		ls->count++;
	}
	return 0;
}

static bool same_socket(const struct config_listener *a,
			const struct config_listener *b)
{
	return a->port == b->port && strcmp(a->address, b->address) == 0;
}

/* Moves old's socket for set (if any) into l_r; returns false if none. */
static bool listener_take(struct net_listeners *old,
			  const struct config_listener *set,
			  struct net_listener *l_r)
{
	for (size_t i = 0; i < old->count; i++) {
		struct net_listener *o = &old->items[i];
		if (o->fd >= 0 && same_socket(o->set, set)) {
			l_r->fd = o->fd;
			o->fd = -1;
			return true;
		}
	}
	return false;
}

void net_listeners_reopen(struct net_listeners *ls,
			  struct net_listeners *old,
			  const struct yubin_config *config,
			  const struct protocol *const *protocols)
{
	ls->items = xcalloc(listener_count(config), sizeof(*ls->items));
	ls->count = 0;
	for (const struct config_listener *set = config->listeners; set != NULL;
	     set = set->next) {
		struct net_listener *l = &ls->items[ls->count];
		l->set = set;
		l->protocol = net_protocol_find(protocols, set->protocol);
		if (l->protocol != NULL && listener_take(old, set, l)) {
			ls->count++;
			continue;
		}
		if (listener_open_one(set, protocols, l) < 0) {
			log_error("%s (left out)", listen_error);
			continue;
		}
		char where[128];
		log_info("listener %s opened on %s", set->name,
			 format_addr(set, where, sizeof(where)));
		ls->count++;
	}
}

void net_listeners_close(struct net_listeners *ls)
{
	for (size_t i = 0; i < ls->count; i++) {
		if (ls->items[i].fd >= 0)
			close(ls->items[i].fd);
	}
	xfree(ls->items);
	ls->count = 0;
}

void net_listeners_describe(const struct net_listeners *ls, struct buf *out)
{
	char where[128];
	for (size_t i = 0; i < ls->count; i++) {
		const struct config_listener *set = ls->items[i].set;
		buf_printf(out, "%s%s:%s", i > 0 ? "," : "", set->name,
			   format_addr(set, where, sizeof(where)));
	}
}

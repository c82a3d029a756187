/* Internals shared by the connection layer (conn.c), listeners (listen.c),
 * TLS (tls.c), the connection table (connlimit.c), the master (server.c)
 * and the workers (worker.c). Not for protocol code. */
#ifndef YUBIN_NET_PRIVATE_H
#define YUBIN_NET_PRIVATE_H

#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "lib/config.h"
#include "lib/conn.h"
#include "lib/tls.h"

/* Output beyond this means the protocol ignored back-pressure: close. */
#define CONN_OUTPUT_HARD_MAX (16 * 1024 * 1024)
/* Input is not read from the socket beyond this while unprocessed. */
#define CONN_INPUT_HIGH_WATER (256 * 1024)
#define CONN_DEFAULT_MAX_LINE 8192
#define CONN_TLS_HANDSHAKE_MS 30000
#define CONN_CLOSE_FLUSH_MS 10000

/* ---- tls.c ---- */
/* A tls_server is reference counted: every TLS connection holds one, so
 * that its contexts (and the SNI callback's argument) outlive a reload.
 * tls_server_destroy() drops the creator's reference. */
struct tls_server *tls_server_ref(struct tls_server *tls);
void tls_server_unref(struct tls_server **tls);

/* ---- connlimit.c ---- */
/* Connection counts shared by all workers through a MAP_SHARED region made
 * before fork: one slot per worker process, written only by its owner,
 * read by everyone with relaxed atomics. */
struct connlimit;

enum connlimit_result {
	CONNLIMIT_REFUSED = -1,
	CONNLIMIT_UNTRACKED = 0, /* admitted; per-IP table full, IP not counted */
	CONNLIMIT_TRACKED = 1,   /* admitted and counted under its IP */
};

struct connlimit *connlimit_create(unsigned slots);
void connlimit_destroy(struct connlimit **limits);
unsigned connlimit_slot_count(const struct connlimit *limits);
/* Only the master, for a slot whose process is dead. */
void connlimit_clear_slot(struct connlimit *limits, unsigned slot);
/* max_total / max_per_ip: 0 = unlimited. On refusal *reason_r is
 * "limit" or "per-ip-limit" (static). */
enum connlimit_result connlimit_acquire(struct connlimit *limits,
					unsigned slot,
					const struct in6_addr *ip,
					uint32_t max_total,
					uint32_t max_per_ip,
					const char **reason_r);
void connlimit_release(struct connlimit *limits, unsigned slot,
		       const struct in6_addr *ip, bool tracked);
uint32_t connlimit_count_total(const struct connlimit *limits);
uint32_t connlimit_count_ip(const struct connlimit *limits,
			    const struct in6_addr *ip);
/* IPv4 becomes ::ffff:a.b.c.d; anything else (AF_UNIX) becomes ::. */
void connlimit_addr_from_sockaddr(const struct sockaddr *sa,
				  struct in6_addr *ip_r);

/* ---- listen.c ---- */
/* One listening socket opened by the master and inherited by workers. */
struct net_listener {
	const struct config_listener *set; /* in the config that uses it */
	const struct protocol *protocol;
	int fd;
};

/* The listeners of one config. */
struct net_listeners {
	struct net_listener *items;
	size_t count;
};

/* Opens a socket for each listener of config (protocols: NULL-terminated).
 * On failure returns -1 with *error_r ("listener pop3: cannot listen on
 * 127.0.0.1:2110: Address already in use"; valid until the next
 * listener error) and
 * leaves nothing open. */
int net_listeners_open(struct net_listeners *ls,
		       const struct yubin_config *config,
		       const struct protocol *const *protocols,
		       const char **error_r);
/* For a reload: sockets whose address and port are in both configs are
 * moved from old into the new set, the others are opened; a listener that
 * cannot be opened is logged and left out. Old sockets not moved stay in
 * old (close them with net_listeners_close). */
void net_listeners_reopen(struct net_listeners *ls,
			  struct net_listeners *old,
			  const struct yubin_config *config,
			  const struct protocol *const *protocols);
void net_listeners_close(struct net_listeners *ls);
/* "pop3:127.0.0.1:2110,imaps:[::]:993" into out. */
void net_listeners_describe(const struct net_listeners *ls, struct buf *out);
const struct protocol *net_protocol_find(const struct protocol *const *protocols,
					 const char *name);

/* ---- worker.c ---- */
struct worker_params {
	const struct yubin_config *config;
	const struct protocol *const *protocols;
	struct tls_server *tls;            /* NULL without TLS listeners */
	const struct net_listeners *listeners;
	struct connlimit *limits;
	unsigned limit_slot;
	uint32_t serial;                   /* unique per fork in this run */
	uint32_t run_random;
	pid_t master_pid;
	/* Signals stay blocked until the worker's handlers are installed;
	 * then this mask is restored. */
	const sigset_t *sigmask;
};

/* Runs a worker's event loop until it has stopped; returns the exit code.
 * SIGTERM/SIGINT: graceful shutdown within server.shutdown_grace.
 * SIGUSR1: stop accepting, exit when the last connection has closed. */
int worker_run(const struct worker_params *params);

/* ---- conn.c ---- */
/* "192.0.2.1" (IPv4-mapped IPv6 shown as IPv4), "2001:db8::1", "local". */
void net_sockaddr_format(const struct sockaddr_storage *ss, char *ip,
			 size_t ipsize, uint16_t *port_r);

struct conn_params {
	struct event_base *base;
	int fd;                        /* accepted, non-blocking; conn owns it */
	const struct config_listener *listener;
	const struct yubin_config *config;
	const struct protocol *protocol;
	struct tls_server *tls;        /* NULL = no TLS; the conn takes a ref */
	struct connlimit *limits;      /* NULL = not counted */
	unsigned limit_slot;
	bool limit_tracked;
};

/* Creates the connection, logs event=connect and starts the protocol (for
 * implicit TLS: after the handshake). The conn may already be closing when
 * this returns (start() refused it); it is freed from the loop. */
struct conn *conn_create(const struct conn_params *params);
/* Session ids are (worker serial, counter) mixed with a per-run random
 * value, so they are unique within a server run. */
void conn_set_id_base(uint32_t worker_serial, uint32_t run_random);
/* Open connections of this process. */
unsigned conn_count(void);
/* Called (from the event loop) whenever the last connection was freed. */
void conn_set_empty_callback(void (*cb)(void *ctx), void *ctx);
/* Graceful shutdown: calls each started connection's protocol shutdown
 * hook (or closes it when the protocol has none); aborts handshakes. */
void conn_shutdown_all(void);
/* Closes every connection at once without flushing (grace expired). */
void conn_abort_all(const char *reason);

#endif

/* Inside the SMTP client: the route (smtpc-route.c), the connection and its
 * cache (smtpc.c), the protocol state machine (smtpc-session.c). */
#ifndef YUBIN_SMTP_SMTPC_PRIVATE_H
#define YUBIN_SMTP_SMTPC_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lib/buf.h"
#include "smtp/dns.h"
#include "smtp/smtpc.h"

struct bufferevent;
struct event;
typedef struct ssl_ctx_st SSL_CTX;

enum smtpc_tls {
	SMTPC_TLS_NONE,
	SMTPC_TLS_MAY,      /* STARTTLS when offered, certificate not checked */
	SMTPC_TLS_ENCRYPT,  /* STARTTLS required, certificate not checked */
	SMTPC_TLS_VERIFY,   /* STARTTLS required, certificate and name checked */
};

/* Where one destination domain's mail goes. */
struct smtpc_route {
	char *host;         /* to look up (MX or address) or an IP literal */
	unsigned int port;
	bool mx;            /* look up host's MX first (no brackets) */
	enum smtpc_tls tls;
	bool implicit_tls;  /* the relay with tls = implicit */
	bool relay;         /* the smarthost: AUTH when a username is set */
};

/* Fills route for domain; -1 with *error_r (static) on a malformed entry. */
int smtpc_route_find(const struct yubin_config *config, const char *domain,
		     struct smtpc_route *route, const char **error_r);
void smtpc_route_free(struct smtpc_route *route);
/* The client context for a policy; NULL with *error_r when the CA file
 * cannot be loaded. One per process, rebuilt when the CA file changes. */
SSL_CTX *smtpc_tls_ctx(const struct yubin_config *config, const char **error_r);

/* EHLO keywords (RFC 5321 4.1.1.1 and the extensions). */
#define SMTPC_EXT_PIPELINING 0x01u
#define SMTPC_EXT_8BITMIME   0x02u
#define SMTPC_EXT_BINARYMIME 0x04u
#define SMTPC_EXT_CHUNKING   0x08u
#define SMTPC_EXT_SMTPUTF8   0x10u
#define SMTPC_EXT_DSN        0x20u
#define SMTPC_EXT_STARTTLS   0x40u
#define SMTPC_EXT_SIZE       0x80u
#define SMTPC_EXT_AUTH       0x100u

#define SMTPC_AUTH_PLAIN 0x1u
#define SMTPC_AUTH_LOGIN 0x2u

/* One connection to one host; owned by a delivery, or idle in the cache,
 * or saying QUIT on its way out. */
struct smtpc_conn {
	struct event_base *base;
	struct bufferevent *bev;
	char *host;         /* the name (MX, relay) or the IP literal */
	char addr[64];      /* the IP address connected to */
	unsigned int port;
	enum smtpc_tls tls;
	bool implicit_tls;
	bool tls_active;
	bool authenticated;
	bool quitting;      /* QUIT sent: the next reply or EOF ends it */
	unsigned int ext;   /* SMTPC_EXT_* of the last EHLO */
	unsigned int auth_mechs;
	uint64_t max_size;  /* SIZE; 0 = not announced or no limit */
	unsigned int uses;  /* transactions done */
	struct smtpc *owner;/* the delivery using it, or NULL */
	struct event *timer;/* idle expiry, QUIT wait */
	struct smtpc_conn *next;
};

/* Connection life (smtpc.c) */
struct smtpc_conn *smtpc_conn_connect(struct smtpc *client, const char *host,
				      const struct sockaddr_storage *addr,
				      const struct smtpc_route *route, const char **error_r);
/* An idle connection to host:port with this policy, or NULL. */
struct smtpc_conn *smtpc_conn_take_idle(struct event_base *base, const char *host,
					const struct smtpc_route *route);
/* Done with it: kept for reuse when `reusable`, else QUIT and close. */
void smtpc_conn_release(struct smtpc_conn *conn, const struct yubin_config *config,
			bool reusable);
/* Closes at once (the peer misbehaved or went away). */
void smtpc_conn_destroy(struct smtpc_conn *conn);
/* Wraps the connection in TLS (after 220 to STARTTLS). -1 with *error_r. */
int smtpc_conn_start_tls(struct smtpc_conn *conn, const struct yubin_config *config,
			 const char **error_r);

/* The delivery (smtpc.c) as the session sees it. */
struct smtpc_wait {
	unsigned int kind;  /* enum smtpc_expect in smtpc-session.c */
	size_t index;       /* the recipient of a RCPT */
};

struct smtpc {
	struct event_base *base;
	const struct yubin_config *config;
	struct smtpc_request req;    /* strings and arrays are our copies */
	char **rcpts;
	struct queue_rcpt *dsn;
	smtpc_callback *callback;
	void *context;
	struct smtpc_route route;
	struct dns_lookup *dns;
	struct dns_result *hosts;
	size_t host_i, addr_i, attempts;
	struct smtpc_conn *conn;
	struct smtpc_rcpt_result *results;
	bool *decided;               /* per recipient: results[i] is final */
	bool *accepted;              /* per recipient: RCPT got 2xx */
	size_t accepted_count, rcpt_replies;
	/* The last session-level failure: given to every undecided
	 * recipient when no host is left. */
	struct smtpc_rcpt_result last;
	struct buf reply;            /* the reply being read, lines joined by \n */
	unsigned int reply_code;
	struct smtpc_wait *waits;
	size_t wait_head, wait_count, wait_cap;
	unsigned int auth_step;
	uint64_t body_offset;
	bool body_bol, body_done, body_crlf;
	char body_last[2];
	bool in_transaction;         /* MAIL sent: a lost connection ends it */
	bool starttls_pending;       /* the next "connected" is TLS being up */
	bool mail_failed;            /* MAIL refused: drain the pipeline, end */
	struct event *timer;         /* the RFC 5321 4.5.3.2 timeouts */
	struct event *advance;       /* next host, deferred */
	struct event *done;          /* the callback, deferred */
	bool finished;
};

/* Session (smtpc-session.c) */
/* A connection is open (or TLS is up): wait for the greeting / send EHLO. */
void smtpc_session_connected(struct smtpc *c);
/* A reused connection: RSET, then the transaction. */
void smtpc_session_reuse(struct smtpc *c);
void smtpc_session_on_input(struct smtpc *c);
void smtpc_session_on_drain(struct smtpc *c);
/* EOF, error, timeout or TLS failure on the owner's connection. */
void smtpc_session_lost(struct smtpc *c, const char *why);
void smtpc_session_on_timeout(struct smtpc *c);

/* Delivery (smtpc.c) */
void smtpc_result_set(struct smtpc_rcpt_result *r, unsigned int code, const char *enhanced,
		      const char *text, bool permanent, const char *host);
/* The current host failed at session level (why, with code/enhanced when
 * the peer said so): record it and try the next address. */
void smtpc_host_failed(struct smtpc *c, unsigned int code, const char *enhanced,
		       const char *text);
/* Every recipient without a result gets this one; then finish. */
void smtpc_fail_rest(struct smtpc *c, unsigned int code, const char *enhanced,
		     const char *text, bool permanent);
/* Called when every recipient has a result: release the connection
 * (reusable or not) and schedule the callback. */
void smtpc_finish(struct smtpc *c, bool reusable);
/* (Re)starts the reply timer for ms. */
void smtpc_arm_timer(struct smtpc *c, uint64_t ms);

#endif

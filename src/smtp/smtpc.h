/* The outbound SMTP client (RFC 5321) used by the queue runner: delivers
 * one message to the recipients of one destination domain over one
 * connection, asynchronously on the runner's libevent loop. Where to: the
 * config's per-domain transport override ([transport] example.org =
 * [127.0.0.1]:2626), else the relay host ([relay] host, with AUTH and TLS),
 * else MX lookup through dns.h (MX in preference order, then A/AAAA as RFC
 * 5321 5.1; a null MX, RFC 7505, fails permanently). Opportunistic
 * STARTTLS (certificate verification and "require TLS" configurable per
 * destination), PIPELINING, SIZE, 8BITMIME and SMTPUTF8 honoured: a message
 * the peer cannot take fails permanently instead of being mangled. See
 * docs/smtp-client.md. */
#ifndef YUBIN_SMTP_SMTPC_H
#define YUBIN_SMTP_SMTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp/queue.h"

struct event_base;
struct yubin_config;

struct smtpc_rcpt_result {
	/* The reply that decided this recipient (or a local reason): "550",
	 * "5.1.1", "User unknown" (the text is one line, may be the server's). */
	unsigned int code;           /* 250 on success; 0 when no SMTP reply (DNS, connect) */
	char enhanced[16];           /* RFC 3463 x.y.z, "" when the peer gave none */
	char *text;                  /* malloc'd, for logs and the bounce */
	bool permanent;              /* 5xx, null MX, unknown domain: give up now */
	char *remote_host;           /* the MX or relay that answered, or NULL */
};

struct smtpc_request {
	const char *domain;          /* the destination domain (ASCII or A-label) */
	const char *sender;          /* "" = null sender */
	const char *const *rcpts;    /* all in `domain` */
	const struct queue_rcpt *dsn;/* per recipient, same order: NOTIFY/ORCPT to pass on, or NULL */
	size_t rcpt_count;
	const char *envid;           /* or NULL */
	enum queue_ret ret;
	enum queue_body body;
	bool smtputf8;
	int fd;                      /* the message, read from offset 0 (pread) */
	uint64_t size;
};

/* results has rcpt_count entries, in the order of req->rcpts. */
typedef void smtpc_callback(void *context, struct smtpc_rcpt_result *results, size_t count);

struct smtpc;

/* Starts a delivery; the callback runs exactly once, later, from the loop
 * (never from inside smtpc_deliver). req is copied. The fd must stay open
 * until the callback. */
struct smtpc *smtpc_deliver(struct event_base *base, const struct yubin_config *config,
                            const struct smtpc_request *req, smtpc_callback *callback,
                            void *context);
/* Cancels a delivery in progress (runner shutdown): no callback. */
void smtpc_cancel(struct smtpc **client);
void smtpc_results_free(struct smtpc_rcpt_result *results, size_t count);
/* Closes every idle connection kept for reuse ([smtp_client] reuse_time)
 * and every one still waiting for its QUIT reply: at runner shutdown,
 * before the event base is freed (the sockets close when the loop runs
 * once more or the base is freed). */
void smtpc_shutdown(void);

#endif

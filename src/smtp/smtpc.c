/* The outbound client's delivery: route, DNS, trying each host in turn,
 * results, and the cache of idle connections reused for the next message
 * to the same host (keyed by loop, host, port and TLS policy). */
#include "smtp/smtpc-private.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

/* At most this many addresses are tried per delivery (RFC 5321 5.1 asks
 * for a configurable limit; Postfix tries 5 hosts, 10 sessions). */
#define SMTPC_MAX_ATTEMPTS 10

static struct smtpc_conn *smtpc_idle;
static unsigned int smtpc_idle_count;
/* Connections that said QUIT and wait for its reply. */
static struct smtpc_conn *smtpc_closing;

/* ---- connections ---- */

static void smtpc_conn_read_cb(struct bufferevent *bev, void *arg);
static void smtpc_conn_write_cb(struct bufferevent *bev, void *arg);
static void smtpc_conn_event_cb(struct bufferevent *bev, short what, void *arg);

static void smtpc_conn_set_callbacks(struct smtpc_conn *conn)
{
	bufferevent_setcb(conn->bev, smtpc_conn_read_cb, smtpc_conn_write_cb,
			  smtpc_conn_event_cb, conn);
	bufferevent_setwatermark(conn->bev, EV_WRITE, 64 * 1024, 0);
	bufferevent_enable(conn->bev, EV_READ | EV_WRITE);
}

static bool smtpc_list_unlink(struct smtpc_conn **list, struct smtpc_conn *conn)
{
	for (struct smtpc_conn **p = list; *p != NULL; p = &(*p)->next) {
		if (*p == conn) {
			*p = conn->next;
			conn->next = NULL;
			return true;
		}
	}
	return false;
}

static void smtpc_idle_unlink(struct smtpc_conn *conn)
{
	if (smtpc_list_unlink(&smtpc_idle, conn))
		smtpc_idle_count--;
	else
		smtpc_list_unlink(&smtpc_closing, conn);
}

void smtpc_conn_destroy(struct smtpc_conn *conn)
{
	if (conn == NULL)
		return;
	smtpc_idle_unlink(conn);
	if (conn->bev != NULL)
		bufferevent_free(conn->bev);
	if (conn->timer != NULL)
		event_free(conn->timer);
	free(conn->host);
	free(conn);
}

static SSL *smtpc_ssl_new(struct smtpc_conn *conn, const struct yubin_config *config,
			  const char **error_r)
{
	SSL_CTX *ctx = smtpc_tls_ctx(config, error_r);
	SSL *ssl;
	if (ctx == NULL)
		return NULL;
	ssl = SSL_new(ctx);
	SSL_set_tlsext_host_name(ssl, conn->host);
	if (conn->tls == SMTPC_TLS_VERIFY) {
		SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
		SSL_set1_host(ssl, conn->host);
	} else {
		/* RFC 7435 opportunistic: any certificate beats plaintext. */
		SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	}
	return ssl;
}

static struct bufferevent *smtpc_conn_socket(struct smtpc_conn *conn,
					     const struct yubin_config *config,
					     const char **error_r)
{
	/* Implicit TLS starts once TCP is up (smtpc_conn_event_cb). */
	(void)config;
	(void)error_r;
	return bufferevent_socket_new(conn->base, -1, BEV_OPT_CLOSE_ON_FREE);
}

struct smtpc_conn *smtpc_conn_connect(struct smtpc *client, const char *host,
				      const struct sockaddr_storage *addr,
				      const struct smtpc_route *route, const char **error_r)
{
	struct smtpc_conn *conn = xcalloc(1, sizeof(*conn));
	struct sockaddr_storage sa = *addr;
	conn->base = client->base;
	conn->host = xstrdup(host);
	conn->port = route->port;
	conn->tls = route->tls;
	conn->implicit_tls = route->implicit_tls;
	conn->owner = client;
	dns_addr_str(addr, conn->addr, sizeof(conn->addr));
	conn->bev = smtpc_conn_socket(conn, client->config, error_r);
	if (conn->bev == NULL) {
		smtpc_conn_destroy(conn);
		return NULL;
	}
	smtpc_conn_set_callbacks(conn);
	dns_addr_set_port(&sa, route->port);
	if (bufferevent_socket_connect(conn->bev, (struct sockaddr *)&sa, (int)dns_addr_len(&sa)) < 0) {
		*error_r = "connect failed";
		smtpc_conn_destroy(conn);
		return NULL;
	}
	return conn;
}

int smtpc_conn_start_tls(struct smtpc_conn *conn, const struct yubin_config *config,
			 const char **error_r)
{
	SSL *ssl = smtpc_ssl_new(conn, config, error_r);
	if (ssl == NULL)
		return -1;
	struct bufferevent *bev = bufferevent_openssl_filter_new(conn->base, conn->bev, ssl,
								 BUFFEREVENT_SSL_CONNECTING,
								 BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		*error_r = "cannot start TLS";
		return -1;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	conn->bev = bev;
	conn->tls_active = true;
	smtpc_conn_set_callbacks(conn);
	return 0;
}

static void smtpc_conn_quit(struct smtpc_conn *conn);

/* Idle too long: say QUIT; QUIT unanswered: close. */
static void smtpc_conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc_conn *conn = arg;
	(void)fd;
	(void)what;
	if (conn->quitting) {
		smtpc_conn_destroy(conn);
		return;
	}
	smtpc_idle_unlink(conn);
	smtpc_conn_quit(conn);
}

static bool smtpc_conn_matches(const struct smtpc_conn *conn, struct event_base *base,
			       const char *host, const struct smtpc_route *route)
{
	return conn->base == base && conn->port == route->port && conn->tls == route->tls &&
	       conn->implicit_tls == route->implicit_tls && strcasecmp(conn->host, host) == 0;
}

struct smtpc_conn *smtpc_conn_take_idle(struct event_base *base, const char *host,
					const struct smtpc_route *route)
{
	for (struct smtpc_conn *conn = smtpc_idle; conn != NULL; conn = conn->next) {
		if (smtpc_conn_matches(conn, base, host, route)) {
			smtpc_idle_unlink(conn);
			evtimer_del(conn->timer);
			return conn;
		}
	}
	return NULL;
}

static void smtpc_conn_quit(struct smtpc_conn *conn)
{
	struct timeval tv = { 5, 0 };
	static const char quit[] = "QUIT\r\n";
	conn->quitting = true;
	conn->next = smtpc_closing;
	smtpc_closing = conn;
	bufferevent_write(conn->bev, quit, sizeof(quit) - 1);
	/* Wait for the reply (or EOF) briefly, so the peer sees a clean end. */
	evtimer_add(conn->timer, &tv);
}

void smtpc_conn_release(struct smtpc_conn *conn, const struct yubin_config *config,
			bool reusable)
{
	conn->owner = NULL;
	if (conn->timer == NULL)
		conn->timer = evtimer_new(conn->base, smtpc_conn_timer_cb, conn);
	reusable = reusable && config->smtp_client.reuse_time > 0 &&
		   conn->uses < config->smtp_client.reuse_limit &&
		   smtpc_idle_count < config->smtp_client.max_idle &&
		   evbuffer_get_length(bufferevent_get_input(conn->bev)) == 0;
	if (!reusable) {
		smtpc_conn_quit(conn);
		return;
	}
	struct timeval tv = { (time_t)(config->smtp_client.reuse_time / 1000),
			      (suseconds_t)(config->smtp_client.reuse_time % 1000) * 1000 };
	evtimer_add(conn->timer, &tv);
	conn->next = smtpc_idle;
	smtpc_idle = conn;
	smtpc_idle_count++;
}

/* An idle or quitting connection reads only its end (QUIT's reply, a 421,
 * EOF); a delivery's connection feeds the session. */
static void smtpc_conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct smtpc_conn *conn = arg;
	if (conn->owner != NULL) {
		smtpc_session_on_input(conn->owner);
		return;
	}
	evbuffer_drain(bufferevent_get_input(bev), (size_t)-1);
	smtpc_conn_destroy(conn);
}

static void smtpc_conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct smtpc_conn *conn = arg;
	(void)bev;
	if (conn->owner != NULL)
		smtpc_session_on_drain(conn->owner);
}

static void smtpc_tls_failed(struct smtpc *c, struct bufferevent *bev)
{
	char why[256];
	unsigned long err = bufferevent_get_openssl_error(bev);
	const char *reason = err != 0 ? ERR_reason_error_string(err) : NULL;
	snprintf(why, sizeof(why), "TLS handshake failed (%s)",
		 reason != NULL ? reason : "closed by the peer");
	smtpc_session_lost(c, why);
}

static void smtpc_socket_failed(struct smtpc *c)
{
	char why[256];
	snprintf(why, sizeof(why), "connection error: %s",
		 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	smtpc_session_lost(c, why);
}

static void smtpc_conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtpc_conn *conn = arg;
	struct smtpc *c = conn->owner;
	(void)bev;
	if (c == NULL) {
		smtpc_conn_destroy(conn);
		return;
	}
	if ((what & BEV_EVENT_CONNECTED) && conn->implicit_tls && !conn->tls_active) {
		const char *error;
		if (smtpc_conn_start_tls(conn, c->config, &error) < 0)
			smtpc_host_failed(c, 0, "4.7.0", error);
		return;
	}
	if (what & BEV_EVENT_CONNECTED) {
		smtpc_session_connected(c);
		return;
	}
	if (conn->tls_active && (c->starttls_pending || (conn->implicit_tls && c->wait_count == 0)))
		smtpc_tls_failed(c, bev);
	else if (what & BEV_EVENT_EOF)
		smtpc_session_lost(c, "the connection was closed");
	else
		smtpc_socket_failed(c);
}

void smtpc_shutdown(void)
{
	while (smtpc_idle != NULL)
		smtpc_conn_destroy(smtpc_idle);
	while (smtpc_closing != NULL)
		smtpc_conn_destroy(smtpc_closing);
}

/* ---- results ---- */

void smtpc_result_set(struct smtpc_rcpt_result *r, unsigned int code, const char *enhanced,
		      const char *text, bool permanent, const char *host)
{
	free(r->text);
	free(r->remote_host);
	r->code = code;
	snprintf(r->enhanced, sizeof(r->enhanced), "%s", enhanced == NULL ? "" : enhanced);
	r->text = xstrdup(text);
	r->permanent = permanent;
	r->remote_host = host == NULL ? NULL : xstrdup(host);
}

void smtpc_results_free(struct smtpc_rcpt_result *results, size_t count)
{
	if (results == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free(results[i].text);
		free(results[i].remote_host);
	}
	free(results);
}

/* ---- the delivery ---- */

void smtpc_arm_timer(struct smtpc *c, uint64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	evtimer_add(c->timer, &tv);
}

static void smtpc_on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	smtpc_session_on_timeout(arg);
}

void smtpc_finish(struct smtpc *c, bool reusable)
{
	if (c->finished)
		return;
	c->finished = true;
	evtimer_del(c->timer);
	dns_lookup_cancel(&c->dns);
	if (c->conn != NULL) {
		if (reusable)
			c->conn->uses++;
		smtpc_conn_release(c->conn, c->config, reusable);
		c->conn = NULL;
	}
	event_active(c->done, EV_TIMEOUT, 0);
}

void smtpc_fail_rest(struct smtpc *c, unsigned int code, const char *enhanced,
		     const char *text, bool permanent)
{
	const char *host = c->conn != NULL ? c->conn->host : NULL;
	for (size_t i = 0; i < c->req.rcpt_count; i++) {
		if (c->decided[i])
			continue;
		smtpc_result_set(&c->results[i], code, enhanced, text, permanent, host);
		c->decided[i] = true;
	}
}

static void smtpc_try_next(struct smtpc *c);

void smtpc_host_failed(struct smtpc *c, unsigned int code, const char *enhanced,
		       const char *text)
{
	const char *host = c->conn != NULL ? c->conn->host : NULL;
	log_info("smtpc domain=%s host=%s addr=%s error=\"%s\"", c->req.domain,
		 host != NULL ? host : "-", c->conn != NULL ? c->conn->addr : "-", text);
	smtpc_result_set(&c->last, code, enhanced, text, false, host);
	evtimer_del(c->timer);
	c->wait_head = 0;
	c->wait_count = 0;
	c->starttls_pending = false;
	buf_reset(&c->reply);
	if (c->conn != NULL) {
		smtpc_conn_destroy(c->conn);
		c->conn = NULL;
	}
	event_active(c->advance, EV_TIMEOUT, 0);
}

/* Sets host_i/addr_i to the next address; false when none is left. */
static bool smtpc_next_address(struct smtpc *c)
{
	if (c->hosts == NULL || c->attempts >= SMTPC_MAX_ATTEMPTS)
		return false;
	while (c->host_i < c->hosts->host_count) {
		if (c->addr_i < c->hosts->hosts[c->host_i].addr_count)
			return true;
		c->host_i++;
		c->addr_i = 0;
	}
	return false;
}

static void smtpc_try_next(struct smtpc *c)
{
	const char *error = "connect failed";
	if (!smtpc_next_address(c)) {
		smtpc_fail_rest(c, c->last.code, c->last.enhanced, c->last.text, false);
		smtpc_finish(c, false);
		return;
	}
	const struct dns_host *h = &c->hosts->hosts[c->host_i];
	c->conn = smtpc_conn_take_idle(c->base, h->name, &c->route);
	if (c->conn != NULL) {
		c->conn->owner = c;
		smtpc_session_reuse(c);
		return;
	}
	c->attempts++;
	c->conn = smtpc_conn_connect(c, h->name, &h->addrs[c->addr_i++], &c->route, &error);
	if (c->conn == NULL) {
		smtpc_host_failed(c, 0, "4.4.1", error);
		return;
	}
	smtpc_arm_timer(c, c->config->smtp_client.connect_timeout);
}

static void smtpc_on_advance(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	smtpc_try_next(arg);
}

static void smtpc_on_dns(void *context, struct dns_result *result)
{
	struct smtpc *c = context;
	c->dns = NULL;
	if (result->status != DNS_OK) {
		log_info("smtpc domain=%s host=%s dns_error=\"%s\"", c->req.domain, c->route.host,
			 result->error);
		smtpc_fail_rest(c, 0, result->enhanced, result->error,
				result->status == DNS_PERMFAIL);
		dns_result_free(&result);
		smtpc_finish(c, false);
		return;
	}
	c->hosts = result;
	smtpc_try_next(c);
}

static void smtpc_on_done(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc *c = arg;
	struct smtpc_rcpt_result *results = c->results;
	size_t count = c->req.rcpt_count;
	smtpc_callback *callback = c->callback;
	void *context = c->context;
	(void)fd;
	(void)what;
	c->results = NULL;
	smtpc_cancel(&c);
	callback(context, results, count);
}

static void smtpc_copy_request(struct smtpc *c, const struct smtpc_request *req)
{
	c->req = *req;
	c->req.domain = xstrdup(req->domain);
	c->req.sender = xstrdup(req->sender);
	c->req.envid = req->envid == NULL ? NULL : xstrdup(req->envid);
	c->rcpts = xcalloc(req->rcpt_count, sizeof(char *));
	c->dsn = xcalloc(req->rcpt_count, sizeof(*c->dsn));
	for (size_t i = 0; i < req->rcpt_count; i++) {
		c->rcpts[i] = xstrdup(req->rcpts[i]);
		if (req->dsn == NULL)
			continue;
		c->dsn[i].notify = req->dsn[i].notify;
		if (req->dsn[i].orcpt != NULL)
			c->dsn[i].orcpt = xstrdup(req->dsn[i].orcpt);
	}
	c->req.rcpts = (const char *const *)c->rcpts;
	c->req.dsn = c->dsn;
}

static void smtpc_start_lookup(struct smtpc *c)
{
	if (c->route.mx)
		c->dns = dns_lookup_mx(c->base, c->config, c->route.host, smtpc_on_dns, c);
	else
		c->dns = dns_lookup_host(c->base, c->config, c->route.host, smtpc_on_dns, c);
}

struct smtpc *smtpc_deliver(struct event_base *base, const struct yubin_config *config,
			    const struct smtpc_request *req, smtpc_callback *callback,
			    void *context)
{
	struct smtpc *c = xcalloc(1, sizeof(*c));
	const char *error;
	size_t n = req->rcpt_count;
	c->base = base;
	c->config = config;
	c->callback = callback;
	c->context = context;
	smtpc_copy_request(c, req);
	c->results = xcalloc(n, sizeof(*c->results));
	c->decided = xcalloc(n, sizeof(bool));
	c->accepted = xcalloc(n, sizeof(bool));
	c->wait_cap = n + 8;
	c->waits = xcalloc(c->wait_cap, sizeof(*c->waits));
	buf_init(&c->reply, 64 * 1024);
	smtpc_result_set(&c->last, 0, "4.4.1", "no host could be reached", false, NULL);
	c->timer = evtimer_new(base, smtpc_on_timer, c);
	c->advance = event_new(base, -1, 0, smtpc_on_advance, c);
	c->done = event_new(base, -1, 0, smtpc_on_done, c);
	if (n == 0) {
		smtpc_finish(c, false);
		return c;
	}
	if (smtpc_route_find(config, req->domain, &c->route, &error) < 0) {
		smtpc_fail_rest(c, 0, "4.3.5", error, false);
		smtpc_finish(c, false);
		return c;
	}
	smtpc_start_lookup(c);
	return c;
}

void smtpc_cancel(struct smtpc **client)
{
	struct smtpc *c = *client;
	if (c == NULL)
		return;
	*client = NULL;
	dns_lookup_cancel(&c->dns);
	dns_result_free(&c->hosts);
	smtpc_conn_destroy(c->conn);
	smtpc_results_free(c->results, c->req.rcpt_count);
	free(c->last.text);
	free(c->last.remote_host);
	for (size_t i = 0; i < c->req.rcpt_count; i++) {
		free(c->rcpts[i]);
		free(c->dsn[i].orcpt);
	}
	free(c->rcpts);
	free(c->dsn);
	free(c->decided);
	free(c->accepted);
	free(c->waits);
	buf_free(&c->reply);
	smtpc_route_free(&c->route);
	free((char *)c->req.domain);
	free((char *)c->req.sender);
	free((char *)c->req.envid);
	event_free(c->timer);
	event_free(c->advance);
	event_free(c->done);
	free(c);
}

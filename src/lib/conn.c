/* One struct conn per client: a bufferevent (plain socket or OpenSSL), the
 * protocol's callbacks, an idle timer, a one-shot timer and a deferred
 * event. Protocol callbacks never see their conn freed under them: closing
 * only marks the conn, on_close and the free run from the deferred event.
 *
 * COMPRESS=DEFLATE sits between the protocol and the bufferevent (so above
 * TLS): writes are deflated straight into the bufferevent's output and
 * flushed from the deferred event, input is inflated on demand from the
 * bufferevent's input into a bounded buffer of plain bytes. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <zlib.h>

#include "lib/log.h"
#include "lib/net-private.h"
#include "lib/xmalloc.h"

enum conn_state {
	CONN_STATE_HANDSHAKE,     /* TLS handshake (implicit or STARTTLS) */
	CONN_STATE_OPEN,
	CONN_STATE_STARTTLS_WAIT, /* flushing the go-ahead, discarding input */
	CONN_STATE_CLOSING,       /* flushing the last output */
	CONN_STATE_DEAD,          /* on_close and free are scheduled */
};

/* Work for the deferred event (run by the loop, outside any callback). */
#define CONN_DEFER_INPUT    0x1
#define CONN_DEFER_STARTTLS 0x2
#define CONN_DEFER_FINISH   0x4
#define CONN_DEFER_FLUSH    0x8 /* end the deflate block: a sync flush */

/* Plain bytes inflated per pass of the loop: a decompression bomb costs
 * one bounded slice of CPU at a time, as a fast sender does. */
#define CONN_INFLATE_BUDGET (1024 * 1024)
#define CONN_ZCHUNK (16 * 1024)

/* RFC 4978 on this connection: raw DEFLATE (RFC 1951) both ways. */
struct conn_deflate {
	z_stream in, out;
	struct evbuffer *plain_in; /* inflated, not read by the protocol yet */
	size_t unflushed;          /* plain bytes deflated since the last flush */
	size_t budget;             /* plain bytes this pass may still inflate */
	uint64_t plain_in_bytes, plain_out_bytes;
};

struct conn {
	struct conn *prev, *next;   /* every conn of this process */
	struct event_base *base;
	struct bufferevent *bev;
	bool bev_owns_fd;           /* OpenSSL bufferevents close the fd */
	int fd;

	char id[9];
	char remote_ip[INET6_ADDRSTRLEN];
	char local_ip[INET6_ADDRSTRLEN];
	uint16_t remote_port, local_port;
	struct in6_addr limit_ip;

	const struct config_listener *listener;
	const struct yubin_config *config;
	const struct protocol *protocol;
	struct tls_server *tls;
	struct connlimit *limits;
	unsigned limit_slot;
	bool limit_tracked;

	struct conn_callbacks cb;
	void *ctx;

	struct event *defer, *idle_timer, *timer;
	unsigned defer_flags;
	uint64_t idle_ms;
	void (*timer_cb)(struct conn *conn, void *ctx);

	size_t max_line;
	char *line;                 /* the last line returned */
	size_t line_cap;
	bool skip_to_lf;            /* rest of an over-long line */

	enum conn_state state;
	bool started;               /* protocol start() was called */
	bool is_tls, paused, peer_eof, flushed;
	const char *reason;         /* why it closed (static) */
	char error[128];            /* the I/O or TLS error, if any */
	char tls_desc[96];

	uint64_t in_bytes, out_bytes;   /* on the wire, below TLS */
	struct timespec opened;
	struct conn_deflate *zs;        /* COMPRESS=DEFLATE, or NULL */
};

static struct conn *conn_list;
static unsigned conn_live;
static void (*conn_empty_cb)(void *ctx);
static void *conn_empty_ctx;
static uint32_t conn_id_serial, conn_id_random, conn_id_counter;

static void conn_setup_tls(struct conn *conn);
static void conn_deflate_free(struct conn *conn);
static void conn_deflate_flush(struct conn *conn);
static bool conn_inflate(struct conn *conn);
static bool conn_inflate_pending(const struct conn *conn);

/* ---- bookkeeping ---- */

void conn_set_id_base(uint32_t worker_serial, uint32_t run_random)
{
	conn_id_serial = worker_serial;
	conn_id_random = run_random;
	conn_id_counter = 0;
}

unsigned conn_count(void)
{
	return conn_live;
}

void conn_set_empty_callback(void (*cb)(void *ctx), void *ctx)
{
	conn_empty_cb = cb;
	conn_empty_ctx = ctx;
}

static void conn_make_id(struct conn *conn)
{
	uint32_t id = ((conn_id_serial & 0xff) << 24) |
		      (conn_id_counter++ & 0xffffff);
	snprintf(conn->id, sizeof(conn->id), "%08x", id ^ conn_id_random);
}

static struct timeval ms_to_tv(uint64_t ms)
{
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000),
			      .tv_usec = (suseconds_t)((ms % 1000) * 1000) };
	return tv;
}

static void conn_defer(struct conn *conn, unsigned what)
{
	conn->defer_flags |= what;
	event_active(conn->defer, 0, 0);
}

/* The bytes the protocol reads: the plain side when compressing. */
static struct evbuffer *conn_input(const struct conn *conn)
{
	if (conn->zs != NULL)
		return conn->zs->plain_in;
	return bufferevent_get_input(conn->bev);
}

static struct evbuffer *conn_raw_input(const struct conn *conn)
{
	return bufferevent_get_input(conn->bev);
}

static struct evbuffer *conn_output(const struct conn *conn)
{
	return bufferevent_get_output(conn->bev);
}

/* ---- addresses ---- */

void net_sockaddr_format(const struct sockaddr_storage *ss, char *ip,
			 size_t ipsize, uint16_t *port_r)
{
	const struct sockaddr_in6 *sin6 = (const void *)ss;
	const struct sockaddr_in *sin = (const void *)ss;
	*port_r = 0;
	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &sin->sin_addr, ip, (socklen_t)ipsize);
		*port_r = ntohs(sin->sin_port);
	} else if (ss->ss_family == AF_INET6 &&
		   IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		/* Dual-stack listeners: show IPv4 clients as IPv4. */
		inet_ntop(AF_INET, sin6->sin6_addr.s6_addr + 12, ip, (socklen_t)ipsize);
		*port_r = ntohs(sin6->sin6_port);
	} else if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, (socklen_t)ipsize);
		*port_r = ntohs(sin6->sin6_port);
	} else {
		snprintf(ip, ipsize, "local");
	}
}

static void conn_fill_addresses(struct conn *conn)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (getpeername(conn->fd, (struct sockaddr *)&ss, &len) < 0)
		ss.ss_family = AF_UNSPEC;
	net_sockaddr_format(&ss, conn->remote_ip, sizeof(conn->remote_ip),
			&conn->remote_port);
	len = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (getsockname(conn->fd, (struct sockaddr *)&ss, &len) < 0)
		ss.ss_family = AF_UNSPEC;
	net_sockaddr_format(&ss, conn->local_ip, sizeof(conn->local_ip),
			&conn->local_port);
}

/* ---- closing and freeing ---- */

static void conn_log_disconnect(const struct conn *conn)
{
	struct timespec now;
	char zinfo[80] = "";
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (conn->zs != NULL)
		snprintf(zinfo, sizeof(zinfo), " plain_in=%llu plain_out=%llu",
			 (unsigned long long)conn->zs->plain_in_bytes,
			 (unsigned long long)conn->zs->plain_out_bytes);
	log_info("conn session=%s ip=%s port=%u listener=%s tls=%s "
		 "event=disconnect reason=%s in=%llu out=%llu%s secs=%lld%s%s%s",
		 conn->id, conn->remote_ip, conn->remote_port,
		 conn->listener->name, conn->is_tls ? "yes" : "no",
		 conn->reason != NULL ? conn->reason : "closed",
		 (unsigned long long)conn->in_bytes,
		 (unsigned long long)conn->out_bytes, zinfo,
		 (long long)(now.tv_sec - conn->opened.tv_sec),
		 conn->error[0] != '\0' ? " error=\"" : "", conn->error,
		 conn->error[0] != '\0' ? "\"" : "");
}

static void conn_free_bev(struct conn *conn)
{
	if (conn->bev == NULL)
		return;
	SSL *ssl = conn->bev_owns_fd ? bufferevent_openssl_get_ssl(conn->bev) : NULL;
	if (ssl != NULL && conn->flushed && conn->is_tls) {
		/* A polite close_notify; the peer's answer is not awaited. */
		SSL_shutdown(ssl);
		ERR_clear_error();
	}
	bufferevent_disable(conn->bev, EV_READ | EV_WRITE);
	bufferevent_setcb(conn->bev, NULL, NULL, NULL, NULL);
	bufferevent_free(conn->bev);
	conn->bev = NULL;
}

static void conn_free(struct conn *conn)
{
	if (conn->prev != NULL)
		conn->prev->next = conn->next;
	else
		conn_list = conn->next;
	if (conn->next != NULL)
		conn->next->prev = conn->prev;
	conn_live--;
	conn_log_disconnect(conn);

	bool close_fd = !conn->bev_owns_fd;
	conn_free_bev(conn);
	if (close_fd)
		close(conn->fd);
	event_free(conn->defer);
	event_free(conn->idle_timer);
	event_free(conn->timer);
	if (conn->limits != NULL)
		connlimit_release(conn->limits, conn->limit_slot,
				  &conn->limit_ip, conn->limit_tracked);
	tls_server_unref(&conn->tls);
	conn_deflate_free(conn);
	free(conn->line);
	free(conn);
	if (conn_live == 0 && conn_empty_cb != NULL)
		conn_empty_cb(conn_empty_ctx);
}

/* Stops all I/O now; on_close and the free follow from the loop. */
static void conn_finish(struct conn *conn, const char *reason)
{
	if (conn->state == CONN_STATE_DEAD)
		return;
	if (conn->reason == NULL)
		conn->reason = reason;
	conn->state = CONN_STATE_DEAD;
	bufferevent_disable(conn->bev, EV_READ | EV_WRITE);
	evtimer_del(conn->idle_timer);
	evtimer_del(conn->timer);
	conn_defer(conn, CONN_DEFER_FINISH);
}

static void conn_close_reason(struct conn *conn, const char *reason)
{
	if (conn->state == CONN_STATE_CLOSING || conn->state == CONN_STATE_DEAD)
		return;
	if (conn->state == CONN_STATE_HANDSHAKE) {
		conn_finish(conn, reason);
		return;
	}
	if (conn->reason == NULL)
		conn->reason = reason;
	conn->state = CONN_STATE_CLOSING;
	/* Keep reading (and discarding): closing a socket with unread input
	 * sends a reset that can destroy our last reply in flight. */
	bufferevent_enable(conn->bev, EV_READ);
	evbuffer_drain(conn_input(conn), evbuffer_get_length(conn_input(conn)));
	evbuffer_drain(conn_raw_input(conn), evbuffer_get_length(conn_raw_input(conn)));
	evtimer_del(conn->timer);
	struct timeval tv = ms_to_tv(CONN_CLOSE_FLUSH_MS);
	evtimer_add(conn->idle_timer, &tv);
	bufferevent_setwatermark(conn->bev, EV_WRITE, 0, 0);
	conn_deflate_flush(conn);
	if (evbuffer_get_length(conn_output(conn)) == 0) {
		conn->flushed = true;
		conn_finish(conn, reason);
	}
}

void conn_close(struct conn *conn)
{
	conn_close_reason(conn, "server-close");
}

bool conn_is_closing(const struct conn *conn)
{
	return conn->state == CONN_STATE_CLOSING || conn->state == CONN_STATE_DEAD;
}

/* ---- input ---- */

static void conn_check_eof(struct conn *conn)
{
	/* Compressed input left for the next pass is still to be read. */
	if (conn->peer_eof && conn->state == CONN_STATE_OPEN && !conn->paused &&
	    !conn_inflate_pending(conn))
		conn_close_reason(conn, "peer-closed");
}

static void conn_deliver_input(struct conn *conn)
{
	if (conn->state != CONN_STATE_OPEN || conn->paused)
		return;
	if (conn->zs != NULL)
		conn->zs->budget = CONN_INFLATE_BUDGET;
	if (conn->cb.on_input != NULL)
		conn->cb.on_input(conn, conn->ctx);
	conn_check_eof(conn);
}

static void conn_idle_reset(struct conn *conn)
{
	if (conn->state != CONN_STATE_OPEN)
		return;
	if (conn->idle_ms == 0) {
		evtimer_del(conn->idle_timer);
		return;
	}
	struct timeval tv = ms_to_tv(conn->idle_ms);
	evtimer_add(conn->idle_timer, &tv);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *conn = arg;
	if (conn->state != CONN_STATE_OPEN) {
		/* STARTTLS wait, closing: nothing read now is ever parsed. */
		struct evbuffer *in = bufferevent_get_input(bev);
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	conn_idle_reset(conn);
	conn_deliver_input(conn);
}

static size_t conn_search_lf(struct evbuffer *in, size_t limit)
{
	struct evbuffer_ptr end, found;
	size_t len = evbuffer_get_length(in);
	if (limit > len)
		limit = len;
	if (evbuffer_ptr_set(in, &end, limit, EVBUFFER_PTR_SET) < 0)
		return (size_t)-1;
	found = evbuffer_search_range(in, "\n", 1, NULL, &end);
	return found.pos < 0 ? (size_t)-1 : (size_t)found.pos;
}

/* Drops the rest of an over-long line; true when its LF was seen. */
static bool conn_skip_line(struct conn *conn, struct evbuffer *in)
{
	size_t pos = conn_search_lf(in, evbuffer_get_length(in));
	if (pos == (size_t)-1) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return false;
	}
	evbuffer_drain(in, pos + 1);
	conn->skip_to_lf = false;
	return true;
}

static int conn_take_line(struct conn *conn, struct evbuffer *in, size_t pos,
			  char **line_r, size_t *len_r)
{
	if (conn->line_cap < pos + 1) {
		conn->line_cap = pos + 1 > conn->max_line + 3 ? pos + 1 : conn->max_line + 3;
		conn->line = xrealloc(conn->line, conn->line_cap);
	}
	evbuffer_remove(in, conn->line, pos + 1);
	size_t len = pos;
	if (len > 0 && conn->line[len - 1] == '\r')
		len--;
	if (len > conn->max_line)
		return -1;
	conn->line[len] = '\0';
	*line_r = conn->line;
	*len_r = len;
	return 1;
}

static int conn_read_line_once(struct conn *conn, char **line_r, size_t *len_r)
{
	struct evbuffer *in = conn_input(conn);
	if (conn->skip_to_lf && !conn_skip_line(conn, in))
		return 0;
	size_t limit = conn->max_line + 2; /* the line, CR and LF */
	size_t pos = conn_search_lf(in, limit);
	if (pos != (size_t)-1)
		return conn_take_line(conn, in, pos, line_r, len_r);
	if (evbuffer_get_length(in) < limit)
		return 0;
	/* Too long: drop it through its LF if buffered, else all of it and
	 * the rest when it comes. Lines after it are kept. */
	conn->skip_to_lf = true;
	conn_skip_line(conn, in);
	return -1;
}

int conn_read_line(struct conn *conn, char **line_r, size_t *len_r)
{
	int ret = 0;
	/* Compressed: inflate more while a line is incomplete (bounded by the
	 * read limit per step and the budget per pass). */
	while (conn->state == CONN_STATE_OPEN) {
		ret = conn_read_line_once(conn, line_r, len_r);
		if (ret != 0 || !conn_inflate(conn))
			break;
	}
	return conn->state == CONN_STATE_OPEN ? ret : 0;
}

size_t conn_read(struct conn *conn, void *data, size_t max)
{
	if (conn->state != CONN_STATE_OPEN)
		return 0;
	if (evbuffer_get_length(conn_input(conn)) == 0 && !conn_inflate(conn))
		return 0;
	int n = evbuffer_remove(conn_input(conn), data, max);
	return n < 0 ? 0 : (size_t)n;
}

size_t conn_input_size(const struct conn *conn)
{
	if (conn->state != CONN_STATE_OPEN)
		return 0;
	size_t n = evbuffer_get_length(conn_input(conn));
	if (conn->zs != NULL)
		n += evbuffer_get_length(conn_raw_input(conn));
	return n;
}

static size_t conn_read_limit(const struct conn *conn)
{
	size_t high = CONN_INPUT_HIGH_WATER;
	if (conn->max_line + 2 > high)
		high = conn->max_line + 2;
	return high;
}

static void conn_set_read_watermark(struct conn *conn)
{
	bufferevent_setwatermark(conn->bev, EV_READ, 0, conn_read_limit(conn));
}

void conn_set_max_line(struct conn *conn, size_t max)
{
	conn->max_line = max;
	if (conn->bev != NULL)
		conn_set_read_watermark(conn);
}

/* Pausing stops handing input to the protocol, not reading the socket: a
 * TLS write may need a read to make progress, and a peer that goes away
 * must be noticed at once (the read watermark still bounds what is kept). */
void conn_pause_input(struct conn *conn)
{
	conn->paused = true;
}

void conn_resume_input(struct conn *conn)
{
	if (!conn->paused)
		return;
	conn->paused = false;
	if (conn->state != CONN_STATE_OPEN)
		return;
	if (!conn->peer_eof)
		bufferevent_enable(conn->bev, EV_READ);
	if (conn_input_size(conn) > 0 || conn->peer_eof)
		conn_defer(conn, CONN_DEFER_INPUT);
}

/* ---- output ---- */

static bool conn_writable(const struct conn *conn)
{
	return conn->state == CONN_STATE_OPEN ||
	       conn->state == CONN_STATE_HANDSHAKE;
}

static void conn_check_output(struct conn *conn)
{
	if (conn_output_size(conn) <= CONN_OUTPUT_HARD_MAX)
		return;
	log_warn("conn session=%s output over %d bytes: closing", conn->id,
		 CONN_OUTPUT_HARD_MAX);
	conn_finish(conn, "output-overflow");
}

static void conn_deflate_write(struct conn *conn, const void *data, size_t len);

void conn_write(struct conn *conn, const void *data, size_t len)
{
	if (!conn_writable(conn) || len == 0)
		return;
	if (conn->zs != NULL)
		conn_deflate_write(conn, data, len);
	else
		evbuffer_add(conn_output(conn), data, len);
	conn_check_output(conn);
}

void conn_write_str(struct conn *conn, const char *s)
{
	conn_write(conn, s, strlen(s));
}

void conn_printf(struct conn *conn, const char *fmt, ...)
{
	if (!conn_writable(conn))
		return;
	va_list ap;
	va_start(ap, fmt);
	if (conn->zs != NULL) {
		char *text = xvasprintf(fmt, ap);
		conn_deflate_write(conn, text, strlen(text));
		free(text);
	} else {
		evbuffer_add_vprintf(conn_output(conn), fmt, ap);
	}
	va_end(ap);
	conn_check_output(conn);
}

/* Compressed: plain bytes not flushed yet count too, so a protocol that
 * streams stops after CONN_OUTPUT_HIGH_WATER of them per turn whatever
 * they compress to. */
size_t conn_output_size(const struct conn *conn)
{
	if (conn->bev == NULL)
		return 0;
	size_t n = evbuffer_get_length(conn_output(conn));
	if (conn->zs != NULL)
		n += conn->zs->unflushed;
	return n;
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *conn = arg;
	bool empty = evbuffer_get_length(bufferevent_get_output(bev)) == 0;
	switch (conn->state) {
	case CONN_STATE_CLOSING:
		if (empty) {
			conn->flushed = true;
			conn_finish(conn, NULL);
		}
		return;
	case CONN_STATE_STARTTLS_WAIT:
		if (empty)
			conn_defer(conn, CONN_DEFER_STARTTLS);
		return;
	case CONN_STATE_OPEN:
		/* Output moving is activity: a slow download is not idle. */
		conn_idle_reset(conn);
		if (conn->cb.on_drain != NULL)
			conn->cb.on_drain(conn, conn->ctx);
		return;
	default:
		return;
	}
}

static void conn_count_cb(struct evbuffer *buf,
			  const struct evbuffer_cb_info *info, void *arg)
{
	uint64_t *counter = arg;
	*counter += info->n_added;
}

static void conn_count_out_cb(struct evbuffer *buf,
			      const struct evbuffer_cb_info *info, void *arg)
{
	uint64_t *counter = arg;
	*counter += info->n_deleted;
}

/* ---- TLS ---- */

bool conn_is_tls(const struct conn *conn)
{
	return conn->is_tls;
}

const char *conn_tls_description(const struct conn *conn)
{
	return conn->is_tls ? conn->tls_desc : NULL;
}

bool conn_starttls_available(const struct conn *conn)
{
	/* Never under compression: TLS belongs below it (RFC 4978 3). */
	return conn->listener->tls == TLS_MODE_STARTTLS && !conn->is_tls &&
	       conn->zs == NULL &&
	       conn->tls != NULL && conn->state == CONN_STATE_OPEN;
}

int conn_starttls(struct conn *conn)
{
	if (!conn_starttls_available(conn))
		return -1;
	conn->state = CONN_STATE_STARTTLS_WAIT;
	conn->skip_to_lf = false;
	/* CVE-2011-0411: what the client pipelined after the command goes. */
	evbuffer_drain(conn_input(conn), evbuffer_get_length(conn_input(conn)));
	bufferevent_enable(conn->bev, EV_READ);
	bufferevent_setwatermark(conn->bev, EV_WRITE, 0, 0);
	if (evbuffer_get_length(conn_output(conn)) == 0)
		conn_defer(conn, CONN_DEFER_STARTTLS);
	return 0;
}

static void conn_starttls_switch(struct conn *conn)
{
	if (conn->state != CONN_STATE_STARTTLS_WAIT)
		return;
	/* The plain bufferevent goes with whatever it buffered; the fd
	 * stays open and the new bufferevent starts with nothing. */
	conn_free_bev(conn);
	conn_setup_tls(conn);
}

static void conn_tls_ready(struct conn *conn)
{
	SSL *ssl = bufferevent_openssl_get_ssl(conn->bev);
	conn->is_tls = true;
	conn->state = CONN_STATE_OPEN;
	snprintf(conn->tls_desc, sizeof(conn->tls_desc), "%s %s",
		 SSL_get_version(ssl), SSL_get_cipher_name(ssl));
	log_debug("conn session=%s tls=%s", conn->id, conn->tls_desc);
	evtimer_del(conn->idle_timer);
	conn_idle_reset(conn);
	if (!conn->started) {
		conn->started = true;
		conn->protocol->start(conn);
		return;
	}
	/* After STARTTLS the client speaks first: let the protocol look. */
	if (conn->cb.on_input != NULL && !conn->paused)
		conn->cb.on_input(conn, conn->ctx);
}

static const char *conn_tls_error(struct conn *conn, char *out, size_t outsize)
{
	unsigned long code = bufferevent_get_openssl_error(conn->bev);
	if (code == 0) {
		int err = EVUTIL_SOCKET_ERROR();
		snprintf(out, outsize, "%s", err != 0 ? strerror(err) : "eof");
	} else {
		ERR_error_string_n(code, out, outsize);
	}
	while (bufferevent_get_openssl_error(conn->bev) != 0)
		;
	return out;
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *conn = arg;
	if ((what & BEV_EVENT_CONNECTED) != 0) {
		conn_tls_ready(conn);
		return;
	}
	if (conn->state == CONN_STATE_HANDSHAKE) {
		conn_tls_error(conn, conn->error, sizeof(conn->error));
		conn_finish(conn, "tls-handshake-failed");
		return;
	}
	if ((what & BEV_EVENT_ERROR) != 0) {
		conn_tls_error(conn, conn->error, sizeof(conn->error));
		conn_finish(conn, "io-error");
		return;
	}
	if ((what & BEV_EVENT_EOF) == 0)
		return;
	conn->peer_eof = true;
	/* libevent's TLS bufferevent stops writing as well after EOF: nothing
	 * more can be sent, so a paused (streaming) session must end now. A
	 * plaintext half-close still gets the replies to what it sent. */
	if (conn->is_tls && conn->state == CONN_STATE_OPEN && conn->paused)
		conn_finish(conn, "peer-closed");
	else if (conn->state == CONN_STATE_OPEN)
		conn_deliver_input(conn);
	else if (conn->state != CONN_STATE_CLOSING)
		conn_finish(conn, "peer-closed");
	/* Closing: a half-closed peer may still read our last reply. */
}

/* ---- timers ---- */

static void conn_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *conn = arg;
	switch (conn->state) {
	case CONN_STATE_HANDSHAKE:
		log_info("conn session=%s ip=%s tls handshake timed out", conn->id,
			 conn->remote_ip);
		conn_finish(conn, "tls-handshake-timeout");
		return;
	case CONN_STATE_OPEN:
		conn->reason = "idle-timeout";
		if (conn->cb.on_timeout != NULL)
			conn->cb.on_timeout(conn, conn->ctx);
		conn_close_reason(conn, "idle-timeout");
		return;
	case CONN_STATE_STARTTLS_WAIT:
		conn_finish(conn, "idle-timeout");
		return;
	default:
		conn_finish(conn, "flush-timeout");
		return;
	}
}

void conn_set_idle_timeout(struct conn *conn, uint64_t ms)
{
	conn->idle_ms = ms;
	conn_idle_reset(conn);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *conn = arg;
	void (*cb)(struct conn *conn, void *ctx) = conn->timer_cb;
	conn->timer_cb = NULL;
	if (cb != NULL && conn->state != CONN_STATE_DEAD &&
	    conn->state != CONN_STATE_CLOSING)
		cb(conn, conn->ctx);
}

void conn_set_timer(struct conn *conn, uint64_t ms,
		    void (*cb)(struct conn *conn, void *ctx))
{
	if (conn_is_closing(conn))
		return;
	conn->timer_cb = cb;
	struct timeval tv = ms_to_tv(ms);
	evtimer_add(conn->timer, &tv);
}

void conn_cancel_timer(struct conn *conn)
{
	conn->timer_cb = NULL;
	evtimer_del(conn->timer);
}

/* ---- the deferred event ---- */

static void conn_defer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *conn = arg;
	unsigned flags = conn->defer_flags;
	conn->defer_flags = 0;
	if ((flags & CONN_DEFER_FINISH) != 0) {
		if (conn->started && conn->cb.on_close != NULL) {
			void (*on_close)(struct conn *, void *) = conn->cb.on_close;
			conn->cb.on_close = NULL;
			on_close(conn, conn->ctx);
		}
		conn_free(conn);
		return;
	}
	if ((flags & CONN_DEFER_STARTTLS) != 0)
		conn_starttls_switch(conn);
	if ((flags & CONN_DEFER_INPUT) != 0)
		conn_deliver_input(conn);
	if ((flags & CONN_DEFER_FLUSH) != 0)
		conn_deflate_flush(conn);
}

/* ---- COMPRESS=DEFLATE (RFC 4978) ---- */

static voidpf conn_zalloc(voidpf opaque, uInt items, uInt size)
{
	return xcalloc(items, size);
}

static void conn_zfree(voidpf opaque, voidpf ptr)
{
	free(ptr);
}

static void conn_deflate_free(struct conn *conn)
{
	struct conn_deflate *zs = conn->zs;
	if (zs == NULL)
		return;
	deflateEnd(&zs->out);
	inflateEnd(&zs->in);
	evbuffer_free(zs->plain_in);
	free(zs);
	conn->zs = NULL;
}

/* Deflates into the bufferevent's output until zlib has taken all the
 * input and, for a flush, emitted everything. */
static void conn_deflate_run(struct conn *conn, const void *data, size_t len,
			     int flush)
{
	z_stream *z = &conn->zs->out;
	struct evbuffer *out = conn_output(conn);
	z->next_in = (Bytef *)data;
	z->avail_in = (uInt)len;
	do {
		struct evbuffer_iovec vec;
		if (evbuffer_reserve_space(out, CONN_ZCHUNK, &vec, 1) < 1)
			fatal("conn session=%s cannot grow the output buffer", conn->id);
		z->next_out = vec.iov_base;
		z->avail_out = (uInt)vec.iov_len;
		int ret = deflate(z, flush);
		if (ret == Z_STREAM_ERROR)
			fatal("conn session=%s deflate state broken", conn->id);
		vec.iov_len -= z->avail_out;
		evbuffer_commit_space(out, &vec, vec.iov_len > 0 ? 1 : 0);
	} while (z->avail_out == 0 || z->avail_in > 0);
}

static void conn_deflate_write(struct conn *conn, const void *data, size_t len)
{
	struct conn_deflate *zs = conn->zs;
	const char *p = data;
	zs->plain_out_bytes += len;
	/* Flushed once per pass of the loop, not per write: replies written
	 * together share a block, and nothing waits past this pass. */
	if (zs->unflushed == 0)
		conn_defer(conn, CONN_DEFER_FLUSH);
	zs->unflushed += len;
	while (len > 0) {
		size_t n = len > UINT_MAX ? UINT_MAX : len;
		conn_deflate_run(conn, p, n, Z_NO_FLUSH);
		p += n;
		len -= n;
	}
}

static void conn_deflate_flush(struct conn *conn)
{
	if (conn->zs == NULL || conn->zs->unflushed == 0 ||
	    conn->state == CONN_STATE_DEAD)
		return;
	conn_deflate_run(conn, "", 0, Z_SYNC_FLUSH);
	conn->zs->unflushed = 0;
}

static void conn_inflate_error(struct conn *conn, const char *msg)
{
	snprintf(conn->error, sizeof(conn->error), "inflate: %s",
		 msg != NULL ? msg : "invalid data");
	log_info("conn session=%s ip=%s compressed input is invalid: %s",
		 conn->id, conn->remote_ip, conn->error);
	conn_finish(conn, "deflate-error");
}

/* One inflate call from the first chunk of the raw input into at most room
 * plain bytes (*made_r). Returns 1 after progress, 0 when zlib needs more
 * input, -1 on a corrupt stream (the connection is finished). */
static int conn_inflate_step(struct conn *conn, size_t room, size_t *made_r)
{
	struct conn_deflate *zs = conn->zs;
	struct evbuffer *raw = conn_raw_input(conn);
	struct evbuffer_iovec src, dst;
	*made_r = 0;
	if (evbuffer_peek(raw, -1, NULL, &src, 1) < 1 ||
	    evbuffer_reserve_space(zs->plain_in, room, &dst, 1) < 1)
		return 0;
	zs->in.next_in = src.iov_base;
	zs->in.avail_in = src.iov_len > UINT_MAX ? UINT_MAX : (uInt)src.iov_len;
	size_t offered = zs->in.avail_in;
	zs->in.next_out = dst.iov_base;
	zs->in.avail_out = (uInt)room;
	int ret = inflate(&zs->in, Z_SYNC_FLUSH);
	dst.iov_len = room - zs->in.avail_out;
	evbuffer_commit_space(zs->plain_in, &dst, dst.iov_len > 0 ? 1 : 0);
	evbuffer_drain(raw, offered - zs->in.avail_in);
	if (ret == Z_STREAM_END) {
		/* The client ended its stream; a new one may follow. */
		inflateReset(&zs->in);
	} else if (ret != Z_OK && ret != Z_BUF_ERROR) {
		conn_inflate_error(conn, zs->in.msg);
		return -1;
	}
	zs->plain_in_bytes += dst.iov_len;
	*made_r = dst.iov_len;
	return offered == zs->in.avail_in && dst.iov_len == 0 ? 0 : 1;
}

/* Inflates buffered compressed input while the plain buffer is below the
 * read limit and this pass's budget lasts. Returns true when plain bytes
 * were added. What the budget leaves is taken up by a later pass. */
static bool conn_inflate(struct conn *conn)
{
	struct conn_deflate *zs = conn->zs;
	bool added = false;
	if (zs == NULL || conn->state != CONN_STATE_OPEN)
		return false;
	size_t limit = conn_read_limit(conn);
	while (evbuffer_get_length(conn_raw_input(conn)) > 0) {
		size_t have = evbuffer_get_length(zs->plain_in);
		size_t room = limit > have ? limit - have : 0;
		if (room > zs->budget)
			room = zs->budget;
		if (room > CONN_ZCHUNK)
			room = CONN_ZCHUNK;
		if (room == 0)
			break;
		size_t made;
		int ret = conn_inflate_step(conn, room, &made);
		if (ret < 0)
			return false;
		zs->budget -= made;
		added = added || made > 0;
		if (ret == 0)
			break;
	}
	if (zs->budget == 0 && evbuffer_get_length(conn_raw_input(conn)) > 0)
		conn_defer(conn, CONN_DEFER_INPUT);
	return added;
}

/* Compressed input waits for a later pass (the budget ran out). */
static bool conn_inflate_pending(const struct conn *conn)
{
	return conn->zs != NULL && conn->zs->budget == 0 &&
	       evbuffer_get_length(conn_raw_input(conn)) > 0;
}

bool conn_is_compressed(const struct conn *conn)
{
	return conn->zs != NULL;
}

void conn_unread(struct conn *conn, const void *data, size_t len)
{
	if (len == 0 || conn->state != CONN_STATE_OPEN)
		return;
	evbuffer_prepend(conn_input(conn), data, len);
	if (conn->zs == NULL)
		conn->in_bytes -= len; /* counted once already */
}

int conn_start_deflate(struct conn *conn, const char **error_r)
{
	if (conn->zs != NULL) {
		*error_r = "compression is already active";
		return -1;
	}
	if (conn->state != CONN_STATE_OPEN) {
		*error_r = "the connection is closing";
		return -1;
	}
	struct conn_deflate *zs = xcalloc(1, sizeof(*zs));
	zs->out.zalloc = zs->in.zalloc = conn_zalloc;
	zs->out.zfree = zs->in.zfree = conn_zfree;
	/* Dovecot's choice: level 6, a 32 KB window, raw (no zlib header). */
	if (deflateInit2(&zs->out, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK ||
	    inflateInit2(&zs->in, -15) != Z_OK)
		fatal("conn session=%s cannot set up zlib", conn->id);
	zs->plain_in = evbuffer_new();
	if (zs->plain_in == NULL)
		fatal("conn session=%s cannot allocate a buffer", conn->id);
	zs->budget = CONN_INFLATE_BUDGET;
	conn->zs = zs;
	log_debug("conn session=%s compression=deflate", conn->id);
	/* Bytes that came after the command are compressed already. */
	if (evbuffer_get_length(conn_raw_input(conn)) > 0)
		conn_defer(conn, CONN_DEFER_INPUT);
	return 0;
}

/* ---- creation ---- */

static void conn_bev_init(struct conn *conn)
{
	bufferevent_setcb(conn->bev, conn_read_cb, conn_write_cb, conn_event_cb,
			  conn);
	conn_set_read_watermark(conn);
	bufferevent_setwatermark(conn->bev, EV_WRITE, CONN_OUTPUT_HIGH_WATER / 2, 0);
	evbuffer_add_cb(conn_input(conn), conn_count_cb, &conn->in_bytes);
	evbuffer_add_cb(conn_output(conn), conn_count_out_cb, &conn->out_bytes);
	bufferevent_enable(conn->bev, EV_READ | EV_WRITE);
}

static void conn_setup_tls(struct conn *conn)
{
	SSL *ssl = SSL_new(tls_server_ctx(conn->tls));
	conn->state = CONN_STATE_HANDSHAKE;
	conn->bev = ssl == NULL ? NULL :
		bufferevent_openssl_socket_new(conn->base, conn->fd, ssl,
					       BUFFEREVENT_SSL_ACCEPTING,
					       BEV_OPT_CLOSE_ON_FREE);
	if (conn->bev == NULL)
		fatal("conn session=%s cannot create a TLS bufferevent", conn->id);
	conn->bev_owns_fd = true;
	bufferevent_openssl_set_allow_dirty_shutdown(conn->bev, 1);
	conn_bev_init(conn);
	struct timeval tv = ms_to_tv(CONN_TLS_HANDSHAKE_MS);
	evtimer_add(conn->idle_timer, &tv);
}

static void conn_setup_plain(struct conn *conn)
{
	/* Not CLOSE_ON_FREE: STARTTLS replaces the bufferevent on this fd. */
	conn->bev = bufferevent_socket_new(conn->base, conn->fd, 0);
	if (conn->bev == NULL)
		fatal("conn session=%s cannot create a bufferevent", conn->id);
	conn_bev_init(conn);
	conn->state = CONN_STATE_OPEN;
}

static void conn_link(struct conn *conn)
{
	conn->next = conn_list;
	if (conn_list != NULL)
		conn_list->prev = conn;
	conn_list = conn;
	conn_live++;
}

static struct conn *conn_alloc(const struct conn_params *params)
{
	struct conn *conn = xcalloc(1, sizeof(*conn));
	conn->base = params->base;
	conn->fd = params->fd;
	conn->listener = params->listener;
	conn->config = params->config;
	conn->protocol = params->protocol;
	conn->tls = params->tls != NULL ? tls_server_ref(params->tls) : NULL;
	conn->limits = params->limits;
	conn->limit_slot = params->limit_slot;
	conn->limit_tracked = params->limit_tracked;
	conn->max_line = CONN_DEFAULT_MAX_LINE;
	clock_gettime(CLOCK_MONOTONIC, &conn->opened);
	conn_make_id(conn);
	conn_fill_addresses(conn);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (getpeername(conn->fd, (struct sockaddr *)&ss, &len) == 0)
		connlimit_addr_from_sockaddr((struct sockaddr *)&ss, &conn->limit_ip);
	conn->defer = event_new(conn->base, -1, 0, conn_defer_cb, conn);
	conn->idle_timer = evtimer_new(conn->base, conn_idle_cb, conn);
	conn->timer = evtimer_new(conn->base, conn_timer_cb, conn);
	return conn;
}

struct conn *conn_create(const struct conn_params *params)
{
	struct conn *conn = conn_alloc(params);
	bool implicit = conn->listener->tls == TLS_MODE_IMPLICIT;
	conn_link(conn);
	log_info("conn session=%s ip=%s port=%u listener=%s tls=%s event=connect",
		 conn->id, conn->remote_ip, conn->remote_port,
		 conn->listener->name, implicit ? "yes" : "no");
	if (implicit && conn->tls != NULL) {
		conn_setup_tls(conn);
		return conn;
	}
	conn_setup_plain(conn);
	if (implicit) {
		log_error("conn session=%s listener=%s has no TLS context",
			  conn->id, conn->listener->name);
		conn_finish(conn, "no-tls");
		return conn;
	}
	conn->started = true;
	conn->protocol->start(conn);
	return conn;
}

/* ---- accessors ---- */

void conn_set_callbacks(struct conn *conn, const struct conn_callbacks *cb,
			void *ctx)
{
	conn->cb = *cb;
	conn->ctx = ctx;
}

const char *conn_id(const struct conn *conn)
{
	return conn->id;
}

const char *conn_remote_ip(const struct conn *conn)
{
	return conn->remote_ip;
}

uint16_t conn_remote_port(const struct conn *conn)
{
	return conn->remote_port;
}

const char *conn_local_ip(const struct conn *conn)
{
	return conn->local_ip;
}

uint16_t conn_local_port(const struct conn *conn)
{
	return conn->local_port;
}

const struct config_listener *conn_listener(const struct conn *conn)
{
	return conn->listener;
}

const struct yubin_config *conn_config(const struct conn *conn)
{
	return conn->config;
}

struct event_base *conn_event_base(const struct conn *conn)
{
	return conn->base;
}

/* ---- the whole process ---- */

void conn_shutdown_all(void)
{
	for (struct conn *conn = conn_list; conn != NULL; conn = conn->next) {
		if (conn->state == CONN_STATE_CLOSING || conn->state == CONN_STATE_DEAD)
			continue;
		if (!conn->started)
			conn_finish(conn, "shutdown");
		else if (conn->state == CONN_STATE_OPEN &&
			 conn->protocol->shutdown != NULL)
			conn->protocol->shutdown(conn, conn->ctx);
		else
			conn_close_reason(conn, "shutdown");
	}
}

void conn_abort_all(const char *reason)
{
	for (struct conn *conn = conn_list; conn != NULL; conn = conn->next)
		conn_finish(conn, reason);
}

/* The connection layer driven over socketpairs with a tiny line protocol:
 * line reading, back-pressure, STARTTLS (pipelined plaintext discarded),
 * implicit TLS, SNI, timers, closing from callbacks, COMPRESS=DEFLATE; and
 * the shared connection table. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <zlib.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/net-private.h"
#include "lib/xmalloc.h"
#include "test.h"

#define BIG_TOTAL (10 * 1024 * 1024)
#define BIG_CHUNK (16 * 1024)

static struct event_base *base;

/* What the echo protocol saw; reset by each test. */
static struct {
	struct conn *conn;
	struct buf lines;      /* "a|b|<too-long>|c" */
	size_t max_line;
	uint64_t idle_ms;
	int starts, closes, drains, timeouts, shutdowns;
	bool big;
	size_t big_sent, big_max_output;
	size_t max_input; /* the most conn_input_size() seen */
} st;

static void state_reset(void)
{
	buf_free(&st.lines);
	memset(&st, 0, sizeof(st));
	buf_init(&st.lines, 0);
}

static void record(const char *line, size_t len)
{
	if (st.lines.len > 0)
		buf_append_char(&st.lines, '|');
	for (size_t i = 0; i < len; i++)
		buf_append_char(&st.lines, line[i] == '\0' ? '@' : line[i]);
}

/* ---- the echo protocol ---- */

static void big_fill(struct conn *conn)
{
	static char chunk[BIG_CHUNK];
	if (!st.big)
		return;
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (char)('a' + i % 26);
	while (st.big_sent < BIG_TOTAL &&
	       conn_output_size(conn) < CONN_OUTPUT_HIGH_WATER) {
		conn_write(conn, chunk, sizeof(chunk));
		st.big_sent += sizeof(chunk);
		if (conn_output_size(conn) > st.big_max_output)
			st.big_max_output = conn_output_size(conn);
	}
}

static void resume_cb(struct conn *conn, void *ctx)
{
	conn_write_str(conn, "RESUMED\r\n");
	conn_resume_input(conn);
}

static void tick_cb(struct conn *conn, void *ctx)
{
	conn_write_str(conn, "TICK\r\n");
}

/* Returns false when the input loop must stop. */
static bool cmd_starttls(struct conn *conn)
{
	conn_write_str(conn, "OK begin TLS\r\n");
	CHECK_INT(conn_starttls(conn), 0);
	return false;
}

static bool cmd_close(struct conn *conn)
{
	conn_write_str(conn, "BYE\r\n");
	conn_close(conn);
	conn_close(conn);
	conn_write_str(conn, "IGNORED\r\n");
	return false;
}

static bool cmd_pause(struct conn *conn)
{
	conn_pause_input(conn);
	conn_set_timer(conn, 30, resume_cb);
	return false;
}

static bool cmd_timer(struct conn *conn)
{
	conn_set_timer(conn, 20, tick_cb);
	return true;
}

static bool cmd_deflate(struct conn *conn)
{
	const char *error;
	conn_write_str(conn, "OK deflate\r\n");
	CHECK_INT(conn_start_deflate(conn, &error), 0);
	CHECK(conn_is_compressed(conn));
	CHECK_INT(conn_start_deflate(conn, &error), -1);
	return true;
}

static bool cmd_big(struct conn *conn)
{
	st.big = true;
	big_fill(conn);
	return true;
}

/* Ignores back-pressure: the layer must cut the connection. */
static bool cmd_flood(struct conn *conn)
{
	static char chunk[1024 * 1024];
	for (int i = 0; i < 17 && !conn_is_closing(conn); i++)
		conn_write(conn, chunk, sizeof(chunk));
	CHECK(conn_is_closing(conn));
	return false;
}

static const struct {
	const char *name;
	bool (*run)(struct conn *conn);
} echo_cmds[] = {
	{ "FLOOD", cmd_flood },
	{ "STARTTLS", cmd_starttls },
	{ "CLOSE", cmd_close },
	{ "PAUSE", cmd_pause },
	{ "TIMER", cmd_timer },
	{ "BIG", cmd_big },
	{ "DEFLATE", cmd_deflate },
};

static bool echo_line(struct conn *conn, const char *line, size_t len)
{
	record(line, len);
	for (size_t i = 0; i < sizeof(echo_cmds) / sizeof(echo_cmds[0]); i++) {
		if (strcmp(line, echo_cmds[i].name) == 0)
			return echo_cmds[i].run(conn);
	}
	conn_printf(conn, "echo: %.*s\r\n", (int)len, line);
	return true;
}

static void echo_input(struct conn *conn, void *ctx)
{
	char *line;
	size_t len;
	int ret;
	while ((ret = conn_read_line(conn, &line, &len)) != 0) {
		if (conn_input_size(conn) > st.max_input)
			st.max_input = conn_input_size(conn);
		if (ret < 0) {
			record("<too-long>", 10);
			conn_write_str(conn, "ERR line too long\r\n");
			continue;
		}
		if (!echo_line(conn, line, len))
			break;
	}
}

static void echo_drain(struct conn *conn, void *ctx)
{
	st.drains++;
	big_fill(conn);
}

static void echo_timeout(struct conn *conn, void *ctx)
{
	st.timeouts++;
	conn_write_str(conn, "TIMEOUT\r\n");
}

static void echo_close(struct conn *conn, void *ctx)
{
	st.closes++;
	CHECK(ctx == &st);
	st.conn = NULL;
}

static const struct conn_callbacks echo_callbacks = {
	.on_input = echo_input,
	.on_drain = echo_drain,
	.on_timeout = echo_timeout,
	.on_close = echo_close,
};

static void echo_start(struct conn *conn)
{
	st.starts++;
	st.conn = conn;
	conn_set_callbacks(conn, &echo_callbacks, &st);
	if (st.max_line != 0)
		conn_set_max_line(conn, st.max_line);
	if (st.idle_ms != 0)
		conn_set_idle_timeout(conn, st.idle_ms);
	conn_write_str(conn, "HELLO\r\n");
}

static void echo_shutdown(struct conn *conn, void *ctx)
{
	st.shutdowns++;
	conn_write_str(conn, "SHUTDOWN\r\n");
	conn_close(conn);
}

static const struct protocol echo_protocol = {
	.name = "echo",
	.start = echo_start,
	.shutdown = echo_shutdown,
};

/* ---- driving the loop and the client side ---- */

static void run_for(int ms)
{
	struct timeval tv = { .tv_sec = 0, .tv_usec = ms * 1000 };
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

static struct config_listener listener_plain = {
	.name = "plain", .protocol = "echo", .address = "127.0.0.1", .tls = TLS_MODE_NONE
};
static struct config_listener listener_starttls = {
	.name = "starttls", .protocol = "echo", .address = "127.0.0.1", .tls = TLS_MODE_STARTTLS
};
static struct config_listener listener_implicit = {
	.name = "implicit", .protocol = "echo", .address = "127.0.0.1", .tls = TLS_MODE_IMPLICIT
};

/* Returns the client's end; the server end goes to a new conn. */
static int open_conn(struct config_listener *listener, struct tls_server *tls)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	struct conn_params params = {
		.base = base, .fd = sv[0], .listener = listener,
		.protocol = &echo_protocol, .tls = tls,
	};
	conn_create(&params);
	return sv[1];
}

static void client_send(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EAGAIN) {
			run_for(1);
			continue;
		}
		if (n <= 0)
			abort();
		p += n;
		len -= (size_t)n;
	}
	run_for(5);
}

static void client_send_str(int fd, const char *s)
{
	client_send(fd, s, strlen(s));
}

/* Reads into got until want appears or ms pass; returns 1 on EOF seen. */
static int client_read(int fd, struct buf *got, const char *want, int ms)
{
	char tmp[65536];
	for (int waited = 0; waited < ms; waited += 2) {
		run_for(2);
		ssize_t n;
		while ((n = read(fd, tmp, sizeof(tmp))) > 0)
			buf_append(got, tmp, (size_t)n);
		if (n == 0)
			return 1;
		if (want != NULL && strstr(buf_str(got), want) != NULL)
			return 0;
	}
	return 0;
}

/* ---- line reading ---- */

static void test_lines(void)
{
	state_reset();
	int fd = open_conn(&listener_plain, NULL);
	struct buf got = BUF_INIT(0);
	client_send_str(fd, "hello\r\nbare\n");
	client_send_str(fd, "he");
	client_send_str(fd, "llo2\r");
	client_send_str(fd, "\n");
	client_send(fd, "a\0b\r\n", 5);
	client_send_str(fd, "\r\n");
	client_read(fd, &got, "echo: a", 500);
	CHECK_STR(buf_str(&st.lines), "hello|bare|hello2|a@b|");
	CHECK(strstr(buf_str(&got), "HELLO\r\necho: hello\r\necho: bare\r\n") != NULL);
	CHECK_INT(st.starts, 1);
	close(fd);
	run_for(10);
	CHECK_INT(st.closes, 1);
	CHECK_INT(conn_count(), 0);
	buf_free(&got);
}

static void test_long_lines(void)
{
	static const struct {
		const char *input;
		const char *want;
	} cases[] = {
		{ "0123456789abcdef\r\n", "0123456789abcdef" },      /* exactly max */
		{ "0123456789abcdefg\r\nok\r\n", "<too-long>|ok" },  /* max + 1 */
		{ "0123456789abcdef\n", "0123456789abcdef" },
		{ "0123456789abcdefghijklmnopqrstuvwxyz", "<too-long>" },
		{ "0123456789abcdefghijklmnopqrstuvwxyz0123456789\r\nnext\r\n",
		  "<too-long>|next" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		state_reset();
		st.max_line = 16;
		int fd = open_conn(&listener_plain, NULL);
		client_send_str(fd, cases[i].input);
		run_for(10);
		CHECK_STR(buf_str(&st.lines), cases[i].want);
		close(fd);
		run_for(10);
	}
	/* The rest of an over-long line arrives later: skipped, one error. */
	state_reset();
	st.max_line = 16;
	int fd = open_conn(&listener_plain, NULL);
	client_send_str(fd, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	client_send_str(fd, "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy");
	client_send_str(fd, "zzz\r\nafter\r\n");
	CHECK_STR(buf_str(&st.lines), "<too-long>|after");
	close(fd);
	run_for(10);
	CHECK_INT(conn_count(), 0);
}

/* ---- output ---- */

static void test_backpressure(void)
{
	state_reset();
	int fd = open_conn(&listener_plain, NULL);
	client_send_str(fd, "BIG\r\n");
	size_t received = 0;
	bool pattern_ok = true;
	char tmp[65536];
	for (int rounds = 0; rounds < 20000 && received < BIG_TOTAL + 7; rounds++) {
		run_for(1);
		ssize_t n = read(fd, tmp, sizeof(tmp));
		for (ssize_t i = 0; i < n; i++) {
			size_t at = received + (size_t)i;
			if (at >= 7 && tmp[i] != (char)('a' + (at - 7) % BIG_CHUNK % 26))
				pattern_ok = false;
		}
		if (n > 0)
			received += (size_t)n;
	}
	CHECK_INT(received, BIG_TOTAL + 7); /* "HELLO\r\n" first */
	CHECK(pattern_ok);
	CHECK(st.drains > 0);
	CHECK(st.big_max_output <= CONN_OUTPUT_HIGH_WATER + BIG_CHUNK);
	close(fd);
	run_for(10);
	CHECK_INT(st.closes, 1);
}

static void test_output_cap(void)
{
	state_reset();
	int fd = open_conn(&listener_plain, NULL);
	client_send_str(fd, "FLOOD\r\n");
	run_for(10);
	CHECK_INT(st.closes, 1);
	CHECK_INT(conn_count(), 0);
	close(fd);
}

/* ---- closing ---- */

static void test_close_in_callback(void)
{
	state_reset();
	int fd = open_conn(&listener_plain, NULL);
	struct buf got = BUF_INIT(0);
	client_send_str(fd, "CLOSE\r\nAFTER\r\n");
	int eof = client_read(fd, &got, NULL, 200);
	CHECK_INT(eof, 1);
	CHECK_STR(buf_str(&got), "HELLO\r\nBYE\r\n");
	CHECK_STR(buf_str(&st.lines), "CLOSE");
	CHECK_INT(st.closes, 1);
	CHECK_INT(conn_count(), 0);
	close(fd);
	buf_free(&got);
}

static void test_peer_half_close(void)
{
	state_reset();
	int fd = open_conn(&listener_plain, NULL);
	struct buf got = BUF_INIT(0);
	client_send_str(fd, "PAUSE\r\nlast\r\n");
	shutdown(fd, SHUT_WR);
	int eof = client_read(fd, &got, NULL, 500);
	CHECK_INT(eof, 1);
	CHECK_STR(buf_str(&st.lines), "PAUSE|last");
	CHECK_STR(buf_str(&got), "HELLO\r\nRESUMED\r\necho: last\r\n");
	CHECK_INT(st.closes, 1);
	close(fd);
	buf_free(&got);
}


/* ---- COMPRESS=DEFLATE ---- */

/* The client's side of a compressed connection. */
struct zclient {
	z_stream out, in;
	struct buf plain; /* inflated replies */
	bool corrupt;
};

static void zc_init(struct zclient *zc)
{
	memset(zc, 0, sizeof(*zc));
	if (deflateInit2(&zc->out, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK ||
	    inflateInit2(&zc->in, -15) != Z_OK)
		abort();
	buf_init(&zc->plain, 0);
}

static void zc_free(struct zclient *zc)
{
	deflateEnd(&zc->out);
	inflateEnd(&zc->in);
	buf_free(&zc->plain);
}

static void zc_send(int fd, struct zclient *zc, const void *data, size_t len, int flush)
{
	static unsigned char tmp[65536];
	zc->out.next_in = (Bytef *)data;
	zc->out.avail_in = (uInt)len;
	do {
		zc->out.next_out = tmp;
		zc->out.avail_out = sizeof(tmp);
		deflate(&zc->out, flush);
		size_t n = sizeof(tmp) - zc->out.avail_out;
		if (n > 0)
			client_send(fd, tmp, n);
	} while (zc->out.avail_out == 0);
}

static void zc_send_str(int fd, struct zclient *zc, const char *s)
{
	zc_send(fd, zc, s, strlen(s), Z_SYNC_FLUSH);
}

static void zc_inflate(struct zclient *zc, const unsigned char *data, size_t len)
{
	static char tmp[65536];
	zc->in.next_in = (Bytef *)data;
	zc->in.avail_in = (uInt)len;
	do {
		zc->in.next_out = (Bytef *)tmp;
		zc->in.avail_out = sizeof(tmp);
		int ret = inflate(&zc->in, Z_SYNC_FLUSH);
		if (ret != Z_OK && ret != Z_BUF_ERROR) {
			zc->corrupt = true;
			return;
		}
		buf_append(&zc->plain, tmp, sizeof(tmp) - zc->in.avail_out);
	} while (zc->in.avail_out == 0);
}

/* Reads and inflates until want appears in the plain text or ms pass;
 * returns 1 on EOF. */
static int zc_read(int fd, struct zclient *zc, const char *want, int ms)
{
	unsigned char tmp[65536];
	for (int waited = 0; waited < ms; waited += 2) {
		run_for(2);
		ssize_t n;
		while ((n = read(fd, tmp, sizeof(tmp))) > 0)
			zc_inflate(zc, tmp, (size_t)n);
		if (n == 0)
			return 1;
		if (want != NULL && strstr(buf_str(&zc->plain), want) != NULL)
			return 0;
	}
	return 0;
}

/* Connects, switches to DEFLATE (pipelined: the first compressed bytes
 * follow the command in one write) and checks the uncompressed OK. */
static int zc_open(struct zclient *zc, const char *first)
{
	state_reset();
	int fd = open_conn(&listener_plain, NULL);
	struct buf got = BUF_INIT(0);
	zc_init(zc);
	client_read(fd, &got, "HELLO\r\n", 200);
	/* The command and compressed bytes in one segment. */
	z_stream *z = &zc->out;
	unsigned char tmp[4096];
	memcpy(tmp, "DEFLATE\r\n", 9);
	z->next_in = (Bytef *)first;
	z->avail_in = (uInt)strlen(first);
	z->next_out = tmp + 9;
	z->avail_out = sizeof(tmp) - 9;
	deflate(z, Z_SYNC_FLUSH);
	client_send(fd, tmp, sizeof(tmp) - z->avail_out);
	buf_reset(&got);
	unsigned char raw[65536];
	/* "OK deflate\r\n" is plain; what follows is compressed. */
	for (int i = 0; i < 100 && got.len < 12; i++) {
		run_for(2);
		ssize_t n = read(fd, raw, 12 - got.len);
		if (n > 0)
			buf_append(&got, raw, (size_t)n);
	}
	CHECK_STR(buf_str(&got), "OK deflate\r\n");
	buf_free(&got);
	return fd;
}

static void test_deflate_lines(void)
{
	struct zclient zc;
	int fd = zc_open(&zc, "first\r\n");
	zc_read(fd, &zc, "echo: first\r\n", 300);
	zc_send_str(fd, &zc, "a\r\nb");
	zc_send_str(fd, &zc, "\r\n");
	zc_read(fd, &zc, "echo: b\r\n", 300);
	CHECK_STR(buf_str(&zc.plain), "echo: first\r\necho: a\r\necho: b\r\n");
	CHECK_STR(buf_str(&st.lines), "DEFLATE|first|a|b");
	/* A close flushes the last reply through zlib and the socket. */
	zc_send_str(fd, &zc, "CLOSE\r\n");
	int eof = zc_read(fd, &zc, NULL, 300);
	CHECK_INT(eof, 1);
	CHECK(strstr(buf_str(&zc.plain), "echo: b\r\nBYE\r\n") != NULL);
	CHECK(!zc.corrupt);
	CHECK_INT(st.closes, 1);
	CHECK_INT(conn_count(), 0);
	close(fd);
	zc_free(&zc);
}

static void test_deflate_backpressure(void)
{
	struct zclient zc;
	int fd = zc_open(&zc, "BIG\r\n");
	unsigned char tmp[65536];
	for (int rounds = 0; rounds < 20000 && zc.plain.len < BIG_TOTAL; rounds++) {
		run_for(1);
		ssize_t n = read(fd, tmp, sizeof(tmp));
		if (n > 0)
			zc_inflate(&zc, tmp, (size_t)n);
	}
	CHECK_INT(zc.plain.len, BIG_TOTAL);
	bool pattern_ok = zc.plain.len == BIG_TOTAL;
	for (size_t i = 0; pattern_ok && i < zc.plain.len; i++)
		pattern_ok = zc.plain.data[i] == (char)('a' + i % BIG_CHUNK % 26);
	CHECK(pattern_ok);
	CHECK(st.drains > 0);
	/* Plain bytes waiting for the flush count as output. */
	CHECK(st.big_max_output <= CONN_OUTPUT_HIGH_WATER + BIG_CHUNK);
	close(fd);
	run_for(10);
	CHECK_INT(st.closes, 1);
	zc_free(&zc);
}

/* 64 MB of one byte without a line end compress to ~64 KB: inflated in
 * bounded steps, the line limit still applies and nothing piles up. */
static void test_deflate_bomb(void)
{
	struct zclient zc;
	int fd = zc_open(&zc, "");
	st.max_line = 1000;
	conn_set_max_line(st.conn, st.max_line);
	static char chunk[1024 * 1024];
	memset(chunk, 'A', sizeof(chunk));
	for (int i = 0; i < 64; i++)
		zc_send(fd, &zc, chunk, sizeof(chunk), Z_NO_FLUSH);
	zc_send_str(fd, &zc, "\r\nok\r\n");
	zc_read(fd, &zc, "echo: ok\r\n", 5000);
	CHECK_STR(buf_str(&zc.plain), "ERR line too long\r\necho: ok\r\n");
	CHECK_STR(buf_str(&st.lines), "DEFLATE|<too-long>|ok");
	/* The plain buffer and the compressed one, each within the limit. */
	CHECK(st.max_input <= 2 * (size_t)CONN_INPUT_HIGH_WATER);
	close(fd);
	run_for(10);
	CHECK_INT(st.closes, 1);
	zc_free(&zc);
}

static void test_deflate_corrupt(void)
{
	struct zclient zc;
	int fd = zc_open(&zc, "x\r\n");
	zc_read(fd, &zc, "echo: x\r\n", 300);
	/* A stored block whose length check fails. */
	client_send(fd, "\x00\x05\x00\x00\x00garbage", 12);
	int eof = zc_read(fd, &zc, NULL, 300);
	CHECK_INT(eof, 1);
	CHECK_INT(st.closes, 1);
	CHECK_INT(conn_count(), 0);
	close(fd);
	zc_free(&zc);
}

/* ---- timers ---- */

static void test_idle_timeout(void)
{
	state_reset();
	st.idle_ms = 60;
	int fd = open_conn(&listener_plain, NULL);
	struct buf got = BUF_INIT(0);
	client_send_str(fd, "ping\r\n");
	run_for(30);
	CHECK_INT(st.timeouts, 0); /* the read reset the timer */
	int eof = client_read(fd, &got, NULL, 500);
	CHECK_INT(eof, 1);
	CHECK_STR(buf_str(&got), "HELLO\r\necho: ping\r\nTIMEOUT\r\n");
	CHECK_INT(st.timeouts, 1);
	CHECK_INT(st.closes, 1);
	close(fd);
	buf_free(&got);
}

static void test_timer_and_pause(void)
{
	state_reset();
	int fd = open_conn(&listener_plain, NULL);
	struct buf got = BUF_INIT(0);
	client_send_str(fd, "TIMER\r\n");
	client_read(fd, &got, "TICK\r\n", 500);
	CHECK_STR(buf_str(&got), "HELLO\r\nTICK\r\n");
	buf_reset(&got);
	client_send_str(fd, "PAUSE\r\nX\r\n");
	CHECK_STR(buf_str(&st.lines), "TIMER|PAUSE");
	client_read(fd, &got, "echo: X", 500);
	CHECK_STR(buf_str(&st.lines), "TIMER|PAUSE|X");
	CHECK_STR(buf_str(&got), "RESUMED\r\necho: X\r\n");
	/* A cancelled timer does not fire. */
	client_send_str(fd, "TIMER\r\n");
	conn_cancel_timer(st.conn);
	buf_reset(&got);
	client_read(fd, &got, NULL, 60);
	CHECK_STR(buf_str(&got), "");
	close(fd);
	run_for(10);
	CHECK_INT(st.closes, 1);
	buf_free(&got);
}

static void test_shutdown_all(void)
{
	state_reset();
	int fd1 = open_conn(&listener_plain, NULL);
	int fd2 = open_conn(&listener_plain, NULL);
	run_for(5);
	CHECK_INT(conn_count(), 2);
	conn_shutdown_all();
	run_for(20);
	CHECK_INT(st.shutdowns, 2);
	CHECK_INT(conn_count(), 0);
	struct buf got = BUF_INIT(0);
	CHECK_INT(client_read(fd1, &got, NULL, 50), 1);
	CHECK_STR(buf_str(&got), "HELLO\r\nSHUTDOWN\r\n");
	close(fd1);
	close(fd2);

	state_reset();
	fd1 = open_conn(&listener_plain, NULL);
	conn_abort_all("shutdown");
	run_for(10);
	CHECK_INT(st.closes, 1);
	CHECK_INT(conn_count(), 0);
	close(fd1);
	buf_free(&got);
}

/* ---- TLS ---- */

static char tmpdir[] = "/tmp/test-conn-XXXXXX";

static char *tmp_path(const char *name)
{
	return xasprintf("%s/%s", tmpdir, name);
}

static SSL *client_tls(int fd, const char *sni)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = SSL_new(ctx);
	SSL_CTX_free(ctx);
	SSL_set_fd(ssl, fd);
	if (sni != NULL)
		SSL_set_tlsext_host_name(ssl, sni);
	for (int i = 0; i < 1000; i++) {
		int ret = SSL_connect(ssl);
		if (ret == 1)
			return ssl;
		int err = SSL_get_error(ssl, ret);
		if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
			break;
		run_for(2);
	}
	ERR_clear_error();
	SSL_free(ssl);
	return NULL;
}

static void tls_send(SSL *ssl, const char *s)
{
	CHECK_INT(SSL_write(ssl, s, (int)strlen(s)), (int)strlen(s));
	run_for(5);
}

static void tls_read(SSL *ssl, struct buf *got, const char *want, int ms)
{
	char tmp[4096];
	for (int waited = 0; waited < ms; waited += 2) {
		run_for(2);
		int n;
		while ((n = SSL_read(ssl, tmp, sizeof(tmp))) > 0)
			buf_append(got, tmp, (size_t)n);
		if (strstr(buf_str(got), want) != NULL)
			break;
	}
	ERR_clear_error();
}

static char *peer_cn(SSL *ssl)
{
	X509 *cert = SSL_get1_peer_certificate(ssl);
	char cn[256] = "";
	if (cert != NULL)
		X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName,
					  cn, sizeof(cn));
	X509_free(cert);
	return xstrdup(cn);
}

static struct tls_server *make_tls(struct yubin_config *config,
				   struct config_certificate *extra)
{
	const char *error = NULL;
	char *cert = tmp_path("default.pem"), *key = tmp_path("default.key");
	CHECK_INT(tls_write_self_signed("localhost", cert, key, 30, &error), 0);
	struct stat stbuf;
	CHECK_INT(stat(key, &stbuf), 0);
	CHECK_INT(stbuf.st_mode & 0777, 0600);
	memset(config, 0, sizeof(*config));
	config->tls.cert_file = cert;
	config->tls.key_file = key;
	config->tls.certificates = extra;
	struct tls_server *tls = tls_server_create(config, &error);
	CHECK(tls != NULL);
	if (tls == NULL)
		fprintf(stderr, "tls_server_create: %s\n", error);
	return tls;
}

static void free_tls_config(struct yubin_config *config)
{
	free(config->tls.cert_file);
	free(config->tls.key_file);
}

static void test_starttls(struct tls_server *tls)
{
	state_reset();
	int fd = open_conn(&listener_starttls, tls);
	struct buf got = BUF_INIT(0);
	CHECK(conn_starttls_available(st.conn));
	/* INJECT is pipelined plaintext: it must never be executed. */
	client_send_str(fd, "STARTTLS\r\nINJECT\r\n");
	client_read(fd, &got, "OK begin TLS\r\n", 200);
	CHECK_STR(buf_str(&got), "HELLO\r\nOK begin TLS\r\n");
	SSL *ssl = client_tls(fd, NULL);
	CHECK(ssl != NULL);
	if (ssl != NULL) {
		buf_reset(&got);
		tls_send(ssl, "AFTER\r\n");
		tls_read(ssl, &got, "echo: AFTER\r\n", 300);
		CHECK_STR(buf_str(&got), "echo: AFTER\r\n");
		CHECK(st.conn != NULL && conn_is_tls(st.conn));
		CHECK(st.conn != NULL && !conn_starttls_available(st.conn));
		CHECK(st.conn != NULL && conn_tls_description(st.conn) != NULL &&
		      strncmp(conn_tls_description(st.conn), "TLSv1.", 6) == 0);
		SSL_free(ssl);
	}
	CHECK_STR(buf_str(&st.lines), "STARTTLS|AFTER");
	close(fd);
	run_for(10);
	CHECK_INT(st.closes, 1);
	CHECK_INT(conn_count(), 0);
	buf_free(&got);

	/* Not on a plaintext-only listener. */
	state_reset();
	fd = open_conn(&listener_plain, tls);
	CHECK(!conn_starttls_available(st.conn));
	CHECK_INT(conn_starttls(st.conn), -1);
	close(fd);
	run_for(10);
}

static void test_implicit_tls(struct tls_server *tls)
{
	state_reset();
	int fd = open_conn(&listener_implicit, tls);
	CHECK_INT(st.starts, 0); /* start() waits for the handshake */
	SSL *ssl = client_tls(fd, "mail.example.test");
	CHECK(ssl != NULL);
	run_for(10); /* the server reads the client's Finished */
	CHECK_INT(st.starts, 1);
	struct buf got = BUF_INIT(0);
	if (ssl != NULL) {
		char *cn = peer_cn(ssl);
		CHECK_STR(cn, "mail.example.test"); /* SNI: the wildcard section */
		free(cn);
		tls_send(ssl, "hi\r\nCLOSE\r\n");
		tls_read(ssl, &got, "BYE\r\n", 300);
		CHECK_STR(buf_str(&got), "HELLO\r\necho: hi\r\nBYE\r\n");
		SSL_free(ssl);
	}
	run_for(10);
	CHECK_INT(st.closes, 1);
	close(fd);

	/* No SNI: the default certificate. */
	state_reset();
	fd = open_conn(&listener_implicit, tls);
	ssl = client_tls(fd, NULL);
	if (ssl != NULL) {
		char *cn = peer_cn(ssl);
		CHECK_STR(cn, "localhost");
		free(cn);
		SSL_free(ssl);
	}
	close(fd);
	run_for(10);

	/* A handshake failure frees the conn; the protocol never starts. */
	state_reset();
	fd = open_conn(&listener_implicit, tls);
	client_send_str(fd, "GET / HTTP/1.0\r\n\r\n");
	run_for(20);
	CHECK_INT(st.starts, 0);
	CHECK_INT(conn_count(), 0);
	close(fd);
	buf_free(&got);
}

static void test_tls_errors(void)
{
	struct yubin_config config;
	memset(&config, 0, sizeof(config));
	config.tls.cert_file = "/nonexistent/cert.pem";
	config.tls.key_file = "/nonexistent/key.pem";
	const char *error = NULL;
	CHECK(tls_server_create(&config, &error) == NULL);
	CHECK(error != NULL && strstr(error, "/nonexistent/cert.pem") != NULL);
	config.tls.cert_file = NULL;
	CHECK(tls_server_create(&config, &error) == NULL);
}

static void test_deflate_tls(struct tls_server *tls)
{
	state_reset();
	int fd = open_conn(&listener_implicit, tls);
	SSL *ssl = client_tls(fd, "mail.example.test");
	CHECK(ssl != NULL);
	if (ssl == NULL) {
		close(fd);
		return;
	}
	struct buf got = BUF_INIT(0);
	tls_send(ssl, "DEFLATE\r\n");
	tls_read(ssl, &got, "OK deflate\r\n", 300);
	CHECK_STR(buf_str(&got), "HELLO\r\nOK deflate\r\n");
	struct zclient zc;
	zc_init(&zc);
	unsigned char tmp[256];
	zc.out.next_in = (Bytef *)"tls\r\nCLOSE\r\n";
	zc.out.avail_in = 12;
	zc.out.next_out = tmp;
	zc.out.avail_out = sizeof(tmp);
	deflate(&zc.out, Z_SYNC_FLUSH);
	SSL_write(ssl, tmp, (int)(sizeof(tmp) - zc.out.avail_out));
	for (int i = 0; i < 150 && strstr(buf_str(&zc.plain), "BYE\r\n") == NULL; i++) {
		run_for(2);
		int n = SSL_read(ssl, tmp, sizeof(tmp));
		if (n > 0)
			zc_inflate(&zc, tmp, (size_t)n);
	}
	CHECK_STR(buf_str(&zc.plain), "echo: tls\r\nBYE\r\n");
	SSL_free(ssl);
	run_for(10);
	CHECK_INT(st.closes, 1);
	close(fd);
	zc_free(&zc);
	buf_free(&got);
}

static void test_tls(void)
{
	if (mkdtemp(tmpdir) == NULL)
		abort();
	char *cert = tmp_path("wild.pem"), *key = tmp_path("wild.key");
	const char *error;
	CHECK_INT(tls_write_self_signed("mail.example.test", cert, key, 30, &error), 0);
	struct config_certificate wild = {
		.hostname = "*.example.test", .cert_file = cert, .key_file = key,
	};
	struct yubin_config config;
	struct tls_server *tls = make_tls(&config, &wild);
	if (tls != NULL) {
		test_starttls(tls);
		test_implicit_tls(tls);
		test_deflate_tls(tls);
		tls_server_destroy(&tls);
	}
	test_tls_errors();
	free_tls_config(&config);
	unlink(cert);
	unlink(key);
	free(cert);
	free(key);
	char *p = tmp_path("default.pem");
	unlink(p);
	free(p);
	p = tmp_path("default.key");
	unlink(p);
	free(p);
	rmdir(tmpdir);
}

/* ---- the connection table ---- */

static void ip4(struct in6_addr *ip, unsigned last)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	sin.sin_addr.s_addr = htonl(0xc0000200 + last);
	connlimit_addr_from_sockaddr((struct sockaddr *)&sin, ip);
}

static void test_connlimit(void)
{
	struct connlimit *limits = connlimit_create(3);
	struct in6_addr a, b;
	const char *reason = NULL;
	ip4(&a, 1);
	ip4(&b, 2);
	static const struct {
		unsigned slot;
		int which;      /* 0 = a, 1 = b */
		enum connlimit_result want;
		const char *reason;
	} steps[] = {
		{ 0, 0, CONNLIMIT_TRACKED, NULL },
		{ 1, 0, CONNLIMIT_TRACKED, NULL },
		{ 2, 0, CONNLIMIT_REFUSED, "per-ip-limit" }, /* 2 per IP */
		{ 2, 1, CONNLIMIT_TRACKED, NULL },
		{ 1, 1, CONNLIMIT_REFUSED, "limit" },        /* 3 in total */
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		reason = NULL;
		enum connlimit_result res = connlimit_acquire(
			limits, steps[i].slot, steps[i].which ? &b : &a, 3, 2, &reason);
		CHECK_INT(res, steps[i].want);
		if (steps[i].reason != NULL)
			CHECK_STR(reason, steps[i].reason);
	}
	CHECK_INT(connlimit_count_total(limits), 3);
	CHECK_INT(connlimit_count_ip(limits, &a), 2);
	connlimit_release(limits, 1, &a, true);
	CHECK_INT(connlimit_count_ip(limits, &a), 1);
	connlimit_clear_slot(limits, 0);
	CHECK_INT(connlimit_count_ip(limits, &a), 0);
	CHECK_INT(connlimit_count_total(limits), 1);
	/* Many addresses in one slot, then all released: back to empty. */
	for (unsigned i = 0; i < 3000; i++) {
		struct in6_addr ip;
		ip4(&ip, 1000 + i);
		CHECK_INT(connlimit_acquire(limits, 0, &ip, 0, 0, &reason) == CONNLIMIT_TRACKED, 1);
	}
	unsigned counted = 0;
	for (unsigned i = 0; i < 3000; i++) {
		struct in6_addr ip;
		ip4(&ip, 1000 + i);
		counted += connlimit_count_ip(limits, &ip);
		connlimit_release(limits, 0, &ip, true);
	}
	CHECK_INT(counted, 3000);
	for (unsigned i = 0; i < 3000; i++) {
		struct in6_addr ip;
		ip4(&ip, 1000 + i);
		counted -= connlimit_count_ip(limits, &ip);
	}
	CHECK_INT(counted, 3000);
	CHECK_INT(connlimit_count_total(limits), 1);
	connlimit_destroy(&limits);
	CHECK(limits == NULL);
}

int main(void)
{
	log_open("stderr", LOG_LEVEL_WARN, "test-conn", NULL);
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	test_lines();
	test_long_lines();
	test_backpressure();
	test_output_cap();
	test_close_in_callback();
	test_peer_half_close();
	test_idle_timeout();
	test_timer_and_pause();
	test_shutdown_all();
	test_deflate_lines();
	test_deflate_backpressure();
	test_deflate_bomb();
	test_deflate_corrupt();
	test_tls();
	test_connlimit();
	event_base_free(base);
	buf_free(&st.lines);
	return test_report();
}

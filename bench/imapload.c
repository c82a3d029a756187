/* imapload: a single-threaded epoll IMAP load generator for bench/imap-bench.py.
 *
 * It speaks just enough IMAP4rev1 (LOGIN, SELECT/EXAMINE, FETCH, SEARCH,
 * STORE, IDLE/DONE, NOOP, LOGOUT, literals in responses) over plaintext or
 * implicit TLS, drives one scenario per run and prints one JSON line with the
 * figures (the idle scenario prints one line per event). Literal bytes are
 * counted and skipped, never buffered, so a FETCH of many large messages costs
 * the client no memory. Build: cc -O2 -o imapload imapload.c -lssl -lcrypto
 * (bench/imap-bench.py does it). Usage: imapload --help. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define IN_START (64 * 1024)
#define IN_MAX ((size_t)256 * 1024 * 1024)
#define FIRST_MAX 512

enum conn_state {
	CONN_CONNECTING,
	CONN_HANDSHAKE,
	CONN_GREETING,
	CONN_LOGIN,
	CONN_READY,
	CONN_CLOSED,
};

struct conn {
	int fd;
	SSL *ssl;
	enum conn_state state;
	unsigned id;
	char user[128];
	uint32_t events;
	int want_write; /* TLS needs the socket writable to go on */
	/* input: bytes not yet parsed are in[pos, len) */
	char *in;
	size_t len, cap, pos, scan;
	uint64_t lit_left;
	int resp_has_lit;
	char first[FIRST_MAX];
	size_t first_len;
	uint64_t resp_lit;
	/* output */
	char *out;
	size_t out_len, out_cap, out_pos;
	/* the command in flight */
	unsigned tag_seq;
	char tag[16];
	double t_cmd;
	int op;
	/* mailbox and scenario state */
	uint32_t exists;
	int idling;   /* idle: IDLE accepted, DONE not yet sent */
	int in_idle;  /* mixed: the same */
	int notified; /* idle: a new EXISTS came after the driver's mark */
	double t_notified;
	double deadline;
	uint32_t next, last; /* fetch-body: next and last message number */
	uint64_t rng;
	unsigned rounds;
};

struct lat {
	double *v;
	size_t n, cap;
};

struct options {
	const char *host;
	int port;
	int tls;
	const char *user;
	const char *password;
	unsigned accounts;
	const char *scenario;
	unsigned clients;
	unsigned repeat;
	unsigned batch;
	uint32_t limit;
	const char *word;
	double duration;
	double idle_ms;
	double think_ms;
	unsigned parallel;
	double timeout;
	double notify_timeout;
	uint64_t seed;
};

struct scenario {
	const char *name;
	void (*start)(void);
	void (*ready)(struct conn *c);
	void (*done)(struct conn *c, int ok, const char *line, size_t len);
	void (*cont)(struct conn *c);
	void (*timer)(struct conn *c);
	void (*input)(const char *line);
	void (*closed)(struct conn *c);
	void (*report)(void);
};

static struct options opt = {
	.host = "127.0.0.1",
	.password = "bench-password-1",
	.clients = 1,
	.repeat = 3,
	.batch = 1,
	.word = "seminar",
	.duration = 30,
	.idle_ms = 200,
	.parallel = 64,
	.timeout = 600,
	.notify_timeout = 10,
	.seed = 1,
};

static struct {
	const struct scenario *sc;
	int epfd;
	SSL_CTX *ctx;
	struct conn **conns;
	unsigned nconns;
	unsigned opened, ready, closed, failed, finished, idling;
	unsigned timers;
	int done;
	int cleanup;
	int stopping;
	int announced;
	int stdin_open;
	double t_start, t_go, t_end, t_mark, t_progress, mark_deadline;
	uint64_t bytes_in, fetches, lit_bytes, search_results, errors;
	char first_error[256];
	char stdin_buf[256];
	size_t stdin_len;
} run;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("imapload: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (p == NULL)
		die("out of memory");
	return p;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: enough for picking operations and messages. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static uint32_t rng_range(struct conn *c, uint32_t lo, uint32_t hi)
{
	if (hi <= lo)
		return lo;
	return lo + (uint32_t)(rng_next(&c->rng) % (hi - lo + 1));
}

static void note_error(const char *what, const char *text, size_t len)
{
	run.errors++;
	if (run.first_error[0] != '\0')
		return;
	if (len > 160)
		len = 160;
	snprintf(run.first_error, sizeof(run.first_error), "%s: %.*s", what, (int)len, text);
}

/* ---------------------------------------------------------------- latency */

static void lat_add(struct lat *l, double ms)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 256;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = ms;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double lat_pct(struct lat *l, double p)
{
	if (l->n == 0)
		return 0;
	qsort(l->v, l->n, sizeof(*l->v), cmp_double);
	size_t i = (size_t)(p * (double)(l->n - 1) + 0.5);
	return l->v[i];
}

static void print_list(const char *name, const struct lat *l)
{
	printf("\"%s\":[", name);
	for (size_t i = 0; i < l->n; i++)
		printf("%s%.3f", i ? "," : "", l->v[i]);
	printf("]");
}

static void print_common(void)
{
	printf("\"scenario\":\"%s\",\"tls\":%s,\"connections\":%u,\"failed\":%u,"
	       "\"bytes_in\":%llu,\"errors\":%llu,\"first_error\":\"",
	       run.sc->name, opt.tls ? "true" : "false", run.nconns, run.failed,
	       (unsigned long long)run.bytes_in, (unsigned long long)run.errors);
	for (const char *p = run.first_error; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if ((unsigned char)*p < 0x20)
			printf("\\u%04x", (unsigned char)*p);
		else
			putchar(*p);
	}
	printf("\"");
}

/* ---------------------------------------------------------------- output */

static void conn_update_events(struct conn *c)
{
	if (c->state == CONN_CLOSED)
		return;
	uint32_t ev = EPOLLIN;
	if (c->state == CONN_CONNECTING || c->want_write || c->out_pos < c->out_len)
		ev |= EPOLLOUT;
	if (ev == c->events)
		return;
	struct epoll_event e = { .events = ev, .data.ptr = c };
	if (epoll_ctl(run.epfd, EPOLL_CTL_MOD, c->fd, &e) < 0)
		die("epoll_ctl: %s", strerror(errno));
	c->events = ev;
}

static void conn_close(struct conn *c, const char *why)
{
	if (c->state == CONN_CLOSED)
		return;
	if (why != NULL) {
		run.failed++;
		note_error("connection", why, strlen(why));
	}
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	c->ssl = NULL;
	epoll_ctl(run.epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->state = CONN_CLOSED;
	if (c->deadline > 0)
		run.timers--;
	c->deadline = 0;
	run.closed++;
	if (run.sc->closed != NULL && !run.cleanup)
		run.sc->closed(c);
}

/* Returns bytes written, 0 when the socket is full, -1 on error. */
static ssize_t io_write(struct conn *c, const char *data, size_t n)
{
	if (c->ssl == NULL) {
		ssize_t w = send(c->fd, data, n, MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		return w;
	}
	int w = SSL_write(c->ssl, data, (int)n);
	if (w > 0)
		return w;
	int err = SSL_get_error(c->ssl, w);
	if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ)
		return 0;
	return -1;
}

static void conn_flush(struct conn *c)
{
	while (c->state != CONN_CLOSED && c->out_pos < c->out_len) {
		ssize_t w = io_write(c, c->out + c->out_pos, c->out_len - c->out_pos);
		if (w < 0) {
			conn_close(c, "write failed");
			return;
		}
		if (w == 0)
			break;
		c->out_pos += (size_t)w;
	}
	if (c->out_pos == c->out_len)
		c->out_pos = c->out_len = 0;
	conn_update_events(c);
}

static void conn_raw(struct conn *c, const char *data, size_t n)
{
	if (c->state == CONN_CLOSED)
		return;
	if (c->out_len + n > c->out_cap) {
		c->out_cap = c->out_len + n + 256;
		c->out = xrealloc(c->out, c->out_cap);
	}
	memcpy(c->out + c->out_len, data, n);
	c->out_len += n;
	conn_flush(c);
}

static void conn_cmd(struct conn *c, int op, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void conn_cmd(struct conn *c, int op, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	snprintf(c->tag, sizeof(c->tag), "a%u", ++c->tag_seq);
	int n = snprintf(line, sizeof(line), "%s ", c->tag);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 2, fmt, ap);
	va_end(ap);
	if ((size_t)n > sizeof(line) - 3)
		die("command too long");
	line[n++] = '\r';
	line[n++] = '\n';
	c->op = op;
	c->t_cmd = now();
	conn_raw(c, line, (size_t)n);
}

/* ---------------------------------------------------------------- input */

static uint32_t parse_u32(const char *p, const char *end, const char **next)
{
	uint64_t v = 0;
	while (p < end && *p >= '0' && *p <= '9' && v <= UINT32_MAX)
		v = v * 10 + (uint64_t)(*p++ - '0');
	*next = p;
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static int starts(const char *p, size_t len, const char *word)
{
	size_t n = strlen(word);
	return len >= n && strncasecmp(p, word, n) == 0;
}

static uint64_t count_numbers(const char *p, const char *end)
{
	uint64_t n = 0;
	for (int in = 0; p < end; p++) {
		int digit = *p >= '0' && *p <= '9';
		n += digit && !in;
		in = digit;
	}
	return n;
}

static void on_untagged(struct conn *c, const char *line, size_t len)
{
	const char *end = line + len, *p = line + 2;
	if (c->state == CONN_GREETING) {
		if (!starts(p, (size_t)(end - p), "OK")) {
			conn_close(c, "no OK greeting");
			return;
		}
		c->state = CONN_LOGIN;
		conn_cmd(c, 0, "LOGIN \"%s\" \"%s\"", c->user, opt.password);
		return;
	}
	if (starts(p, (size_t)(end - p), "SEARCH")) {
		run.search_results += count_numbers(p + 6, end);
		return;
	}
	if (starts(p, (size_t)(end - p), "BYE"))
		return;
	if (*p < '0' || *p > '9')
		return;
	uint32_t n = parse_u32(p, end, &p);
	if (starts(p, (size_t)(end - p), " EXISTS")) {
		if (c->idling && n > c->exists && !c->notified && run.t_mark > 0) {
			c->notified = 1;
			c->t_notified = now();
		}
		c->exists = n;
	} else if (starts(p, (size_t)(end - p), " FETCH")) {
		run.fetches++;
	}
}

static void on_tagged(struct conn *c, const char *line, size_t len)
{
	size_t tl = strlen(c->tag);
	if (tl == 0)
		return; /* the answer to LOGOUT */
	if (len <= tl || memcmp(line, c->tag, tl) != 0 || line[tl] != ' ') {
		note_error("unexpected tag", line, len);
		return;
	}
	const char *st = line + tl + 1;
	int ok = starts(st, len - tl - 1, "OK");
	if (c->state == CONN_LOGIN) {
		if (!ok) {
			note_error("LOGIN", line, len);
			conn_close(c, "login refused");
			return;
		}
		c->state = CONN_READY;
		run.ready++;
		run.t_progress = now();
		run.sc->ready(c);
		return;
	}
	if (!ok)
		note_error("command", line, len);
	run.t_progress = now();
	run.sc->done(c, ok, line, len);
}

static void on_response(struct conn *c, const char *line, size_t len)
{
	if (len >= 1 && line[0] == '+') {
		if (run.sc->cont != NULL)
			run.sc->cont(c);
		return;
	}
	if (len >= 2 && line[0] == '*' && line[1] == ' ') {
		on_untagged(c, line, len);
		return;
	}
	on_tagged(c, line, len);
}

/* A line ending in {N} or {N+} announces a literal of N bytes. */
static int literal_size(const char *line, size_t len, uint64_t *n_r)
{
	if (len < 3 || line[len - 1] != '}')
		return 0;
	size_t i = len - 2;
	if (line[i] == '+')
		i--;
	uint64_t n = 0, mul = 1;
	size_t digits = 0;
	for (; i > 0 && line[i] >= '0' && line[i] <= '9'; i--, digits++) {
		n += (uint64_t)(line[i] - '0') * mul;
		mul *= 10;
	}
	if (line[i] != '{' || digits == 0 || digits > 15)
		return 0;
	*n_r = n;
	return 1;
}

static void conn_segment(struct conn *c, const char *line, size_t len)
{
	uint64_t lit;
	if (literal_size(line, len, &lit)) {
		if (!c->resp_has_lit) {
			c->first_len = len < FIRST_MAX - 1 ? len : FIRST_MAX - 1;
			memcpy(c->first, line, c->first_len);
		}
		c->resp_has_lit = 1;
		c->lit_left = lit;
		c->resp_lit += lit;
		return;
	}
	if (c->resp_has_lit) {
		run.lit_bytes += c->resp_lit;
		on_response(c, c->first, c->first_len);
	} else {
		on_response(c, line, len);
	}
	c->resp_has_lit = 0;
	c->resp_lit = 0;
}

static void conn_parse(struct conn *c)
{
	while (c->state != CONN_CLOSED && c->pos < c->len) {
		if (c->lit_left > 0) {
			size_t n = c->len - c->pos;
			if (n > c->lit_left)
				n = (size_t)c->lit_left;
			c->pos += n;
			c->lit_left -= n;
			c->scan = c->pos;
			continue;
		}
		char *nl = memchr(c->in + c->scan, '\n', c->len - c->scan);
		if (nl == NULL) {
			c->scan = c->len;
			break;
		}
		char *line = c->in + c->pos;
		size_t len = (size_t)(nl - line);
		if (len > 0 && line[len - 1] == '\r')
			len--;
		c->pos = (size_t)(nl - c->in) + 1;
		c->scan = c->pos;
		conn_segment(c, line, len);
	}
	if (c->pos > 0) {
		memmove(c->in, c->in + c->pos, c->len - c->pos);
		c->len -= c->pos;
		c->scan -= c->pos;
		c->pos = 0;
	}
}

/* Returns bytes read, 0 when nothing is there now, -1 on EOF or error. */
static ssize_t io_read(struct conn *c, char *data, size_t n)
{
	if (c->ssl == NULL) {
		ssize_t r = recv(c->fd, data, n, 0);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		return r == 0 ? -1 : r;
	}
	c->want_write = 0;
	int r = SSL_read(c->ssl, data, (int)(n > INT32_MAX ? INT32_MAX : n));
	if (r > 0)
		return r;
	int err = SSL_get_error(c->ssl, r);
	if (err == SSL_ERROR_WANT_READ)
		return 0;
	if (err == SSL_ERROR_WANT_WRITE) {
		c->want_write = 1;
		return 0;
	}
	return -1;
}

static void conn_read(struct conn *c)
{
	for (int rounds = 0; c->state != CONN_CLOSED; rounds++) {
		/* Fair to the other connections, but never leave bytes in OpenSSL's
		 * buffer, where epoll cannot see them. */
		if (rounds >= 16 && (c->ssl == NULL || SSL_pending(c->ssl) == 0))
			break;
		if (c->len == c->cap) {
			if (c->cap >= IN_MAX) {
				conn_close(c, "response line too long");
				return;
			}
			c->cap = c->cap ? c->cap * 2 : IN_START;
			c->in = xrealloc(c->in, c->cap);
		}
		ssize_t r = io_read(c, c->in + c->len, c->cap - c->len);
		if (r < 0) {
			conn_close(c, c->state == CONN_READY && c->tag[0] == '\0' ? NULL
			                                                            : "closed by server");
			return;
		}
		if (r == 0)
			break;
		c->len += (size_t)r;
		run.bytes_in += (uint64_t)r;
		conn_parse(c);
	}
	conn_update_events(c);
}

/* ---------------------------------------------------------------- connect */

static void conn_handshake(struct conn *c)
{
	int r = SSL_connect(c->ssl);
	if (r == 1) {
		c->state = CONN_GREETING;
		c->want_write = 0;
		conn_update_events(c);
		return;
	}
	int err = SSL_get_error(c->ssl, r);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
		c->want_write = err == SSL_ERROR_WANT_WRITE;
		conn_update_events(c);
		return;
	}
	conn_close(c, "TLS handshake failed");
}

static void conn_connected(struct conn *c)
{
	int err = 0;
	socklen_t el = sizeof(err);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err != 0) {
		conn_close(c, err ? strerror(err) : "connect failed");
		return;
	}
	if (!opt.tls) {
		c->state = CONN_GREETING;
		conn_update_events(c);
		return;
	}
	c->ssl = SSL_new(run.ctx);
	SSL_set_fd(c->ssl, c->fd);
	SSL_set_tlsext_host_name(c->ssl, "localhost");
	c->state = CONN_HANDSHAKE;
	conn_handshake(c);
}

static void conn_user(struct conn *c)
{
	const char *hash = strchr(opt.user, '#');
	if (opt.accounts == 0 || hash == NULL) {
		snprintf(c->user, sizeof(c->user), "%s", opt.user);
		return;
	}
	snprintf(c->user, sizeof(c->user), "%.*s%03u%s", (int)(hash - opt.user), opt.user,
	         c->id % opt.accounts, hash + 1);
}

static struct conn *conn_open(void)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		die("out of memory");
	c->id = run.nconns;
	c->rng = opt.seed * 0x9E3779B97F4A7C15ULL + c->id + 1;
	run.conns = xrealloc(run.conns, (run.nconns + 1) * sizeof(*run.conns));
	run.conns[run.nconns++] = c;
	run.opened++;
	conn_user(c);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket: %s (raise RLIMIT_NOFILE)", strerror(errno));
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port) };
	if (inet_pton(AF_INET, opt.host, &sa.sin_addr) != 1)
		die("bad host %s (an IPv4 address)", opt.host);
	c->state = CONN_CONNECTING;
	c->events = EPOLLIN | EPOLLOUT;
	struct epoll_event e = { .events = c->events, .data.ptr = c };
	if (epoll_ctl(run.epfd, EPOLL_CTL_ADD, c->fd, &e) < 0)
		die("epoll_ctl: %s", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
		conn_close(c, strerror(errno));
	return c;
}

static void conn_event(struct conn *c, uint32_t ev)
{
	if (c->state == CONN_CONNECTING) {
		if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			conn_connected(c);
		return;
	}
	if (c->state == CONN_HANDSHAKE) {
		conn_handshake(c);
		return;
	}
	if ((ev & EPOLLOUT) && c->out_pos < c->out_len)
		conn_flush(c);
	if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP) || c->want_write)
		conn_read(c);
}

static void conn_set_timer(struct conn *c, double at)
{
	if (c->deadline == 0 && at > 0)
		run.timers++;
	else if (c->deadline > 0 && at == 0)
		run.timers--;
	c->deadline = at;
}

static void conn_logout(struct conn *c)
{
	c->tag[0] = '\0';
	conn_raw(c, "z LOGOUT\r\n", 10);
}

/* ---------------------------------------------------------------- fetch-envelope */

enum { OP_SELECT = 1, OP_FETCH, OP_SEARCH, OP_IDLE, OP_LOGOUT };

static struct lat env_select, env_fetch, env_bytes, env_count;
static uint64_t op_bytes0, op_fetches0;

static void env_ready(struct conn *c)
{
	conn_cmd(c, OP_SELECT, "SELECT INBOX");
}

static void env_done(struct conn *c, int ok, const char *line, size_t len)
{
	double ms = (now() - c->t_cmd) * 1e3;
	if (c->op == OP_SELECT) {
		lat_add(&env_select, ms);
		op_bytes0 = run.bytes_in;
		op_fetches0 = run.fetches;
		conn_cmd(c, OP_FETCH, "UID FETCH 1:* (FLAGS UID ENVELOPE)");
		return;
	}
	lat_add(&env_fetch, ms);
	lat_add(&env_bytes, (double)(run.bytes_in - op_bytes0));
	lat_add(&env_count, (double)(run.fetches - op_fetches0));
	if (++c->rounds < opt.repeat) {
		conn_cmd(c, OP_SELECT, "SELECT INBOX");
		return;
	}
	conn_logout(c);
	run.done = 1;
}

static void env_report(void)
{
	printf("{");
	print_common();
	printf(",\"exists\":%u,", run.nconns ? run.conns[0]->exists : 0);
	print_list("select_ms", &env_select);
	printf(",");
	print_list("fetch_ms", &env_fetch);
	printf(",");
	print_list("fetch_bytes", &env_bytes);
	printf(",");
	print_list("fetch_responses", &env_count);
	printf("}\n");
}

static void one_conn_start(void)
{
	conn_open();
}

static void fail_closed(struct conn *c)
{
	(void)c;
	if (run.closed == run.nconns)
		run.done = 1;
}

static const struct scenario sc_fetch_envelope = {
	.name = "fetch-envelope",
	.start = one_conn_start,
	.ready = env_ready,
	.done = env_done,
	.closed = fail_closed,
	.report = env_report,
};

/* ---------------------------------------------------------------- fetch-body */

static struct lat body_lat;
static unsigned body_selected;

static void many_start(void)
{
	for (unsigned i = 0; i < opt.clients; i++)
		conn_open();
}

static void body_next(struct conn *c)
{
	if (c->next > c->last) {
		conn_logout(c);
		run.finished++;
		run.t_end = now();
		if (run.finished + run.failed >= run.nconns)
			run.done = 1;
		return;
	}
	uint32_t to = c->next + opt.batch - 1;
	if (to > c->last)
		to = c->last;
	if (to == c->next)
		conn_cmd(c, OP_FETCH, "FETCH %u BODY[]", c->next);
	else
		conn_cmd(c, OP_FETCH, "FETCH %u:%u BODY[]", c->next, to);
	c->next = to + 1;
}

/* Every client has its own contiguous share of the messages. */
static void body_go(void)
{
	run.t_go = now();
	for (unsigned i = 0; i < run.nconns; i++) {
		struct conn *c = run.conns[i];
		if (c->state != CONN_READY)
			continue;
		uint32_t total = c->exists;
		if (opt.limit > 0 && opt.limit < total)
			total = opt.limit;
		c->next = (uint32_t)((uint64_t)total * i / run.nconns) + 1;
		c->last = (uint32_t)((uint64_t)total * (i + 1) / run.nconns);
		body_next(c);
	}
}

static void body_ready(struct conn *c)
{
	/* EXAMINE: BODY[] then sets no \Seen, so every pass does the same work. */
	conn_cmd(c, OP_SELECT, "EXAMINE INBOX");
}

static void body_done(struct conn *c, int ok, const char *line, size_t len)
{
	if (c->op == OP_SELECT) {
		if (++body_selected + run.failed == run.nconns && run.t_go == 0) {
			run.bytes_in = run.fetches = run.lit_bytes = 0;
			body_go();
		}
		return;
	}
	lat_add(&body_lat, (now() - c->t_cmd) * 1e3);
	body_next(c);
}

static void body_closed(struct conn *c)
{
	if (body_selected + run.failed == run.nconns && run.t_go == 0)
		body_go();
	fail_closed(c);
}

static void body_report(void)
{
	double secs = run.t_end > run.t_go ? run.t_end - run.t_go : 1e-9;
	printf("{");
	print_common();
	printf(",\"batch\":%u,\"messages\":%llu,\"body_bytes\":%llu,\"seconds\":%.3f,"
	       "\"messages_per_s\":%.1f,\"mb_per_s\":%.2f,\"cmd_p50_ms\":%.3f,\"cmd_p99_ms\":%.3f}\n",
	       opt.batch, (unsigned long long)run.fetches, (unsigned long long)run.lit_bytes, secs,
	       (double)run.fetches / secs, (double)run.lit_bytes / secs / 1e6,
	       lat_pct(&body_lat, 0.5), lat_pct(&body_lat, 0.99));
}

static const struct scenario sc_fetch_body = {
	.name = "fetch-body",
	.start = many_start,
	.ready = body_ready,
	.done = body_done,
	.closed = body_closed,
	.report = body_report,
};

/* ---------------------------------------------------------------- search-text */

static struct lat search_lat, search_count;

static void search_done(struct conn *c, int ok, const char *line, size_t len)
{
	if (c->op == OP_SEARCH) {
		lat_add(&search_lat, (now() - c->t_cmd) * 1e3);
		lat_add(&search_count, (double)run.search_results);
		if (++c->rounds >= opt.repeat) {
			conn_logout(c);
			run.done = 1;
			return;
		}
	}
	run.search_results = 0;
	conn_cmd(c, OP_SEARCH, "SEARCH TEXT \"%s\"", opt.word);
}

static void search_report(void)
{
	printf("{");
	print_common();
	printf(",\"word\":\"%s\",\"exists\":%u,", opt.word, run.nconns ? run.conns[0]->exists : 0);
	print_list("search_ms", &search_lat);
	printf(",");
	print_list("results", &search_count);
	printf("}\n");
}

static const struct scenario sc_search_text = {
	.name = "search-text",
	.start = one_conn_start,
	.ready = env_ready,
	.done = search_done,
	.closed = fail_closed,
	.report = search_report,
};

/* ---------------------------------------------------------------- idle */

static struct lat idle_notify;
static unsigned idle_started, idle_left;

static void idle_open_more(void)
{
	while (idle_started < opt.clients && run.opened - run.idling - run.failed < opt.parallel) {
		idle_started++;
		conn_open();
	}
}

static void idle_start(void)
{
	run.stdin_open = 1;
	idle_open_more();
}

static void idle_ready(struct conn *c)
{
	conn_cmd(c, OP_SELECT, "SELECT INBOX");
}

static void idle_all_up(void)
{
	if (run.announced || idle_started < opt.clients || run.idling + run.failed < opt.clients)
		return;
	run.announced = 1;
	printf("{\"event\":\"idling\",");
	print_common();
	printf(",\"idling\":%u,\"seconds\":%.3f}\n", run.idling, now() - run.t_start);
	fflush(stdout);
}

static void idle_cont(struct conn *c)
{
	if (c->op != OP_IDLE || c->idling)
		return;
	c->idling = 1;
	run.idling++;
	idle_open_more();
	idle_all_up();
}

static void idle_done(struct conn *c, int ok, const char *line, size_t len)
{
	if (c->op == OP_SELECT) {
		if (!ok) {
			conn_close(c, "SELECT failed");
			return;
		}
		conn_cmd(c, OP_IDLE, "IDLE");
		return;
	}
	/* The tagged answer to IDLE after DONE. */
	if (c->idling) {
		c->idling = 0;
		run.idling--;
	}
	conn_logout(c);
	if (--idle_left == 0)
		run.done = 1;
}

static void idle_closed(struct conn *c)
{
	if (c->idling) {
		c->idling = 0;
		run.idling--;
		if (run.stopping && idle_left > 0 && --idle_left == 0)
			run.done = 1;
	}
	idle_open_more();
	idle_all_up();
	if (run.closed == run.nconns && idle_started == opt.clients && run.t_mark == 0 &&
	    run.idling == 0)
		run.done = 1;
}

static void idle_notified_report(void)
{
	unsigned got = 0;
	for (unsigned i = 0; i < run.nconns; i++) {
		struct conn *c = run.conns[i];
		if (c->notified) {
			got++;
			lat_add(&idle_notify, (c->t_notified - run.t_mark) * 1e3);
		}
	}
	printf("{\"event\":\"notified\",\"idling\":%u,\"received\":%u,\"p50_ms\":%.1f,"
	       "\"max_ms\":%.1f}\n",
	       run.idling, got, lat_pct(&idle_notify, 0.5), lat_pct(&idle_notify, 1.0));
	fflush(stdout);
	run.mark_deadline = 0;
}

static void idle_check_marked(void)
{
	if (run.mark_deadline == 0)
		return;
	unsigned got = 0;
	for (unsigned i = 0; i < run.nconns; i++)
		got += run.conns[i]->notified && run.conns[i]->idling;
	if (got >= run.idling || now() >= run.mark_deadline)
		idle_notified_report();
}

static void idle_stop(void)
{
	idle_left = 0;
	run.stopping = 1;
	for (unsigned i = 0; i < run.nconns; i++) {
		struct conn *c = run.conns[i];
		if (c->state == CONN_READY && c->idling) {
			idle_left++;
			conn_raw(c, "DONE\r\n", 6);
		}
	}
	if (idle_left == 0)
		run.done = 1;
}

/* Commands from the driver on stdin: "mark" (a delivery follows: report when
 * every idling connection has seen a new EXISTS) and "done" (end IDLE, log
 * out, report). */
static void idle_input(const char *line)
{
	if (strcmp(line, "mark") == 0) {
		run.t_mark = now();
		run.mark_deadline = run.t_mark + opt.notify_timeout;
		for (unsigned i = 0; i < run.nconns; i++)
			run.conns[i]->notified = 0;
		printf("{\"event\":\"marked\"}\n");
		fflush(stdout);
	} else if (strcmp(line, "done") == 0) {
		idle_stop();
	}
}

static void idle_report(void)
{
	printf("{\"event\":\"end\",");
	print_common();
	printf(",\"idling\":%u}\n", run.idling);
}

static const struct scenario sc_idle = {
	.name = "idle",
	.start = idle_start,
	.ready = idle_ready,
	.done = idle_done,
	.cont = idle_cont,
	.input = idle_input,
	.closed = idle_closed,
	.report = idle_report,
};

/* ---------------------------------------------------------------- mixed */

enum mixed_op {
	MIX_SELECT,
	MIX_HEADERS,
	MIX_BODY,
	MIX_STORE,
	MIX_SEARCH,
	MIX_NOOP,
	MIX_IDLE,
	MIX_COUNT,
};

struct mixed_kind {
	const char *name;
	unsigned weight;
	void (*send)(struct conn *c);
};

static struct lat mixed_lat[MIX_COUNT];
static unsigned mixed_selected;

static void mix_select(struct conn *c)
{
	conn_cmd(c, MIX_SELECT, "SELECT INBOX");
}

/* What a client shows in its message list: the newest 50. */
static void mix_headers(struct conn *c)
{
	uint32_t lo = c->exists > 50 ? c->exists - 49 : 1;
	conn_cmd(c, MIX_HEADERS,
	         "FETCH %u:* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS "
	         "(FROM TO CC SUBJECT DATE MESSAGE-ID)])",
	         lo);
}

static void mix_body(struct conn *c)
{
	conn_cmd(c, MIX_BODY, "FETCH %u BODY[]", rng_range(c, 1, c->exists));
}

static void mix_store(struct conn *c)
{
	conn_cmd(c, MIX_STORE, "STORE %u %cFLAGS (\\Seen)", rng_range(c, 1, c->exists),
	         rng_next(&c->rng) % 2 ? '+' : '-');
}

static void mix_search(struct conn *c)
{
	conn_cmd(c, MIX_SEARCH, "SEARCH UNSEEN SUBJECT \"%s\"", opt.word);
}

static void mix_noop(struct conn *c)
{
	conn_cmd(c, MIX_NOOP, "NOOP");
}

static void mix_idle(struct conn *c)
{
	conn_cmd(c, MIX_IDLE, "IDLE");
}

static const struct mixed_kind mixed_kinds[MIX_COUNT] = {
	[MIX_SELECT] = { "select", 5, mix_select },
	[MIX_HEADERS] = { "headers", 20, mix_headers },
	[MIX_BODY] = { "body", 25, mix_body },
	[MIX_STORE] = { "store", 15, mix_store },
	[MIX_SEARCH] = { "search", 10, mix_search },
	[MIX_NOOP] = { "noop", 15, mix_noop },
	[MIX_IDLE] = { "idle", 10, mix_idle },
};

static void mixed_next(struct conn *c)
{
	if (now() >= run.t_end) {
		conn_logout(c);
		if (++run.finished + run.failed >= run.nconns)
			run.done = 1;
		return;
	}
	unsigned total = 0;
	for (int i = 0; i < MIX_COUNT; i++)
		total += mixed_kinds[i].weight;
	unsigned r = (unsigned)(rng_next(&c->rng) % total);
	int k = 0;
	while (r >= mixed_kinds[k].weight)
		r -= mixed_kinds[k++].weight;
	mixed_kinds[k].send(c);
}

static void mixed_go(void)
{
	run.t_go = now();
	run.t_end = run.t_go + opt.duration;
	run.bytes_in = 0;
	for (unsigned i = 0; i < run.nconns; i++)
		if (run.conns[i]->state == CONN_READY)
			mixed_next(run.conns[i]);
}

static void mixed_ready(struct conn *c)
{
	conn_cmd(c, -1, "SELECT INBOX");
}

static void mixed_after(struct conn *c)
{
	if (opt.think_ms > 0)
		conn_set_timer(c, now() + opt.think_ms / 1e3);
	else
		mixed_next(c);
}

static void mixed_done(struct conn *c, int ok, const char *line, size_t len)
{
	if (c->op < 0) {
		if (++mixed_selected + run.failed == run.nconns && run.t_go == 0)
			mixed_go();
		return;
	}
	lat_add(&mixed_lat[c->op], (now() - c->t_cmd) * 1e3);
	mixed_after(c);
}

static void mixed_cont(struct conn *c)
{
	if (c->op != MIX_IDLE || c->in_idle)
		return;
	c->in_idle = 1;
	conn_set_timer(c, now() + opt.idle_ms / 1e3);
}

/* The end of an IDLE or of a pause between commands. */
static void mixed_timer(struct conn *c)
{
	conn_set_timer(c, 0);
	if (c->in_idle) {
		c->in_idle = 0;
		conn_raw(c, "DONE\r\n", 6);
		return;
	}
	mixed_next(c);
}

static void mixed_closed(struct conn *c)
{
	if (run.t_go == 0 && mixed_selected + run.failed == run.nconns)
		mixed_go();
	fail_closed(c);
}

static void mixed_report(void)
{
	double secs = opt.duration;
	unsigned long long ops = 0;
	for (int i = 0; i < MIX_COUNT; i++)
		if (i != MIX_IDLE)
			ops += mixed_lat[i].n;
	printf("{");
	print_common();
	printf(",\"seconds\":%.3f,\"ops\":%llu,\"ops_per_s\":%.1f,\"fetch_responses\":%llu,"
	       "\"ops_by_kind\":{",
	       secs, ops, (double)ops / secs, (unsigned long long)run.fetches);
	for (int i = 0; i < MIX_COUNT; i++) {
		struct lat *l = &mixed_lat[i];
		printf("%s\"%s\":{\"count\":%zu,\"p50_ms\":%.3f,\"p99_ms\":%.3f}", i ? "," : "",
		       mixed_kinds[i].name, l->n, lat_pct(l, 0.5), lat_pct(l, 0.99));
	}
	printf("}}\n");
}

static const struct scenario sc_mixed = {
	.name = "mixed",
	.start = many_start,
	.ready = mixed_ready,
	.done = mixed_done,
	.cont = mixed_cont,
	.timer = mixed_timer,
	.closed = mixed_closed,
	.report = mixed_report,
};

/* ---------------------------------------------------------------- main loop */

static const struct scenario *const scenarios[] = {
	&sc_fetch_envelope, &sc_fetch_body, &sc_search_text, &sc_idle, &sc_mixed,
};

static void stdin_read(void)
{
	ssize_t r = read(0, run.stdin_buf + run.stdin_len, sizeof(run.stdin_buf) - 1 - run.stdin_len);
	if (r <= 0) {
		epoll_ctl(run.epfd, EPOLL_CTL_DEL, 0, NULL);
		run.stdin_open = 0;
		run.sc->input("done");
		return;
	}
	run.stdin_len += (size_t)r;
	char *nl;
	while ((nl = memchr(run.stdin_buf, '\n', run.stdin_len)) != NULL) {
		*nl = '\0';
		run.sc->input(run.stdin_buf);
		size_t used = (size_t)(nl - run.stdin_buf) + 1;
		memmove(run.stdin_buf, nl + 1, run.stdin_len - used);
		run.stdin_len -= used;
	}
	if (run.stdin_len == sizeof(run.stdin_buf) - 1)
		run.stdin_len = 0;
}

static void run_timers(void)
{
	double t = now();
	for (unsigned i = 0; i < run.nconns && run.timers > 0; i++) {
		struct conn *c = run.conns[i];
		if (c->deadline > 0 && c->deadline <= t && c->state == CONN_READY)
			run.sc->timer(c);
	}
}

static int loop_timeout(void)
{
	if (run.timers == 0 && run.mark_deadline == 0)
		return 1000;
	return 2;
}

static void event_loop(void)
{
	struct epoll_event evs[256];
	static int stdin_tag;
	if (run.stdin_open) {
		struct epoll_event e = { .events = EPOLLIN, .data.ptr = &stdin_tag };
		if (epoll_ctl(run.epfd, EPOLL_CTL_ADD, 0, &e) < 0)
			die("epoll_ctl stdin: %s", strerror(errno));
	}
	run.t_progress = now();
	while (!run.done) {
		int n = epoll_wait(run.epfd, evs, 256, loop_timeout());
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == &stdin_tag)
				stdin_read();
			else
				conn_event(evs[i].data.ptr, evs[i].events);
		}
		if (run.timers > 0)
			run_timers();
		idle_check_marked();
		if (!run.stdin_open && now() - run.t_progress > opt.timeout) {
			note_error("timeout", "no progress", 11);
			break;
		}
	}
}

/* Reads the LOGOUT answers so that servers do not log a lost connection. */
static void drain(void)
{
	double until = now() + 2;
	for (unsigned i = 0; i < run.nconns; i++) {
		struct conn *c = run.conns[i];
		while (c->state == CONN_READY && now() < until) {
			conn_flush(c);
			char b[4096];
			ssize_t r = io_read(c, b, sizeof(b));
			if (r < 0)
				break;
			if (r == 0)
				usleep(1000);
		}
	}
}

static void usage(int status)
{
	fputs("usage: imapload --port N --user USER [options] SCENARIO\n"
	      "scenarios: fetch-envelope, fetch-body, search-text, idle, mixed\n"
	      "  --host ADDR        IPv4 address (127.0.0.1)\n"
	      "  --tls              implicit TLS\n"
	      "  --user USER        login; a # in it becomes 000..N-1 with --accounts N\n"
	      "  --accounts N       connection i logs in to account i mod N\n"
	      "  --password P       (bench-password-1)\n"
	      "  --clients N        connections (fetch-body, idle, mixed; 1)\n"
	      "  --repeat N         rounds (fetch-envelope, search-text; 3)\n"
	      "  --batch N          messages per FETCH (fetch-body; 1)\n"
	      "  --limit N          fetch only the first N messages (fetch-body)\n"
	      "  --word W           search word (seminar)\n"
	      "  --duration S       mixed: seconds of load (30)\n"
	      "  --idle-ms MS       mixed: how long an IDLE lasts (200)\n"
	      "  --think-ms MS      mixed: pause between commands (0)\n"
	      "  --parallel N       idle: logins in flight (64)\n"
	      "  --notify-timeout S idle: wait for EXISTS after mark (10)\n"
	      "  --timeout S        give up after S seconds without progress (600)\n"
	      "  --seed N\n",
	      status ? stderr : stdout);
	exit(status);
}

static double arg_num(const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || v < 0)
		die("bad number: %s", s);
	return v;
}

static void parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "host", 1, 0, 'H' },      { "port", 1, 0, 'p' },       { "tls", 0, 0, 't' },
		{ "user", 1, 0, 'u' },      { "password", 1, 0, 'P' },   { "accounts", 1, 0, 'a' },
		{ "clients", 1, 0, 'c' },   { "repeat", 1, 0, 'r' },     { "batch", 1, 0, 'b' },
		{ "limit", 1, 0, 'l' },     { "word", 1, 0, 'w' },       { "duration", 1, 0, 'd' },
		{ "idle-ms", 1, 0, 'i' },   { "think-ms", 1, 0, 'k' },   { "parallel", 1, 0, 'j' },
		{ "timeout", 1, 0, 'T' },   { "notify-timeout", 1, 0, 'N' }, { "seed", 1, 0, 's' },
		{ "help", 0, 0, 'h' },      { 0, 0, 0, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'H': opt.host = optarg; break;
		case 'p': opt.port = (int)arg_num(optarg); break;
		case 't': opt.tls = 1; break;
		case 'u': opt.user = optarg; break;
		case 'P': opt.password = optarg; break;
		case 'a': opt.accounts = (unsigned)arg_num(optarg); break;
		case 'c': opt.clients = (unsigned)arg_num(optarg); break;
		case 'r': opt.repeat = (unsigned)arg_num(optarg); break;
		case 'b': opt.batch = (unsigned)arg_num(optarg); break;
		case 'l': opt.limit = (uint32_t)arg_num(optarg); break;
		case 'w': opt.word = optarg; break;
		case 'd': opt.duration = arg_num(optarg); break;
		case 'i': opt.idle_ms = arg_num(optarg); break;
		case 'k': opt.think_ms = arg_num(optarg); break;
		case 'j': opt.parallel = (unsigned)arg_num(optarg); break;
		case 'T': opt.timeout = arg_num(optarg); break;
		case 'N': opt.notify_timeout = arg_num(optarg); break;
		case 's': opt.seed = (uint64_t)arg_num(optarg); break;
		case 'h': usage(0); break;
		default: usage(64);
		}
	}
	if (optind != argc - 1 || opt.port <= 0 || opt.port > 65535 || opt.user == NULL)
		usage(64);
	opt.scenario = argv[optind];
	if (opt.clients == 0 || opt.repeat == 0 || opt.batch == 0 || opt.parallel == 0)
		die("--clients, --repeat, --batch and --parallel must be at least 1");
	if (strpbrk(opt.user, "\"\\") || strpbrk(opt.password, "\"\\") || strpbrk(opt.word, "\"\\"))
		die("user, password and word may not hold \" or \\");
}

static void setup(void)
{
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		if (strcmp(scenarios[i]->name, opt.scenario) == 0)
			run.sc = scenarios[i];
	if (run.sc == NULL)
		die("unknown scenario %s", opt.scenario);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	run.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (run.epfd < 0)
		die("epoll_create1: %s", strerror(errno));
	if (opt.tls) {
		run.ctx = SSL_CTX_new(TLS_client_method());
		if (run.ctx == NULL)
			die("SSL_CTX_new failed");
		/* The servers use a self-signed certificate: nothing to verify. */
		SSL_CTX_set_verify(run.ctx, SSL_VERIFY_NONE, NULL);
		SSL_CTX_set_min_proto_version(run.ctx, TLS1_2_VERSION);
	}
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	setup();
	run.t_start = now();
	run.sc->start();
	event_loop();
	drain();
	run.sc->report();
	fflush(stdout);
	run.cleanup = 1;
	for (unsigned i = 0; i < run.nconns; i++) {
		conn_close(run.conns[i], NULL);
		free(run.conns[i]->in);
		free(run.conns[i]->out);
		free(run.conns[i]);
	}
	free(run.conns);
	if (run.ctx != NULL)
		SSL_CTX_free(run.ctx);
	return run.failed > 0 || run.errors > 0 ? 2 : 0;
}

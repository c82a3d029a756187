/* The outbound SMTP client against real peers: a real `unbound` on a
 * loopback port serves the MX, null MX, NXDOMAIN and A records, and
 * Postfix's `smtp-sink` is the destination (with PIPELINING, 8BITMIME or
 * AUTH switched off, or RCPT refused with 4xx/5xx as a case asks). Each case
 * runs smtpc_deliver on an event loop and checks the per-recipient results
 * and the bytes that reached the sink. Skipped (exit 77) when unbound or
 * smtp-sink is not installed. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "lib/xmalloc.h"
#include "smtp/dns.h"
#include "smtp/smtpc.h"
#include "test.h"

#define SINK "/usr/sbin/smtp-sink"
#define UNBOUND "/usr/sbin/unbound"

static char tmp_dir[] = "/tmp/test-smtpc.XXXXXX";
static int dns_port, sink_port;
static pid_t unbound_pid;

static int free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	getsockname(fd, (struct sockaddr *)&sin, &len);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static void write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
		perror(path);
		exit(1);
	}
	close(fd);
}

/* Every child, so that an early exit(1) leaves none running. */
static pid_t children[8];

static void kill_children(void)
{
	for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++) {
		if (children[i] > 0 && kill(children[i], SIGTERM) == 0)
			waitpid(children[i], NULL, 0);
	}
}

static void remember_child(pid_t pid)
{
	for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++) {
		if (children[i] <= 0) {
			children[i] = pid;
			return;
		}
	}
}

static pid_t spawn(char *const argv[], const char *out_path)
{
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	remember_child(pid);
	return pid;
}

static void stop(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	waitpid(*pid, NULL, 0);
	for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++) {
		if (children[i] == *pid)
			children[i] = 0;
	}
	*pid = 0;
}

static const char unbound_records[] =
	"  local-zone: \"test.\" static\n"
	/* MX order: mx1 (127.0.0.2, nobody listens) first, then mx2. */
	"  local-data: \"a.test. MX 10 mx1.a.test.\"\n"
	"  local-data: \"a.test. MX 20 mx2.a.test.\"\n"
	"  local-data: \"mx1.a.test. A 127.0.0.2\"\n"
	"  local-data: \"mx2.a.test. A 127.0.0.1\"\n"
	/* No MX: the domain's own address is the implicit MX. */
	"  local-data: \"implicit.test. A 127.0.0.1\"\n"
	/* RFC 7505 null MX. */
	"  local-data: \"nullmx.test. MX 0 .\"\n"
	"  local-data: \"nullmx.test. A 127.0.0.1\"\n"
	"  local-data: \"mx.relay.test. A 127.0.0.1\"\n"
	/* An MX whose host has no address. */
	"  local-data: \"noaddr.test. MX 10 nowhere.noaddr.test.\"\n";

static void start_unbound(void)
{
	char path[256], log[256], conf[4096];
	dns_port = free_port();
	snprintf(conf, sizeof(conf),
		 "server:\n  interface: 127.0.0.1\n  port: %d\n  do-daemonize: no\n"
		 "  chroot: \"\"\n  username: \"\"\n  pidfile: \"\"\n  directory: \"%s\"\n"
		 "  use-syslog: no\n  do-ip6: no\n  num-threads: 1\n"
		 "  module-config: \"iterator\"\n  access-control: 127.0.0.0/8 allow\n%s"
		 "remote-control:\n  control-enable: no\n",
		 dns_port, tmp_dir, unbound_records);
	snprintf(path, sizeof(path), "%s/unbound.conf", tmp_dir);
	snprintf(log, sizeof(log), "%s/unbound.log", tmp_dir);
	write_file(path, conf, strlen(conf));
	char *argv[] = { UNBOUND, "-d", "-c", path, NULL };
	unbound_pid = spawn(argv, log);
}

static int counter_value(const char *dump_dir, const char *name);

/* smtp-sink with extra options; dumps each message into dump_dir and
 * prints its counters (sess=, mesg=) into dump_dir/counters. */
static pid_t start_sink(const char *dump_dir, const char *opts)
{
	char addr[64], tmpl[512], out[512], optbuf[64];
	char *argv[16];
	int n = 0;
	mkdir(dump_dir, 0777);
	chmod(dump_dir, 0777);  /* the sink writes as nobody */
	sink_port = free_port();
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", sink_port);
	snprintf(tmpl, sizeof(tmpl), "%s/msg.", dump_dir);
	snprintf(out, sizeof(out), "%s/counters", dump_dir);
	argv[n++] = SINK;
	argv[n++] = "-c";
	argv[n++] = "-u";
	argv[n++] = "nobody";
	argv[n++] = "-d";
	argv[n++] = tmpl;
	for (const char *p = opts; *p != '\0'; p += strcspn(p, " "), p += strspn(p, " ")) {
		size_t len = strcspn(p, " ");
		argv[n++] = xstrndup(p, len);
	}
	argv[n++] = addr;
	argv[n++] = "10";
	argv[n] = NULL;
	pid_t pid = spawn(argv, out);
	(void)optbuf;
	for (int i = 6; i < n - 2; i++)
		free(argv[i]);
	/* Wait until it listens (this probe is the sink's session 1). */
	for (int i = 0; i < 100; i++) {
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(sink_port) };
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
		close(fd);
		if (ok)
			break;
		usleep(20000);
	}
	for (int i = 0; i < 100 && counter_value(dump_dir, "sess=") < 1; i++)
		usleep(10000);
	return pid;
}

static struct yubin_config *make_config(const char *extra)
{
	struct yubin_config *config = NULL;
	struct buf text = BUF_INIT(0), errors = BUF_INIT(0);
	buf_printf(&text,
		   "[server]\nhostname = client.test\ndata_dir = %s\n"
		   "[dns]\nservers = 127.0.0.1:%d\ntimeout = 500ms\ntries = 2\n"
		   "[smtp_client]\nconnect_timeout = 2s\ncommand_timeout = 5s\n%s\n",
		   tmp_dir, dns_port, extra);
	if (config_parse(text.data, text.len, "test.conf", tmp_dir, &config, &errors) < 0) {
		fprintf(stderr, "config: %s\n%s\n", buf_str(&errors), buf_str(&text));
		exit(1);
	}
	buf_free(&text);
	buf_free(&errors);
	return config;
}

/* ---- running one delivery ---- */

struct outcome {
	struct smtpc_rcpt_result *results;
	size_t count;
	bool done;
	struct event_base *base;
};

static void on_result(void *context, struct smtpc_rcpt_result *results, size_t count)
{
	struct outcome *o = context;
	o->results = results;
	o->count = count;
	o->done = true;
	event_base_loopbreak(o->base);
}

static int message_fd(const char *body, size_t len)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/message", tmp_dir);
	write_file(path, body, len);
	int fd = open(path, O_RDONLY);
	unlink(path);
	return fd;
}

static bool deliver_smtputf8;

static void deliver(struct event_base *base, const struct yubin_config *config,
		    const char *domain, const char *const *rcpts, size_t rcpt_count,
		    enum queue_body body_type, const char *body, size_t len, struct outcome *o)
{
	struct smtpc_request req = {
		.domain = domain, .sender = "alice@client.test", .rcpts = rcpts,
		.rcpt_count = rcpt_count, .body = body_type, .size = len,
		.smtputf8 = deliver_smtputf8,
	};
	struct timeval limit = { 30, 0 };
	memset(o, 0, sizeof(*o));
	o->base = base;
	req.fd = message_fd(body, len);
	smtpc_deliver(base, config, &req, on_result, o);
	event_base_loopexit(base, &limit);
	event_base_dispatch(base);
	close(req.fd);
	CHECK(o->done);
}

static void outcome_free(struct outcome *o)
{
	smtpc_results_free(o->results, o->count);
	o->results = NULL;
}

/* The dumped message after the sink's own headers (X-*, Received), with
 * LF line ends and one more LF at the end, as smtp-sink writes it. */
static char *read_dump(const char *dump_dir, size_t *count_r)
{
	DIR *dir = opendir(dump_dir);
	struct dirent *de;
	char *found = NULL;
	*count_r = 0;
	while (dir != NULL && (de = readdir(dir)) != NULL) {
		if (strncmp(de->d_name, "msg.", 4) != 0)
			continue;
		(*count_r)++;
		free(found);
		found = xasprintf("%s/%s", dump_dir, de->d_name);
	}
	if (dir != NULL)
		closedir(dir);
	if (found == NULL)
		return NULL;
	struct buf b = BUF_INIT(0);
	char chunk[65536];
	int fd = open(found, O_RDONLY);
	ssize_t n;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_append(&b, chunk, (size_t)n);
	close(fd);
	free(found);
	const char *p = strstr(buf_str(&b), "\nReceived: ");
	if (p == NULL) {
		buf_free(&b);
		return NULL;
	}
	p = strchr(p + 1, '\n');
	while (p != NULL && p[1] == '\t')
		p = strchr(p + 1, '\n');
	char *msg = xstrdup(p != NULL ? p + 1 : "");
	buf_free(&b);
	return msg;
}

static char *as_dumped(const char *msg)
{
	struct buf b = BUF_INIT(0);
	for (const char *p = msg; *p != '\0'; p++) {
		if (p[0] == '\r' && p[1] == '\n')
			continue;
		buf_append_char(&b, *p);
	}
	buf_append_char(&b, '\n');
	return buf_steal(&b);
}

/* ---- the table of cases ---- */

static const char msg_7bit[] =
	"From: alice@client.test\r\nTo: bob@a.test\r\nSubject: hello\r\n\r\n"
	"line one\r\n.starts with a dot\r\n..two dots\r\n.\r\nlast line\r\n";
static const char msg_8bit[] =
	"From: alice@client.test\r\nSubject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n"
	"Content-Transfer-Encoding: 8bit\r\n\r\n\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf\r\n";

struct smtpc_case {
	const char *name;
	const char *sink_opts;     /* NULL: no sink */
	const char *config;        /* extra config; %d = the sink's port */
	const char *domain;
	enum queue_body body_type;
	const char *body;
	unsigned int code;         /* each recipient's */
	bool permanent;
	const char *enhanced;
	const char *remote_host;   /* or NULL: not checked */
	bool delivered;            /* the sink has the message */
	bool smtputf8;
};

static const struct smtpc_case cases[] = {
	{ "MX order, first MX refuses: second MX", "",
	  "[transport]\nroutes = a.test=a.test:%d\n", "a.test", QUEUE_BODY_7BIT, msg_7bit,
	  250, false, "2.0.0", "mx2.a.test", true, false },
	{ "implicit MX (A only)", "",
	  "[transport]\nroutes = implicit.test=implicit.test:%d\n", "implicit.test",
	  QUEUE_BODY_7BIT, msg_7bit, 250, false, "2.0.0", "implicit.test", true, false },
	{ "null MX", "",
	  "[transport]\nroutes = nullmx.test=nullmx.test:%d\n", "nullmx.test",
	  QUEUE_BODY_7BIT, msg_7bit, 0, true, "5.1.10", NULL, false, false },
	{ "NXDOMAIN", "",
	  "[transport]\nroutes = nosuch.test=nosuch.test:%d\n", "nosuch.test",
	  QUEUE_BODY_7BIT, msg_7bit, 0, true, "5.1.2", NULL, false, false },
	{ "MX host without address", "",
	  "[transport]\nroutes = noaddr.test=noaddr.test:%d\n", "noaddr.test",
	  QUEUE_BODY_7BIT, msg_7bit, 0, true, "5.1.2", NULL, false, false },
	{ "transport override [127.0.0.1]:port", "",
	  "[transport]\nroutes = example.org=[127.0.0.1]:%d\n", "example.org",
	  QUEUE_BODY_7BIT, msg_7bit, 250, false, "2.0.0", "127.0.0.1", true, false },
	{ "no PIPELINING", "-p",
	  "[transport]\nroutes = example.org=[127.0.0.1]:%d\n", "example.org",
	  QUEUE_BODY_7BIT, msg_7bit, 250, false, "2.0.0", NULL, true, false },
	{ "8BITMIME offered: 8-bit body sent", "",
	  "[transport]\nroutes = example.org=[127.0.0.1]:%d\n", "example.org",
	  QUEUE_BODY_8BITMIME, msg_8bit, 250, false, "2.0.0", NULL, true, false },
	{ "no 8BITMIME: 8-bit body refused, not mangled", "-8",
	  "[transport]\nroutes = example.org=[127.0.0.1]:%d\n", "example.org",
	  QUEUE_BODY_8BITMIME, msg_8bit, 0, true, "5.6.3", NULL, false, false },
	{ "binary body without BINARYMIME/CHUNKING", "",
	  "[transport]\nroutes = example.org=[127.0.0.1]:%d\n", "example.org",
	  QUEUE_BODY_BINARYMIME, msg_8bit, 0, true, "5.6.3", NULL, false, false },
	{ "SMTPUTF8 needed, not offered: permanent", "",
	  "[transport]\nroutes = example.org=[127.0.0.1]:%d\n", "example.org",
	  QUEUE_BODY_8BITMIME, msg_8bit, 0, true, "5.6.7", NULL, false, true },
	{ "RCPT 4xx: temporary per recipient", "-r rcpt",
	  "[transport]\nroutes = example.org=[127.0.0.1]:%d\n", "example.org",
	  QUEUE_BODY_7BIT, msg_7bit, 450, false, "4.3.0", NULL, false, false },
	{ "RCPT 5xx: permanent per recipient", "-f rcpt",
	  "[transport]\nroutes = example.org=[127.0.0.1]:%d\n", "example.org",
	  QUEUE_BODY_7BIT, msg_7bit, 500, true, "5.3.0", NULL, false, false },
	{ "RCPT 4xx without PIPELINING", "-p -r rcpt",
	  "[transport]\nroutes = example.org=[127.0.0.1]:%d\n", "example.org",
	  QUEUE_BODY_7BIT, msg_7bit, 450, false, "4.3.0", NULL, false, false },
	{ "MAIL 5xx: permanent for all", "-f mail",
	  "[transport]\nroutes = example.org=[127.0.0.1]:%d\n", "example.org",
	  QUEUE_BODY_7BIT, msg_7bit, 500, true, "5.3.0", NULL, false, false },
	{ "DATA 4xx: temporary for all", "-r data",
	  "[transport]\nroutes = example.org=[127.0.0.1]:%d\n", "example.org",
	  QUEUE_BODY_7BIT, msg_7bit, 450, false, "4.3.0", NULL, false, false },
	{ "connection lost mid-transaction: temporary", "-q data",
	  "[transport]\nroutes = example.org=[127.0.0.1]:%d\n", "example.org",
	  QUEUE_BODY_7BIT, msg_7bit, 0, false, "4.4.2", NULL, false, false },
	{ "EHLO refused: HELO", "-e",
	  "[transport]\nroutes = example.org=[127.0.0.1]:%d\n", "example.org",
	  QUEUE_BODY_7BIT, msg_7bit, 250, false, "2.0.0", NULL, true, false },
	{ "relay with AUTH, no TLS", "",
	  "[relay]\nhost = 127.0.0.1\nport = %d\ntls = none\nusername = relayuser\n"
	  "password = secret\n", "far.example", QUEUE_BODY_7BIT, msg_7bit, 250, false,
	  "2.0.0", "127.0.0.1", true, false },
	{ "relay refuses AUTH: temporary", "-f auth",
	  "[relay]\nhost = 127.0.0.1\nport = %d\ntls = none\nusername = relayuser\n"
	  "password = secret\n", "far.example", QUEUE_BODY_7BIT, msg_7bit, 500, false,
	  "5.3.0", NULL, false, false },
	{ "relay without AUTH offered: temporary", "-a",
	  "[relay]\nhost = 127.0.0.1\nport = %d\ntls = none\nusername = relayuser\n"
	  "password = secret\n", "far.example", QUEUE_BODY_7BIT, msg_7bit, 0, false,
	  "4.7.0", NULL, false, false },
	{ "tls_policy encrypt, no STARTTLS: temporary", "",
	  "tls_policy_map = example.org=encrypt\n"
	  "[transport]\nroutes = example.org=[127.0.0.1]:%d\n", "example.org",
	  QUEUE_BODY_7BIT, msg_7bit, 0, false, "4.7.4", NULL, false, false },
	{ "nobody listens: temporary", NULL,
	  "[transport]\nroutes = example.org=[127.0.0.1]:%d\n", "example.org",
	  QUEUE_BODY_7BIT, msg_7bit, 0, false, "4.4.1", NULL, false, false },
};

static void check_case(struct event_base *base, const struct smtpc_case *tc, int index)
{
	static const char *const rcpts[] = { "bob@dest.test", "carol@dest.test" };
	char dump_dir[256], extra[1024];
	struct outcome o;
	pid_t sink = 0;

	fprintf(stderr, "case: %s\n", tc->name);
	snprintf(dump_dir, sizeof(dump_dir), "%s/sink%d", tmp_dir, index);
	if (tc->sink_opts != NULL)
		sink = start_sink(dump_dir, tc->sink_opts);
	else
		sink_port = free_port();
	snprintf(extra, sizeof(extra), tc->config, sink_port);
	struct yubin_config *config = make_config(extra);
	deliver_smtputf8 = tc->smtputf8;
	deliver(base, config, tc->domain, rcpts, 2, tc->body_type, tc->body, strlen(tc->body), &o);
	deliver_smtputf8 = false;
	for (size_t i = 0; i < o.count; i++) {
		CHECK_INT(o.results[i].code, tc->code);
		CHECK_INT(o.results[i].permanent, tc->permanent);
		CHECK_STR(o.results[i].enhanced, tc->enhanced);
		CHECK(o.results[i].text != NULL);
		if (tc->remote_host != NULL)
			CHECK_STR(o.results[i].remote_host, tc->remote_host);
		if (o.results[i].code != tc->code || strcmp(o.results[i].enhanced, tc->enhanced) != 0)
			fprintf(stderr, "  text: %s\n", o.results[i].text);
	}
	CHECK_INT(o.count, 2);
	outcome_free(&o);
	smtpc_shutdown();
	stop(&sink);
	size_t count;
	char *got = tc->sink_opts != NULL ? read_dump(dump_dir, &count) : NULL;
	CHECK_INT(got != NULL, tc->delivered);
	if (got != NULL && tc->delivered) {
		char *want = as_dumped(tc->body);
		CHECK_STR(got, want);
		CHECK_INT(count, 1);
		free(want);
	}
	free(got);
	config_free(&config);
}

/* ---- cases that need more than one delivery ---- */

static int counter_value(const char *dump_dir, const char *name)
{
	char path[512], data[4096];
	snprintf(path, sizeof(path), "%s/counters", dump_dir);
	int fd = open(path, O_RDONLY), value = -1;
	ssize_t n = fd < 0 ? -1 : read(fd, data, sizeof(data) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return -1;
	data[n] = '\0';
	/* The last "sess=N quit=N mesg=N" line. */
	for (char *p = strstr(data, name); p != NULL; p = strstr(p + 1, name))
		value = (int)strtol(p + strlen(name), NULL, 10);
	return value;
}

static void check_reuse(struct event_base *base, const char *reuse_time, int want_sessions)
{
	static const char *const rcpts[] = { "bob@dest.test" };
	char dump_dir[256], extra[512];
	struct outcome o;
	snprintf(dump_dir, sizeof(dump_dir), "%s/reuse-%s", tmp_dir, reuse_time);
	pid_t sink = start_sink(dump_dir, "");
	snprintf(extra, sizeof(extra), "reuse_time = %s\n[transport]\nroutes = example.org=[127.0.0.1]:%d\n",
		 reuse_time, sink_port);
	struct yubin_config *config = make_config(extra);
	for (int i = 0; i < 3; i++) {
		deliver(base, config, "example.org", rcpts, 1, QUEUE_BODY_7BIT, msg_7bit,
			strlen(msg_7bit), &o);
		CHECK_INT(o.count == 1 ? o.results[0].code : 0, 250);
		outcome_free(&o);
	}
	smtpc_shutdown();
	/* The sockets close when the loop runs; the sink counts a session
	 * when it ends (1 is start_sink's probe). */
	event_base_loop(base, EVLOOP_NONBLOCK);
	usleep(200000);
	stop(&sink);
	CHECK_INT(counter_value(dump_dir, "mesg="), 3);
	CHECK_INT(counter_value(dump_dir, "sess="), want_sessions + 1);
	config_free(&config);
}

/* An idle connection past reuse_time says QUIT on its own. */
static void check_idle_expiry(struct event_base *base)
{
	static const char *const rcpts[] = { "bob@dest.test" };
	char dump_dir[256], extra[512];
	struct outcome o;
	snprintf(dump_dir, sizeof(dump_dir), "%s/idle", tmp_dir);
	pid_t sink = start_sink(dump_dir, "");
	snprintf(extra, sizeof(extra),
		 "reuse_time = 200ms\n[transport]\nroutes = example.org=[127.0.0.1]:%d\n", sink_port);
	struct yubin_config *config = make_config(extra);
	deliver(base, config, "example.org", rcpts, 1, QUEUE_BODY_7BIT, msg_7bit,
		strlen(msg_7bit), &o);
	outcome_free(&o);
	struct timeval tv = { 0, 600000 };
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	usleep(200000);
	stop(&sink);
	CHECK_INT(counter_value(dump_dir, "sess="), 2);
	CHECK_INT(counter_value(dump_dir, "quit="), 1);
	smtpc_shutdown();
	config_free(&config);
}

/* A large body with many dot lines: streamed in chunks, byte-identical. */
static void check_large(struct event_base *base)
{
	static const char *const rcpts[] = { "bob@dest.test" };
	char dump_dir[256], extra[256];
	struct buf body = BUF_INIT(0);
	struct outcome o;
	size_t count;
	buf_append_str(&body, "Subject: large\r\n\r\n");
	for (int i = 0; body.len < 3 * 1024 * 1024; i++)
		buf_printf(&body, "%s%d %s\r\n", i % 3 == 0 ? "." : "", i,
			   "the quick brown fox jumps over the lazy dog, again and again");
	snprintf(dump_dir, sizeof(dump_dir), "%s/large", tmp_dir);
	pid_t sink = start_sink(dump_dir, "");
	snprintf(extra, sizeof(extra), "[transport]\nroutes = example.org=[127.0.0.1]:%d\n", sink_port);
	struct yubin_config *config = make_config(extra);
	deliver(base, config, "example.org", rcpts, 1, QUEUE_BODY_7BIT, body.data, body.len, &o);
	CHECK_INT(o.count == 1 ? o.results[0].code : 0, 250);
	outcome_free(&o);
	smtpc_shutdown();
	stop(&sink);
	char *got = read_dump(dump_dir, &count), *want = as_dumped(body.data);
	CHECK(got != NULL && strcmp(got, want) == 0);
	free(got);
	free(want);
	buf_free(&body);
	config_free(&config);
}

/* No DNS server answers: a temporary failure, not a bounce. */
static void check_dns_timeout(struct event_base *base)
{
	static const char *const rcpts[] = { "bob@a.test" };
	struct outcome o;
	int saved = dns_port;
	dns_port = free_port();
	struct yubin_config *config = make_config("");
	dns_port = saved;
	deliver(base, config, "a.test", rcpts, 1, QUEUE_BODY_7BIT, msg_7bit, strlen(msg_7bit), &o);
	CHECK_INT(o.count == 1 ? o.results[0].permanent : 1, 0);
	CHECK_STR(o.count == 1 ? o.results[0].enhanced : "", "4.4.3");
	outcome_free(&o);
	config_free(&config);
}

/* Cancel before anything happened: no callback, nothing leaks. */
static void check_cancel(struct event_base *base)
{
	static const char *const rcpts[] = { "bob@a.test" };
	struct smtpc_request req = {
		.domain = "a.test", .sender = "", .rcpts = rcpts, .rcpt_count = 1, .fd = -1,
	};
	struct outcome o = { .base = base };
	struct yubin_config *config = make_config("");
	struct smtpc *c = smtpc_deliver(base, config, &req, on_result, &o);
	smtpc_cancel(&c);
	CHECK(c == NULL);
	struct timeval tv = { 0, 300000 };
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	CHECK(!o.done);
	config_free(&config);
}

static void wait_for_dns(struct event_base *base, const struct yubin_config *config);
static void check_yubin(struct event_base *base);

int main(void)
{
	if (access(UNBOUND, X_OK) != 0 || access(SINK, X_OK) != 0) {
		printf("unbound or smtp-sink missing: skipped\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	atexit(kill_children);
	if (mkdtemp(tmp_dir) == NULL)
		return 1;
	chmod(tmp_dir, 0755);
	start_unbound();
	struct event_base *base = event_base_new();
	struct yubin_config *config = make_config("");
	wait_for_dns(base, config);
	config_free(&config);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(base, &cases[i], (int)i);
	check_reuse(base, "5s", 1);
	check_reuse(base, "0", 3);
	check_idle_expiry(base);
	check_large(base);
	check_dns_timeout(base);
	check_cancel(base);
	check_yubin(base);

	event_base_free(base);
	stop(&unbound_pid);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp_dir);
	if (test_failed == 0 && system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmp_dir);
	return test_report();
}

/* ---- waiting for unbound ---- */

struct dns_wait {
	struct event_base *base;
	enum dns_status status;
	bool done;
};

static void on_dns(void *context, struct dns_result *result)
{
	struct dns_wait *w = context;
	w->status = result->status;
	w->done = true;
	dns_result_free(&result);
	event_base_loopbreak(w->base);
}

static void wait_for_dns(struct event_base *base, const struct yubin_config *config)
{
	for (int i = 0; i < 50; i++) {
		struct dns_wait w = { .base = base };
		dns_lookup_mx(base, config, "a.test", on_dns, &w);
		event_base_dispatch(base);
		if (w.status == DNS_OK)
			return;
		usleep(100000);
	}
	fprintf(stderr, "unbound did not answer; see %s/unbound.log\n", tmp_dir);
	exit(1);
}

/* ---- STARTTLS, verification, BDAT: against a real `yubin serve` ---- */

/* The yubin binary of this build (tests run in <build>/tests/unit). */
static char *yubin_binary(void)
{
	char self[512];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return NULL;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (slash == NULL)
		return NULL;
	*slash = '\0';
	char *path = xasprintf("%s/../../yubin", self);
	if (access(path, X_OK) != 0) {
		free(path);
		return NULL;
	}
	return path;
}

static char *read_text(const char *path)
{
	struct buf b = BUF_INIT(0);
	char chunk[65536];
	int fd = open(path, O_RDONLY);
	ssize_t n;
	while (fd >= 0 && (n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_append(&b, chunk, (size_t)n);
	if (fd >= 0)
		close(fd);
	buf_append_str(&b, "");
	return buf_steal(&b);
}

/* yubin's smtp, submission (STARTTLS) and submissions (TLS) ports. */
static int yubin_port[3];
static const char *const yubin_listeners[3] = {
	"[listener smtp]", "[listener submission]", "[listener submissions]",
};

/* Every "port = N" of the config `yubin init` wrote gets a free port;
 * the smtp listener's is returned. */
static int yubin_ports(const char *conf_path)
{
	char *text = read_text(conf_path);
	struct buf out = BUF_INIT(0);
	int current = -1;
	for (char *line = text; *line != '\0';) {
		size_t len = strcspn(line, "\n");
		for (int i = 0; i < 3 && strncmp(line, "[listener", 9) == 0; i++) {
			current = strncmp(line, yubin_listeners[i], strlen(yubin_listeners[i])) == 0
					  ? i : (current == i ? -1 : current);
		}
		if (strncmp(line, "port = ", 7) == 0) {
			int port = free_port();
			if (current >= 0)
				yubin_port[current] = port;
			buf_printf(&out, "port = %d\n", port);
		} else {
			buf_append(&out, line, len);
			buf_append_char(&out, '\n');
		}
		line += len;
		if (*line == '\n')
			line++;
	}
	write_file(conf_path, out.data, out.len);
	buf_free(&out);
	free(text);
	return yubin_port[0];
}

static pid_t start_yubin(const char *bin, const char *dir, int *port_r)
{
	char cmd[2048], conf[1024], log[512];
	snprintf(cmd, sizeof(cmd),
		 "%s init %s --hostname mx.relay.test --domain dest.test %s >%s/init.log 2>&1",
		 bin, dir, getuid() == 0 ? "--user nobody" : "", tmp_dir);
	if (system(cmd) != 0)
		return 0;
	snprintf(conf, sizeof(conf), "%s/yubin.conf", dir);
	*port_r = yubin_ports(conf);
	snprintf(cmd, sizeof(cmd),
		 "printf 'Bob-passw0rd!\\nBob-passw0rd!\\n' | %s -c %s user add bob@dest.test "
		 ">>%s/init.log 2>&1", bin, conf, tmp_dir);
	if (system(cmd) != 0)
		return 0;
	snprintf(log, sizeof(log), "%s/serve.log", tmp_dir);
	char *argv[] = { (char *)bin, "-c", conf, "serve", NULL };
	pid_t pid = spawn(argv, log);
	for (int i = 0; i < 200; i++) {
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(*port_r) };
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
		close(fd);
		if (ok)
			return pid;
		usleep(50000);
	}
	return pid;
}

/* A message in bob's INBOX (or NULL), and how many there are; with
 * `clear`, they are removed, so that the next case sees only its own. */
static char *bob_message(const char *dir, size_t *count_r, bool clear)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/data/mail/dest.test/bob/new", dir);
	DIR *d = opendir(path);
	struct dirent *de;
	char *found = NULL;
	*count_r = 0;
	while (d != NULL && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		(*count_r)++;
		if (clear && found != NULL)
			unlink(found);
		free(found);
		found = xasprintf("%s/%s", path, de->d_name);
	}
	if (d != NULL)
		closedir(d);
	char *text = found != NULL ? read_text(found) : NULL;
	if (clear && found != NULL)
		unlink(found);
	free(found);
	return text;
}

struct yubin_case {
	const char *name;
	/* %1$d: yubin's smtp port, %2$s: its certificate, %3$d: submission
	 * (STARTTLS), %4$d: submissions (TLS) */
	const char *config;
	enum queue_body body_type;
	const char *body;
	bool smtputf8;
	unsigned int code;
	const char *enhanced;
	const char *in_message;   /* the delivered file contains this */
	uint64_t size;            /* the size announced; 0 = the body's */
};

static const char msg_bob[] =
	"From: bob@dest.test\r\nTo: bob@dest.test\r\nSubject: via the relay\r\n\r\nhello\r\n";
static const char msg_utf8[] =
	"From: =?utf-8?b?44GC?= <alice@client.test>\r\nSubject: utf8\r\n\r\n"
	"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\r\n";

static const struct yubin_case yubin_cases[] = {
	{ "STARTTLS verified (self-signed cert as ca_file)",
	  "tls_policy = verify\nca_file = %2$s\n"
	  "[transport]\nroutes = dest.test=[mx.relay.test]:%1$d\n",
	  QUEUE_BODY_7BIT, msg_7bit, false, 250, "2.0.0", "(using TLSv1.3", 0 },
	{ "STARTTLS opportunistic (may), 8BITMIME",
	  "[transport]\nroutes = dest.test=[127.0.0.1]:%1$d\n",
	  QUEUE_BODY_8BITMIME, msg_8bit, false, 250, "2.0.0", "(using TLSv1.3", 0 },
	{ "tls_policy none: plaintext",
	  "tls_policy = none\n[transport]\nroutes = dest.test=[127.0.0.1]:%1$d\n",
	  QUEUE_BODY_7BIT, msg_7bit, false, 250, "2.0.0", "with ESMTP id", 0 },
	{ "BDAT for a binary body (CHUNKING, BINARYMIME)",
	  "[transport]\nroutes = dest.test=[127.0.0.1]:%1$d\n",
	  QUEUE_BODY_BINARYMIME, msg_8bit, false, 250, "2.0.0", "\xe3\x81\x93\xe3\x82\x93", 0 },
	{ "SMTPUTF8",
	  "[transport]\nroutes = dest.test=[127.0.0.1]:%1$d\n",
	  QUEUE_BODY_8BITMIME, msg_utf8, true, 250, "2.0.0", "\xe6\x97\xa5\xe6\x9c\xac", 0 },
	{ "relay: implicit TLS (RFC 8314), verified, AUTH PLAIN",
	  "ca_file = %2$s\n[relay]\nhost = mx.relay.test\nport = %4$d\ntls = implicit\n"
	  "username = bob@dest.test\npassword = Bob-passw0rd!\n",
	  QUEUE_BODY_7BIT, msg_bob, false, 250, "2.0.0", "with ESMTPSA", 0 },
	{ "relay: STARTTLS required, verified, AUTH PLAIN",
	  "ca_file = %2$s\n[relay]\nhost = mx.relay.test\nport = %3$d\ntls = starttls\n"
	  "username = bob@dest.test\npassword = Bob-passw0rd!\n",
	  QUEUE_BODY_7BIT, msg_bob, false, 250, "2.0.0", "with ESMTPSA", 0 },
	{ "relay: wrong password fails temporarily",
	  "ca_file = %2$s\n[relay]\nhost = mx.relay.test\nport = %4$d\ntls = implicit\n"
	  "username = bob@dest.test\npassword = wrong\n",
	  QUEUE_BODY_7BIT, msg_bob, false, 535, "5.7.8", NULL, 0 },
	{ "larger than the peer's SIZE: permanent",
	  "[transport]\nroutes = dest.test=[127.0.0.1]:%1$d\n",
	  QUEUE_BODY_7BIT, msg_7bit, false, 0, "5.3.4", NULL, 1ULL << 40 },
	{ "verify: certificate name mismatch fails temporarily",
	  "tls_policy = verify\nca_file = %2$s\n"
	  "[transport]\nroutes = dest.test=[127.0.0.1]:%1$d\n",
	  QUEUE_BODY_7BIT, msg_7bit, false, 0, "4.4.2", NULL, 0 },
	{ "verify: unknown CA fails temporarily",
	  "tls_policy = verify\n"
	  "[transport]\nroutes = dest.test=[mx.relay.test]:%1$d\n",
	  QUEUE_BODY_7BIT, msg_7bit, false, 0, "4.4.2", NULL, 0 },
};

static void check_yubin_case(struct event_base *base, const struct yubin_case *tc,
			     const char *dir, int port)
{
	static const char *const rcpts[] = { "bob@dest.test" };
	char extra[2048], cert[1024];
	struct outcome o;
	size_t before, after;
	fprintf(stderr, "case: yubin: %s\n", tc->name);
	snprintf(cert, sizeof(cert), "%s/data/tls/cert.pem", dir);
	snprintf(extra, sizeof(extra), tc->config, port, cert, yubin_port[1], yubin_port[2]);
	struct yubin_config *config = make_config(extra);
	free(bob_message(dir, &before, true));
	before = 0;
	struct smtpc_request req = {
		.domain = "dest.test", .rcpts = rcpts,
		.sender = tc->body == msg_bob ? "bob@dest.test" : "alice@client.test",
		.rcpt_count = 1, .body = tc->body_type,
		.size = tc->size != 0 ? tc->size : strlen(tc->body),
		.smtputf8 = tc->smtputf8,
	};
	struct timeval limit = { 30, 0 };
	memset(&o, 0, sizeof(o));
	o.base = base;
	req.fd = message_fd(tc->body, strlen(tc->body));
	smtpc_deliver(base, config, &req, on_result, &o);
	event_base_loopexit(base, &limit);
	event_base_dispatch(base);
	close(req.fd);
	CHECK(o.done && o.count == 1);
	if (o.count == 1) {
		CHECK_INT(o.results[0].code, tc->code);
		CHECK_STR(o.results[0].enhanced, tc->enhanced);
		CHECK_INT(o.results[0].permanent, tc->code == 0 && tc->enhanced[0] == '5');
		if (o.results[0].code != tc->code)
			fprintf(stderr, "  text: %s\n", o.results[0].text);
	}
	outcome_free(&o);
	smtpc_shutdown();
	char *msg = bob_message(dir, &after, true);
	CHECK_INT(after, before + (tc->in_message != NULL ? 1 : 0));
	if (tc->in_message != NULL)
		CHECK(msg != NULL && strstr(msg, tc->in_message) != NULL);
	free(msg);
	config_free(&config);
}

static void check_yubin(struct event_base *base)
{
	char *bin = yubin_binary();
	char dir[256];
	int port = 0;
	if (bin == NULL) {
		fprintf(stderr, "no yubin binary next to the tests: STARTTLS cases skipped\n");
		return;
	}
	snprintf(dir, sizeof(dir), "%s/yubin", tmp_dir);
	pid_t pid = start_yubin(bin, dir, &port);
	CHECK(pid > 0 && port > 0);
	for (size_t i = 0; pid > 0 && i < sizeof(yubin_cases) / sizeof(yubin_cases[0]); i++)
		check_yubin_case(base, &yubin_cases[i], dir, port);
	stop(&pid);
	free(bin);
}

/* The outbound queue: the envelope file format (round trip, torn and bad
 * files refused, temp files ignored), atomic state updates, the retry
 * schedule, the outcome bookkeeping of the runner and the RFC 3464
 * reports it queues, checked through the MIME parser. */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "mime/mime.h"
#include "smtp/queue-private.h"
#include "smtp/queue-runner-private.h"
#include "test.h"

static struct yubin_config config;
static char *qdir;

static struct queue_entry *sample_entry(void)
{
	static struct queue_rcpt rcpts[] = {
		{ .address = "bob@example.org", .orcpt = "rfc822;Bob@Example.org",
		  .notify = QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY },
		{ .address = "carol@example.net", .notify = 0 },
		{ .address = "%odd\tname@example.net", .notify = QUEUE_NOTIFY_NEVER },
	};
	struct queue_envelope env = {
		.sender = "alice@example.ac.jp", .ret = QUEUE_RET_HDRS, .envid = "env 42%",
		.body = QUEUE_BODY_8BITMIME, .smtputf8 = true, .rcpts = rcpts,
		.rcpt_count = 3, .origin = "submission alice@example.ac.jp",
	};
	struct queue_entry *e = queue_entry_new("0005c3a1b2c3d4-1f2e3d4c", &env, 1700000000);
	e->size = 1234;
	e->warned = true;
	e->status[1].state = QUEUE_RCPT_HELD;
	e->status[1].attempts = 3;
	e->status[1].next_attempt = 1700003600;
	e->status[1].last_reply = xstrdup("451 4.3.0 try\r\nagain 100%");
	e->status[2].state = QUEUE_RCPT_FAILED;
	return e;
}

static void test_round_trip(void)
{
	struct queue_entry *e = sample_entry();
	struct buf text = BUF_INIT(0), again = BUF_INIT(0);
	const char *error = NULL;
	queue_entry_format(e, &text);
	struct queue_entry *p = queue_entry_parse(e->id, buf_str(&text), text.len, &error);
	CHECK(p != NULL);
	if (p != NULL) {
		CHECK_STR(p->env.sender, "alice@example.ac.jp");
		CHECK_STR(p->env.envid, "env 42%");
		CHECK_STR(p->env.origin, "submission alice@example.ac.jp");
		CHECK_INT(p->env.ret, QUEUE_RET_HDRS);
		CHECK_INT(p->env.body, QUEUE_BODY_8BITMIME);
		CHECK(p->env.smtputf8 && p->warned);
		CHECK_INT(p->arrival, 1700000000);
		CHECK_INT(p->size, 1234);
		CHECK_INT(p->env.rcpt_count, 3);
		CHECK_STR(p->env.rcpts[0].orcpt, "rfc822;Bob@Example.org");
		CHECK(p->env.rcpts[1].orcpt == NULL);
		CHECK_STR(p->env.rcpts[2].address, "%odd\tname@example.net");
		CHECK_INT(p->env.rcpts[0].notify, QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY);
		CHECK_INT(p->status[1].state, QUEUE_RCPT_HELD);
		CHECK_INT(p->status[1].attempts, 3);
		CHECK_INT(p->status[1].next_attempt, 1700003600);
		CHECK_STR(p->status[1].last_reply, "451 4.3.0 try\r\nagain 100%");
		CHECK_INT(p->status[2].state, QUEUE_RCPT_FAILED);
		queue_entry_format(p, &again);
		CHECK_STR(buf_str(&again), buf_str(&text));
	}
	/* Every line is one line: the reply's CR LF were escaped. */
	CHECK(strstr(buf_str(&text), "try%0D%0Aagain 100%25") != NULL);
	queue_entry_free(&p);
	queue_entry_free(&e);
	buf_free(&text);
	buf_free(&again);
}

static void test_torn_and_bad(void)
{
	struct queue_entry *e = sample_entry();
	struct buf text = BUF_INIT(0);
	const char *error;
	queue_entry_format(e, &text);
	size_t refused = 0;
	/* Every proper prefix (a torn write) is refused. */
	for (size_t len = 0; len < text.len; len++) {
		struct queue_entry *p = queue_entry_parse("x", buf_str(&text), len, &error);
		refused += p == NULL;
		queue_entry_free(&p);
	}
	CHECK_INT(refused, text.len);
	static const char *const bad[] = {
		"yubin-queue 2\nsender a@b\nrcpt c@d\nend\n",
		"yubin-queue 1\nsender a@b\nend\n",
		"yubin-queue 1\nrcpt c@d\nend\n",
		"yubin-queue 1\nsender a@b\nrcpt c@d\nstate lost\nend\n",
		"yubin-queue 1\nsender a@b\nrcpt c@d\nbogus 1\nend\n",
		"yubin-queue 1\nsender a@b\nrcpt c@d\nattempts -1\nend\n",
		"yubin-queue 1\nsender a@b\nrcpt c@d\nreply x%00y\nend\n",
		"yubin-queue 1\nsender a@b\nrcpt c@d\nreply x%4\nend\n",
		"yubin-queue 1\nsender a@b\nstate pending\nrcpt c@d\nend\n",
		"yubin-queue 1\nsender a@b\nrcpt c@d\nend\nsender x@y\n",
		"yubin-queue 1\nsender a@b\nsender c@d\nrcpt c@d\nend\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct queue_entry *p = queue_entry_parse("x", bad[i], strlen(bad[i]), &error);
		if (p != NULL)
			fprintf(stderr, "accepted bad file %zu\n", i);
		CHECK(p == NULL);
		queue_entry_free(&p);
	}
	const char *good = "yubin-queue 1\nsender \nrcpt c@d\nend\n";
	struct queue_entry *p = queue_entry_parse("x", good, strlen(good), &error);
	CHECK(p != NULL && p->env.sender[0] == '\0' && p->status[0].state == QUEUE_RCPT_PENDING);
	queue_entry_free(&p);
	queue_entry_free(&e);
	buf_free(&text);
}

static char *commit_message(const char *sender, const char *rcpt, unsigned notify,
                            const char *body)
{
	const char *error;
	struct queue_rcpt r = { .address = (char *)rcpt, .notify = notify };
	struct queue_envelope env = { .sender = (char *)sender, .rcpts = &r, .rcpt_count = 1,
				      .origin = "test" };
	struct queue_msg *msg = queue_create(&config, &env, &error);
	char *id = NULL;
	CHECK(msg != NULL);
	CHECK_INT(queue_write(msg, body, strlen(body), &error), 0);
	CHECK_INT(queue_commit(&msg, &id, &error), 0);
	CHECK(msg == NULL);
	return id;
}

static bool file_exists(const char *id, const char *suffix)
{
	char *path = xasprintf("%s/%s%s", qdir, id, suffix);
	bool ok = access(path, F_OK) == 0;
	free(path);
	return ok;
}

static void write_text(const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", qdir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	free(path);
}

static void clear_queue(void)
{
	char **ids;
	size_t count;
	const char *error;
	queue_list(qdir, &ids, &count, &error);
	for (size_t i = 0; i < count; i++)
		queue_entry_remove(qdir, ids[i], &error);
	queue_list_free(ids, count);
}

static void test_files(void)
{
	const char *error;
	char *id = commit_message("a@example.org", "b@example.net", 0, "Subject: x\r\n\r\nbody\r\n");
	CHECK(queue_id_valid(id));
	CHECK(file_exists(id, ".msg") && file_exists(id, ".env"));
	/* A torn temp envelope, a message whose envelope was never written
	 * and a stray name are not messages. */
	write_text("0005c3a1b2c3d4-00000001.env.tmp", "yubin-queue 1\nsender a@b\nrcp");
	write_text("0005c3a1b2c3d4-00000002.msg", "Subject: half\r\n");
	write_text("../escape.env", "x");
	write_text("NOT-AN-ID.env", "yubin-queue 1\nsender a@b\nrcpt c@d\nend\n");
	char **ids;
	size_t count;
	CHECK_INT(queue_list(qdir, &ids, &count, &error), 0);
	CHECK_INT(count, 1);
	if (count == 1)
		CHECK_STR(ids[0], id);
	queue_list_free(ids, count);

	struct queue_entry *e = NULL;
	CHECK_INT(queue_entry_read(qdir, id, &e, &error), 1);
	CHECK(e != NULL && e->size == strlen("Subject: x\r\n\r\nbody\r\n"));
	if (e != NULL) {
		e->status[0].state = QUEUE_RCPT_HELD;
		CHECK_INT(queue_entry_write(qdir, e, &error), 0);
		CHECK(!file_exists(id, ".env.tmp"));
		queue_entry_free(&e);
	}
	CHECK_INT(queue_entry_read(qdir, id, &e, &error), 1);
	CHECK(e != NULL && e->status[0].state == QUEUE_RCPT_HELD);
	queue_entry_free(&e);
	CHECK_INT(queue_entry_read(qdir, "0005c3a1b2c3d4-99999999", &e, &error), 0);
	CHECK_INT(queue_entry_remove(qdir, id, &error), 0);
	CHECK(!file_exists(id, ".msg") && !file_exists(id, ".env"));
	free(id);
	id = NULL;

	/* Crash leftovers go once old; a committed message stays. */
	id = commit_message("a@example.org", "b@example.net", 0, "x\r\n");
	CHECK_INT(queue_cleanup(qdir, time(NULL), 3600), 0);
	CHECK_INT(queue_cleanup(qdir, time(NULL) + 7200, 3600), 2);
	CHECK(file_exists(id, ".msg") && file_exists(id, ".env"));
	CHECK(!file_exists("0005c3a1b2c3d4-00000002", ".msg"));
	CHECK(!file_exists("0005c3a1b2c3d4-00000001", ".env.tmp"));
	queue_entry_remove(qdir, id, &error);
	free(id);

	/* queue_abort leaves nothing behind. */
	struct queue_rcpt r = { .address = "b@example.net" };
	struct queue_envelope env = { .sender = "", .rcpts = &r, .rcpt_count = 1 };
	struct queue_msg *msg = queue_create(&config, &env, &error);
	queue_write(msg, "x", 1, &error);
	queue_abort(&msg);
	CHECK_INT(queue_list(qdir, &ids, &count, &error), 0);
	CHECK_INT(count, 0);
	queue_list_free(ids, count);
}

static void test_retry_schedule(void)
{
	static const struct {
		uint32_t attempts;
		uint64_t want;
	} cases[] = {
		{ 1, 300 }, { 2, 600 }, { 3, 1200 }, { 4, 2400 }, { 5, 3600 }, { 6, 3600 },
		{ 50, 3600 }, { 4000000000u, 3600 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK_INT(queue_retry_delay(&config, cases[i].attempts), cases[i].want);
	static const struct {
		unsigned notify, kind;
		bool want;
	} wants[] = {
		{ 0, QUEUE_NOTIFY_FAILURE, true },  { 0, QUEUE_NOTIFY_DELAY, true },
		{ 0, QUEUE_NOTIFY_SUCCESS, false }, { QUEUE_NOTIFY_NEVER, QUEUE_NOTIFY_FAILURE, false },
		{ QUEUE_NOTIFY_SUCCESS, QUEUE_NOTIFY_SUCCESS, true },
		{ QUEUE_NOTIFY_SUCCESS, QUEUE_NOTIFY_FAILURE, false },
		{ QUEUE_NOTIFY_DELAY, QUEUE_NOTIFY_DELAY, true },
	};
	for (size_t i = 0; i < sizeof(wants) / sizeof(wants[0]); i++)
		CHECK(queue_notify_wants(wants[i].notify, wants[i].kind) == wants[i].want);
}

/* ---- RFC 3464 reports ---- */

static bool matches(const char *re, const char *text)
{
	regex_t rx;
	if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB | REG_NEWLINE) != 0)
		return false;
	bool ok = regexec(&rx, text, 0, NULL, 0) == 0;
	regfree(&rx);
	return ok;
}

/* RFC 3464 2.1: per-message fields, then per-recipient groups, each a
 * block of "Name: value" lines separated by one empty line. */
static void check_status_syntax(const char *body, size_t len, size_t want_rcpts,
                                const char *want_action)
{
	char *text = xstrndup(body, len);
	char *p = text;
	size_t block = 0, rcpts = 0;
	bool has_reporting = false;
	while (*p != '\0') {
		char *end = strstr(p, "\r\n\r\n");
		if (end != NULL)
			*end = '\0';
		if (block == 0) {
			has_reporting = matches("^Reporting-MTA: dns; [a-z.]+\r?$", p);
			CHECK(matches("^Arrival-Date: [A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} "
			              "[0-9:]{8} [+-][0-9]{4}\r?$", p));
		} else if (*p != '\0') {
			rcpts++;
			CHECK(matches("^Final-Recipient: rfc822; [^ ]+@[^ ]+\r?$", p));
			CHECK(matches("^Action: (failed|delayed|delivered|relayed|expanded)\r?$", p));
			CHECK(matches("^Status: [245]\\.[0-9]{1,3}\\.[0-9]{1,3}\r?$", p));
			char *want = xasprintf("^Action: %s\r?$", want_action);
			CHECK(matches(want, p));
			free(want);
		}
		/* Every line is a field or a folded continuation. */
		CHECK(!matches("^[^A-Za-z \t]", p));
		block++;
		p = end != NULL ? end + 4 : p + strlen(p);
	}
	CHECK(has_reporting);
	CHECK_INT(rcpts, want_rcpts);
	free(text);
}

static const struct mime_part *child(const struct mime_part *part, unsigned n)
{
	const struct mime_part *c = part->children;
	while (c != NULL && n-- > 0)
		c = c->next;
	return c;
}

static bool part_is(const struct mime_part *p, const char *type, const char *subtype)
{
	return p != NULL && p->type != NULL && p->subtype != NULL &&
	       strcasecmp(p->type, type) == 0 && strcasecmp(p->subtype, subtype) == 0;
}

static void check_report(const char *data, size_t len, const char *action, size_t rcpts,
                         const char *orig_type, const char *orig_subtype)
{
	static const struct mime_limits limits = { 20, 1000, 1 << 20, 1 << 20 };
	struct mime_part *root = mime_parse(data, len, &limits);
	CHECK(part_is(root, "multipart", "report"));
	if (root == NULL)
		return;
	CHECK_STR(mime_param_get(root->params, root->param_count, "report-type"), "delivery-status");
	/* A returned message/rfc822 is a part with its own body part inside. */
	CHECK_INT(mime_part_count(root), strcmp(orig_type, "message") == 0 ? 5 : 4);
	CHECK(part_is(child(root, 0), "text", "plain"));
	const struct mime_part *st = child(root, 1);
	CHECK(part_is(st, "message", "delivery-status"));
	CHECK(part_is(child(root, 2), orig_type, orig_subtype));
	if (st != NULL)
		check_status_syntax(data + st->body_offset, st->body_size, rcpts, action);
	char *h = xstrndup(data, root->header_size);
	CHECK(matches("^From: Mail Delivery System <MAILER-DAEMON@mx.example.ac.jp>\r?$", h));
	CHECK(matches("^Auto-Submitted: auto-replied\r?$", h));
	free(h);
	mime_part_free(&root);
}

static int message_fd(const char *text)
{
	char path[] = "/tmp/test-queue-msg-XXXXXX";
	int fd = mkstemp(path);
	unlink(path);
	CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	return fd;
}

static void test_dsn_build(void)
{
	const char *orig = "From: alice@example.ac.jp\r\nSubject: hi\r\n\r\nbody line\r\n";
	int fd = message_fd(orig);
	struct queue_entry *e = sample_entry();
	e->env.ret = QUEUE_RET_DEFAULT;
	e->env.smtputf8 = false;
	e->size = strlen(orig);
	struct dsn_rcpt rc[] = {
		{ .address = "bob@example.org", .orcpt = "rfc822;Bob@Example.org",
		  .action = DSN_ACTION_FAILED, .status = "5.1.1", .remote_mta = "mx.example.org",
		  .diagnostic = "550 5.1.1 <bob@example.org>: no such user\x01" },
		{ .address = "carol@example.net", .action = DSN_ACTION_FAILED, .status = "4.4.7",
		  .diagnostic = "451 4.4.1 timeout" },
	};
	struct dsn_report report = { .reporting_mta = "mx.example.ac.jp", .entry = e,
				     .now = 1700100000, .rcpts = rc, .count = 2 };
	struct buf out = BUF_INIT(0);
	const char *error;
	CHECK_INT(dsn_build(&report, fd, &out, &error), 0);
	const char *t = buf_str(&out);
	check_report(t, out.len, "failed", 2, "message", "rfc822");
	CHECK(strstr(t, "Original-Recipient: rfc822;Bob@Example.org\r\n") != NULL);
	CHECK(strstr(t, "Original-Envelope-Id: env 42%\r\n") != NULL);
	CHECK(strstr(t, "Remote-MTA: dns; mx.example.org\r\n") != NULL);
	CHECK(strstr(t, "Diagnostic-Code: smtp; 550 5.1.1 <bob@example.org>: no such user?\r\n") !=
	      NULL);
	CHECK(strstr(t, "\r\n\r\nbody line\r\n") != NULL);
	/* No bare LF anywhere. */
	for (size_t i = 0; i < out.len; i++) {
		if (t[i] == '\n' && (i == 0 || t[i - 1] != '\r')) {
			CHECK(!"bare LF");
			break;
		}
	}
	buf_reset(&out);

	/* RET=HDRS, or a delay notice: the header only. */
	rc[0].action = rc[1].action = DSN_ACTION_DELAYED;
	report.retry_until = 1700500000;
	CHECK_INT(dsn_build(&report, fd, &out, &error), 0);
	check_report(buf_str(&out), out.len, "delayed", 2, "text", "rfc822-headers");
	CHECK(strstr(buf_str(&out), "Will-Retry-Until: ") != NULL);
	CHECK(strstr(buf_str(&out), "body line") == NULL);
	CHECK(strstr(buf_str(&out), "Subject: Delayed Mail") != NULL);
	buf_free(&out);
	queue_entry_free(&e);
	close(fd);
}

/* RFC 3464 2.3.6: a reason that is not an SMTP reply is not typed "smtp". */
static void test_dsn_diagnostic_type(void)
{
	const char *orig = "Subject: x\r\n\r\nbody line\r\n";
	int fd = message_fd(orig);
	struct queue_entry *e = sample_entry();
	e->size = strlen(orig);
	struct dsn_rcpt rc[] = {
		{ .address = "dave@example.com", .action = DSN_ACTION_FAILED, .status = "5.1.10",
		  .diagnostic = "the domain accepts no mail (null MX, RFC 7505)" },
	};
	struct dsn_report report = { .reporting_mta = "mx.example.ac.jp", .entry = e,
				     .now = 1700100000, .rcpts = rc, .count = 1 };
	struct buf out = BUF_INIT(0);
	const char *error;
	CHECK_INT(dsn_build(&report, fd, &out, &error), 0);
	CHECK(strstr(buf_str(&out), "Diagnostic-Code: X-Yubin; the domain accepts no mail") != NULL);
	CHECK(strstr(buf_str(&out), "Diagnostic-Code: smtp;") == NULL);
	buf_free(&out);
	queue_entry_free(&e);
	close(fd);
}

/* ---- the runner's bookkeeping ---- */

static struct runner_outcome *outcome(enum runner_result result, const char *status,
                                      const char *diag)
{
	struct runner_outcome *o = xcalloc(1, sizeof(*o));
	o->result = result;
	snprintf(o->status, sizeof(o->status), "%s", status);
	o->diagnostic = xstrdup(diag);
	o->remote = xstrdup("mx.example.net");
	return o;
}

/* The queue's messages other than `except`: how many, and the first. */
static size_t others(const char *except, struct queue_entry **first_r)
{
	char **ids;
	size_t count, n = 0;
	const char *error;
	*first_r = NULL;
	queue_list(qdir, &ids, &count, &error);
	for (size_t i = 0; i < count; i++) {
		if (except != NULL && strcmp(ids[i], except) == 0)
			continue;
		if (n++ == 0)
			queue_entry_read(qdir, ids[i], first_r, &error);
	}
	queue_list_free(ids, count);
	return n;
}

static struct queue_entry *reread(const char *id)
{
	struct queue_entry *e = NULL;
	const char *error;
	return queue_entry_read(qdir, id, &e, &error) == 1 ? e : NULL;
}

static void apply_one(const char *id, enum runner_result result, const char *status,
                      const char *diag, time_t now)
{
	size_t idx = 0;
	struct runner_outcome *o = outcome(result, status, diag);
	int fd = queue_message_open(qdir, id);
	runner_apply(&config, qdir, id, &idx, o, 1, now, fd);
	close(fd);
	runner_outcomes_free(o, 1);
}

static void test_apply_tempfail_and_bounce(void)
{
	const char *body = "Subject: t\r\n\r\nx\r\n";
	char *id = commit_message("alice@example.ac.jp", "bob@example.net", 0, body);
	struct queue_entry *e = reread(id), *dsn;
	time_t arrival = e->arrival;
	queue_entry_free(&e);
	apply_one(id, RUNNER_TEMPFAIL, "4.2.0", "451 4.2.0 busy", arrival + 10);
	e = reread(id);
	CHECK(e != NULL && e->status[0].state == QUEUE_RCPT_PENDING);
	CHECK(e != NULL && e->status[0].attempts == 1 && e->status[0].next_attempt == arrival + 310);
	CHECK_STR(e != NULL ? e->status[0].last_reply : NULL, "451 4.2.0 busy");
	queue_entry_free(&e);
	CHECK_INT(others(id, &dsn), 0);
	/* After delay_warning: one delay notice, once. */
	apply_one(id, RUNNER_TEMPFAIL, "4.2.0", "451 4.2.0 busy", arrival + 4 * 3600 + 1);
	CHECK_INT(others(id, &dsn), 1);
	CHECK(dsn != NULL && dsn->env.sender[0] == '\0' && dsn->env.rcpt_count == 1);
	CHECK_STR(dsn != NULL ? dsn->env.rcpts[0].address : NULL, "alice@example.ac.jp");
	CHECK_STR(dsn != NULL ? dsn->env.origin : NULL, "bounce");
	CHECK(dsn != NULL && dsn->env.rcpts[0].notify == QUEUE_NOTIFY_NEVER);
	queue_entry_free(&dsn);
	clear_queue();
	free(id);

	id = commit_message("alice@example.ac.jp", "bob@example.net", 0, body);
	apply_one(id, RUNNER_TEMPFAIL, "4.2.0", "451 4.2.0 busy", time(NULL) + 4 * 3600 + 1);
	e = reread(id);
	CHECK(e != NULL && e->warned);
	queue_entry_free(&e);
	apply_one(id, RUNNER_TEMPFAIL, "4.2.0", "451 4.2.0 busy", time(NULL) + 5 * 3600);
	CHECK_INT(others(id, &dsn), 1);
	queue_entry_free(&dsn);
	/* Past the lifetime a temporary failure is final: 4.4.7 and a bounce;
	 * the finished message leaves the queue. */
	apply_one(id, RUNNER_TEMPFAIL, "4.2.0", "451 4.2.0 busy", time(NULL) + 6 * 86400);
	CHECK(reread(id) == NULL && !file_exists(id, ".msg"));
	CHECK_INT(others(id, &dsn), 2);
	queue_entry_free(&dsn);
	clear_queue();
	free(id);
}

static void test_apply_notify(void)
{
	static const struct {
		const char *sender;
		unsigned notify;
		enum runner_result result;
		size_t want_notices;
	} cases[] = {
		{ "alice@example.ac.jp", 0, RUNNER_PERMFAIL, 1 },
		{ "", 0, RUNNER_PERMFAIL, 0 },   /* never a bounce for the null sender */
		{ "alice@example.ac.jp", QUEUE_NOTIFY_NEVER, RUNNER_PERMFAIL, 0 },
		{ "alice@example.ac.jp", QUEUE_NOTIFY_DELAY, RUNNER_PERMFAIL, 0 },
		{ "alice@example.ac.jp", 0, RUNNER_OK, 0 },
		{ "alice@example.ac.jp", QUEUE_NOTIFY_SUCCESS, RUNNER_OK, 1 },
		{ "alice@example.ac.jp", QUEUE_NOTIFY_SUCCESS, RUNNER_PERMFAIL, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *id = commit_message(cases[i].sender, "bob@example.net", cases[i].notify,
		                          "Subject: n\r\n\r\nx\r\n");
		bool ok = cases[i].result == RUNNER_OK;
		apply_one(id, cases[i].result, ok ? "2.0.0" : "5.1.1",
		          ok ? "250 2.0.0 ok" : "550 5.1.1 no", time(NULL));
		struct queue_entry *dsn;
		CHECK(reread(id) == NULL);
		size_t n = others(id, &dsn);
		if (n != cases[i].want_notices)
			fprintf(stderr, "notify case %zu: %zu notices\n", i, n);
		CHECK_INT(n, cases[i].want_notices);
		if (dsn != NULL) {
			int fd = queue_message_open(qdir, dsn->id);
			char data[8192];
			ssize_t len = pread(fd, data, sizeof(data) - 1, 0);
			close(fd);
			data[len > 0 ? len : 0] = '\0';
			check_report(data, (size_t)(len > 0 ? len : 0), ok ? "relayed" : "failed", 1,
			             ok ? "text" : "message", ok ? "rfc822-headers" : "rfc822");
			queue_entry_free(&dsn);
		}
		clear_queue();
		free(id);
	}
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

int main(void)
{
	char tmpl[] = "/tmp/test-queue-XXXXXX";
	char *root = mkdtemp(tmpl);
	if (root == NULL) {
		perror("mkdtemp");
		return 1;
	}
	const char *log_error;
	log_open("stderr", LOG_LEVEL_ERROR, "test-queue", &log_error);
	config.server.data_dir = root;
	config.server.hostname = "mx.example.ac.jp";
	config.queue.retry_first = 5 * 60 * 1000;
	config.queue.retry_max = 60 * 60 * 1000;
	config.queue.lifetime = 5ULL * 86400 * 1000;
	config.queue.delay_warning = 4 * 3600 * 1000;
	config.queue.max_parallel = 20;
	qdir = queue_dir_path(&config);
	test_round_trip();
	test_torn_and_bad();
	test_files();
	test_retry_schedule();
	test_dsn_build();
	test_dsn_diagnostic_type();
	test_apply_tempfail_and_bounce();
	test_apply_notify();
	free(qdir);
	log_close();
	nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return test_report();
}

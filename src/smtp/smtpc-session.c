/* The client side of one SMTP session (RFC 5321): greeting, EHLO (HELO
 * fallback), STARTTLS and EHLO again, AUTH at the relay, then MAIL, RCPT and
 * DATA (pipelined when the peer says PIPELINING, RFC 2920) or BDAT (RFC
 * 3030, for binary bodies). Every command sent pushes what its reply means
 * onto a queue; replies are matched in order and dispatched through a
 * table. */
#include "smtp/smtpc-private.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/base64.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/strnum.h"
#include "lib/xmalloc.h"

#define SMTPC_MAX_LINE 4096            /* a reply line; RFC 5321 4.5.3.1.5 says 512 */
#define SMTPC_BODY_CHUNK (64 * 1024)   /* pread size while streaming DATA */
#define SMTPC_BDAT_CHUNK (256 * 1024)
#define SMTPC_OUTPUT_HIGH (256 * 1024) /* stop reading the file above this */

enum smtpc_expect {
	SMTPC_EXPECT_GREETING,
	SMTPC_EXPECT_EHLO,
	SMTPC_EXPECT_HELO,
	SMTPC_EXPECT_STARTTLS,
	SMTPC_EXPECT_AUTH,
	SMTPC_EXPECT_RSET,
	SMTPC_EXPECT_MAIL,
	SMTPC_EXPECT_RCPT,
	SMTPC_EXPECT_DATA,
	SMTPC_EXPECT_DOT,
	SMTPC_EXPECT_BDAT,
	SMTPC_EXPECT_BDAT_LAST,
};

static void smtpc_transaction_start(struct smtpc *c);
static void smtpc_after_ehlo(struct smtpc *c);

/* ---- writing ---- */

static struct evbuffer *smtpc_output(struct smtpc *c)
{
	return bufferevent_get_output(c->conn->bev);
}

static void smtpc_expect(struct smtpc *c, enum smtpc_expect kind, size_t index)
{
	size_t slot = (c->wait_head + c->wait_count) % c->wait_cap;
	c->waits[slot].kind = kind;
	c->waits[slot].index = index;
	c->wait_count++;
}

static void smtpc_send(struct smtpc *c, enum smtpc_expect kind, size_t index,
		       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void smtpc_send(struct smtpc *c, enum smtpc_expect kind, size_t index,
		       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	evbuffer_add_vprintf(smtpc_output(c), fmt, ap);
	va_end(ap);
	evbuffer_add(smtpc_output(c), "\r\n", 2);
	smtpc_expect(c, kind, index);
}

static const char *smtpc_helo_name(const struct smtpc *c)
{
	const char *name = c->config->smtp_client.helo_name;
	return name[0] != '\0' ? name : c->config->server.hostname;
}

/* ---- replies ---- */

/* The first line of the reply, without an RFC 3463 code (copied into
 * enhanced, which has room for 16 bytes). */
static const char *smtpc_reply_text(struct smtpc *c, char *enhanced, char *line, size_t size)
{
	const char *text = buf_str(&c->reply);
	size_t len = strcspn(text, "\n"), n = 0;
	enhanced[0] = '\0';
	if ((text[0] == '2' || text[0] == '4' || text[0] == '5') && text[1] == '.') {
		n = strspn(text, "0123456789.");
		if (n < 5 || n > 15 || (text[n] != ' ' && text[n] != '\n' && text[n] != '\0'))
			n = 0;
		else
			snprintf(enhanced, 16, "%.*s", (int)n, text);
	}
	text += n;
	len -= n;
	while (len > 0 && *text == ' ') {
		text++;
		len--;
	}
	snprintf(line, size, "%.*s", (int)len, text);
	return line;
}

/* Gives the reply to recipient i (or every recipient still open when i
 * is SIZE_MAX). */
static void smtpc_reply_to(struct smtpc *c, size_t i, bool only_accepted)
{
	char enhanced[16], text[512];
	smtpc_reply_text(c, enhanced, text, sizeof(text));
	for (size_t k = 0; k < c->req.rcpt_count; k++) {
		if ((i != SIZE_MAX && k != i) || c->decided[k] || (only_accepted && !c->accepted[k]))
			continue;
		smtpc_result_set(&c->results[k], c->reply_code, enhanced, text,
				 c->reply_code >= 500, c->conn->host);
		c->decided[k] = true;
	}
}

static void smtpc_fail_host_reply(struct smtpc *c, const char *stage)
{
	char enhanced[16], text[512], msg[640];
	smtpc_reply_text(c, enhanced, text, sizeof(text));
	snprintf(msg, sizeof(msg), "%s: %u %s", stage, c->reply_code, text);
	smtpc_host_failed(c, c->reply_code, enhanced[0] != '\0' ? enhanced : "4.4.0", msg);
}

/* ---- greeting, EHLO, STARTTLS, AUTH ---- */

static void smtpc_send_ehlo(struct smtpc *c)
{
	smtpc_send(c, SMTPC_EXPECT_EHLO, 0, "EHLO %s", smtpc_helo_name(c));
}

static void smtpc_on_greeting(struct smtpc *c, const struct smtpc_wait *w)
{
	(void)w;
	if (c->reply_code != 220) {
		smtpc_fail_host_reply(c, "greeting");
		return;
	}
	smtpc_send_ehlo(c);
}

struct smtpc_keyword {
	const char *name;
	unsigned int bit;
};

static const struct smtpc_keyword smtpc_keywords[] = {
	{ "PIPELINING", SMTPC_EXT_PIPELINING }, { "8BITMIME", SMTPC_EXT_8BITMIME },
	{ "BINARYMIME", SMTPC_EXT_BINARYMIME }, { "CHUNKING", SMTPC_EXT_CHUNKING },
	{ "SMTPUTF8", SMTPC_EXT_SMTPUTF8 },     { "DSN", SMTPC_EXT_DSN },
	{ "STARTTLS", SMTPC_EXT_STARTTLS },     { "SIZE", SMTPC_EXT_SIZE },
	{ "AUTH", SMTPC_EXT_AUTH },
};

static void smtpc_parse_auth(struct smtpc_conn *conn, const char *params)
{
	char word[32];
	while (*params != '\0') {
		size_t len = strcspn(params, " ");
		snprintf(word, sizeof(word), "%.*s", (int)len, params);
		if (strcasecmp(word, "PLAIN") == 0)
			conn->auth_mechs |= SMTPC_AUTH_PLAIN;
		else if (strcasecmp(word, "LOGIN") == 0)
			conn->auth_mechs |= SMTPC_AUTH_LOGIN;
		params += len;
		params += strspn(params, " ");
	}
}

static void smtpc_parse_keyword(struct smtpc_conn *conn, const char *line, size_t len)
{
	char kw[32];
	size_t kw_len = strcspn(line, " =");
	if (kw_len > len)
		kw_len = len;
	snprintf(kw, sizeof(kw), "%.*s", (int)kw_len, line);
	for (size_t i = 0; i < sizeof(smtpc_keywords) / sizeof(smtpc_keywords[0]); i++) {
		if (strcasecmp(kw, smtpc_keywords[i].name) != 0)
			continue;
		conn->ext |= smtpc_keywords[i].bit;
		char params[256];
		size_t skip = kw_len < len ? kw_len + 1 : len;
		snprintf(params, sizeof(params), "%.*s", (int)(len - skip), line + skip);
		if (smtpc_keywords[i].bit == SMTPC_EXT_SIZE && str_to_uint64(params, &conn->max_size) < 0)
			conn->max_size = 0;
		if (smtpc_keywords[i].bit == SMTPC_EXT_AUTH)
			smtpc_parse_auth(conn, params);
	}
}

/* The EHLO reply: the first line greets, each further line is a keyword. */
static void smtpc_parse_ehlo(struct smtpc_conn *conn, const char *reply)
{
	conn->ext = 0;
	conn->auth_mechs = 0;
	conn->max_size = 0;
	const char *p = strchr(reply, '\n');
	while (p != NULL) {
		p++;
		size_t len = strcspn(p, "\n");
		smtpc_parse_keyword(conn, p, len);
		p = strchr(p, '\n');
	}
}

static void smtpc_on_ehlo(struct smtpc *c, const struct smtpc_wait *w)
{
	(void)w;
	if (c->reply_code == 250) {
		smtpc_parse_ehlo(c->conn, buf_str(&c->reply));
		smtpc_after_ehlo(c);
	} else if (c->reply_code >= 500 && !c->conn->tls_active) {
		/* RFC 5321 3.2: an old server; HELO it is, without extensions. */
		smtpc_send(c, SMTPC_EXPECT_HELO, 0, "HELO %s", smtpc_helo_name(c));
	} else {
		smtpc_fail_host_reply(c, "EHLO");
	}
}

static void smtpc_on_helo(struct smtpc *c, const struct smtpc_wait *w)
{
	(void)w;
	if (c->reply_code != 250) {
		smtpc_fail_host_reply(c, "HELO");
		return;
	}
	c->conn->ext = 0;
	c->conn->max_size = 0;
	smtpc_after_ehlo(c);
}

static void smtpc_on_starttls(struct smtpc *c, const struct smtpc_wait *w)
{
	const char *error;
	(void)w;
	if (c->reply_code != 220) {
		if (c->conn->tls >= SMTPC_TLS_ENCRYPT) {
			smtpc_fail_host_reply(c, "STARTTLS");
			return;
		}
		c->conn->ext &= ~SMTPC_EXT_STARTTLS;  /* may: go on in plaintext */
		smtpc_after_ehlo(c);
		return;
	}
	if (evbuffer_get_length(bufferevent_get_input(c->conn->bev)) > 0) {
		/* Bytes before TLS that would be read as if protected. */
		smtpc_host_failed(c, 0, "4.7.0", "the host sent data after its STARTTLS reply");
		return;
	}
	if (smtpc_conn_start_tls(c->conn, c->config, &error) < 0) {
		smtpc_host_failed(c, 0, "4.7.0", error);
		return;
	}
	c->starttls_pending = true;
}

static void smtpc_auth_send(struct smtpc *c, const char *prefix, const char *data, size_t len)
{
	struct buf b64 = BUF_INIT(0);
	base64_encode(data, len, &b64);
	smtpc_send(c, SMTPC_EXPECT_AUTH, 0, "%s%s", prefix, buf_str(&b64));
	buf_free(&b64);
}

static void smtpc_auth_start(struct smtpc *c)
{
	const char *user = c->config->relay.username, *pass = c->config->relay.password;
	if (c->conn->auth_mechs & SMTPC_AUTH_PLAIN) {
		/* RFC 4616: authzid NUL authcid NUL passwd, as the initial response. */
		size_t ulen = strlen(user), plen = strlen(pass);
		char *msg = xmalloc(ulen + plen + 2);
		msg[0] = '\0';
		memcpy(msg + 1, user, ulen);
		msg[ulen + 1] = '\0';
		memcpy(msg + ulen + 2, pass, plen);
		c->auth_step = 2;
		smtpc_auth_send(c, "AUTH PLAIN ", msg, ulen + plen + 2);
		explicit_bzero(msg, ulen + plen + 2);
		free(msg);
	} else if (c->conn->auth_mechs & SMTPC_AUTH_LOGIN) {
		c->auth_step = 0;
		smtpc_send(c, SMTPC_EXPECT_AUTH, 0, "AUTH LOGIN");
	} else {
		smtpc_host_failed(c, 0, "4.7.0", "the relay offers neither AUTH PLAIN nor AUTH LOGIN");
	}
}

/* LOGIN: 334 (user?) then 334 (password?) then 235; PLAIN: 235. */
static void smtpc_on_auth(struct smtpc *c, const struct smtpc_wait *w)
{
	const char *answer = c->auth_step == 0 ? c->config->relay.username
					       : c->config->relay.password;
	(void)w;
	/* RFC 4954 says 235; smtp-sink and others answer 250. */
	if (c->reply_code / 100 == 2) {
		c->conn->authenticated = true;
		smtpc_transaction_start(c);
	} else if (c->reply_code == 334 && c->auth_step < 2) {
		c->auth_step++;
		smtpc_auth_send(c, "", answer, strlen(answer));
	} else {
		smtpc_fail_host_reply(c, "AUTH");
	}
}

static void smtpc_after_ehlo(struct smtpc *c)
{
	struct smtpc_conn *conn = c->conn;
	if (!conn->tls_active && conn->tls >= SMTPC_TLS_MAY && (conn->ext & SMTPC_EXT_STARTTLS)) {
		smtpc_send(c, SMTPC_EXPECT_STARTTLS, 0, "STARTTLS");
		return;
	}
	if (!conn->tls_active && conn->tls >= SMTPC_TLS_ENCRYPT) {
		smtpc_host_failed(c, 0, "4.7.4", "TLS is required but the host does not offer STARTTLS");
		return;
	}
	if (c->route.relay && c->config->relay.username[0] != '\0' && !conn->authenticated) {
		smtpc_auth_start(c);
		return;
	}
	smtpc_transaction_start(c);
}

/* ---- the transaction ---- */

/* RFC 3461 4: xtext, '+' and '=' and bytes outside 33-126 as +HH. */
static void smtpc_xtext(struct buf *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 33 || *p > 126 || *p == '+' || *p == '=') {
			char esc[3] = { '+', hex[*p >> 4], hex[*p & 15] };
			buf_append(out, esc, 3);
		} else {
			buf_append_char(out, (char)*p);
		}
	}
}

static bool smtpc_printable(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p <= ' ' || *p == 127)
			return false;
	}
	return true;
}

static void smtpc_mail_params(struct smtpc *c, struct buf *out)
{
	unsigned int ext = c->conn->ext;
	static const char *const bodies[] = { NULL, "8BITMIME", "BINARYMIME" };
	if (ext & SMTPC_EXT_SIZE)
		buf_printf(out, " SIZE=%llu", (unsigned long long)c->req.size);
	if (bodies[c->req.body] != NULL)
		buf_printf(out, " BODY=%s", bodies[c->req.body]);
	if (c->req.smtputf8)
		buf_append_str(out, " SMTPUTF8");
	if (!(ext & SMTPC_EXT_DSN))
		return;
	if (c->req.ret != QUEUE_RET_DEFAULT)
		buf_append_str(out, c->req.ret == QUEUE_RET_FULL ? " RET=FULL" : " RET=HDRS");
	if (c->req.envid != NULL) {
		buf_append_str(out, " ENVID=");
		smtpc_xtext(out, c->req.envid);
	}
}

static void smtpc_rcpt_params(struct smtpc *c, size_t i, struct buf *out)
{
	static const struct smtpc_keyword notify[] = {
		{ "SUCCESS", QUEUE_NOTIFY_SUCCESS }, { "FAILURE", QUEUE_NOTIFY_FAILURE },
		{ "DELAY", QUEUE_NOTIFY_DELAY },
	};
	const struct queue_rcpt *d = &c->req.dsn[i];
	const char *sep = " NOTIFY=";
	if (!(c->conn->ext & SMTPC_EXT_DSN))
		return;
	if (d->notify & QUEUE_NOTIFY_NEVER)
		buf_append_str(out, " NOTIFY=NEVER");
	for (size_t k = 0; k < 3 && !(d->notify & QUEUE_NOTIFY_NEVER); k++) {
		if (d->notify & notify[k].bit) {
			buf_printf(out, "%s%s", sep, notify[k].name);
			sep = ",";
		}
	}
	if (d->orcpt != NULL && smtpc_printable(d->orcpt))
		buf_printf(out, " ORCPT=%s", d->orcpt);
}

/* Why the peer cannot take this message as it is (RFC 6152 3, RFC 3030
 * 3, RFC 6531 3.4, RFC 1870 6), or NULL. */
static const char *smtpc_cannot_take(struct smtpc *c, const char **enhanced_r)
{
	unsigned int ext = c->conn->ext;
	*enhanced_r = "5.6.3";
	if (c->req.body == QUEUE_BODY_8BITMIME && !(ext & SMTPC_EXT_8BITMIME))
		return "the message has 8-bit content but the host does not offer 8BITMIME";
	if (c->req.body == QUEUE_BODY_BINARYMIME &&
	    (ext & (SMTPC_EXT_BINARYMIME | SMTPC_EXT_CHUNKING)) !=
		    (SMTPC_EXT_BINARYMIME | SMTPC_EXT_CHUNKING))
		return "the message is binary but the host does not offer BINARYMIME and CHUNKING";
	*enhanced_r = "5.6.7";
	if (c->req.smtputf8 && !(ext & SMTPC_EXT_SMTPUTF8))
		return "the message needs SMTPUTF8 but the host does not offer it";
	*enhanced_r = "5.3.4";
	if (c->conn->max_size != 0 && c->req.size > c->conn->max_size)
		return "the message is larger than the host's SIZE limit";
	return NULL;
}

static void smtpc_send_rcpt(struct smtpc *c, size_t i)
{
	struct buf params = BUF_INIT(0);
	smtpc_rcpt_params(c, i, &params);
	smtpc_send(c, SMTPC_EXPECT_RCPT, i, "RCPT TO:<%s>%s", c->req.rcpts[i], buf_str(&params));
	buf_free(&params);
}

static bool smtpc_use_bdat(const struct smtpc *c)
{
	return c->req.body == QUEUE_BODY_BINARYMIME;
}

static bool smtpc_addresses_ok(struct smtpc *c)
{
	if (!smtpc_printable(c->req.sender) && c->req.sender[0] != '\0')
		return false;
	for (size_t i = 0; i < c->req.rcpt_count; i++) {
		if (!smtpc_printable(c->req.rcpts[i]))
			return false;
	}
	return true;
}

static void smtpc_transaction_start(struct smtpc *c)
{
	const char *enhanced, *why = smtpc_cannot_take(c, &enhanced);
	struct buf params = BUF_INIT(0);
	if (why == NULL && !smtpc_addresses_ok(c)) {
		why = "an address contains spaces or control characters";
		enhanced = "5.1.3";
	}
	if (why != NULL) {
		log_info("smtpc domain=%s host=%s refused=\"%s\"", c->req.domain, c->conn->host, why);
		smtpc_fail_rest(c, 0, enhanced, why, true);
		smtpc_finish(c, true);
		return;
	}
	c->in_transaction = true;
	smtpc_mail_params(c, &params);
	smtpc_send(c, SMTPC_EXPECT_MAIL, 0, "MAIL FROM:<%s>%s", c->req.sender, buf_str(&params));
	buf_free(&params);
	if (!(c->conn->ext & SMTPC_EXT_PIPELINING))
		return;
	for (size_t i = 0; i < c->req.rcpt_count; i++)
		smtpc_send_rcpt(c, i);
	if (!smtpc_use_bdat(c))
		smtpc_send(c, SMTPC_EXPECT_DATA, 0, "DATA");
}

static void smtpc_on_rset(struct smtpc *c, const struct smtpc_wait *w)
{
	(void)w;
	if (c->reply_code != 250) {
		smtpc_fail_host_reply(c, "RSET");
		return;
	}
	smtpc_transaction_start(c);
}

static void smtpc_on_mail(struct smtpc *c, const struct smtpc_wait *w)
{
	(void)w;
	if (c->reply_code / 100 != 2) {
		c->mail_failed = true;
		smtpc_reply_to(c, SIZE_MAX, false);
		return;
	}
	if (!(c->conn->ext & SMTPC_EXT_PIPELINING))
		smtpc_send_rcpt(c, 0);
}

static void smtpc_bdat_next(struct smtpc *c);

/* Every RCPT answered: without PIPELINING, DATA goes now; for BDAT the
 * first chunk. */
static void smtpc_rcpts_done(struct smtpc *c)
{
	if (c->accepted_count == 0)
		return;
	if (smtpc_use_bdat(c))
		smtpc_bdat_next(c);
	else if (!(c->conn->ext & SMTPC_EXT_PIPELINING))
		smtpc_send(c, SMTPC_EXPECT_DATA, 0, "DATA");
}

static void smtpc_on_rcpt(struct smtpc *c, const struct smtpc_wait *w)
{
	if (c->reply_code / 100 == 2 && !c->mail_failed) {
		c->accepted[w->index] = true;
		c->accepted_count++;
	} else {
		smtpc_reply_to(c, w->index, false);
	}
	c->rcpt_replies++;
	if (c->mail_failed)
		return;
	if (c->rcpt_replies < c->req.rcpt_count) {
		if (!(c->conn->ext & SMTPC_EXT_PIPELINING))
			smtpc_send_rcpt(c, c->rcpt_replies);
		return;
	}
	smtpc_rcpts_done(c);
}

/* ---- the body ---- */

/* RFC 5321 4.5.2: a line starting with '.' gets one more. */
static void smtpc_stuff(struct smtpc *c, struct evbuffer *out, const char *p, size_t n)
{
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		if (c->body_bol && p[i] == '.') {
			evbuffer_add(out, p + start, i - start);
			evbuffer_add(out, ".", 1);
			start = i;
		}
		c->body_bol = p[i] == '\n';
	}
	evbuffer_add(out, p + start, n - start);
	if (n >= 2) {
		c->body_last[0] = p[n - 2];
		c->body_last[1] = p[n - 1];
	} else if (n == 1) {
		c->body_last[0] = c->body_last[1];
		c->body_last[1] = p[0];
	}
}

static void smtpc_body_end(struct smtpc *c, struct evbuffer *out)
{
	if (c->body_offset > 0 && (c->body_last[0] != '\r' || c->body_last[1] != '\n'))
		evbuffer_add(out, "\r\n", 2);
	evbuffer_add(out, ".\r\n", 3);
	c->body_done = true;
	smtpc_expect(c, SMTPC_EXPECT_DOT, 0);
	smtpc_arm_timer(c, c->config->smtp_client.data_done_timeout);
}

static void smtpc_body_read_failed(struct smtpc *c)
{
	log_error("smtpc domain=%s error=\"cannot read the queued message\"", c->req.domain);
	/* Mid-DATA: the only safe end is to drop the connection. */
	smtpc_conn_destroy(c->conn);
	c->conn = NULL;
	smtpc_fail_rest(c, 0, "4.3.0", "cannot read the queued message", false);
	smtpc_finish(c, false);
}

/* Keeps at most SMTPC_OUTPUT_HIGH bytes queued; more from on_drain. */
static void smtpc_body_fill(struct smtpc *c)
{
	struct evbuffer *out = smtpc_output(c);
	char chunk[SMTPC_BODY_CHUNK];
	while (!c->body_done && evbuffer_get_length(out) < SMTPC_OUTPUT_HIGH) {
		ssize_t n = pread(c->req.fd, chunk, sizeof(chunk), (off_t)c->body_offset);
		if (n < 0) {
			smtpc_body_read_failed(c);
			return;
		}
		if (n == 0) {
			smtpc_body_end(c, out);
			return;
		}
		smtpc_stuff(c, out, chunk, (size_t)n);
		c->body_offset += (uint64_t)n;
	}
	if (!c->body_done)
		smtpc_arm_timer(c, c->config->smtp_client.data_timeout);
}

static void smtpc_on_data(struct smtpc *c, const struct smtpc_wait *w)
{
	(void)w;
	if (c->reply_code != 354) {
		smtpc_reply_to(c, SIZE_MAX, true);
		return;
	}
	if (c->accepted_count == 0) {
		/* RFC 2920 3.1: DATA was pipelined after RCPTs that all failed,
		 * and the server said go ahead anyway: send nothing. */
		evbuffer_add(smtpc_output(c), ".\r\n", 3);
		smtpc_expect(c, SMTPC_EXPECT_DOT, 0);
		return;
	}
	c->body_offset = 0;
	c->body_bol = true;
	c->body_done = false;
	smtpc_body_fill(c);
}

static void smtpc_on_dot(struct smtpc *c, const struct smtpc_wait *w)
{
	(void)w;
	log_info("smtpc domain=%s host=%s addr=%s tls=%s size=%llu accepted=%zu reply=%u",
		 c->req.domain, c->conn->host, c->conn->addr, c->conn->tls_active ? "yes" : "no",
		 (unsigned long long)c->req.size, c->accepted_count, c->reply_code);
	smtpc_reply_to(c, SIZE_MAX, true);
}

static void smtpc_bdat_next(struct smtpc *c)
{
	uint64_t left = c->req.size - c->body_offset;
	size_t want = left > SMTPC_BDAT_CHUNK ? SMTPC_BDAT_CHUNK : (size_t)left;
	char *chunk = xmalloc(want + 1);
	ssize_t n = want == 0 ? 0 : pread(c->req.fd, chunk, want, (off_t)c->body_offset);
	if (n < 0 || (size_t)n != want) {
		free(chunk);
		smtpc_body_read_failed(c);
		return;
	}
	bool last = c->body_offset + want == c->req.size;
	evbuffer_add_printf(smtpc_output(c), "BDAT %zu%s\r\n", want, last ? " LAST" : "");
	evbuffer_add(smtpc_output(c), chunk, want);
	free(chunk);
	c->body_offset += want;
	smtpc_expect(c, last ? SMTPC_EXPECT_BDAT_LAST : SMTPC_EXPECT_BDAT, 0);
}

static void smtpc_on_bdat(struct smtpc *c, const struct smtpc_wait *w)
{
	(void)w;
	if (c->reply_code / 100 != 2) {
		smtpc_reply_to(c, SIZE_MAX, true);
		return;
	}
	smtpc_bdat_next(c);
}

/* ---- dispatch ---- */

struct smtpc_expect_def {
	void (*handle)(struct smtpc *c, const struct smtpc_wait *w);
	const char *stage;    /* for "lost connection during ..." */
	int timeout;          /* 0 command, 1 greeting, 2 data, 3 after the dot */
};

static const struct smtpc_expect_def smtpc_expects[] = {
	[SMTPC_EXPECT_GREETING] = { smtpc_on_greeting, "the greeting", 1 },
	[SMTPC_EXPECT_EHLO] = { smtpc_on_ehlo, "EHLO", 0 },
	[SMTPC_EXPECT_HELO] = { smtpc_on_helo, "HELO", 0 },
	[SMTPC_EXPECT_STARTTLS] = { smtpc_on_starttls, "STARTTLS", 0 },
	[SMTPC_EXPECT_AUTH] = { smtpc_on_auth, "AUTH", 0 },
	[SMTPC_EXPECT_RSET] = { smtpc_on_rset, "RSET", 0 },
	[SMTPC_EXPECT_MAIL] = { smtpc_on_mail, "MAIL", 0 },
	[SMTPC_EXPECT_RCPT] = { smtpc_on_rcpt, "RCPT", 0 },
	[SMTPC_EXPECT_DATA] = { smtpc_on_data, "DATA", 2 },
	[SMTPC_EXPECT_DOT] = { smtpc_on_dot, "the end of DATA", 3 },
	[SMTPC_EXPECT_BDAT] = { smtpc_on_bdat, "BDAT", 2 },
	[SMTPC_EXPECT_BDAT_LAST] = { smtpc_on_dot, "BDAT LAST", 3 },
};

static uint64_t smtpc_timeout_ms(const struct smtpc *c, int which)
{
	const uint64_t ms[] = {
		c->config->smtp_client.command_timeout, c->config->smtp_client.greeting_timeout,
		c->config->smtp_client.data_timeout, c->config->smtp_client.data_done_timeout,
	};
	return ms[which];
}

static bool smtpc_all_decided(const struct smtpc *c)
{
	for (size_t i = 0; i < c->req.rcpt_count; i++) {
		if (!c->decided[i])
			return false;
	}
	return true;
}

static void smtpc_dispatch(struct smtpc *c)
{
	struct smtpc_wait w = c->waits[c->wait_head];
	c->wait_head = (c->wait_head + 1) % c->wait_cap;
	c->wait_count--;
	smtpc_expects[w.kind].handle(c, &w);
	if (c->finished || c->conn == NULL)
		return;
	if (c->wait_count == 0 && c->in_transaction && smtpc_all_decided(c)) {
		/* A refused MAIL or BDAT leaves the transaction in doubt: no reuse. */
		smtpc_finish(c, !c->mail_failed && w.kind != SMTPC_EXPECT_BDAT);
		return;
	}
	if (c->wait_count > 0) {
		const struct smtpc_wait *next = &c->waits[c->wait_head];
		smtpc_arm_timer(c, smtpc_timeout_ms(c, smtpc_expects[next->kind].timeout));
	}
}

/* 1 when the reply is complete, 0 for more lines, -1 when malformed. */
static int smtpc_reply_add_line(struct smtpc *c, const char *line, size_t len)
{
	unsigned int code;
	if (len < 3 || !isdigit((unsigned char)line[0]) || !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]) || (len > 3 && line[3] != ' ' && line[3] != '-'))
		return -1;
	code = (unsigned int)(line[0] - '0') * 100 + (unsigned int)(line[1] - '0') * 10 +
	       (unsigned int)(line[2] - '0');
	if (code < 200 || code > 599 || (c->reply.len > 0 && code != c->reply_code))
		return -1;
	if (c->reply.len > 0)
		buf_append_char(&c->reply, '\n');
	c->reply_code = code;
	/* Past the maximum, further lines are dropped, not buffered. */
	buf_append(&c->reply, len > 4 ? line + 4 : "", len > 4 ? len - 4 : 0);
	if (c->reply.len == 0)
		buf_append_char(&c->reply, ' ');
	return len > 3 && line[3] == '-' ? 0 : 1;
}

static void smtpc_protocol_error(struct smtpc *c, const char *why)
{
	if (c->in_transaction)
		smtpc_session_lost(c, why);
	else
		smtpc_host_failed(c, 0, "4.5.0", why);
}

void smtpc_session_on_input(struct smtpc *c)
{
	struct smtpc_conn *conn = c->conn;
	struct evbuffer *in = bufferevent_get_input(conn->bev);
	while (c->conn == conn && !c->finished) {
		size_t len;
		char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
		if (line == NULL) {
			if (evbuffer_get_length(in) > SMTPC_MAX_LINE)
				smtpc_protocol_error(c, "a reply line is too long");
			return;
		}
		int ret = len > SMTPC_MAX_LINE ? -1 : smtpc_reply_add_line(c, line, len);
		free(line);
		if (ret < 0 || (ret == 1 && c->wait_count == 0)) {
			smtpc_protocol_error(c, ret < 0 ? "malformed reply" : "unexpected reply");
			return;
		}
		if (ret == 1) {
			smtpc_dispatch(c);
			buf_reset(&c->reply);
		}
	}
}

void smtpc_session_on_drain(struct smtpc *c)
{
	if (c->in_transaction && !c->body_done && c->body_offset > 0 && !smtpc_use_bdat(c))
		smtpc_body_fill(c);
}

void smtpc_session_connected(struct smtpc *c)
{
	if (c->starttls_pending) {
		c->starttls_pending = false;
		smtpc_send_ehlo(c);
	} else {
		smtpc_expect(c, SMTPC_EXPECT_GREETING, 0);
	}
	const struct smtpc_wait *next = &c->waits[c->wait_head];
	smtpc_arm_timer(c, smtpc_timeout_ms(c, smtpc_expects[next->kind].timeout));
}

void smtpc_session_reuse(struct smtpc *c)
{
	smtpc_send(c, SMTPC_EXPECT_RSET, 0, "RSET");
	smtpc_arm_timer(c, c->config->smtp_client.command_timeout);
}

void smtpc_session_lost(struct smtpc *c, const char *why)
{
	char msg[256];
	const char *stage = c->wait_count > 0 ? smtpc_expects[c->waits[c->wait_head].kind].stage
					      : "";
	if (c->finished)
		return;
	if (c->wait_count > 0)
		snprintf(msg, sizeof(msg), "%s during %s", why, stage);
	else
		snprintf(msg, sizeof(msg), "%s", why);
	if (!c->in_transaction) {
		/* Nothing heard yet: the connection itself failed (4.4.1). */
		bool connecting = c->wait_count == 0 && !c->starttls_pending &&
				  !c->conn->implicit_tls;
		smtpc_host_failed(c, 0, connecting ? "4.4.1" : "4.4.2", msg);
		return;
	}
	log_info("smtpc domain=%s host=%s addr=%s error=\"%s\"", c->req.domain, c->conn->host,
		 c->conn->addr, msg);
	smtpc_fail_rest(c, 0, "4.4.2", msg, false);
	smtpc_conn_destroy(c->conn);
	c->conn = NULL;
	smtpc_finish(c, false);
}

void smtpc_session_on_timeout(struct smtpc *c)
{
	smtpc_session_lost(c, c->conn != NULL && c->wait_count == 0 && !c->in_transaction
				      ? "connection timed out" : "timeout");
}

/* Vacation replies (RFC 5230, RFC 3834): never to the null sender, to
 * list or system senders, to bulk, list or auto-submitted mail, or when
 * the account is not named in the recipient fields; at most once per
 * (handle, sender) per period, remembered in the store. The reply goes
 * from the null sender (RFC 3834 3.3) through the outbox. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "deliver/deliver-private.h"
#include "dir/dir.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "mime/mime.h"
#include "sieve/sieve.h"
#include "store/store.h"

#define VACATION_MAX_ADDRESSES 1000
#define QP_LINE_MAX 76

/* One header field at a time: name and raw value (unfolding left to the
 * user). Returns false at the end of the header. */
struct header_iter {
	const char *p, *end;
};

static bool header_next(struct header_iter *it, const char **name_r, size_t *name_len_r,
                        const char **value_r, size_t *value_len_r)
{
	while (it->p < it->end && *it->p != '\r' && *it->p != '\n') {
		const char *line = it->p, *e = line;
		/* the field ends at a newline not followed by space or tab */
		for (;;) {
			const char *nl = memchr(e, '\n', (size_t)(it->end - e));
			e = nl != NULL ? nl + 1 : it->end;
			if (e >= it->end || (*e != ' ' && *e != '\t'))
				break;
		}
		it->p = e;
		const char *colon = memchr(line, ':', (size_t)(e - line));
		if (colon == NULL)
			continue;
		*name_r = line;
		*name_len_r = (size_t)(colon - line);
		*value_r = colon + 1;
		*value_len_r = (size_t)(e - colon - 1);
		return true;
	}
	return false;
}

static bool name_is(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

/* The first word of a value, lowercase, in out. */
static void first_word(const char *value, size_t len, char *out, size_t size)
{
	size_t i = 0, n = 0;
	while (i < len && isspace((unsigned char)value[i]))
		i++;
	while (i < len && n + 1 < size && (isalnum((unsigned char)value[i]) || value[i] == '-'))
		out[n++] = (char)tolower((unsigned char)value[i++]);
	out[n] = '\0';
}

struct vacation_check {
	const char *const *mine;  /* the user's addresses */
	size_t mine_count;
	bool addressed;           /* one of them is in a recipient field */
	const char *why_not;      /* a rule that forbids the reply */
};

static bool is_mine(const struct vacation_check *vc, const char *address)
{
	for (size_t i = 0; i < vc->mine_count; i++) {
		if (strcasecmp(vc->mine[i], address) == 0)
			return true;
	}
	return false;
}

static void check_recipients(struct vacation_check *vc, const char *value, size_t len)
{
	struct mime_address *list = mime_address_parse(value, len, VACATION_MAX_ADDRESSES);
	for (struct mime_address *a = list; a != NULL && !vc->addressed; a = a->next) {
		if (a->mailbox == NULL || a->host == NULL)
			continue;
		char *address = xasprintf("%s@%s", a->mailbox, a->host);
		vc->addressed = is_mine(vc, address);
		free(address);
	}
	mime_address_free(&list);
}

static const char *const recipient_fields[] = {"To", "Cc", "Bcc", "Resent-To", "Resent-Cc",
                                               "Resent-Bcc"};

/* RFC 3834 2 and 5230 4.6: what marks mail that must not be answered. */
static void check_field(struct vacation_check *vc, const char *name, size_t name_len,
                        const char *value, size_t value_len)
{
	char word[32];
	if (name_is(name, name_len, "Auto-Submitted")) {
		first_word(value, value_len, word, sizeof(word));
		if (strcmp(word, "no") != 0)
			vc->why_not = "auto-submitted";
	} else if (name_is(name, name_len, "Precedence")) {
		first_word(value, value_len, word, sizeof(word));
		if (strcmp(word, "bulk") == 0 || strcmp(word, "list") == 0 ||
		    strcmp(word, "junk") == 0)
			vc->why_not = "precedence";
	} else if (name_len > 5 && strncasecmp(name, "List-", 5) == 0) {
		vc->why_not = "list";
	} else {
		for (size_t i = 0; i < sizeof(recipient_fields) / sizeof(recipient_fields[0]); i++) {
			if (name_is(name, name_len, recipient_fields[i]))
				check_recipients(vc, value, value_len);
		}
	}
}

/* Senders that are programs, not people (RFC 5230 4.6). */
static bool sender_is_system(const char *sender)
{
	const char *at = strrchr(sender, '@');
	size_t len = at != NULL ? (size_t)(at - sender) : strlen(sender);
	static const char *const names[] = {"mailer-daemon", "listserv", "majordomo", "postmaster"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (name_is(sender, len, names[i]))
			return true;
	}
	return (len >= 6 && strncasecmp(sender, "owner-", 6) == 0) ||
	       (len >= 8 && strncasecmp(sender + len - 8, "-request", 8) == 0);
}

static const char *vacation_refusal(struct deliver_account_ctx *ctx, struct vacation_check *vc)
{
	const char *sender = ctx->in->env_from;
	if (sender == NULL || sender[0] == '\0')
		return "null or unknown sender";
	if (sender_is_system(sender))
		return "system sender";
	if (is_mine(vc, sender))
		return "own address";
	struct header_iter it = {ctx->in->data,
	                         ctx->in->data + mime_header_size(ctx->in->data, ctx->in->size)};
	const char *name, *value;
	size_t name_len, value_len;
	while (vc->why_not == NULL && header_next(&it, &name, &name_len, &value, &value_len))
		check_field(vc, name, name_len, value, value_len);
	if (vc->why_not != NULL)
		return vc->why_not;
	return vc->addressed ? NULL : "not addressed to the account";
}

/* ---- the reply ---- */

static char *header_value(const struct deliver_input *in, const char *name)
{
	char *v = mime_header_get(in->data, mime_header_size(in->data, in->size), name);
	if (v == NULL)
		return NULL;
	char *s = v;
	while (*s == ' ' || *s == '\t')
		s++;
	char *r = xstrdup(s);
	free(v);
	return r;
}

/* Appends text with CRLF line ends, quoted-printable when qp. */
static void append_text(struct buf *out, const char *text, bool qp)
{
	size_t col = 0;
	for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
		if (*p == '\r')
			continue;
		if (*p == '\n') {
			buf_append_str(out, "\r\n");
			col = 0;
			continue;
		}
		bool esc = qp && (*p >= 0x80 || *p == '=' || *p < 0x20 ||
		                  ((*p == ' ' || *p == '\t') && (p[1] == '\n' || p[1] == '\r' ||
		                                                p[1] == '\0')));
		size_t w = esc ? 3 : 1;
		if (qp && col + w > QP_LINE_MAX - 1) {
			buf_append_str(out, "=\r\n");
			col = 0;
		}
		if (esc)
			buf_printf(out, "=%02X", *p);
		else
			buf_append_char(out, (char)*p);
		col += w;
	}
	if (col > 0)
		buf_append_str(out, "\r\n");
}

static bool needs_qp(const char *text)
{
	size_t col = 0;
	for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
		if (*p >= 0x80)
			return true;
		col = *p == '\n' ? 0 : col + 1;
		if (col > 900)
			return true;
	}
	return false;
}

static bool is_plain_ascii_header(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p >= 0x80 || *p < 0x20)
			return false;
	}
	return true;
}

/* The From: of the reply: :from when it is one of the user's addresses. */
static void reply_from(struct buf *out, struct deliver_account_ctx *ctx,
                       const struct sieve_vacation *v, const struct vacation_check *vc)
{
	const char *account = ctx->account->address;
	if (v->from != NULL && is_plain_ascii_header(v->from)) {
		struct mime_address *a = mime_address_parse(v->from, strlen(v->from), 1);
		bool ok = a != NULL && a->mailbox != NULL && a->host != NULL;
		char *address = ok ? xasprintf("%s@%s", a->mailbox, a->host) : NULL;
		ok = ok && is_mine(vc, address);
		free(address);
		mime_address_free(&a);
		if (ok) {
			buf_printf(out, "From: %s\r\n", v->from);
			return;
		}
		log_info("deliver to=%s event=vacation_from_ignored", account);
	}
	buf_printf(out, "From: <%s>\r\n", account);
}

static void reply_subject(struct buf *out, const struct deliver_input *in,
                          const struct sieve_vacation *v)
{
	char *subject = v->subject != NULL ? xstrdup(v->subject) : NULL;
	if (subject == NULL) {
		char *raw = header_value(in, "Subject");
		char *decoded = raw != NULL ? mime_header_decode(raw, strlen(raw)) : xstrdup("");
		subject = xasprintf("Auto: %s", decoded);
		free(decoded);
		free(raw);
	}
	for (char *p = subject; *p != '\0'; p++) {
		if (*p == '\r' || *p == '\n' || *p == '\t')
			*p = ' ';
	}
	buf_append_str(out, "Subject: ");
	deliver_mail_encode_word(out, subject);
	buf_append_str(out, "\r\n");
	free(subject);
}

static void reply_threading(struct buf *out, const struct deliver_input *in)
{
	char *id = header_value(in, "Message-ID");
	if (id == NULL)
		return;
	char *refs = header_value(in, "References");
	buf_printf(out, "In-Reply-To: %s\r\n", id);
	if (refs != NULL)
		buf_printf(out, "References: %s\r\n %s\r\n", refs, id);
	else
		buf_printf(out, "References: %s\r\n", id);
	free(refs);
	free(id);
}

static void reply_body(struct buf *out, const struct sieve_vacation *v, size_t max)
{
	const char *text = v->reason != NULL ? v->reason : "";
	char *reason = xstrndup(text, strnlen(text, max));
	buf_append_str(out, "MIME-Version: 1.0\r\n");
	if (v->mime) {
		/* the reason is a MIME entity: its own header, then its body */
		append_text(out, reason, false);
	} else {
		bool qp = needs_qp(reason);
		buf_printf(out, "Content-Type: text/plain; charset=utf-8\r\n"
		                "Content-Transfer-Encoding: %s\r\n\r\n",
		           qp ? "quoted-printable" : "7bit");
		append_text(out, reason, qp);
	}
	free(reason);
}

static void reply_compose(struct buf *out, struct deliver_account_ctx *ctx,
                          const struct sieve_vacation *v, const struct vacation_check *vc)
{
	reply_from(out, ctx, v, vc);
	buf_printf(out, "To: <%s>\r\n", ctx->in->env_from);
	reply_subject(out, ctx->in, v);
	reply_threading(out, ctx->in);
	deliver_mail_date_id(out, ctx->in->config, ctx->now);
	buf_append_str(out, "Auto-Submitted: auto-replied\r\n");
	reply_body(out, v, (size_t)ctx->in->config->vacation.max_reason_size);
}

/* ---- the whole ---- */

static uint64_t vacation_period(const struct yubin_config *config, uint64_t seconds)
{
	uint64_t min = config->vacation.min_period / 1000, max = config->vacation.max_period / 1000;
	if (seconds < min)
		seconds = min;
	return seconds > max ? max : seconds;
}

static char *memory_key(const struct sieve_vacation *v, const char *sender)
{
	const char *handle = v->handle != NULL ? v->handle : "";
	char *key = xasprintf("%s\n%s", handle, sender);
	for (char *p = key + strlen(handle) + 1; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return key;
}

static void vacation_send(struct deliver_account_ctx *ctx, const struct sieve_vacation *v,
                          const struct vacation_check *vc, const char *key, uint64_t period)
{
	const char *account = ctx->account->address, *error;
	struct buf reply = BUF_INIT(0);
	reply_compose(&reply, ctx, v, vc);
	const char *rcpts[1] = {ctx->in->env_from};
	if (deliver_outbox_send("", rcpts, 1, reply.data, reply.len, -1, 0, &error) < 0)
		log_error("deliver to=%s event=vacation_failed error=\"%s\"", account, error);
	else if (store_memory_record(ctx->store, "vacation", key, period, ctx->now, &error) < 0)
		log_warn("deliver to=%s event=vacation_record_failed error=\"%s\"", account, error);
	else
		log_info("deliver to=%s event=vacation_sent period=%llu", account,
		         (unsigned long long)period);
	buf_free(&reply);
}

void deliver_vacation(struct deliver_account_ctx *ctx, const struct sieve_vacation *v)
{
	const char *account = ctx->account->address;
	const char **mine = xcalloc(v->address_count + 2, sizeof(*mine));
	size_t n = 0;
	mine[n++] = account;
	mine[n++] = ctx->rcpt;
	for (size_t i = 0; i < v->address_count; i++)
		mine[n++] = v->addresses[i];
	struct vacation_check vc = {.mine = mine, .mine_count = n};
	const char *why = vacation_refusal(ctx, &vc);
	if (why != NULL) {
		log_info("deliver to=%s event=vacation_skipped reason=\"%s\"", account, why);
		free(mine);
		return;
	}
	uint64_t period = vacation_period(ctx->in->config, v->seconds);
	char *key = memory_key(v, ctx->in->env_from);
	const char *error;
	int seen = store_memory_seen(ctx->store, "vacation", key, period, ctx->now, &error);
	if (seen < 0)
		log_warn("deliver to=%s event=vacation_failed error=\"%s\"", account, error);
	else if (seen > 0)
		log_info("deliver to=%s event=vacation_skipped reason=\"already answered\"", account);
	else
		vacation_send(ctx, v, &vc, key, period);
	free(key);
	free(mine);
}

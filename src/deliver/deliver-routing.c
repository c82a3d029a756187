/* The system script: an account's routing settings (dir.h struct
 * dir_routing) as Sieve source that deliver-sieve.c runs before the
 * user's own script (docs/forwarding.md).
 *
 *   closed          require "ereject"; ereject "reason"; stop;
 *   forward + keep  require ["copy"]; redirect :copy "a"; ...
 *                   (the user's script then runs and files the copy)
 *   forward only    redirect "a"; ... stop;
 *                   (nothing is kept, so the user's filters do not run:
 *                   a fileinto there would keep what the user asked us
 *                   not to keep)
 *   vacation        vacation :days N :subject "s" "body"; (before the
 *                   redirects and the stop, so forwarding does not
 *                   silence it; a closed account sends none) */
#include "deliver/deliver-private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dir/dir.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

/* The script holds at most the settings the CLI accepts; this bound is
 * only against a directory edited by hand. */
#define ROUTING_SCRIPT_MAX (4u * 1024 * 1024)

static const char routing_closed_default[] = "This account is closed and no longer receives mail.";

/* A Sieve quoted string (RFC 5228 2.4.2): '"' and '\' escaped, line ends
 * as CRLF (a bare CR or LF is not a Sieve line end). */
static void routing_quote(struct buf *out, const char *text)
{
	buf_append_char(out, '"');
	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\') {
			buf_append_char(out, '\\');
			buf_append_char(out, *p);
		} else if (*p == '\n') {
			buf_append_str(out, "\r\n");
		} else if (*p != '\r') {
			buf_append_char(out, *p);
		}
	}
	buf_append_char(out, '"');
}

static void routing_require(struct buf *out, const struct dir_routing *r)
{
	const char *names[2];
	size_t n = 0;
	if (r->mode == DIR_ROUTING_FORWARD && r->keep_copy)
		names[n++] = "copy";
	if (r->vacation_enabled)
		names[n++] = "vacation";
	if (n == 0)
		return;
	buf_append_str(out, "require [");
	for (size_t i = 0; i < n; i++)
		buf_printf(out, "%s\"%s\"", i > 0 ? ", " : "", names[i]);
	buf_append_str(out, "];\r\n");
}

static void routing_vacation(struct buf *out, const struct dir_routing *r)
{
	buf_printf(out, "vacation :days %u", r->vacation_days > 0 ? r->vacation_days : 1);
	if (r->vacation_subject[0] != '\0') {
		buf_append_str(out, " :subject ");
		routing_quote(out, r->vacation_subject);
	}
	buf_append_char(out, ' ');
	routing_quote(out, r->vacation_body);
	buf_append_str(out, ";\r\n");
}

static void routing_forward(struct buf *out, const struct dir_routing *r)
{
	for (size_t i = 0; i < r->forward_count; i++) {
		buf_append_str(out, r->keep_copy ? "redirect :copy " : "redirect ");
		routing_quote(out, r->forward_to[i]);
		buf_append_str(out, ";\r\n");
	}
	if (!r->keep_copy)
		buf_append_str(out, "stop;\r\n");
}

static void routing_closed(struct buf *out, const struct dir_routing *r)
{
	buf_append_str(out, "require \"ereject\";\r\nereject ");
	routing_quote(out, r->close_reason[0] != '\0' ? r->close_reason : routing_closed_default);
	buf_append_str(out, ";\r\nstop;\r\n");
}

/* Quoting at most doubles a string (CRLF for LF, '\\' for '\'): with
 * this bound every append below fits. */
static bool routing_fits(const struct dir_routing *r)
{
	size_t total =
	        strlen(r->close_reason) + strlen(r->vacation_subject) + strlen(r->vacation_body);
	for (size_t i = 0; i < r->forward_count; i++)
		total += strlen(r->forward_to[i]) + 32;
	return total < (ROUTING_SCRIPT_MAX - 4096) / 2;
}

static bool routing_needed(const struct dir_routing *r)
{
	return r->mode == DIR_ROUTING_CLOSED || r->vacation_enabled ||
	       (r->mode == DIR_ROUTING_FORWARD && r->forward_count > 0);
}

static char *routing_build(const struct dir_routing *r)
{
	bool forward = r->mode == DIR_ROUTING_FORWARD && r->forward_count > 0;
	struct buf out;
	buf_init(&out, ROUTING_SCRIPT_MAX);
	buf_append_str(&out, "# yubin routing settings\r\n");
	if (r->mode == DIR_ROUTING_CLOSED) {
		routing_closed(&out, r);
	} else {
		routing_require(&out, r);
		if (r->vacation_enabled)
			routing_vacation(&out, r);
		if (forward)
			routing_forward(&out, r);
	}
	return buf_steal(&out);
}

char *deliver_routing_script(const struct yubin_config *config, struct dir *dir,
                             const struct dir_account *account)
{
	struct dir_routing r;
	const char *error;
	(void)config;
	/* Without the settings the mail is kept in INBOX: nothing is lost,
	 * and the next delivery reads them again. */
	if (dir_routing_get(dir, account->address, &r, &error) < 0) {
		log_error("deliver to=%s event=routing_unreadable error=\"%s\"", account->address,
		          error);
		dir_routing_free(&r);
		return NULL;
	}
	char *script = NULL;
	if (routing_needed(&r) && routing_fits(&r))
		script = routing_build(&r);
	else if (routing_needed(&r))
		log_error("deliver to=%s event=routing_settings_too_large", account->address);
	dir_routing_free(&r);
	return script;
}

/* Loop protection reads at most this much header: a Delivered-To line
 * added by us is near the top. */
#define ROUTING_HEADER_MAX (256u * 1024)

/* One header field's value (unfolded lines not needed: Delivered-To is a
 * bare address) compared with the account. */
static bool routing_delivered_to(const char *line, size_t len, const char *account)
{
	static const char name[] = "delivered-to:";
	if (len < sizeof(name) - 1 || strncasecmp(line, name, sizeof(name) - 1) != 0)
		return false;
	const char *v = line + sizeof(name) - 1, *end = line + len;
	while (v < end && (*v == ' ' || *v == '\t' || *v == '<'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '>'))
		end--;
	size_t n = (size_t)(end - v);
	return n == strlen(account) && strncasecmp(v, account, n) == 0;
}

bool deliver_routing_loop(int fd, const char *account)
{
	char *head = xmalloc(ROUTING_HEADER_MAX + 1);
	ssize_t got = pread(fd, head, ROUTING_HEADER_MAX, 0);
	bool loop = false;
	size_t len = got > 0 ? (size_t)got : 0;
	for (size_t pos = 0; pos < len && !loop;) {
		const char *nl = memchr(head + pos, '\n', len - pos);
		size_t line = nl != NULL ? (size_t)(nl - (head + pos)) : len - pos;
		if (line == 0 || (line == 1 && head[pos] == '\r'))
			break; /* the end of the header */
		loop = routing_delivered_to(head + pos, line, account);
		pos += line + 1;
	}
	free(head);
	return loop;
}

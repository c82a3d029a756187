/* APPEND (RFC 9051 6.3.12, RFC 4315 APPENDUID). Everything is checked when
 * the literal is announced, before its bytes come: the mailbox, flags,
 * date and size (NO [TRYCREATE], NO [TOOBIG] without a continuation).
 * The literal then streams into store_save_write, never held in memory. */
#include "imap/imap-private.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/config.h"
#include "lib/conn.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

struct imap_append_args {
	const char *mailbox;
	unsigned int flags;
	const char **keywords; /* point into the command's arguments */
	size_t keyword_count;
	time_t date; /* 0 = now */
};

void imap_append_free(struct imap_session *sess)
{
	struct imap_append *a = sess->append;
	if (a == NULL)
		return;
	store_save_abort(&a->save);
	store_names_free(&a->keywords, a->keyword_count);
	free(a->mailbox);
	free(a);
	sess->append = NULL;
}

static int imap_append_flag(const char *name, struct imap_append_args *a)
{
	return imap_flag_classify(name, &a->flags, a->keywords, &a->keyword_count) < 0 ? -1 : 0;
}

static int imap_append_flags(const struct imap_arg *arg, struct imap_append_args *a)
{
	const struct imap_arg *list;
	unsigned int n;
	if (!imap_arg_get_list(arg, &list, &n))
		return -1;
	a->keywords = xcalloc(n + 1, sizeof(a->keywords[0]));
	for (unsigned int i = 0; i < n; i++) {
		const char *name;
		if (!imap_arg_get_flag(&list[i], false, &name) || imap_append_flag(name, a) < 0)
			return -1;
	}
	return 0;
}

static int imap_month(const char *mon)
{
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	for (int i = 0; i < 12; i++) {
		if (strncasecmp(mon, months[i], 3) == 0)
			return i;
	}
	return -1;
}

/* date-time: "dd-Mon-yyyy hh:mm:ss +zzzz" (day may be " d"). */
static int imap_date_time_parse(const char *s, time_t *t_r)
{
	char mon[4], sign;
	int day, year, hh, mm, ss, zone, used = 0;
	if (strlen(s) != 26 ||
	    sscanf(s, "%2d-%3c-%4d %2d:%2d:%2d %c%4d%n", &day, mon, &year, &hh, &mm, &ss, &sign,
	           &zone, &used) != 8 ||
	    used != 26 || (sign != '+' && sign != '-'))
		return -1;
	mon[3] = '\0';
	int m = imap_month(mon);
	if (m < 0 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 || year < 1900 ||
	    zone % 100 > 59)
		return -1;
	struct tm tm = {.tm_mday = day,
	                .tm_mon = m,
	                .tm_year = year - 1900,
	                .tm_hour = hh,
	                .tm_min = mm,
	                .tm_sec = ss};
	time_t t = timegm(&tm);
	int offset = (zone / 100) * 3600 + (zone % 100) * 60;
	*t_r = sign == '+' ? t - offset : t + offset;
	return 0;
}

/* mailbox [flags] [date-time], the arguments before the literal. */
static int imap_append_parse(const struct imap_command *cmd, struct imap_append_args *a)
{
	const struct imap_arg *args = cmd->args.args;
	unsigned int count = cmd->args.count, i = 1;
	const char *date;
	memset(a, 0, sizeof(*a));
	if (count < 1 || !imap_arg_get_astring(&args[0], &a->mailbox))
		return -1;
	if (i < count && args[i].type == IMAP_ARG_LIST &&
	    imap_append_flags(&args[i++], a) < 0)
		return -1;
	if (i < count) {
		if (!imap_arg_get_string(&args[i], &date) ||
		    imap_date_time_parse(date, &a->date) < 0)
			return -1;
		i++;
	}
	return i == count ? 0 : -1;
}

static void imap_append_refuse(struct imap_session *sess, const char *text, bool bad)
{
	imap_parser_literal_refuse(sess->parser);
	if (bad)
		imap_bad(sess, text);
	else
		imap_done(sess, "%s", text);
}

static int imap_append_begin(struct imap_session *sess, const struct imap_append_args *a,
                             const struct imap_literal_info *lit)
{
	const struct yubin_config *config = conn_config(sess->conn);
	const char *error;
	enum store_error err = STORE_OK;
	char *name = imap_mailbox_from_client(sess, a->mailbox, &error);
	if (name == NULL) {
		imap_append_refuse(sess, "NO [CANNOT] Invalid mailbox name", false);
		return -1;
	}
	if (config->mail.max_message_size != 0 && lit->size > config->mail.max_message_size) {
		free(name);
		imap_append_refuse(sess, "NO [TOOBIG] Message too large", false);
		return -1;
	}
	struct store_save *save = store_save_begin(sess->store, name, &err, &error);
	if (save == NULL) {
		free(name);
		imap_parser_literal_refuse(sess->parser);
		if (err == STORE_ERR_NOT_FOUND || err == STORE_ERR_INVALID)
			imap_done(sess, "NO [TRYCREATE] Mailbox does not exist");
		else
			imap_store_error(sess, err, "store_save_begin", error);
		return -1;
	}
	store_save_set_flags(save, a->flags);
	if (a->date != 0)
		store_save_set_internal_date(save, a->date);
	sess->append = xcalloc(1, sizeof(*sess->append));
	sess->append->save = save;
	sess->append->mailbox = name;
	sess->append->keywords = xcalloc(a->keyword_count + 1, sizeof(char *));
	for (size_t i = 0; i < a->keyword_count; i++)
		sess->append->keywords[i] = xstrdup(a->keywords[i]);
	sess->append->keyword_count = a->keyword_count;
	return 0;
}

int imap_append_literal(struct imap_session *sess, const struct imap_command *cmd,
                        const struct imap_literal_info *lit)
{
	struct imap_append_args a;
	xfree(sess->tag);
	sess->tag = xstrdup(cmd->tag);
	sess->cmd = NULL;
	if ((sess->state & (IMAP_STATE_AUTH | IMAP_STATE_SELECTED)) == 0) {
		imap_append_refuse(sess, "Log in first", true);
		return -1;
	}
	if (sess->append != NULL) {
		imap_append_free(sess);
		imap_append_refuse(sess, "MULTIAPPEND is not supported", true);
		return -1;
	}
	int ret = imap_append_parse(cmd, &a);
	if (ret < 0)
		imap_append_refuse(sess, "Invalid APPEND arguments", true);
	else
		ret = imap_append_begin(sess, &a, lit);
	free(a.keywords);
	if (ret < 0)
		return -1;
	if (imap_parser_literal_stream(sess->parser) < 0) {
		imap_append_free(sess);
		return -1;
	}
	if (!lit->nonsync)
		imap_send(sess, "+ OK\r\n", 6);
	return 0;
}

void imap_append_data(struct imap_session *sess, const void *data, size_t len)
{
	struct imap_append *a = sess->append;
	if (a == NULL || a->failed)
		return;
	a->size += len;
	if (store_save_write(a->save, data, len) < 0)
		a->failed = true;
}

/* The store has no keywords on a save, so they follow at once. The
 * message is kept even when they cannot be (RFC 9051 2.3.2 lets a server
 * drop flags it cannot keep); the operator sees why. */
static void imap_append_keywords(struct imap_session *sess, uint32_t uid)
{
	struct imap_append *a = sess->append;
	enum store_error err;
	const char *error;
	if (a->keyword_count == 0)
		return;
	if (store_keywords_update(sess->store, a->mailbox, &uid, 1, 1,
	                          (const char *const *)a->keywords, a->keyword_count, &err,
	                          &error) < 0)
		log_warn("imap session=%s user=%s event=append_keywords_failed mailbox=\"%s\""
		         " error=\"%s\"",
		         conn_id(sess->conn), imap_user(sess), a->mailbox, error);
}

static void imap_append_finish(struct imap_session *sess)
{
	struct imap_append *a = sess->append;
	struct store_status st;
	enum store_error err = STORE_OK;
	const char *error = "write failed";
	uint32_t uid;
	if (a->failed || store_save_finish(&a->save, &uid, &err, &error) < 0) {
		imap_store_error(sess, err, "store_save", error);
		return;
	}
	sess->append_count++;
	imap_append_keywords(sess, uid);
	if (store_mailbox_status(sess->store, a->mailbox, &st, &err, &error) < 0) {
		imap_done(sess, "OK Append completed");
		return;
	}
	log_debug("imap session=%s user=%s event=append mailbox=\"%s\" uid=%" PRIu32
	          " size=%" PRIu64,
	          conn_id(sess->conn), imap_user(sess), a->mailbox, uid, a->size);
	imap_done(sess, "OK [APPENDUID %" PRIu32 " %" PRIu32 "] Append completed", st.uidvalidity,
	          uid);
}

IMAP_HANDLER(imap_cmd_append)
{
	const struct imap_arg *last = count > 0 ? &args[count - 1] : NULL;
	if (sess->append == NULL || last == NULL || last->type != IMAP_ARG_LITERAL ||
	    (last->flags & IMAP_ARG_FLAG_STREAMED) == 0) {
		imap_append_free(sess);
		imap_bad(sess, "APPEND needs a mailbox and a message literal");
		return;
	}
	imap_append_finish(sess);
	imap_append_free(sess);
}

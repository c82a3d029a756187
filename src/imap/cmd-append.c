/* APPEND (RFC 9051 6.3.12, RFC 4315 APPENDUID) and MULTIAPPEND (RFC 3502).
 * Everything is checked when each literal is announced, before its bytes
 * come: the mailbox, flags, date and size (NO [TRYCREATE], NO [TOOBIG]
 * without a continuation). Each literal then streams into its own store
 * save, never held in memory, and the command's end commits them all in
 * one transaction (with their keywords), or none. */
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
	for (size_t i = 0; i < a->count; i++)
		store_save_abort(&a->saves[i]);
	free(a->saves);
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

/* [flags] [date-time] from args[i], up to the literal being announced. */
static int imap_append_parse_message(const struct imap_arg *args, unsigned int count,
                                     unsigned int i, struct imap_append_args *a)
{
	const char *date;
	if (i < count && args[i].type == IMAP_ARG_LIST && imap_append_flags(&args[i++], a) < 0)
		return -1;
	if (i < count) {
		if (!imap_arg_get_string(&args[i], &date) ||
		    imap_date_time_parse(date, &a->date) < 0)
			return -1;
		i++;
	}
	return i == count ? 0 : -1;
}

static bool imap_append_streamed(const struct imap_arg *arg)
{
	return arg->type == IMAP_ARG_LITERAL && (arg->flags & IMAP_ARG_FLAG_STREAMED) != 0;
}

/* The first message follows the mailbox name; each further one
 * (MULTIAPPEND) follows the previous message literal. */
static int imap_append_parse(const struct imap_session *sess, const struct imap_command *cmd,
                             struct imap_append_args *a)
{
	const struct imap_arg *args = cmd->args.args;
	unsigned int count = cmd->args.count, start = 1, literals = 0;
	memset(a, 0, sizeof(*a));
	if (count < 1 || !imap_arg_get_astring(&args[0], &a->mailbox))
		return -1;
	for (unsigned int i = 1; i < count; i++) {
		if (imap_append_streamed(&args[i])) {
			literals++;
			start = i + 1;
		}
	}
	if (literals != (sess->append != NULL ? sess->append->count : 0))
		return -1;
	return imap_append_parse_message(args, count, start, a);
}

static void imap_append_refuse(struct imap_session *sess, const char *text, bool bad)
{
	imap_append_free(sess);
	imap_parser_literal_refuse(sess->parser);
	if (bad)
		imap_bad(sess, text);
	else
		imap_done(sess, "%s", text);
}

/* The first message: the mailbox must exist and is kept for the others. */
static int imap_append_start(struct imap_session *sess, const struct imap_append_args *a)
{
	const char *error;
	char *name = imap_mailbox_from_client(sess, a->mailbox, &error);
	if (name == NULL) {
		imap_append_refuse(sess, "NO [CANNOT] Invalid mailbox name", false);
		return -1;
	}
	sess->append = xcalloc(1, sizeof(*sess->append));
	sess->append->mailbox = name;
	/* an administrator's change applies without a new login */
	imap_quota_load(sess);
	return 0;
}

static void imap_append_begin_error(struct imap_session *sess, enum store_error err,
                                    const char *error)
{
	imap_append_free(sess);
	imap_parser_literal_refuse(sess->parser);
	if (err == STORE_ERR_NOT_FOUND || err == STORE_ERR_INVALID)
		imap_done(sess, "NO [TRYCREATE] Mailbox does not exist");
	else
		imap_store_error(sess, err, "store_save_begin", error);
}

/* Checks one message's size and opens its save with flags, keywords
 * and date; the literal then streams into it. */
static int imap_append_begin(struct imap_session *sess, const struct imap_append_args *a,
                             const struct imap_literal_info *lit)
{
	const struct yubin_config *config = conn_config(sess->conn);
	struct imap_append *ap = sess->append;
	enum store_error err = STORE_OK;
	const char *error;
	if (config->mail.max_message_size != 0 && lit->size > config->mail.max_message_size) {
		imap_append_refuse(sess, "NO [TOOBIG] Message too large", false);
		return -1;
	}
	struct store_save *save = store_save_begin(sess->store, ap->mailbox, &err, &error);
	if (save == NULL) {
		imap_append_begin_error(sess, err, error);
		return -1;
	}
	store_save_set_flags(save, a->flags);
	if (a->date != 0)
		store_save_set_internal_date(save, a->date);
	ap->saves = xreallocarray(ap->saves, ap->count + 1, sizeof(ap->saves[0]));
	ap->saves[ap->count++] = save;
	if (store_save_set_keywords(save, a->keywords, a->keyword_count) < 0) {
		imap_append_refuse(sess, "Invalid keyword", true);
		return -1;
	}
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
	int ret = imap_append_parse(sess, cmd, &a);
	if (ret < 0)
		imap_append_refuse(sess, "Invalid APPEND arguments", true);
	else if (sess->append == NULL)
		ret = imap_append_start(sess, &a);
	if (ret == 0)
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
	if (a == NULL || a->failed || a->count == 0)
		return;
	a->size += len;
	if (store_save_write(a->saves[a->count - 1], data, len) < 0)
		a->failed = true;
}

static void imap_append_fail(struct imap_session *sess, enum store_error err, const char *error)
{
	if (err == STORE_ERR_LIMIT)
		imap_done(sess, "NO [LIMIT] Too many keywords in this mailbox");
	else if (err == STORE_ERR_NOT_FOUND)
		imap_done(sess, "NO [TRYCREATE] Mailbox does not exist");
	else
		imap_store_error(sess, err, "store_save", error);
}

/* "[APPENDUID v uid-set] " (RFC 4315; a set for MULTIAPPEND). */
static void imap_append_uids(struct imap_session *sess, const uint32_t *uids, size_t n,
                             struct buf *out)
{
	struct imap_append *a = sess->append;
	struct store_status st;
	struct imap_seqset set;
	enum store_error err;
	const char *error;
	if (store_mailbox_status(sess->store, a->mailbox, &st, &err, &error) < 0)
		return;
	imap_seqset_init(&set);
	for (size_t i = 0; i < n; i++)
		imap_seqset_add_range(&set, uids[i], uids[i]);
	buf_printf(out, "[APPENDUID %" PRIu32 " ", st.uidvalidity);
	imap_seqset_format(&set, out);
	buf_append_str(out, "] ");
	imap_seqset_free(&set);
}

static void imap_append_finish(struct imap_session *sess)
{
	struct imap_append *a = sess->append;
	enum store_error err = STORE_ERR_TEMP;
	const char *error = "write failed";
	uint32_t *uids = xcalloc(a->count + 1, sizeof(uint32_t));
	if (a->failed ||
	    store_save_finish_all(a->saves, a->count, uids, &err, &error) < 0) {
		free(uids);
		imap_append_fail(sess, err, error);
		return;
	}
	sess->append_count += a->count;
	imap_search_index(sess, a->mailbox, uids, a->count);
	for (size_t i = 0; i < a->count; i++) {
		log_debug("imap session=%s user=%s event=append mailbox=\"%s\" uid=%" PRIu32,
		          conn_id(sess->conn), imap_user(sess), a->mailbox, uids[i]);
	}
	struct buf code = BUF_INIT(0);
	imap_append_uids(sess, uids, a->count, &code);
	imap_done(sess, "OK %sAppend completed", buf_str(&code));
	buf_free(&code);
	free(uids);
}

IMAP_HANDLER(imap_cmd_append)
{
	unsigned int literals = 0;
	for (unsigned int i = 1; i < count; i++)
		literals += imap_append_streamed(&args[i]);
	if (sess->append == NULL || count == 0 || !imap_append_streamed(&args[count - 1]) ||
	    literals != sess->append->count) {
		imap_append_free(sess);
		imap_bad(sess, "APPEND needs a mailbox and a message literal");
		return;
	}
	imap_append_finish(sess);
	imap_append_free(sess);
}

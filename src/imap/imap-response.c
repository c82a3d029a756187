/* Responses: untagged data, the tagged completion of a command (with the
 * mailbox changes RFC 9051 7.4.1 lets the server report first), errors and
 * the capability list. */
#include "imap/imap-private.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "lib/config.h"
#include "lib/conn.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

void imap_send(struct imap_session *sess, const void *data, size_t len)
{
	if (sess->closed)
		return;
	conn_write(sess->conn, data, len);
}

static void imap_vline(struct imap_session *sess, const char *prefix, const char *fmt, va_list ap)
{
	char *text = xvasprintf(fmt, ap);
	char *line = xasprintf("%s %s\r\n", prefix, text);
	imap_send(sess, line, strlen(line));
	free(line);
	free(text);
}

void imap_untagged(struct imap_session *sess, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	imap_vline(sess, "*", fmt, ap);
	va_end(ap);
}

static bool imap_done_allows_expunge(const struct imap_session *sess)
{
	return (sess->cmd->flags & IMAP_CMD_NO_EXPUNGE) == 0 || sess->uid;
}

void imap_done(struct imap_session *sess, const char *fmt, ...)
{
	va_list ap;
	if (sess->cmd != NULL && (sess->cmd->flags & IMAP_CMD_SYNC) != 0 && sess->mbox != NULL)
		imap_mailbox_sync(sess, imap_done_allows_expunge(sess));
	va_start(ap, fmt);
	imap_vline(sess, sess->tag != NULL ? sess->tag : "*", fmt, ap);
	va_end(ap);
	xfree(sess->tag);
	sess->cmd = NULL;
}

void imap_bad(struct imap_session *sess, const char *text)
{
	sess->cmd = NULL;
	imap_done(sess, "BAD %s", text);
	imap_session_bad_command(sess);
}

const char *imap_user(const struct imap_session *sess)
{
	return sess->address != NULL ? sess->address : "-";
}

void imap_internal_error(struct imap_session *sess, const char *what, const char *error)
{
	log_error("imap session=%s user=%s event=error what=%s error=\"%s\"", conn_id(sess->conn),
	          imap_user(sess), what, error != NULL ? error : "-");
	imap_done(sess, "NO [SERVERBUG] Internal error, try again later (session %s)",
	          conn_id(sess->conn));
}

void imap_store_error(struct imap_session *sess, enum store_error err, const char *what,
                      const char *error)
{
	switch (err) {
	case STORE_ERR_NOT_FOUND:
		imap_done(sess, "NO [NONEXISTENT] No such mailbox");
		break;
	case STORE_ERR_EXISTS:
		imap_done(sess, "NO [ALREADYEXISTS] Mailbox already exists");
		break;
	case STORE_ERR_INVALID:
		imap_done(sess, "NO [CANNOT] Invalid mailbox name");
		break;
	case STORE_ERR_QUOTA:
		imap_done(sess, "NO [OVERQUOTA] Quota exceeded");
		break;
	default:
		imap_internal_error(sess, what, error);
		break;
	}
}

static void imap_capability_auth(struct imap_session *sess, struct buf *out)
{
	if (conn_starttls_available(sess->conn))
		buf_append_str(out, " STARTTLS");
	if (!auth_allowed(conn_config(sess->conn), conn_is_tls(sess->conn))) {
		buf_append_str(out, " LOGINDISABLED");
		return;
	}
	char *mechs = xstrdup(sasl_mechanisms());
	for (char *p = mechs; *p != '\0';) {
		size_t n = strcspn(p, " ");
		if (n > 0)
			buf_printf(out, " AUTH=%.*s", (int)n, p);
		p += n;
		p += strspn(p, " ");
	}
	free(mechs);
}

void imap_capability_string(struct imap_session *sess, struct buf *out)
{
	buf_append_str(out, "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE");
	if (sess->state == IMAP_STATE_NOAUTH) {
		imap_capability_auth(sess, out);
		return;
	}
	buf_append_str(out, " NAMESPACE UIDPLUS UNSELECT CHILDREN SPECIAL-USE LIST-STATUS "
	                    "STATUS=SIZE ESEARCH BINARY UTF8=ACCEPT MOVE IDLE OBJECTID SAVEDATE");
	buf_append_str(out, " COMPRESS=DEFLATE");
	buf_append_str(out, " CONDSTORE QRESYNC");
	buf_append_str(out, " SEARCHRES");
	buf_append_str(out, " SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES");
	buf_append_str(out, " QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE LIST-EXTENDED MULTIAPPEND "
	                    "CREATE-SPECIAL-USE");
}

void imap_append_astring(struct imap_session *sess, struct buf *out, const char *s)
{
	imap_write_astring(out, s, sess->utf8);
}

/* IDLE (RFC 2177, RFC 9051 6.3.13): while the client waits, a notify watch
 * on the account wakes the session whenever any process commits a change,
 * and the session reports it at once, as NOOP would. */
#include "imap/imap-private.h"

#include <stdlib.h>
#include <strings.h>

#include "lib/config.h"
#include "lib/conn.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "notify/notify.h"

/* One notify instance per worker process, on its event loop, shared by
 * all its sessions; it lives as long as the process. */
static struct notify *imap_notify;

static struct notify *imap_idle_notify(struct imap_session *sess)
{
	const char *error;
	if (imap_notify != NULL)
		return imap_notify;
	imap_notify = notify_create(conn_event_base(sess->conn), &error);
	if (imap_notify == NULL)
		log_error("imap session=%s event=notify_create_failed error=\"%s\"",
		          conn_id(sess->conn), error);
	return imap_notify;
}

/* The notify hint: ask the store what changed and say it now. */
static void imap_idle_changed(void *ctx)
{
	struct imap_session *sess = ctx;
	if (!sess->idling || sess->mbox == NULL || sess->closing || sess->closed)
		return;
	imap_session_enter(sess);
	imap_mailbox_sync(sess, true);
	imap_session_leave(sess);
}

/* Without a watch (no notify, or the account root vanished) IDLE still
 * answers DONE; the client sees changes at its next command. */
static void imap_idle_watch(struct imap_session *sess)
{
	const struct yubin_config *config = conn_config(sess->conn);
	struct notify *n = imap_idle_notify(sess);
	if (n == NULL || sess->mbox == NULL)
		return;
	char *root = store_account_root(config->server.data_dir, sess->address);
	if (root == NULL)
		return;
	sess->idle_watch = notify_watch_add(n, root, imap_idle_changed, sess);
	free(root);
}

void imap_idle_stop(struct imap_session *sess)
{
	notify_watch_remove(&sess->idle_watch);
	sess->idling = false;
}

IMAP_HANDLER(imap_cmd_idle)
{
	if (count != 0) {
		imap_bad(sess, "IDLE takes no arguments");
		return;
	}
	imap_idle_watch(sess);
	sess->idling = true;
	imap_send(sess, "+ idling\r\n", 10);
	/* What changed before the watch existed is reported now. */
	if (sess->mbox != NULL)
		imap_mailbox_sync(sess, true);
	imap_parser_read_line(sess->parser);
}

void imap_idle_line(struct imap_session *sess, const char *line, size_t len)
{
	imap_idle_stop(sess);
	if (len == 4 && strncasecmp(line, "DONE", 4) == 0)
		imap_done(sess, "OK IDLE terminated");
	else
		imap_bad(sess, "Expected DONE");
}

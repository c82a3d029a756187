/* IDLE (RFC 2177, RFC 9051 6.3.13): while the client waits, a notify watch
 * on the account wakes the session whenever any process commits a change,
 * and the session reports it at once, as NOOP would. */
#include "imap/imap-private.h"

#include <stdlib.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>

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

/* One delivery wakes every session of the account at once, thousands on a
 * worker. Syncing them all in the notify callback would hold the loop for
 * seconds with nothing written; instead the woken sessions wait in a queue
 * that is worked through a slice of this many milliseconds per loop turn,
 * so each slice's EXISTS lines go out before the next slice starts. */
#define IMAP_IDLE_SLICE_MS 5

static struct imap_session *idle_queue_head, *idle_queue_tail;
static struct event *idle_queue_event;

static void imap_idle_dequeue(struct imap_session *sess)
{
	if (!sess->idle_queued)
		return;
	if (sess->idle_prev != NULL)
		sess->idle_prev->idle_next = sess->idle_next;
	else
		idle_queue_head = sess->idle_next;
	if (sess->idle_next != NULL)
		sess->idle_next->idle_prev = sess->idle_prev;
	else
		idle_queue_tail = sess->idle_prev;
	sess->idle_prev = sess->idle_next = NULL;
	sess->idle_queued = false;
}

static uint64_t imap_idle_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void imap_idle_schedule(void)
{
	/* a zero timer runs after the next poll, so output is written first */
	static const struct timeval now = {0, 0};
	evtimer_add(idle_queue_event, &now);
}

static void imap_idle_run_queue(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	uint64_t end = imap_idle_now_ms() + IMAP_IDLE_SLICE_MS;
	do {
		struct imap_session *sess = idle_queue_head;
		if (sess == NULL)
			return;
		imap_idle_dequeue(sess);
		if (!sess->idling || sess->mbox == NULL || sess->closing || sess->closed)
			continue;
		imap_session_enter(sess);
		imap_mailbox_sync(sess, true);
		imap_session_leave(sess);
	} while (imap_idle_now_ms() < end);
	if (idle_queue_head != NULL)
		imap_idle_schedule();
}

/* The notify hint: queue the session to ask the store what changed. */
static void imap_idle_changed(void *ctx)
{
	struct imap_session *sess = ctx;
	if (!sess->idling || sess->mbox == NULL || sess->closing || sess->closed ||
	    sess->idle_queued)
		return;
	if (idle_queue_event == NULL)
		idle_queue_event = evtimer_new(conn_event_base(sess->conn), imap_idle_run_queue, NULL);
	sess->idle_queued = true;
	sess->idle_prev = idle_queue_tail;
	if (idle_queue_tail != NULL)
		idle_queue_tail->idle_next = sess;
	else
		idle_queue_head = sess;
	idle_queue_tail = sess;
	imap_idle_schedule();
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
	imap_idle_dequeue(sess);
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

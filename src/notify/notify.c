/* The watcher side of notify: accounts shared by their watches, and the
 * dispatch that calls each watch once per loop iteration however many
 * changes arrived. Kernel watches and the polling fallback are in
 * notify-inotify.c. */
#include "notify/notify-private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/log.h"
#include "lib/xmalloc.h"

static void notify_pending_unlink(struct notify *n, struct notify_account *acc)
{
	if (acc->pend_prev != NULL)
		acc->pend_prev->pend_next = acc->pend_next;
	else
		n->pend_head = acc->pend_next;
	if (acc->pend_next != NULL)
		acc->pend_next->pend_prev = acc->pend_prev;
	else
		n->pend_tail = acc->pend_prev;
	acc->pend_prev = acc->pend_next = NULL;
	acc->pending = false;
}

void notify_account_mark(struct notify_account *acc)
{
	struct notify *n = acc->n;
	if (acc->pending)
		return;
	/* FIFO, so accounts are called in the order their changes arrived. */
	acc->pending = true;
	acc->pend_prev = n->pend_tail;
	if (n->pend_tail != NULL)
		n->pend_tail->pend_next = acc;
	else
		n->pend_head = acc;
	n->pend_tail = acc;
	event_active(n->fire_ev, EV_TIMEOUT, 0);
}

void notify_mark_all(struct notify *n)
{
	const struct notify_table *t = &n->tables[NOTIFY_BY_ROOT];
	for (size_t i = 0; i < t->size; i++) {
		for (struct notify_account *acc = t->slots[i]; acc != NULL;
		     acc = acc->hnext[NOTIFY_BY_ROOT])
			notify_account_mark(acc);
	}
}

static void notify_account_free(struct notify_account *acc)
{
	struct notify *n = acc->n;
	notify_account_disarm(acc);
	notify_table_remove(&n->tables[NOTIFY_BY_ROOT], NOTIFY_BY_ROOT, acc);
	if (acc->pending)
		notify_pending_unlink(n, acc);
	free(acc->root);
	free(acc->path);
	free(acc);
}

/* Calls every watch of one account. A callback may remove any watch: the
 * cursor n->iter_next is moved past a removed one, and the account itself
 * is freed only after the loop. */
static void notify_account_call(struct notify *n, struct notify_account *acc)
{
	n->current = acc;
	for (struct notify_watch *w = acc->watches; w != NULL; w = n->iter_next) {
		n->iter_next = w->next;
		w->cb(w->ctx);
	}
	n->current = NULL;
	n->iter_next = NULL;
	if (acc->nwatches == 0)
		notify_account_free(acc);
}

static void notify_fire(evutil_socket_t fd, short what, void *ctx)
{
	struct notify *n = ctx;
	struct notify_account *acc;
	while ((acc = n->pend_head) != NULL) {
		notify_pending_unlink(n, acc);
		notify_account_call(n, acc);
	}
}

struct notify *notify_create(struct event_base *base, const char **error_r)
{
	struct notify *n = xcalloc(1, sizeof(*n));
	n->base = base;
	n->fd = -1;
	n->poll_msecs = NOTIFY_POLL_MSECS;
	n->fire_ev = event_new(base, -1, 0, notify_fire, n);
	if (n->fire_ev == NULL) {
		*error_r = "notify: event_new failed";
		free(n);
		return NULL;
	}
	if (notify_inotify_open(n, error_r) < 0) {
		event_free(n->fire_ev);
		free(n);
		return NULL;
	}
	return n;
}

static void notify_account_destroy(struct notify_account *acc)
{
	while (acc->watches != NULL) {
		struct notify_watch *w = acc->watches;
		acc->watches = w->next;
		free(w);
	}
	acc->nwatches = 0;
	notify_account_free(acc);
}

void notify_destroy(struct notify **np)
{
	struct notify *n = *np;
	if (n == NULL)
		return;
	*np = NULL;
	if (n->current != NULL)
		panic("notify_destroy called from a notify callback");
	/* Closing the instance drops every kernel watch at once. */
	if (n->read_ev != NULL)
		event_free(n->read_ev);
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
	struct notify_table *t = &n->tables[NOTIFY_BY_ROOT];
	for (size_t i = 0; i < t->size; i++) {
		while (t->slots[i] != NULL)
			notify_account_destroy(t->slots[i]);
	}
	for (int key = 0; key < NOTIFY_KEY_COUNT; key++)
		notify_table_free(&n->tables[key]);
	event_free(n->fire_ev);
	free(n);
}

static struct notify_account *notify_account_get(struct notify *n, const char *root)
{
	struct notify_account *acc = notify_table_find_root(&n->tables[NOTIFY_BY_ROOT], root);
	if (acc != NULL)
		return acc;
	if (root[0] == '\0') {
		log_warn("notify watch failed root= error=empty account root");
		return NULL;
	}
	acc = xcalloc(1, sizeof(*acc));
	acc->n = n;
	acc->root = xstrdup(root);
	acc->path = xasprintf("%s/%s", root, NOTIFY_FILE_NAME);
	acc->wd = -1;
	if (notify_account_arm(acc) < 0) {
		int err = errno;
		char esc[256];
		log_warn("notify watch failed root=%s error=%s",
		         log_escape(root, strlen(root), esc, sizeof(esc)), strerror(err));
		free(acc->root);
		free(acc->path);
		free(acc);
		return NULL;
	}
	acc->hval[NOTIFY_BY_ROOT] = notify_hash_root(root);
	notify_table_insert(&n->tables[NOTIFY_BY_ROOT], NOTIFY_BY_ROOT, acc);
	return acc;
}

struct notify_watch *notify_watch_add(struct notify *n, const char *account_root,
                                      void (*cb)(void *ctx), void *ctx)
{
	struct notify_account *acc = notify_account_get(n, account_root);
	if (acc == NULL)
		return NULL;
	struct notify_watch *w = xcalloc(1, sizeof(*w));
	w->acc = acc;
	w->cb = cb;
	w->ctx = ctx;
	/* At the head: a watch added by a callback waits for the next change. */
	w->next = acc->watches;
	if (w->next != NULL)
		w->next->prev = w;
	acc->watches = w;
	acc->nwatches++;
	return w;
}

void notify_watch_remove(struct notify_watch **wp)
{
	struct notify_watch *w = *wp;
	if (w == NULL)
		return;
	*wp = NULL;
	struct notify_account *acc = w->acc;
	struct notify *n = acc->n;
	if (n->iter_next == w)
		n->iter_next = w->next;
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		acc->watches = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	free(w);
	acc->nwatches--;
	if (acc->nwatches == 0 && n->current != acc)
		notify_account_free(acc);
}

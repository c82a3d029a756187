/* Kernel watches for notify: one inotify instance per process on its event
 * loop, one watch per account's .yubin-notify file. An account that cannot
 * have a watch (fs.inotify.max_user_watches reached, no inotify at all, the
 * file lost) is checked with stat() on a timer instead, and moves back to a
 * kernel watch as soon as one can be had. */
#include "notify/notify-private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/log.h"

/* A write, a touch, or the file going away or being replaced. */
#define NOTIFY_MASK (IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_DONT_FOLLOW)
/* Drain the whole kernel queue (16,384 events by default, 64 reads) before
 * calling anyone, so one backlog gives one call per watch; the bound only
 * keeps writers that never stop from starving the loop. */
#define NOTIFY_READ_ROUNDS 256
#define NOTIFY_READ_SIZE 4096

static void notify_fallback_log(struct notify *n, const char *root, const char *op, int err)
{
	if (n->logged_fallback)
		return;
	n->logged_fallback = true;
	char esc[256];
	log_warn("notify falls back to polling root=%s op=%s error=%s interval_ms=%u%s",
	         log_escape(root, strlen(root), esc, sizeof(esc)), op, strerror(err), n->poll_msecs,
	         err == ENOSPC ? " hint=raise_fs.inotify.max_user_watches" : "");
}

static int notify_file_ensure(const char *path)
{
	int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static void notify_stamp_take(const char *path, struct notify_stamp *stamp_r)
{
	struct stat st;
	memset(stamp_r, 0, sizeof(*stamp_r));
	if (lstat(path, &st) < 0)
		return;
	stamp_r->exists = true;
	stamp_r->ino = st.st_ino;
	stamp_r->size = st.st_size;
	stamp_r->mtime = st.st_mtim;
	stamp_r->ctime = st.st_ctim;
}

static bool notify_timespec_equal(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

static bool notify_stamp_equal(const struct notify_stamp *a, const struct notify_stamp *b)
{
	return a->exists == b->exists && a->ino == b->ino && a->size == b->size &&
	       notify_timespec_equal(&a->mtime, &b->mtime) &&
	       notify_timespec_equal(&a->ctime, &b->ctime);
}

static int notify_account_watch(struct notify_account *acc)
{
	struct notify *n = acc->n;
	if (n->fd < 0 || n->force_poll) {
		errno = ENOSPC;
		return -1;
	}
	int wd = inotify_add_watch(n->fd, acc->path, NOTIFY_MASK);
	if (wd < 0)
		return -1;
	acc->wd = wd;
	acc->hval[NOTIFY_BY_WD] = notify_hash_wd(wd);
	notify_table_insert(&n->tables[NOTIFY_BY_WD], NOTIFY_BY_WD, acc);
	return 0;
}

static void notify_poll_tick(evutil_socket_t fd, short what, void *ctx)
{
	struct notify_account *acc = ctx;
	struct notify_stamp now;
	notify_stamp_take(acc->path, &now);
	if (!now.exists && notify_file_ensure(acc->path) == 0)
		notify_stamp_take(acc->path, &now);
	if (!notify_stamp_equal(&now, &acc->stamp)) {
		acc->stamp = now;
		notify_account_mark(acc);
	}
	if (now.exists && notify_account_watch(acc) == 0) {
		/* A change between the stat and the new watch would be lost
		 * without this one spare hint. */
		event_del(acc->poll_ev);
		notify_account_mark(acc);
	}
}

static void notify_poll_start(struct notify_account *acc)
{
	struct notify *n = acc->n;
	notify_stamp_take(acc->path, &acc->stamp);
	if (acc->poll_ev == NULL) {
		acc->poll_ev = event_new(n->base, -1, EV_PERSIST, notify_poll_tick, acc);
		if (acc->poll_ev == NULL)
			fatal("notify: event_new failed for the polling timer");
	}
	struct timeval tv = {
	        .tv_sec = n->poll_msecs / 1000,
	        .tv_usec = (suseconds_t)(n->poll_msecs % 1000) * 1000,
	};
	event_add(acc->poll_ev, &tv);
}

int notify_account_arm(struct notify_account *acc)
{
	if (notify_file_ensure(acc->path) < 0)
		return -1;
	if (notify_account_watch(acc) < 0) {
		notify_fallback_log(acc->n, acc->root, "inotify_add_watch", errno);
		notify_poll_start(acc);
	}
	return 0;
}

void notify_account_disarm(struct notify_account *acc)
{
	struct notify *n = acc->n;
	if (acc->wd >= 0) {
		notify_table_remove(&n->tables[NOTIFY_BY_WD], NOTIFY_BY_WD, acc);
		/* Two roots naming one file (a trailing '/', a symlink) get the
		 * same watch from the kernel: the last one out removes it. */
		if (n->fd >= 0 &&
		    notify_table_find_wd(&n->tables[NOTIFY_BY_WD], acc->wd, NULL) == NULL)
			inotify_rm_watch(n->fd, acc->wd);
		acc->wd = -1;
	}
	if (acc->poll_ev != NULL) {
		event_free(acc->poll_ev);
		acc->poll_ev = NULL;
	}
}

/* The file was deleted or renamed: the watch is gone or follows the old
 * file. Callers get a hint now and the account a new watch after the read. */
static void notify_wd_lost(struct notify *n, int wd, bool still_watched)
{
	struct notify_table *t = &n->tables[NOTIFY_BY_WD];
	struct notify_account *acc;
	bool found = false;
	while ((acc = notify_table_find_wd(t, wd, NULL)) != NULL) {
		notify_table_remove(t, NOTIFY_BY_WD, acc);
		acc->wd = -1;
		acc->lost_next = n->lost_head;
		n->lost_head = acc;
		notify_account_mark(acc);
		found = true;
	}
	if (found && still_watched)
		inotify_rm_watch(n->fd, wd);
}

static void notify_rearm_lost(struct notify *n)
{
	while (n->lost_head != NULL) {
		struct notify_account *acc = n->lost_head;
		n->lost_head = acc->lost_next;
		acc->lost_next = NULL;
		if (notify_file_ensure(acc->path) == 0 && notify_account_watch(acc) == 0)
			continue;
		notify_fallback_log(n, acc->root, "rewatch", errno);
		notify_poll_start(acc);
	}
}

static void notify_inotify_event(struct notify *n, const struct inotify_event *ev)
{
	if ((ev->mask & IN_Q_OVERFLOW) != 0) {
		log_warn("notify queue overflow accounts=%zu: every watch is called",
		         n->tables[NOTIFY_BY_ROOT].count);
		notify_mark_all(n);
		return;
	}
	if ((ev->mask & (IN_IGNORED | IN_MOVE_SELF)) != 0) {
		notify_wd_lost(n, ev->wd, (ev->mask & IN_IGNORED) == 0);
		return;
	}
	const struct notify_table *t = &n->tables[NOTIFY_BY_WD];
	for (struct notify_account *acc = notify_table_find_wd(t, ev->wd, NULL); acc != NULL;
	     acc = notify_table_find_wd(t, ev->wd, acc))
		notify_account_mark(acc);
}

static void notify_inotify_parse(struct notify *n, const char *buf, size_t len)
{
	size_t off = 0;
	while (len - off >= sizeof(struct inotify_event)) {
		const struct inotify_event *ev = (const void *)(buf + off);
		size_t size = sizeof(*ev) + ev->len;
		if (size > len - off)
			break;
		notify_inotify_event(n, ev);
		off += size;
	}
}

static void notify_inotify_read(evutil_socket_t fd, short what, void *ctx)
{
	struct notify *n = ctx;
	char buf[NOTIFY_READ_SIZE] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (int i = 0; i < NOTIFY_READ_ROUNDS; i++) {
		ssize_t len = read(fd, buf, sizeof(buf));
		if (len < 0 && errno == EINTR)
			continue;
		if (len <= 0) {
			if (len < 0 && errno != EAGAIN)
				log_warn("notify read failed error=%s", strerror(errno));
			break;
		}
		notify_inotify_parse(n, buf, (size_t)len);
	}
	notify_rearm_lost(n);
}

int notify_inotify_open(struct notify *n, const char **error_r)
{
	n->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (n->fd < 0) {
		/* Usually fs.inotify.max_user_instances: serve on, by polling. */
		log_warn("notify falls back to polling op=inotify_init1 error=%s interval_ms=%u",
		         strerror(errno), n->poll_msecs);
		n->logged_fallback = true;
		return 0;
	}
	n->read_ev = event_new(n->base, n->fd, EV_READ | EV_PERSIST, notify_inotify_read, n);
	if (n->read_ev == NULL || event_add(n->read_ev, NULL) < 0) {
		*error_r = "notify: cannot add the inotify descriptor to the event loop";
		if (n->read_ev != NULL)
			event_free(n->read_ev);
		n->read_ev = NULL;
		close(n->fd);
		n->fd = -1;
		return -1;
	}
	return 0;
}

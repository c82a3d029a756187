/* "This account changed": any process that commits a change to an account's
 * store (a worker's IMAP session, `yubin deliver`, the queue runner) calls
 * notify_account_changed(); every worker that has sessions watching that
 * account calls their callbacks on its own event loop within milliseconds.
 *
 * The callback is only a hint that something changed: the session then asks
 * the store what (UIDNEXT, HIGHESTMODSEQ, expunges). Hints may be merged (many
 * changes, one call) and may be spurious (a call with nothing new), never
 * lost while the watch exists.
 *
 * This backend works on one machine: the writer rewrites one byte of
 * <account_root>/.yubin-notify and each worker's inotify instance sees the
 * change. A cluster backend (PostgreSQL LISTEN/NOTIFY) will sit behind the
 * same functions. See docs/notify.md. */
#ifndef YUBIN_NOTIFY_H
#define YUBIN_NOTIFY_H

struct event_base;
struct notify;
struct notify_watch;

/* The file in each account root that carries the signal. It is a regular
 * file, so the store's folder scans (which look for cur/new/tmp) skip it. */
#define NOTIFY_FILE_NAME ".yubin-notify"

/* Writer side. Cheap (one open, one 1-byte pwrite, one close), never blocks
 * for long and never fails the caller: an error is logged at debug level
 * and dropped. Needs no event loop and no libevent (it lives in
 * notify-write.c of its own). Call it after the change is committed. */
void notify_account_changed(const char *account_root);

/* Watcher side, one per worker process, on its event loop. When inotify
 * cannot be had (too many instances), the instance still works by checking
 * each watched account every 2 s, and says so once in the log. Returns NULL
 * only when libevent fails; *error_r is then a static string. */
struct notify *notify_create(struct event_base *base, const char **error_r);
/* Frees the instance and every watch still registered (pointers the
 * callers hold become invalid). Accepts NULL; sets *n to NULL. Not from
 * inside a notify callback. */
void notify_destroy(struct notify **n);

/* Calls cb(ctx) on the event loop after each change to account_root (merged:
 * all changes seen within one loop iteration give one call per watch).
 * Watches of one account share one kernel watch; the .yubin-notify file is
 * created when missing. Returns NULL, with a warning logged, when the
 * account root does not exist or is not usable. */
struct notify_watch *notify_watch_add(struct notify *n, const char *account_root,
                                      void (*cb)(void *ctx), void *ctx);
/* Removes a watch; accepts NULL and sets *w to NULL. Safe from inside any
 * notify callback, also for other watches than the one being called: a
 * removed watch is never called again. */
void notify_watch_remove(struct notify_watch **w);

#endif

/* Inside the inotify backend of notify: shared between notify.c (watches,
 * dispatch), notify-inotify.c (kernel watches, polling fallback) and
 * notify-table.c (the two hash tables), and read by the unit test. */
#ifndef YUBIN_NOTIFY_PRIVATE_H
#define YUBIN_NOTIFY_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "notify/notify.h"

/* Interval of the fallback check when an account has no kernel watch. */
#define NOTIFY_POLL_MSECS 2000

enum notify_key {
	NOTIFY_BY_ROOT, /* account root string: shares watches */
	NOTIFY_BY_WD,   /* inotify watch descriptor: routes events */
	NOTIFY_KEY_COUNT,
};

/* A chained hash table; the links live in the accounts (hnext[key]). */
struct notify_table {
	struct notify_account **slots;
	size_t size; /* a power of two, 0 until the first insert */
	size_t count;
};

/* What the polling fallback compares between two checks. */
struct notify_stamp {
	bool exists;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

/* One watched account: shared by all the watches on it in this process. */
struct notify_account {
	struct notify *n;
	char *root;
	char *path; /* <root>/.yubin-notify */
	int wd;     /* kernel watch, -1 when none (polled) */
	struct notify_watch *watches;
	unsigned int nwatches;

	struct notify_account *hnext[NOTIFY_KEY_COUNT];
	uint32_t hval[NOTIFY_KEY_COUNT];

	bool pending; /* callbacks due on this loop iteration */
	struct notify_account *pend_prev, *pend_next;

	struct notify_account *lost_next; /* kernel watch gone, to be re-armed */

	struct event *poll_ev; /* the fallback timer, when polled */
	struct notify_stamp stamp;
};

struct notify_watch {
	struct notify_account *acc;
	void (*cb)(void *ctx);
	void *ctx;
	struct notify_watch *prev, *next;
};

struct notify {
	struct event_base *base;
	int fd; /* inotify instance, -1 when unavailable */
	struct event *read_ev;
	struct event *fire_ev; /* activated when an account becomes pending */
	struct notify_table tables[NOTIFY_KEY_COUNT];

	struct notify_account *pend_head, *pend_tail;
	struct notify_account *lost_head;

	/* The dispatch in progress, so that callbacks may remove watches. */
	struct notify_account *current;
	struct notify_watch *iter_next;

	unsigned int poll_msecs;
	bool force_poll; /* tests: behave as if the kernel had no watches left */
	bool logged_fallback;
};

/* notify.c */
void notify_account_mark(struct notify_account *acc);
void notify_mark_all(struct notify *n);

/* notify-inotify.c */
int notify_inotify_open(struct notify *n, const char **error_r);
/* Creates the signal file and starts a kernel watch or the fallback timer;
 * -1 with errno set when the account root is not usable. */
int notify_account_arm(struct notify_account *acc);
void notify_account_disarm(struct notify_account *acc);

/* notify-table.c */
uint32_t notify_hash_root(const char *root);
uint32_t notify_hash_wd(int wd);
void notify_table_insert(struct notify_table *t, enum notify_key key, struct notify_account *acc);
void notify_table_remove(struct notify_table *t, enum notify_key key, struct notify_account *acc);
void notify_table_free(struct notify_table *t);
struct notify_account *notify_table_find_root(const struct notify_table *t, const char *root);
/* The first account after `after` (NULL: from the start) on watch wd. */
struct notify_account *notify_table_find_wd(const struct notify_table *t, int wd,
                                            const struct notify_account *after);

#endif

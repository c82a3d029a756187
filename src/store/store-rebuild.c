/* Rebuilding index.db from the Maildir: folders, yubin-state files and the
 * U=/M= fields in file names. See docs/store.md for why no UID is ever
 * reused for other content. */
#include "store/store-private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/xmalloc.h"

struct store_rebuild_folder {
	char *name;
	char *dir;
};

/* What one folder's files say. */
struct store_rebuild_scan {
	struct store_file *files;
	size_t count;
	struct store_state state;
	bool has_state;
	uint32_t max_uid;
	uint64_t max_modseq;
};

static int store_rebuild_move_aside(const char *root, const char **error_r)
{
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	long long now = (long long)time(NULL);
	for (size_t i = 0; i < 3; i++) {
		char *from = xasprintf("%s/%s%s", root, STORE_INDEX_FILE, suffixes[i]);
		char *to =
		        xasprintf("%s/%s.broken-%lld%s", root, STORE_INDEX_FILE, now, suffixes[i]);
		int ret = rename(from, to);
		if (ret < 0 && errno != ENOENT)
			*error_r = store_errorf("rename(%s) failed: %s", from, strerror(errno));
		free(from);
		free(to);
		if (ret < 0 && errno != ENOENT)
			return -1;
	}
	return 0;
}

static void store_rebuild_remove_index(const char *root)
{
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < 3; i++) {
		char *path = xasprintf("%s/%s%s", root, STORE_INDEX_FILE, suffixes[i]);
		unlink(path);
		free(path);
	}
}

static bool store_rebuild_is_folder(const char *dir)
{
	static const char *const subs[] = {"cur", "new", "tmp"};
	for (size_t i = 0; i < 3; i++) {
		char *path = xasprintf("%s/%s", dir, subs[i]);
		struct stat st;
		int ret = lstat(path, &st);
		free(path);
		if (ret < 0 || !S_ISDIR(st.st_mode))
			return false;
	}
	return true;
}

static void store_rebuild_add(struct store_rebuild_folder **folders, size_t *count, char *name,
                              char *dir)
{
	*folders = xreallocarray(*folders, *count + 1, sizeof(**folders));
	(*folders)[*count].name = name;
	(*folders)[*count].dir = dir;
	(*count)++;
}

/* INBOX (the root) and every .Name with cur/ new/ tmp/ whose name decodes
 * to a valid mailbox name. */
static int store_rebuild_find(const char *root, struct store_rebuild_folder **folders_r,
                              size_t *count_r, const char **error_r)
{
	DIR *d = opendir(root);
	if (d == NULL) {
		*error_r = store_errorf("opendir(%s) failed: %s", root, strerror(errno));
		return -1;
	}
	struct store_rebuild_folder *folders = NULL;
	size_t count = 0;
	store_rebuild_add(&folders, &count, xstrdup("INBOX"), xstrdup(root));
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		char *name;
		if (de->d_name[0] != '.' || strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		char *dir = xasprintf("%s/%s", root, de->d_name);
		if (store_rebuild_is_folder(dir) && store_folder_to_name(de->d_name, &name) == 0) {
			store_rebuild_add(&folders, &count, name, dir);
			continue;
		}
		if (store_rebuild_is_folder(dir)) {
			char esc[128];
			log_warn("store rebuild skips folder=%s: not a valid mailbox name",
			         log_escape(de->d_name, strlen(de->d_name), esc, sizeof(esc)));
		}
		free(dir);
	}
	closedir(d);
	*folders_r = folders;
	*count_r = count;
	return 0;
}

static void store_rebuild_folders_free(struct store_rebuild_folder *folders, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(folders[i].name);
		free(folders[i].dir);
	}
	free(folders);
}

static int store_rebuild_uid_cmp(const void *a, const void *b)
{
	uint32_t ua = ((const struct store_file *)a)->fn.uid;
	uint32_t ub = ((const struct store_file *)b)->fn.uid;
	return ua < ub ? -1 : ua > ub;
}

static int store_rebuild_date_cmp(const void *a, const void *b)
{
	const struct store_file *fa = a, *fb = b;
	if (fa->mtime != fb->mtime)
		return fa->mtime < fb->mtime ? -1 : 1;
	return strcmp(fa->fn.base, fb->fn.base);
}

/* Lists the folder's messages (dropping what vanished) and its state. */
static int store_rebuild_scan(const char *dir, struct store_rebuild_scan *scan,
                              const char **error_r)
{
	memset(scan, 0, sizeof(*scan));
	scan->has_state = store_state_read(dir, &scan->state) == 0;
	struct store_file *files;
	size_t count;
	if (store_list_files(dir, &files, &count, error_r) < 0)
		return -1;
	for (size_t i = 0; i < count; i++) {
		if (store_file_complete(dir, &files[i]) < 0) {
			store_files_free(&files[i], 1);
			continue;
		}
		struct store_file *f = &files[scan->count++];
		*f = files[i];
		if (f->fn.has_uid && f->fn.uid > scan->max_uid)
			scan->max_uid = f->fn.uid;
		if (f->fn.has_modseq && f->fn.modseq > scan->max_modseq)
			scan->max_modseq = f->fn.modseq;
	}
	scan->files = files;
	return 0;
}

/* UIDs can be kept when the state file survived and every file names a
 * distinct UID. */
static bool store_rebuild_can_keep(struct store_rebuild_scan *scan)
{
	if (!scan->has_state)
		return false;
	for (size_t i = 0; i < scan->count; i++) {
		if (!scan->files[i].fn.has_uid || scan->files[i].fn.uid == UINT32_MAX)
			return false;
	}
	if (scan->count > 1)
		qsort(scan->files, scan->count, sizeof(*scan->files), store_rebuild_uid_cmp);
	for (size_t i = 1; i < scan->count; i++) {
		if (scan->files[i].fn.uid == scan->files[i - 1].fn.uid)
			return false;
	}
	return true;
}

static void store_rebuild_keep(struct store_rebuild_scan *scan, struct store_state *state)
{
	*state = scan->state;
	if (scan->max_uid >= state->uidnext)
		state->uidnext = scan->max_uid + 1;
	if (scan->max_modseq > state->highestmodseq)
		state->highestmodseq = scan->max_modseq;
	state->highestmodseq++;
	for (size_t i = 0; i < scan->count; i++) {
		struct store_fname *fn = &scan->files[i].fn;
		if (!fn->has_modseq || fn->modseq == 0)
			fn->modseq = state->highestmodseq;
	}
}

/* New UIDVALIDITY, UIDs 1..n by (date, base), each file renamed to match.
 * The state file is written before any rename, so a crash half way
 * through leaves the new UIDVALIDITY in force. */
static int store_rebuild_renumber(const char *root, const char *dir,
                                  struct store_rebuild_scan *scan, uint32_t *last_r,
                                  struct store_state *state, const char **error_r)
{
	uint64_t modseq = scan->max_modseq > scan->state.highestmodseq ? scan->max_modseq
	                                                               : scan->state.highestmodseq;
	state->uidvalidity = store_uidvalidity_next(root, *last_r, error_r);
	if (state->uidvalidity == 0)
		return -1;
	*last_r = state->uidvalidity;
	state->uidnext = (uint32_t)scan->count + 1;
	state->highestmodseq = modseq + 1;
	if (store_state_write(dir, state, error_r) < 0)
		return -1;
	if (scan->count > 1)
		qsort(scan->files, scan->count, sizeof(*scan->files), store_rebuild_date_cmp);
	for (size_t i = 0; i < scan->count; i++) {
		struct store_file *f = &scan->files[i];
		f->fn.uid = (uint32_t)i + 1;
		f->fn.modseq = state->highestmodseq;
		if (!f->fn.in_cur)
			f->fn.flags = 0;
		char *rel = store_fname_build(f->fn.base, f->fn.in_cur, f->fn.size, f->fn.vsize,
		                              f->fn.uid, f->fn.modseq, f->fn.flags);
		char *from = xasprintf("%s/%s", dir, f->rel);
		char *to = xasprintf("%s/%s", dir, rel);
		int ret = rename(from, to);
		if (ret < 0)
			*error_r = store_errorf("rename(%s) failed: %s", from, strerror(errno));
		free(from);
		free(to);
		free(f->rel);
		f->rel = rel;
		if (ret < 0)
			return -1;
	}
	return 0;
}

static int store_rebuild_insert(struct store *store, const char *canon,
                                const struct store_rebuild_scan *scan,
                                const struct store_state *state, const char **error_r)
{
	int64_t id;
	if (store_db_begin(store->db, error_r) < 0)
		return -1;
	int ret = store_mailbox_insert(store->db, canon, state, &id, error_r);
	time_t now = time(NULL);
	for (size_t i = 0; i < scan->count && ret == 0; i++) {
		const struct store_file *f = &scan->files[i];
		struct store_fname fn = f->fn;
		if (!fn.has_info)
			fn.flags = 0;
		ret = store_message_insert(store->db, id, fn.uid, &fn, f->rel, f->mtime, now,
		                           error_r);
	}
	if (ret < 0) {
		store_db_rollback(store->db);
		return -1;
	}
	return store_db_commit(store->db, error_r);
}

static int store_rebuild_folder(struct store *store, const struct store_rebuild_folder *folder,
                                uint32_t *last_r, struct store_rebuild_report *report,
                                const char **error_r)
{
	struct store_rebuild_scan scan;
	struct store_state state;
	if (store_rebuild_scan(folder->dir, &scan, error_r) < 0)
		return -1;
	int ret = 0;
	if (store_rebuild_can_keep(&scan)) {
		store_rebuild_keep(&scan, &state);
		ret = store_state_write(folder->dir, &state, error_r);
	} else {
		ret = store_rebuild_renumber(store->root, folder->dir, &scan, last_r, &state,
		                             error_r);
		report->uidvalidity_changed++;
	}
	if (ret == 0)
		ret = store_rebuild_insert(store, folder->name, &scan, &state, error_r);
	if (ret == 0) {
		report->mailboxes++;
		report->messages += scan.count;
		log_info("store rebuild mailbox=%s messages=%zu uidvalidity=%u uidnext=%u",
		         folder->name, scan.count, state.uidvalidity, state.uidnext);
	}
	store_files_free(scan.files, scan.count);
	return ret;
}

/* The highest UIDVALIDITY any folder or the account file remembers. */
static uint32_t store_rebuild_last_uidvalidity(const char *root,
                                               const struct store_rebuild_folder *folders,
                                               size_t count)
{
	uint32_t last = store_uidvalidity_last(root);
	for (size_t i = 0; i < count; i++) {
		struct store_state state;
		if (store_state_read(folders[i].dir, &state) == 0 && state.uidvalidity > last)
			last = state.uidvalidity;
	}
	return last;
}

static int store_rebuild_all(struct store *store, struct store_rebuild_report *report,
                             const char **error_r)
{
	struct store_rebuild_folder *folders;
	size_t count;
	if (store_mkdir_folder(store->root, error_r) < 0 ||
	    store_rebuild_find(store->root, &folders, &count, error_r) < 0)
		return -1;
	uint32_t last = store_rebuild_last_uidvalidity(store->root, folders, count);
	int ret = 0;
	for (size_t i = 0; i < count && ret == 0; i++)
		ret = store_rebuild_folder(store, &folders[i], &last, report, error_r);
	store_rebuild_folders_free(folders, count);
	return ret;
}

/* An interrupted copy, move, delete or rename is settled with the old
 * index first (the lock is held): its journal goes with that index, and
 * the files it names would otherwise be adopted twice. An index too
 * damaged to open is skipped. */
static void store_rebuild_recover(const char *root)
{
	struct store store = {.root = xstrdup(root)};
	const char *error;
	char *path = xasprintf("%s/%s", root, STORE_INDEX_FILE);
	if (access(path, F_OK) == 0 && store_index_open(root, false, &store.db, &error) == 0) {
		if (store_journal_recover(&store, &error) < 0)
			log_warn("store rebuild journal recovery root=%s error=%s", root, error);
		store_db_close(store.db);
	}
	free(path);
	free(store.root);
}

static int store_rebuild_run(const char *root, struct store_rebuild_report *report_r,
                             const char **error_r)
{
	struct store store = {.root = xstrdup(root)};
	store_rebuild_recover(root);
	int ret = store_rebuild_move_aside(root, error_r);
	if (ret == 0)
		ret = store_index_open(root, true, &store.db, error_r);
	if (ret == 0) {
		ret = store_rebuild_all(&store, report_r, error_r);
		store_db_close(store.db);
		/* a half-built index must not be mistaken for a good one: without
		 * it the next open rebuilds again */
		if (ret < 0)
			store_rebuild_remove_index(root);
	}
	free(store.root);
	return ret;
}

/* Serialises rebuilds of one account between processes (flock, released
 * by close). -1 on error, else the lock fd. */
static int store_rebuild_lock(const char *root, const char **error_r)
{
	char *path = xasprintf("%s/%s", root, STORE_REBUILD_LOCK_FILE);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		*error_r = store_errorf("locking %s failed: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	free(path);
	return fd;
}

static int store_rebuild_checked(const char *root, bool only_if_missing,
                                 struct store_rebuild_report *report_r, const char **error_r)
{
	struct stat st;
	memset(report_r, 0, sizeof(*report_r));
	if (root == NULL) {
		*error_r = "address cannot name a mail folder";
		return -1;
	}
	if (lstat(root, &st) < 0 || !S_ISDIR(st.st_mode)) {
		*error_r = store_errorf("no mail folder at %s", root);
		return -1;
	}
	int lock = store_rebuild_lock(root, error_r);
	if (lock < 0)
		return -1;
	char *index = xasprintf("%s/%s", root, STORE_INDEX_FILE);
	int ret = 0;
	/* another process may have rebuilt it while we waited for the lock */
	if (!only_if_missing || access(index, F_OK) < 0) {
		if (only_if_missing)
			log_warn("store index missing, rebuilding root=%s", root);
		ret = store_rebuild_run(root, report_r, error_r);
	}
	free(index);
	close(lock);
	return ret;
}

int store_rebuild_missing(const char *root, struct store_rebuild_report *report_r,
                          const char **error_r)
{
	return store_rebuild_checked(root, true, report_r, error_r);
}

int store_rebuild(const char *root, struct store_rebuild_report *report_r, const char **error_r)
{
	return store_rebuild_checked(root, false, report_r, error_r);
}

/* Accounts, opening the store, mailboxes and the POP3 lock. */
#include "store/store-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/xmalloc.h"

static char store_error_buf[1024];

const char *store_errorf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(store_error_buf, sizeof(store_error_buf), fmt, ap);
	va_end(ap);
	return store_error_buf;
}

/* A part of an address that is about to become a folder name: no '/',
 * no leading '.', no control bytes. */
static bool store_path_part_ok(const char *s, size_t len)
{
	if (len == 0 || s[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '/' || c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

char *store_account_root(const char *data_dir, const char *address)
{
	const char *at = strrchr(address, '@');
	if (at == NULL || !store_path_part_ok(address, (size_t)(at - address)) ||
	    !store_path_part_ok(at + 1, strlen(at + 1)))
		return NULL;
	return xasprintf("%s/mail/%s/%.*s", data_dir, at + 1, (int)(at - address), address);
}

/* mkdir -p with mode 0700 for every missing component. */
static int store_mkdir_parents(const char *path, const char **error_r)
{
	char *copy = xstrdup(path);
	int ret = 0;
	for (char *p = copy + 1; ret == 0; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(copy, 0700) < 0 && errno != EEXIST) {
			*error_r = store_errorf("mkdir(%s) failed: %s", copy, strerror(errno));
			ret = -1;
		}
		*p = saved;
		if (saved == '\0')
			break;
	}
	free(copy);
	return ret;
}

static int store_account_create_folders(struct store *store, const char **error_r)
{
	static const char *const specials[] = STORE_SPECIAL_FOLDERS;
	enum store_error err;
	if (store_mailbox_create_canon(store, "INBOX", &err, error_r) < 0 &&
	    err != STORE_ERR_EXISTS)
		return -1;
	for (size_t i = 0; i < sizeof(specials) / sizeof(specials[0]); i++) {
		if (store_mailbox_create_canon(store, specials[i], &err, error_r) < 0 &&
		    err != STORE_ERR_EXISTS)
			return -1;
	}
	return 0;
}

static bool store_file_exists(const char *root, const char *name)
{
	char *path = xasprintf("%s/%s", root, name);
	bool exists = access(path, F_OK) == 0;
	free(path);
	return exists;
}

int store_account_create(const char *root, const char **error_r)
{
	if (root == NULL) {
		*error_r = "address cannot name a mail folder";
		return -1;
	}
	/* INBOX's state file is written after the index is created: with the
	 * state present and the index gone, the index was lost, and its UIDs
	 * are recovered by a rebuild rather than started afresh */
	bool had_state = store_file_exists(root, STORE_STATE_FILE);
	if (store_file_exists(root, STORE_INDEX_FILE))
		return 0;
	if (store_mkdir_parents(root, error_r) < 0 || store_mkdir_folder(root, error_r) < 0)
		return -1;
	struct store_rebuild_report report;
	if (had_state && store_rebuild_missing(root, &report, error_r) < 0)
		return -1;
	struct store store = {.root = xstrdup(root)};
	int ret = store_index_open(root, true, &store.db, error_r);
	if (ret == 0) {
		ret = store_account_create_folders(&store, error_r);
		store_db_close(store.db);
	}
	free(store.root);
	return ret;
}

int store_account_remove(const char *root, const char **error_r)
{
	struct stat st;
	if (root == NULL) {
		*error_r = "address cannot name a mail folder";
		return -1;
	}
	if (lstat(root, &st) < 0) {
		*error_r = store_errorf("%s: %s", root, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		*error_r = store_errorf("%s is not a directory", root);
		return -1;
	}
	return store_remove_tree(root, error_r);
}

static void store_cleanup_tmp(struct store *store)
{
	struct store_mailbox *mboxes;
	size_t count;
	const char *error;
	if (store_mailbox_get_all(store, &mboxes, &count, &error) < 0)
		return;
	time_t now = time(NULL);
	for (size_t i = 0; i < count; i++)
		store_tmp_cleanup(mboxes[i].dir, now);
	store_mailboxes_free(mboxes, count);
}

/* An account whose index.db is missing gets one rebuilt from its files. */
static int store_open_index(const char *root, sqlite3 **db_r, const char **error_r)
{
	struct store_rebuild_report report;
	if (!store_file_exists(root, STORE_INDEX_FILE) &&
	    store_rebuild_missing(root, &report, error_r) < 0)
		return -1;
	return store_index_open(root, false, db_r, error_r);
}

int store_open(const char *root, struct store **store_r, const char **error_r)
{
	struct stat st;
	if (root == NULL) {
		*error_r = "address cannot name a mail folder";
		return -1;
	}
	if (stat(root, &st) < 0 || !S_ISDIR(st.st_mode)) {
		*error_r = store_errorf("no mail folder at %s", root);
		return -1;
	}
	struct store *store = xcalloc(1, sizeof(*store));
	store->root = xstrdup(root);
	if (store_open_index(root, &store->db, error_r) < 0) {
		free(store->root);
		free(store);
		return -1;
	}
	store_cleanup_tmp(store);
	/* before sync: files of an interrupted copy or move are settled first */
	if (store_journal_try_recover(store, error_r) < 0 || store_sync_all(store, error_r) < 0) {
		store_close(&store);
		return -1;
	}
	*store_r = store;
	return 0;
}

void store_close(struct store **storep)
{
	struct store *store = *storep;
	if (store == NULL)
		return;
	store_db_close(store->db);
	free(store->root);
	free(store);
	*storep = NULL;
}

/* Current time, but strictly above any UIDVALIDITY the account used
 * (recorded in yubin-uidvalidity), so that a mailbox deleted and
 * created again, or renumbered, never shows an old value. Returns 0 on
 * failure to record it. */
uint32_t store_uidvalidity_next(const char *root, uint32_t also_above, const char **error_r)
{
	uint32_t last = store_uidvalidity_last(root);
	if (also_above > last)
		last = also_above;
	time_t now = time(NULL);
	uint32_t v = now > (time_t)last && now < (time_t)UINT32_MAX ? (uint32_t)now : last + 1;
	if (v == 0) {
		*error_r = "UIDVALIDITY space exhausted";
		return 0;
	}
	if (store_uidvalidity_save(root, v, error_r) < 0)
		return 0;
	return v;
}

static int store_uidvalidity_max(sqlite3 *db, uint32_t *max_r, const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(
	        db, "SELECT COALESCE(MAX(uidvalidity), 0) FROM mailboxes", error_r);
	if (stmt == NULL)
		return -1;
	int ret = sqlite3_step(stmt);
	if (ret == SQLITE_ROW)
		*max_r = (uint32_t)sqlite3_column_int64(stmt, 0);
	else
		*error_r = store_db_error(db, "read");
	store_db_finish(stmt);
	return ret == SQLITE_ROW ? 0 : -1;
}

/* Inside the caller's transaction: folder, state file, then the row. */
static int store_mailbox_create_locked(struct store *store, const char *canon, const char **error_r)
{
	char *dir = store_folder_path(store->root, canon);
	struct store_state old, state;
	uint32_t above = 0;
	int ret = -1;
	if (store_state_read(dir, &old) == 0)
		above = old.uidvalidity;
	if (store_uidvalidity_max(store->db, &state.uidvalidity, error_r) < 0)
		goto out;
	if (state.uidvalidity > above)
		above = state.uidvalidity;
	state.uidvalidity = store_uidvalidity_next(store->root, above, error_r);
	state.uidnext = 1;
	state.highestmodseq = 1;
	int64_t id;
	if (state.uidvalidity == 0 || store_mkdir_folder(dir, error_r) < 0 ||
	    store_state_write(dir, &state, error_r) < 0 ||
	    store_mailbox_insert(store->db, canon, &state, &id, error_r) < 0)
		goto out;
	ret = 0;
out:
	free(dir);
	return ret;
}

int store_mailbox_create_canon(struct store *store, const char *canon, enum store_error *err_r,
                               const char **error_r)
{
	struct store_mailbox mbox;
	*err_r = STORE_ERR_TEMP;
	if (store_db_begin(store->db, error_r) < 0)
		return -1;
	int found = store_mailbox_get(store, canon, &mbox, error_r);
	store_mailbox_clear(&mbox);
	if (found != 0) {
		store_db_rollback(store->db);
		if (found > 0) {
			*err_r = STORE_ERR_EXISTS;
			*error_r = "mailbox already exists";
		}
		return -1;
	}
	if (store_mailbox_create_locked(store, canon, error_r) < 0) {
		store_db_rollback(store->db);
		return -1;
	}
	if (store_db_commit(store->db, error_r) < 0)
		return -1;
	*err_r = STORE_OK;
	return 0;
}

int store_mailbox_create(struct store *store, const char *name, enum store_error *err_r,
                         const char **error_r)
{
	char *canon;
	if (store_name_normalize(name, &canon, error_r) < 0) {
		*err_r = STORE_ERR_INVALID;
		return -1;
	}
	int ret = store_mailbox_create_canon(store, canon, err_r, error_r);
	free(canon);
	return ret;
}

/* Validates a client's name and reads its row, after bringing it in step
 * with the folder when sync is set. */
int store_mailbox_lookup(struct store *store, const char *name, bool sync,
                         struct store_mailbox *mbox_r, enum store_error *err_r,
                         const char **error_r)
{
	char *canon;
	memset(mbox_r, 0, sizeof(*mbox_r));
	if (store_name_normalize(name, &canon, error_r) < 0) {
		*err_r = STORE_ERR_INVALID;
		return -1;
	}
	*err_r = STORE_ERR_TEMP;
	int ret = sync ? store_sync_mailbox(store, canon, error_r) : 0;
	if (ret == 0)
		ret = store_mailbox_get(store, canon, mbox_r, error_r);
	free(canon);
	if (ret == 0) {
		*err_r = STORE_ERR_NOT_FOUND;
		*error_r = "no such mailbox";
	}
	if (ret <= 0)
		return -1;
	*err_r = STORE_OK;
	return 0;
}

static int store_mailbox_counts(struct store *store, int64_t id, struct store_status *status,
                                const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(
	        store->db,
	        "SELECT COUNT(*), COALESCE(SUM((flags & ?) = 0), 0), COALESCE(SUM(size), 0)"
	        " FROM messages WHERE mailbox_id = ?",
	        error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int(stmt, 1, STORE_FLAG_SEEN);
	sqlite3_bind_int64(stmt, 2, id);
	int ret = sqlite3_step(stmt);
	if (ret == SQLITE_ROW) {
		status->messages = (uint32_t)sqlite3_column_int64(stmt, 0);
		status->unseen = (uint32_t)sqlite3_column_int64(stmt, 1);
		status->size = (uint64_t)sqlite3_column_int64(stmt, 2);
	} else {
		*error_r = store_db_error(store->db, "read");
	}
	store_db_finish(stmt);
	return ret == SQLITE_ROW ? 0 : -1;
}

static void store_status_from(const struct store_mailbox *mbox, struct store_status *status_r)
{
	memset(status_r, 0, sizeof(*status_r));
	status_r->uidvalidity = mbox->uidvalidity;
	status_r->uidnext = mbox->uidnext;
	status_r->highestmodseq = mbox->highestmodseq;
}

int store_mailbox_state(struct store *store, const char *name, struct store_status *status_r,
                        enum store_error *err_r, const char **error_r)
{
	struct store_mailbox mbox;
	if (store_mailbox_lookup(store, name, true, &mbox, err_r, error_r) < 0)
		return -1;
	store_status_from(&mbox, status_r);
	store_mailbox_clear(&mbox);
	return 0;
}

int store_mailbox_status(struct store *store, const char *name, struct store_status *status_r,
                         enum store_error *err_r, const char **error_r)
{
	struct store_mailbox mbox;
	if (store_mailbox_lookup(store, name, true, &mbox, err_r, error_r) < 0)
		return -1;
	store_status_from(&mbox, status_r);
	int ret = store_mailbox_counts(store, mbox.id, status_r, error_r);
	store_mailbox_clear(&mbox);
	if (ret < 0)
		*err_r = STORE_ERR_TEMP;
	return ret;
}

int store_mailbox_list(struct store *store, char ***names_r, size_t *count_r, const char **error_r)
{
	struct store_mailbox *mboxes;
	size_t count;
	if (store_mailbox_get_all(store, &mboxes, &count, error_r) < 0)
		return -1;
	char **names = xcalloc(count + 1, sizeof(*names));
	for (size_t i = 0; i < count; i++) {
		names[i] = mboxes[i].name;
		mboxes[i].name = NULL;
	}
	store_mailboxes_free(mboxes, count);
	*names_r = names;
	*count_r = count;
	return 0;
}

void store_names_free(char ***names, size_t count)
{
	if (*names == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free((*names)[i]);
	xfree(*names);
}

int store_pop3_lock(struct store *store, int *lock_fd_r, const char **error_r)
{
	char *path = xasprintf("%s/%s", store->root, STORE_POP3_LOCK_FILE);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		*error_r = store_errorf("open(%s) failed: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	free(path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int saved = errno;
		close(fd);
		if (saved == EWOULDBLOCK)
			return 0;
		*error_r = store_errorf("flock failed: %s", strerror(saved));
		return -1;
	}
	*lock_fd_r = fd;
	return 1;
}

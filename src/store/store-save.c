/* Saving a message: tmp/ file, fsync, then under the index's write lock
 * the UID, the rename into new/ or cur/, the directory fsync and the row.
 * Only after the commit does the caller hear success. */
#include "store/store-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/xmalloc.h"

struct store_save {
	struct store *store;
	char *mailbox; /* canonical name */
	char *dir;     /* folder path */
	char *base;
	char *tmp_path;
	int fd;
	uint64_t size;
	uint64_t bare_lf;
	bool last_cr;
	bool eol_missing;
	int write_errno; /* first write error, reported by finish */
	unsigned int flags;
	time_t internal_date;
	time_t save_date;
};

static void store_save_free(struct store_save *save)
{
	if (save->fd >= 0)
		close(save->fd);
	free(save->mailbox);
	free(save->dir);
	free(save->base);
	free(save->tmp_path);
	free(save);
}

struct store_save *store_save_begin(struct store *store, const char *mailbox,
                                    enum store_error *err_r, const char **error_r)
{
	struct store_mailbox mbox;
	if (store_mailbox_lookup(store, mailbox, false, &mbox, err_r, error_r) < 0)
		return NULL;
	struct store_save *save = xcalloc(1, sizeof(*save));
	save->store = store;
	save->mailbox = mbox.name;
	save->dir = mbox.dir;
	save->base = store_new_base();
	save->tmp_path = xasprintf("%s/tmp/%s", save->dir, save->base);
	save->save_date = time(NULL);
	save->internal_date = save->save_date;
	save->fd = open(save->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (save->fd < 0) {
		*err_r = STORE_ERR_TEMP;
		*error_r = store_errorf("open(%s) failed: %s", save->tmp_path, strerror(errno));
		store_save_free(save);
		return NULL;
	}
	*err_r = STORE_OK;
	return save;
}

int store_save_write(struct store_save *save, const void *data, size_t len)
{
	const unsigned char *p = data;
	if (save->write_errno != 0)
		return -1;
	store_vsize_count(p, len, &save->last_cr, &save->bare_lf);
	if (len > 0)
		save->eol_missing = p[len - 1] != '\n';
	while (len > 0) {
		ssize_t n = write(save->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			save->write_errno = n < 0 ? errno : EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
		save->size += (uint64_t)n;
	}
	return 0;
}

void store_save_set_flags(struct store_save *save, unsigned int flags)
{
	save->flags = flags;
}

void store_save_set_internal_date(struct store_save *save, time_t when)
{
	save->internal_date = when;
}

void store_save_abort(struct store_save **savep)
{
	struct store_save *save = *savep;
	if (save == NULL)
		return;
	unlink(save->tmp_path);
	store_save_free(save);
	*savep = NULL;
}

/* The file's bytes and its mtime (= internal date, which is how a rebuild
 * recovers it) on disk. */
static int store_save_flush(struct store_save *save, const char **error_r)
{
	if (save->write_errno != 0) {
		*error_r = store_errorf("writing %s failed: %s", save->tmp_path,
		                        strerror(save->write_errno));
		return -1;
	}
	struct timespec times[2] = {
	        {.tv_sec = save->internal_date, .tv_nsec = 0},
	        {.tv_sec = save->internal_date, .tv_nsec = 0},
	};
	if (futimens(save->fd, times) < 0 || fsync(save->fd) < 0 || close(save->fd) < 0) {
		save->fd = -1;
		*error_r = store_errorf("writing %s failed: %s", save->tmp_path, strerror(errno));
		return -1;
	}
	save->fd = -1;
	return 0;
}

static int store_save_rename(struct store_save *save, const struct store_fname *fn, const char *rel,
                             const char **error_r)
{
	char *path = xasprintf("%s/%s", save->dir, rel);
	char *sub = xasprintf("%s/%s", save->dir, fn->in_cur ? "cur" : "new");
	int ret = 0;
	if (rename(save->tmp_path, path) < 0) {
		*error_r = store_errorf("rename(%s) failed: %s", save->tmp_path, strerror(errno));
		ret = -1;
	} else if (store_fsync_dir(sub, error_r) < 0) {
		/* the caller will not acknowledge it: do not leave it to be
		 * adopted (the sender retries) */
		unlink(path);
		ret = -1;
	}
	free(path);
	free(sub);
	return ret;
}

/* Under the write lock: quota, UID and MODSEQ, rename, row, counters. */
static int store_save_locked(struct store_save *save, uint32_t *uid_r, enum store_error *err_r,
                             const char **error_r)
{
	struct store *store = save->store;
	struct store_mailbox mbox;
	int found = store_mailbox_get(store, save->mailbox, &mbox, error_r);
	if (found <= 0) {
		if (found == 0)
			*error_r = "mailbox vanished";
		return -1;
	}
	int over = store_quota_check(store, save->size, error_r);
	struct store_fname fn = {
	        .base = save->base,
	        .size = save->size,
	        .vsize = save->size + save->bare_lf,
	        .uid = mbox.uidnext,
	        .modseq = mbox.highestmodseq + 1,
	        .in_cur = save->flags != 0,
	        .eol_missing = save->eol_missing,
	        .flags = save->flags,
	};
	char *rel = store_fname_build(fn.base, fn.in_cur, fn.size, fn.vsize, fn.uid, fn.modseq,
	                              fn.flags);
	int ret = -1;
	if (over > 0)
		*err_r = STORE_ERR_QUOTA;
	else if (over == 0 && mbox.uidnext < UINT32_MAX &&
	         store_save_rename(save, &fn, rel, error_r) == 0) {
		if (store_message_insert(store->db, mbox.id, fn.uid, &fn, rel, save->internal_date,
		                         save->save_date, error_r) == 0 &&
		    store_mailbox_set_counters(store->db, mbox.id, fn.uid + 1, fn.modseq,
		                               error_r) == 0 &&
		    store_db_commit(store->db, error_r) == 0) {
			*uid_r = fn.uid;
			ret = 0;
		} else {
			char *path = xasprintf("%s/%s", save->dir, rel);
			unlink(path);
			free(path);
		}
	} else if (over == 0 && mbox.uidnext == UINT32_MAX) {
		*error_r = "mailbox UID space exhausted";
	}
	free(rel);
	store_mailbox_clear(&mbox);
	return ret;
}

int store_save_finish(struct store_save **savep, uint32_t *uid_r, enum store_error *err_r,
                      const char **error_r)
{
	struct store_save *save = *savep;
	*err_r = STORE_ERR_TEMP;
	int ret = store_save_flush(save, error_r);
	if (ret == 0)
		ret = store_db_begin(save->store->db, error_r);
	if (ret == 0) {
		ret = store_save_locked(save, uid_r, err_r, error_r);
		store_db_rollback(save->store->db);
	}
	if (ret == 0) {
		*err_r = STORE_OK;
		store_save_free(save);
		*savep = NULL;
		return 0;
	}
	store_save_abort(savep);
	return -1;
}

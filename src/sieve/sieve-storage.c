/* Per-account script storage: <account root>/sieve/<name>.sieve and the
 * one-line "active" file naming the active script. Writers take an flock
 * on the folder so that quota checks and renames see a stable set; every
 * file is written to a temporary name, fsync'd and renamed, then the
 * folder is fsync'd, so a crash leaves the old or the new file whole. */
#include "sieve/sieve.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fdio.h"
#include "lib/xmalloc.h"

#define SIEVE_DIR "sieve"
#define SIEVE_SUFFIX ".sieve"
#define SIEVE_ACTIVE "active"
#define SIEVE_NAME_MAX_CHARS 128
/* A file name holds at most 255 bytes; the suffix and room for the
 * temporary prefix come off that. */
#define SIEVE_NAME_MAX_BYTES 240
/* The active file holds one name and a newline. */
#define SIEVE_ACTIVE_MAX (SIEVE_NAME_MAX_BYTES + 2)

const char sieve_storage_error_nonexistent[] = "There is no script by that name";
const char sieve_storage_error_exists[] = "A script by that name already exists";
const char sieve_storage_error_maxscripts[] = "Too many scripts: the account's limit is reached";
const char sieve_storage_error_maxsize[] = "Not enough script storage space left";

struct sieve_storage {
	char *root;   /* the account root */
	char *dir;    /* <root>/sieve */
	struct sieve_storage_limits limits;
	int lock_fd;  /* the folder, flock'd while a write runs; -1 otherwise */
};

/* ---- names ------------------------------------------------------------- */

/* Length of the UTF-8 sequence at p (1-4) and its code point, or 0 when it
 * is not well-formed (overlong, surrogate, beyond U+10FFFF, cut short). */
static size_t utf8_decode(const unsigned char *p, unsigned int *cp_r)
{
	size_t len;
	unsigned int cp, min;

	if (p[0] < 0x80) {
		*cp_r = p[0];
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2, cp = p[0] & 0x1fu, min = 0x80;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3, cp = p[0] & 0x0fu, min = 0x800;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4, cp = p[0] & 0x07u, min = 0x10000;
	} else {
		return 0;
	}
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3fu);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_r = cp;
	return len;
}

/* RFC 5804 1.6: no control characters, DELETE, line or paragraph
 * separator; and '/' since the name is a file name. */
static bool name_char_allowed(unsigned int cp)
{
	return cp >= 0x20 && cp != 0x7f && !(cp >= 0x80 && cp <= 0x9f) && cp != 0x2028 &&
	       cp != 0x2029 && cp != '/';
}

bool sieve_storage_name_valid(const char *name)
{
	const unsigned char *p = (const unsigned char *)name;
	size_t chars = 0;

	if (name == NULL || name[0] == '\0' || name[0] == '.' ||
	    strlen(name) > SIEVE_NAME_MAX_BYTES)
		return false;
	while (*p != '\0') {
		unsigned int cp;
		size_t len = utf8_decode(p, &cp);
		if (len == 0 || !name_char_allowed(cp) || ++chars > SIEVE_NAME_MAX_CHARS)
			return false;
		p += len;
	}
	return true;
}

/* ---- opening ----------------------------------------------------------- */

int sieve_storage_open(const char *account_root, const struct sieve_storage_limits *limits,
		       struct sieve_storage **storage_r, const char **error_r)
{
	if (account_root == NULL || account_root[0] == '\0') {
		*error_r = "no account folder";
		return -1;
	}
	struct sieve_storage *storage = xcalloc(1, sizeof(*storage));
	storage->root = xstrdup(account_root);
	storage->dir = xasprintf("%s/" SIEVE_DIR, account_root);
	if (limits != NULL)
		storage->limits = *limits;
	storage->lock_fd = -1;
	*storage_r = storage;
	return 0;
}

void sieve_storage_close(struct sieve_storage **storage)
{
	if (*storage == NULL)
		return;
	if ((*storage)->lock_fd >= 0)
		close((*storage)->lock_fd);
	free((*storage)->root);
	free((*storage)->dir);
	free(*storage);
	*storage = NULL;
}

static char *storage_path(const struct sieve_storage *storage, const char *name)
{
	return xasprintf("%s/%s" SIEVE_SUFFIX, storage->dir, name);
}

static char *storage_active_path(const struct sieve_storage *storage)
{
	return xasprintf("%s/" SIEVE_ACTIVE, storage->dir);
}

/* The folder is made on the first write; the account root too when no
 * mail has arrived yet. */
static int storage_mkdir(struct sieve_storage *storage, const char **error_r)
{
	if (mkdir(storage->root, 0700) < 0 && errno != EEXIST) {
		*error_r = "cannot create the account folder";
		return -1;
	}
	if (mkdir(storage->dir, 0700) < 0 && errno != EEXIST) {
		*error_r = "cannot create the sieve folder";
		return -1;
	}
	return 0;
}

/* Takes the writers' lock (released by storage_unlock). */
static int storage_lock(struct sieve_storage *storage, const char **error_r)
{
	if (storage_mkdir(storage, error_r) < 0)
		return -1;
	int fd = open(storage->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		*error_r = "cannot open the sieve folder";
		return -1;
	}
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			close(fd);
			*error_r = "cannot lock the sieve folder";
			return -1;
		}
	}
	storage->lock_fd = fd;
	return 0;
}

static void storage_unlock(struct sieve_storage *storage)
{
	if (storage->lock_fd < 0)
		return;
	close(storage->lock_fd);
	storage->lock_fd = -1;
}

/* Makes the renames and unlinks in the folder durable. */
static int storage_sync_dir(struct sieve_storage *storage, const char **error_r)
{
	if (fsync(storage->lock_fd) < 0) {
		*error_r = "cannot sync the sieve folder";
		return -1;
	}
	return 0;
}

/* ---- atomic writes ----------------------------------------------------- */

static int write_tmp(const char *tmp, const char *data, size_t len, const char **error_r)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		*error_r = "cannot create a temporary file in the sieve folder";
		return -1;
	}
	if (fd_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		*error_r = "cannot write a script file";
		close(fd);
		return -1;
	}
	if (close(fd) < 0) {
		*error_r = "cannot write a script file";
		return -1;
	}
	return 0;
}

/* Writes data to path through a temporary file; the lock must be held. */
static int storage_write_file(struct sieve_storage *storage, const char *path, const char *data,
			      size_t len, const char **error_r)
{
	static unsigned int counter;
	char *tmp = xasprintf("%s/.tmp.%ld.%u", storage->dir, (long)getpid(), counter++);
	int ret = write_tmp(tmp, data, len, error_r);
	if (ret == 0 && rename(tmp, path) < 0) {
		*error_r = "cannot rename a script file into place";
		ret = -1;
	}
	if (ret < 0)
		unlink(tmp);
	free(tmp);
	return ret == 0 ? storage_sync_dir(storage, error_r) : -1;
}

/* ---- reading ----------------------------------------------------------- */

struct storage_usage {
	unsigned int count;
	uint64_t bytes;
	bool exists;          /* the named script is there */
	uint64_t named_bytes; /* and its size */
};

/* Name of a script file entry (without the suffix, malloc'd), or NULL for
 * everything else in the folder. */
static char *entry_script_name(const char *entry)
{
	size_t len = strlen(entry), slen = strlen(SIEVE_SUFFIX);
	if (len <= slen || strcmp(entry + len - slen, SIEVE_SUFFIX) != 0)
		return NULL;
	char *name = xstrndup(entry, len - slen);
	if (!sieve_storage_name_valid(name)) {
		free(name);
		return NULL;
	}
	return name;
}

typedef void storage_entry_fn(void *context, char *name, uint64_t size);

/* Calls fn with each script (name handed over) and its size. A missing
 * folder has no scripts. */
static int storage_scan(struct sieve_storage *storage, storage_entry_fn *fn, void *context,
			const char **error_r)
{
	DIR *dir = opendir(storage->dir);
	if (dir == NULL) {
		if (errno == ENOENT)
			return 0;
		*error_r = "cannot read the sieve folder";
		return -1;
	}
	struct dirent *de;
	while ((de = readdir(dir)) != NULL) {
		char *name = entry_script_name(de->d_name);
		struct stat st;
		if (name == NULL)
			continue;
		if (fstatat(dirfd(dir), de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode)) {
			free(name);
			continue;
		}
		fn(context, name, (uint64_t)st.st_size);
	}
	closedir(dir);
	return 0;
}

struct usage_context {
	struct storage_usage *usage;
	const char *name;
};

static void usage_entry(void *context, char *name, uint64_t size)
{
	struct usage_context *ctx = context;
	ctx->usage->count++;
	ctx->usage->bytes += size;
	if (ctx->name != NULL && strcmp(name, ctx->name) == 0) {
		ctx->usage->exists = true;
		ctx->usage->named_bytes = size;
	}
	free(name);
}

static int storage_usage(struct sieve_storage *storage, const char *name,
			 struct storage_usage *usage_r, const char **error_r)
{
	struct usage_context ctx = { usage_r, name };
	memset(usage_r, 0, sizeof(*usage_r));
	return storage_scan(storage, usage_entry, &ctx, error_r);
}

static bool storage_exists(const struct sieve_storage *storage, const char *name)
{
	char *path = storage_path(storage, name);
	struct stat st;
	bool exists = stat(path, &st) == 0 && S_ISREG(st.st_mode);
	free(path);
	return exists;
}

/* Reads the whole file at path (at most max bytes). 1, 0 when it does not
 * exist, -1 on error or when it is larger. */
static int read_file(const char *path, uint64_t max, char **data_r, size_t *len_r,
		     const char **error_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		*error_r = "cannot open a script file";
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size > max) {
		close(fd);
		*error_r = "cannot read a script file";
		return -1;
	}
	size_t len = (size_t)st.st_size;
	char *data = xmalloc(len + 1);
	ssize_t n = len == 0 ? 0 : pread(fd, data, len, 0);
	close(fd);
	if (n < 0 || (size_t)n != len) {
		free(data);
		*error_r = "cannot read a script file";
		return -1;
	}
	data[len] = '\0';
	*data_r = data;
	*len_r = len;
	return 1;
}

int sieve_storage_get(struct sieve_storage *storage, const char *name, char **source_r,
		      size_t *len_r, const char **error_r)
{
	if (!sieve_storage_name_valid(name))
		return 0;
	char *path = storage_path(storage, name);
	/* A script was stored under the limits; 1 GiB only stops a file
	 * someone else put there from taking all memory. */
	int ret = read_file(path, 1ULL << 30, source_r, len_r, error_r);
	free(path);
	return ret;
}

/* The name in the active file, whether or not that script exists: 1, 0
 * (no active file, or one that names nothing valid), -1. */
static int storage_active_raw(struct sieve_storage *storage, char **name_r,
			      const char **error_r)
{
	char *path = storage_active_path(storage), *data;
	size_t len;
	int ret = read_file(path, SIEVE_ACTIVE_MAX, &data, &len, error_r);
	free(path);
	if (ret <= 0)
		return ret;
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		data[--len] = '\0';
	if (strlen(data) != len || !sieve_storage_name_valid(data)) {
		free(data);
		return 0;
	}
	*name_r = data;
	return 1;
}

int sieve_storage_active(struct sieve_storage *storage, char **name_r, const char **error_r)
{
	char *name;
	int ret = storage_active_raw(storage, &name, error_r);
	if (ret <= 0)
		return ret;
	if (!storage_exists(storage, name)) {
		free(name);
		return 0;
	}
	*name_r = name;
	return 1;
}

/* ---- listing ----------------------------------------------------------- */

struct list_context {
	struct sieve_script_info *scripts;
	size_t count, alloc;
	const char *active;
};

static void list_entry(void *context, char *name, uint64_t size)
{
	struct list_context *ctx = context;
	if (ctx->count == ctx->alloc) {
		ctx->alloc = ctx->alloc == 0 ? 8 : ctx->alloc * 2;
		ctx->scripts = xreallocarray(ctx->scripts, ctx->alloc, sizeof(*ctx->scripts));
	}
	ctx->scripts[ctx->count].name = name;
	ctx->scripts[ctx->count].active = ctx->active != NULL && strcmp(name, ctx->active) == 0;
	ctx->count++;
}

static int info_compare(const void *a, const void *b)
{
	const struct sieve_script_info *x = a, *y = b;
	return strcmp(x->name, y->name);
}

int sieve_storage_list(struct sieve_storage *storage, struct sieve_script_info **scripts_r,
		       size_t *count_r, const char **error_r)
{
	struct list_context ctx = { 0 };
	char *active = NULL;

	if (sieve_storage_active(storage, &active, error_r) < 0)
		return -1;
	ctx.active = active;
	int ret = storage_scan(storage, list_entry, &ctx, error_r);
	free(active);
	if (ret < 0) {
		sieve_storage_list_free(&ctx.scripts, ctx.count);
		return -1;
	}
	if (ctx.count > 1)
		qsort(ctx.scripts, ctx.count, sizeof(*ctx.scripts), info_compare);
	*scripts_r = ctx.scripts;
	*count_r = ctx.count;
	return 0;
}

void sieve_storage_list_free(struct sieve_script_info **scripts, size_t count)
{
	if (*scripts == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free((*scripts)[i].name);
	free(*scripts);
	*scripts = NULL;
}

/* ---- quota ------------------------------------------------------------- */

/* NULL when a script of this name and size fits, else the reason. */
static const char *quota_check(const struct sieve_storage *storage,
			       const struct storage_usage *usage, uint64_t size)
{
	const struct sieve_storage_limits *lim = &storage->limits;
	if (lim->max_scripts != 0 && !usage->exists && usage->count >= lim->max_scripts)
		return sieve_storage_error_maxscripts;
	uint64_t others = usage->bytes - usage->named_bytes;
	if (lim->max_bytes != 0 && (size > lim->max_bytes || others > lim->max_bytes - size))
		return sieve_storage_error_maxsize;
	return NULL;
}

int sieve_storage_have_space(struct sieve_storage *storage, const char *name, uint64_t size,
			     const char **error_r)
{
	struct storage_usage usage;
	if (storage_usage(storage, name, &usage, error_r) < 0)
		return -1;
	const char *reason = quota_check(storage, &usage, size);
	if (reason == NULL)
		return 1;
	*error_r = reason;
	return 0;
}

/* ---- writing ----------------------------------------------------------- */

static int storage_put_locked(struct sieve_storage *storage, const char *name,
			      const char *source, size_t len, bool *quota_r,
			      const char **error_r)
{
	struct storage_usage usage;
	if (storage_usage(storage, name, &usage, error_r) < 0)
		return -1;
	const char *reason = quota_check(storage, &usage, len);
	if (reason != NULL) {
		*quota_r = true;
		*error_r = reason;
		return -1;
	}
	char *path = storage_path(storage, name);
	int ret = storage_write_file(storage, path, source, len, error_r);
	free(path);
	return ret;
}

int sieve_storage_put(struct sieve_storage *storage, const char *name, const char *source,
		      size_t len, bool *quota_r, const char **error_r)
{
	*quota_r = false;
	if (!sieve_storage_name_valid(name)) {
		*error_r = "invalid script name";
		return -1;
	}
	if (storage_lock(storage, error_r) < 0)
		return -1;
	int ret = storage_put_locked(storage, name, source, len, quota_r, error_r);
	storage_unlock(storage);
	return ret;
}

/* 1 when name is the active script (whether or not its file exists). */
static int storage_is_active(struct sieve_storage *storage, const char *name,
			     const char **error_r)
{
	char *active;
	int ret = storage_active_raw(storage, &active, error_r);
	if (ret <= 0)
		return ret;
	ret = strcmp(active, name) == 0 ? 1 : 0;
	free(active);
	return ret;
}

static int storage_delete_locked(struct sieve_storage *storage, const char *name,
				 bool *active_r, const char **error_r)
{
	int active = storage_is_active(storage, name, error_r);
	if (active < 0)
		return -1;
	if (!storage_exists(storage, name)) {
		*error_r = sieve_storage_error_nonexistent;
		return -1;
	}
	if (active > 0) {
		*active_r = true;
		*error_r = "You may not delete the active script";
		return -1;
	}
	char *path = storage_path(storage, name);
	int ret = unlink(path);
	free(path);
	if (ret < 0) {
		*error_r = "cannot delete the script file";
		return -1;
	}
	return storage_sync_dir(storage, error_r);
}

int sieve_storage_delete(struct sieve_storage *storage, const char *name, bool *active_r,
			 const char **error_r)
{
	*active_r = false;
	if (!sieve_storage_name_valid(name)) {
		*error_r = sieve_storage_error_nonexistent;
		return -1;
	}
	if (storage_lock(storage, error_r) < 0)
		return -1;
	int ret = storage_delete_locked(storage, name, active_r, error_r);
	storage_unlock(storage);
	return ret;
}

static int storage_write_active(struct sieve_storage *storage, const char *name,
				const char **error_r)
{
	char *path = storage_active_path(storage);
	char *line = xasprintf("%s\n", name);
	int ret = storage_write_file(storage, path, line, strlen(line), error_r);
	free(line);
	free(path);
	return ret;
}

/* link() refuses an existing target, so a script is never replaced by a
 * rename; the active file follows before the old name goes. */
static int storage_rename_locked(struct sieve_storage *storage, const char *old_name,
				 const char *new_name, const char **error_r)
{
	int active = storage_is_active(storage, old_name, error_r);
	if (active < 0)
		return -1;
	char *old_path = storage_path(storage, old_name);
	char *new_path = storage_path(storage, new_name);
	int ret = link(old_path, new_path);
	if (ret < 0)
		*error_r = errno == EEXIST   ? sieve_storage_error_exists :
			   errno == ENOENT ? sieve_storage_error_nonexistent :
					     "cannot rename the script file";
	if (ret == 0 && active > 0)
		ret = storage_write_active(storage, new_name, error_r);
	if (ret == 0 && unlink(old_path) < 0) {
		*error_r = "cannot remove the old script file";
		ret = -1;
	}
	free(old_path);
	free(new_path);
	return ret == 0 ? storage_sync_dir(storage, error_r) : -1;
}

int sieve_storage_rename(struct sieve_storage *storage, const char *old_name,
			 const char *new_name, const char **error_r)
{
	if (!sieve_storage_name_valid(old_name)) {
		*error_r = sieve_storage_error_nonexistent;
		return -1;
	}
	if (!sieve_storage_name_valid(new_name)) {
		*error_r = "invalid script name";
		return -1;
	}
	if (strcmp(old_name, new_name) == 0) {
		if (storage_exists(storage, old_name))
			return 0;
		*error_r = sieve_storage_error_nonexistent;
		return -1;
	}
	if (storage_lock(storage, error_r) < 0)
		return -1;
	int ret = storage_rename_locked(storage, old_name, new_name, error_r);
	storage_unlock(storage);
	return ret;
}

static int storage_deactivate_locked(struct sieve_storage *storage, const char **error_r)
{
	char *path = storage_active_path(storage);
	int ret = unlink(path);
	free(path);
	if (ret < 0 && errno == ENOENT)
		return 0;
	if (ret < 0) {
		*error_r = "cannot remove the active file";
		return -1;
	}
	return storage_sync_dir(storage, error_r);
}

static int storage_activate_locked(struct sieve_storage *storage, const char *name,
				   const char **error_r)
{
	if (name == NULL || name[0] == '\0')
		return storage_deactivate_locked(storage, error_r);
	if (!storage_exists(storage, name)) {
		*error_r = sieve_storage_error_nonexistent;
		return -1;
	}
	return storage_write_active(storage, name, error_r);
}

int sieve_storage_activate(struct sieve_storage *storage, const char *name,
			   const char **error_r)
{
	if (name != NULL && name[0] != '\0' && !sieve_storage_name_valid(name)) {
		*error_r = sieve_storage_error_nonexistent;
		return -1;
	}
	if (storage_lock(storage, error_r) < 0)
		return -1;
	int ret = storage_activate_locked(storage, name, error_r);
	storage_unlock(storage);
	return ret;
}

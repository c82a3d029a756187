/* File system helpers: folders, fsync, state files, directory listings. */
#include "store/store-private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/strnum.h"
#include "lib/xmalloc.h"

#define STORE_STATE_MAX 4096

static int store_mkdir(const char *path, const char **error_r)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		*error_r = store_errorf("mkdir(%s) failed: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Creates dir and its cur/ new/ tmp/ (existing ones are fine) and makes
 * the new entries durable. */
int store_mkdir_folder(const char *dir, const char **error_r)
{
	static const char *const subs[] = {"cur", "new", "tmp"};
	if (store_mkdir(dir, error_r) < 0)
		return -1;
	for (size_t i = 0; i < 3; i++) {
		char *path = xasprintf("%s/%s", dir, subs[i]);
		int ret = store_mkdir(path, error_r);
		free(path);
		if (ret < 0)
			return -1;
	}
	if (store_fsync_dir(dir, error_r) < 0)
		return -1;
	char *parent = xstrdup(dir);
	char *slash = strrchr(parent, '/');
	int ret = 0;
	if (slash != NULL && slash != parent) {
		*slash = '\0';
		ret = store_fsync_dir(parent, error_r);
	}
	free(parent);
	return ret;
}

int store_fsync_dir(const char *dir, const char **error_r)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		*error_r = store_errorf("open(%s) failed: %s", dir, strerror(errno));
		return -1;
	}
	int ret = fsync(fd);
	int saved = errno;
	close(fd);
	if (ret < 0) {
		*error_r = store_errorf("fsync(%s) failed: %s", dir, strerror(saved));
		return -1;
	}
	return 0;
}

static int store_write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* tmp file, fsync, rename over name, fsync the folder. */
int store_write_file_atomic(const char *dir, const char *name, const char *data,
                            const char **error_r)
{
	char *tmp = xasprintf("%s/%s.tmp.%ld", dir, name, (long)getpid());
	char *path = xasprintf("%s/%s", dir, name);
	int ret = -1;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		*error_r = store_errorf("open(%s) failed: %s", tmp, strerror(errno));
		goto out;
	}
	if (store_write_all(fd, data, strlen(data)) < 0 || fsync(fd) < 0) {
		*error_r = store_errorf("write(%s) failed: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		*error_r = store_errorf("rename(%s) failed: %s", tmp, strerror(errno));
		unlink(tmp);
		goto out;
	}
	ret = store_fsync_dir(dir, error_r);
out:
	free(tmp);
	free(path);
	return ret;
}

/* Reads a small text file; NULL when missing or too big. */
static char *store_read_small(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	char *data = xmalloc(STORE_STATE_MAX + 1);
	size_t len = 0;
	ssize_t n;
	while ((n = read(fd, data + len, STORE_STATE_MAX - len)) > 0)
		len += (size_t)n;
	close(fd);
	if (n < 0 || len == STORE_STATE_MAX) {
		free(data);
		return NULL;
	}
	data[len] = '\0';
	return data;
}

static int store_state_line(struct store_state *state, const char *key, const char *value,
                            unsigned int *seen)
{
	uint64_t v;
	if (str_to_uint64(value, &v) < 0)
		return -1;
	if (strcmp(key, "uidvalidity") == 0 && v > 0 && v <= UINT32_MAX) {
		state->uidvalidity = (uint32_t)v;
		*seen |= 1;
	} else if (strcmp(key, "uidnext") == 0 && v > 0 && v <= UINT32_MAX) {
		state->uidnext = (uint32_t)v;
		*seen |= 2;
	} else if (strcmp(key, "highestmodseq") == 0) {
		state->highestmodseq = v;
		*seen |= 4;
	}
	return 0;
}

/* 0 when the file exists and names all three counters, else -1. */
int store_state_read(const char *dir, struct store_state *state_r)
{
	char *path = xasprintf("%s/%s", dir, STORE_STATE_FILE);
	char *data = store_read_small(path);
	free(path);
	memset(state_r, 0, sizeof(*state_r));
	if (data == NULL)
		return -1;
	unsigned int seen = 0;
	int ret = 0;
	char *save = NULL;
	for (char *line = data; line != NULL && *line != '\0' && ret == 0; line = save) {
		char *nl = strchr(line, '\n');
		save = nl != NULL ? nl + 1 : NULL;
		if (nl != NULL)
			*nl = '\0';
		char *sp = strchr(line, ' ');
		if (sp == NULL) {
			ret = -1;
			break;
		}
		*sp = '\0';
		ret = store_state_line(state_r, line, sp + 1, &seen);
	}
	free(data);
	return ret == 0 && seen == 7 ? 0 : -1;
}

int store_state_write(const char *dir, const struct store_state *state, const char **error_r)
{
	char *text =
	        xasprintf("uidvalidity %u\nuidnext %u\nhighestmodseq %llu\n", state->uidvalidity,
	                  state->uidnext, (unsigned long long)state->highestmodseq);
	int ret = store_write_file_atomic(dir, STORE_STATE_FILE, text, error_r);
	free(text);
	return ret;
}

/* The highest UIDVALIDITY this account ever handed out (0 if unknown). */
uint32_t store_uidvalidity_last(const char *root)
{
	char *path = xasprintf("%s/%s", root, STORE_UIDVALIDITY_FILE);
	char *data = store_read_small(path);
	free(path);
	uint32_t v = 0;
	if (data != NULL) {
		char *nl = strchr(data, '\n');
		if (nl != NULL)
			*nl = '\0';
		if (str_to_uint32(data, &v) < 0)
			v = 0;
	}
	free(data);
	return v;
}

int store_uidvalidity_save(const char *root, uint32_t value, const char **error_r)
{
	char *text = xasprintf("%u\n", value);
	int ret = store_write_file_atomic(root, STORE_UIDVALIDITY_FILE, text, error_r);
	free(text);
	return ret;
}

int store_dir_mtime_ns(const char *dir, const char *sub, int64_t *mtime_r)
{
	char *path = xasprintf("%s/%s", dir, sub);
	struct stat st;
	int ret = stat(path, &st);
	free(path);
	if (ret < 0)
		return -1;
	*mtime_r = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	return 0;
}

static void store_files_add(struct store_file **files, size_t *count, size_t *cap, const char *sub,
                            const char *name)
{
	char *rel = xasprintf("%s/%s", sub, name);
	struct store_fname fn;
	if (store_fname_parse(rel, &fn) < 0) {
		free(rel);
		return;
	}
	if (*count == *cap) {
		*cap = *cap == 0 ? 64 : *cap * 2;
		*files = xreallocarray(*files, *cap, sizeof(**files));
	}
	(*files)[*count].rel = rel;
	(*files)[*count].fn = fn;
	(*files)[*count].mtime = 0;
	(*count)++;
}

/* Lists the message files of a folder's cur/ and new/ (cur/ first). */
int store_list_files(const char *dir, struct store_file **files_r, size_t *count_r,
                     const char **error_r)
{
	static const char *const subs[] = {"cur", "new"};
	struct store_file *files = NULL;
	size_t count = 0, cap = 0;
	for (size_t i = 0; i < 2; i++) {
		char *path = xasprintf("%s/%s", dir, subs[i]);
		DIR *d = opendir(path);
		if (d == NULL) {
			*error_r = store_errorf("opendir(%s) failed: %s", path, strerror(errno));
			free(path);
			store_files_free(files, count);
			return -1;
		}
		free(path);
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] != '.' &&
			    (de->d_type == DT_REG || de->d_type == DT_UNKNOWN))
				store_files_add(&files, &count, &cap, subs[i], de->d_name);
		}
		closedir(d);
	}
	*files_r = files;
	*count_r = count;
	return 0;
}

void store_files_free(struct store_file *files, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(files[i].rel);
		store_fname_free(&files[i].fn);
	}
	free(files);
}

/* Deletes files left in tmp/ by saves that died more than 36 hours ago. */
void store_tmp_cleanup(const char *dir, time_t now)
{
	char *path = xasprintf("%s/tmp", dir);
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(path);
	if (dfd < 0)
		return;
	DIR *d = fdopendir(dfd);
	if (d == NULL) {
		close(dfd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		if (de->d_name[0] == '.' || fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		/* a copy's hard link (another link exists) keeps its source's
		 * old mtime: its age is its ctime */
		if (S_ISREG(st.st_mode) && st.st_mtime < now - STORE_TMP_MAX_AGE &&
		    (st.st_nlink == 1 || st.st_ctime < now - STORE_TMP_MAX_AGE))
			unlinkat(dfd, de->d_name, 0);
	}
	closedir(d);
}

/* Counts LF bytes not preceded by CR, across calls (last_cr carries the
 * previous chunk's last byte). */
void store_vsize_count(const unsigned char *p, size_t len, bool *last_cr, uint64_t *bare_lf)
{
	bool cr = *last_cr;
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\n' && !cr)
			(*bare_lf)++;
		cr = p[i] == '\r';
	}
	*last_cr = cr;
}

int store_file_vsize(const char *path, uint64_t *size_r, uint64_t *vsize_r, bool *eol_missing_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	unsigned char chunk[65536];
	uint64_t size = 0, bare = 0;
	bool cr = false;
	ssize_t n;
	unsigned char last = '\n';
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		store_vsize_count(chunk, (size_t)n, &cr, &bare);
		size += (uint64_t)n;
		last = chunk[n - 1];
	}
	close(fd);
	if (n < 0)
		return -1;
	*size_r = size;
	*vsize_r = size + bare;
	*eol_missing_r = last != '\n';
	return 0;
}

/* Whether the file's last byte is not LF, without reading it all. */
static int store_file_eol_missing(const char *path, uint64_t size, bool *eol_missing_r)
{
	*eol_missing_r = false;
	if (size == 0)
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	unsigned char last;
	ssize_t n = pread(fd, &last, 1, (off_t)(size - 1));
	close(fd);
	if (n != 1)
		return -1;
	*eol_missing_r = last != '\n';
	return 0;
}

/* Fills in the file's mtime and its real size (and vsize, counted unless
 * the name's S= matches the size and W= is given). -1 when it vanished
 * or is not a regular file. */
int store_file_complete(const char *dir, struct store_file *file)
{
	char *path = xasprintf("%s/%s", dir, file->rel);
	struct stat st;
	int ret = lstat(path, &st) < 0 || !S_ISREG(st.st_mode) ? -1 : 0;
	if (ret == 0) {
		struct store_fname *fn = &file->fn;
		file->mtime = st.st_mtime;
		if (!fn->has_size || !fn->has_vsize || fn->size != (uint64_t)st.st_size)
			ret = store_file_vsize(path, &fn->size, &fn->vsize, &fn->eol_missing);
		else
			ret = store_file_eol_missing(path, fn->size, &fn->eol_missing);
		fn->has_size = fn->has_vsize = ret == 0;
	}
	free(path);
	return ret;
}

static int store_remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	int ret = type == FTW_DP ? rmdir(path) : unlink(path);
	return ret < 0 && errno != ENOENT ? -1 : 0;
}

/* Depth-first removal that never follows symlinks nor leaves the file
 * system the tree lives on. */
int store_remove_tree(const char *path, const char **error_r)
{
	if (nftw(path, store_remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0) {
		*error_r = store_errorf("removing %s failed: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

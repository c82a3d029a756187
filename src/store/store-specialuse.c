/* Special-use attributes a mailbox was created with (RFC 6154 CREATE-SPECIAL-USE).
 * They live in a small file in the mailbox's folder rather than in the
 * index: the folder carries them through a RENAME, a DELETE takes them
 * along, and an index rebuild keeps them. */
#include "store/store-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/xmalloc.h"

#define STORE_SPECIALUSE_FILE "yubin-specialuse"
#define STORE_SPECIALUSE_ATTR_MAX 32

/* "\Word \Other": each attribute '\' and letters. */
static bool store_special_use_valid(const char *attrs)
{
	if (strlen(attrs) > STORE_SPECIAL_USE_MAX)
		return false;
	for (const char *p = attrs; *p != '\0';) {
		size_t n = strcspn(p, " ");
		if (n < 2 || n > STORE_SPECIALUSE_ATTR_MAX + 1 || p[0] != '\\')
			return false;
		for (size_t i = 1; i < n; i++) {
			char c = p[i];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
				return false;
		}
		p += n;
		if (*p == ' ' && *++p == '\0')
			return false;
	}
	return true;
}

int store_mailbox_set_special_use(struct store *store, const char *name, const char *attrs,
                                  enum store_error *err_r, const char **error_r)
{
	struct store_mailbox mbox;
	if (!store_special_use_valid(attrs)) {
		*err_r = STORE_ERR_INVALID;
		*error_r = "invalid special-use attribute list";
		return -1;
	}
	if (store_mailbox_lookup(store, name, false, &mbox, err_r, error_r) < 0)
		return -1;
	int ret = 0;
	if (attrs[0] != '\0') {
		ret = store_write_file_atomic(mbox.dir, STORE_SPECIALUSE_FILE, attrs, error_r);
	} else {
		char *path = xasprintf("%s/%s", mbox.dir, STORE_SPECIALUSE_FILE);
		if (unlink(path) < 0 && errno != ENOENT) {
			*error_r = store_errorf("unlink(%s) failed: %s", path, strerror(errno));
			ret = -1;
		}
		free(path);
	}
	*err_r = ret < 0 ? STORE_ERR_TEMP : STORE_OK;
	store_mailbox_clear(&mbox);
	return ret;
}

/* The file's text, or NULL (with errno ENOENT when there is none). */
static char *store_special_use_read(const char *path, const char **error_r)
{
	char text[STORE_SPECIAL_USE_MAX + 2];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno != ENOENT)
			*error_r = store_errorf("open(%s) failed: %s", path, strerror(errno));
		return NULL;
	}
	ssize_t n = read(fd, text, sizeof(text) - 1);
	int saved = errno;
	close(fd);
	if (n < 0) {
		*error_r = store_errorf("read(%s) failed: %s", path, strerror(saved));
		errno = saved;
		return NULL;
	}
	text[n] = '\0';
	return xstrdup(text);
}

int store_mailbox_get_special_use(struct store *store, const char *name, char **attrs_r,
                                  enum store_error *err_r, const char **error_r)
{
	struct store_mailbox mbox;
	*attrs_r = NULL;
	if (store_mailbox_lookup(store, name, false, &mbox, err_r, error_r) < 0)
		return -1;
	char *path = xasprintf("%s/%s", mbox.dir, STORE_SPECIALUSE_FILE);
	errno = 0;
	char *text = store_special_use_read(path, error_r);
	int ret = text != NULL ? 1 : errno == ENOENT ? 0 : -1;
	free(path);
	store_mailbox_clear(&mbox);
	/* a file that is not a valid list (edited by hand) counts as none */
	if (ret == 1 && (text[0] == '\0' || !store_special_use_valid(text))) {
		free(text);
		ret = 0;
	}
	*err_r = ret < 0 ? STORE_ERR_TEMP : STORE_OK;
	if (ret == 1)
		*attrs_r = text;
	return ret;
}

/* The writer side of notify, kept apart from the watcher so that the store
 * and the CLI can link it without an event loop. */
#include "notify/notify.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"

static void notify_write_failed(const char *account_root, const char *what, int err)
{
	char esc[256];
	log_debug("notify write failed root=%s op=%s error=%s",
	          log_escape(account_root, strlen(account_root), esc, sizeof(esc)), what,
	          strerror(err));
}

void notify_account_changed(const char *account_root)
{
	char path[PATH_MAX];
	int len = snprintf(path, sizeof(path), "%s/%s", account_root, NOTIFY_FILE_NAME);
	if (len < 0 || (size_t)len >= sizeof(path)) {
		notify_write_failed(account_root, "path", ENAMETOOLONG);
		return;
	}
	/* O_NONBLOCK: a FIFO planted under the name must not hang the writer;
	 * O_NOFOLLOW: nor may a symlink send the write elsewhere. */
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
	if (fd < 0) {
		notify_write_failed(account_root, "open", errno);
		return;
	}
	/* Rewriting the same byte keeps the file at 1 byte, yet still raises
	 * IN_MODIFY and moves the mtime that the polling fallback compares. */
	ssize_t ret = pwrite(fd, "\n", 1, 0);
	if (ret != 1)
		notify_write_failed(account_root, "pwrite", ret < 0 ? errno : EIO);
	close(fd);
}

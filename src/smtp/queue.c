/* Putting a message into the queue: its bytes go to <id>.msg, then its
 * envelope to <id>.env (temp + rename); the message exists for the runner
 * only once the envelope does, and both are fsync'd with their folder
 * before queue_commit() returns. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/fdio.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "notify/notify.h"
#include "smtp/queue-private.h"

#define QUEUE_WRITE_CHUNK (64 * 1024)

struct queue_msg {
	const struct yubin_config *config;
	char *dir;
	char *id;
	char *path;
	int fd;
	struct queue_envelope env;
	struct buf pending;
	uint64_t size;
	bool failed;
};

char *queue_dir_path(const struct yubin_config *config)
{
	return config_data_path(config, "queue");
}

uint64_t queue_retry_delay(const struct yubin_config *config, uint32_t attempts)
{
	uint64_t first = config->queue.retry_first / 1000, max = config->queue.retry_max / 1000;
	uint64_t delay = first > 0 ? first : 1;
	for (uint32_t i = 1; i < attempts && delay < max; i++)
		delay *= 2;
	return delay < max ? delay : max;
}

bool queue_notify_wants(unsigned int notify, unsigned int kind)
{
	if ((notify & QUEUE_NOTIFY_NEVER) != 0)
		return false;
	if (notify == 0)
		return kind == QUEUE_NOTIFY_FAILURE || kind == QUEUE_NOTIFY_DELAY;
	return (notify & kind) != 0;
}

/* Arrival time first (fixed width, so IDs sort by age), then randomness. */
static char *queue_new_id(void)
{
	struct timespec ts;
	uint32_t r = 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)getpid() ^ (uint32_t)ts.tv_nsec;
	unsigned long long us = (unsigned long long)ts.tv_sec * 1000000ULL +
				(unsigned long long)ts.tv_nsec / 1000;
	return xasprintf("%014llx-%08x", us, r);
}

static int queue_mkdir(const char *dir, const char **error_r)
{
	if (mkdir(dir, 0700) == 0 || errno == EEXIST)
		return 0;
	log_error("queue: cannot create %s: %s", dir, strerror(errno));
	*error_r = "cannot create the queue folder";
	return -1;
}

static void envelope_copy(struct queue_envelope *dst, const struct queue_envelope *src)
{
	struct queue_entry *e = queue_entry_new("x", src, 0);
	*dst = e->env;
	memset(&e->env, 0, sizeof(e->env));
	queue_entry_free(&e);
}

struct queue_msg *queue_create(const struct yubin_config *config, const struct queue_envelope *env,
                               const char **error_r)
{
	char *dir = queue_dir_path(config);
	if (queue_mkdir(dir, error_r) < 0) {
		free(dir);
		return NULL;
	}
	struct queue_msg *msg = xcalloc(1, sizeof(*msg));
	msg->config = config;
	msg->dir = dir;
	for (int tries = 0; tries < 10; tries++) {
		msg->id = queue_new_id();
		msg->path = xasprintf("%s/%s" QUEUE_MSG_SUFFIX, dir, msg->id);
		msg->fd = open(msg->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (msg->fd >= 0 || errno != EEXIST)
			break;
		xfree(msg->id);
		xfree(msg->path);
	}
	if (msg->fd < 0) {
		log_error("queue: cannot create a message file in %s: %s", dir, strerror(errno));
		*error_r = "cannot create a queue file";
		free(msg->id);
		free(msg->path);
		free(dir);
		free(msg);
		return NULL;
	}
	envelope_copy(&msg->env, env);
	buf_init(&msg->pending, 0);
	return msg;
}

static int queue_flush(struct queue_msg *msg, const char **error_r)
{
	if (!msg->failed && fd_write_all(msg->fd, buf_str(&msg->pending), msg->pending.len) < 0) {
		log_error("queue: cannot write %s: %s", msg->path, strerror(errno));
		msg->failed = true;
	}
	buf_reset(&msg->pending);
	if (msg->failed)
		*error_r = "cannot write the queue file";
	return msg->failed ? -1 : 0;
}

int queue_write(struct queue_msg *msg, const void *data, size_t len, const char **error_r)
{
	if (msg->failed) {
		*error_r = "cannot write the queue file";
		return -1;
	}
	msg->size += len;
	if (len >= QUEUE_WRITE_CHUNK) {
		if (queue_flush(msg, error_r) < 0)
			return -1;
		if (fd_write_all(msg->fd, data, len) < 0) {
			msg->failed = true;
			*error_r = "cannot write the queue file";
			return -1;
		}
		return 0;
	}
	buf_append(&msg->pending, data, len);
	return msg->pending.len >= QUEUE_WRITE_CHUNK ? queue_flush(msg, error_r) : 0;
}

static void queue_msg_free(struct queue_msg *msg, bool remove_file)
{
	if (msg->fd >= 0)
		close(msg->fd);
	if (remove_file)
		unlink(msg->path);
	buf_free(&msg->pending);
	queue_envelope_clear(&msg->env);
	free(msg->id);
	free(msg->path);
	free(msg->dir);
	free(msg);
}

static int queue_commit_files(struct queue_msg *msg, const char **error_r)
{
	if (queue_flush(msg, error_r) < 0)
		return -1;
	if (fsync(msg->fd) < 0) {
		log_error("queue: fsync %s: %s", msg->path, strerror(errno));
		*error_r = "cannot sync the queue file";
		return -1;
	}
	struct queue_entry *e = queue_entry_new(msg->id, &msg->env, time(NULL));
	e->size = msg->size;
	int ret = queue_entry_write(msg->dir, e, error_r);
	if (ret < 0)
		log_error("queue: id=%s %s: %s", msg->id, *error_r, strerror(errno));
	queue_entry_free(&e);
	return ret;
}

int queue_commit(struct queue_msg **msgp, char **id_r, const char **error_r)
{
	struct queue_msg *msg = *msgp;
	*msgp = NULL;
	if (msg->env.rcpt_count == 0) {
		*error_r = "no recipients";
		queue_msg_free(msg, true);
		return -1;
	}
	if (queue_commit_files(msg, error_r) < 0) {
		queue_msg_free(msg, true);
		return -1;
	}
	const char *origin = msg->env.origin != NULL ? msg->env.origin : "";
	char esc[256];
	log_info("queue id=%s event=queued origin=\"%s\" size=%llu rcpts=%zu", msg->id,
		 log_escape(origin, strlen(origin), esc, sizeof(esc)),
		 (unsigned long long)msg->size, msg->env.rcpt_count);
	notify_account_changed(msg->dir);
	*id_r = msg->id;
	msg->id = NULL;
	queue_msg_free(msg, false);
	return 0;
}

void queue_abort(struct queue_msg **msgp)
{
	if (*msgp == NULL)
		return;
	queue_msg_free(*msgp, true);
	*msgp = NULL;
}

void queue_wake(const struct yubin_config *config)
{
	char *dir = queue_dir_path(config);
	notify_account_changed(dir);
	free(dir);
}

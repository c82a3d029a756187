/* The deliver module's outbox (deliver.h): mail that delivery makes
 * (Sieve redirects, vacation replies) goes into the outbound queue like
 * any submitted message, so it is retried, bounced and logged the same
 * way. deliver cannot call the queue itself (smtp depends on deliver), so
 * each program that delivers registers this once its config is loaded. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deliver/deliver.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "smtp/queue.h"

#define OUTBOX_CHUNK (64 * 1024)

/* 8BITMIME only when a byte needs it: a 7-bit message must still go to a
 * server that does not offer 8BITMIME. */
static bool outbox_is_8bit(const void *data, size_t len)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < len; i++) {
		if (p[i] >= 0x80)
			return true;
	}
	return false;
}

/* Reads body_fd from offset to its end, handing each chunk to fn. */
static int outbox_read(int fd, uint64_t offset, int (*fn)(void *, const void *, size_t),
                       void *context, const char **error_r)
{
	char *chunk = xmalloc(OUTBOX_CHUNK);
	int ret = 0;
	for (;;) {
		ssize_t n = pread(fd, chunk, OUTBOX_CHUNK, (off_t)offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = "reading the message failed";
			ret = -1;
		}
		if (n <= 0)
			break;
		ret = fn(context, chunk, (size_t)n);
		if (ret != 0)
			break;
		offset += (uint64_t)n;
	}
	free(chunk);
	return ret;
}

static int outbox_scan_chunk(void *context, const void *data, size_t len)
{
	bool *eight_bit = context;
	*eight_bit = *eight_bit || outbox_is_8bit(data, len);
	return 0;
}

struct outbox_write {
	struct queue_msg *msg;
	const char **error_r;
};

static int outbox_write_chunk(void *context, const void *data, size_t len)
{
	struct outbox_write *w = context;
	return queue_write(w->msg, data, len, w->error_r) < 0 ? -1 : 0;
}

static int outbox_send(void *context, const char *env_from, const char *const *rcpts,
                       size_t rcpt_count, const void *prefix, size_t prefix_len, int body_fd,
                       uint64_t body_offset, const char **error_r)
{
	const struct yubin_config *config = context;
	struct queue_envelope env = {
	        .sender = (char *)env_from,
	        .ret = QUEUE_RET_DEFAULT,
	        .rcpt_count = rcpt_count,
	        .origin = (char *)"deliver",
	};
	env.rcpts = xcalloc(rcpt_count, sizeof(*env.rcpts));
	for (size_t i = 0; i < rcpt_count; i++)
		env.rcpts[i].address = (char *)rcpts[i];
	bool eight_bit = outbox_is_8bit(prefix, prefix_len);
	if (body_fd >= 0 && outbox_read(body_fd, body_offset, outbox_scan_chunk, &eight_bit,
	                                error_r) < 0) {
		free(env.rcpts);
		return -1;
	}
	env.body = eight_bit ? QUEUE_BODY_8BITMIME : QUEUE_BODY_7BIT;
	struct queue_msg *msg = queue_create(config, &env, error_r);
	free(env.rcpts);
	if (msg == NULL)
		return -1;
	struct outbox_write w = {msg, error_r};
	if (queue_write(msg, prefix, prefix_len, error_r) < 0 ||
	    (body_fd >= 0 && outbox_read(body_fd, body_offset, outbox_write_chunk, &w, error_r) != 0)) {
		queue_abort(&msg);
		return -1;
	}
	char *id = NULL;
	if (queue_commit(&msg, &id, error_r) < 0)
		return -1;
	log_info("outbox queued id=%s rcpts=%zu", id, rcpt_count);
	free(id);
	return 0;
}

void queue_register_outbox(const struct yubin_config *config)
{
	static struct deliver_outbox outbox;
	outbox.context = (void *)config;
	outbox.send = outbox_send;
	deliver_set_outbox(&outbox);
}

/* The runner's bookkeeping of one attempt, shared with the unit test: how
 * an outcome (from smtpc or deliver) changes a recipient's state and which
 * notices it queues. */
#ifndef YUBIN_SMTP_QUEUE_RUNNER_PRIVATE_H
#define YUBIN_SMTP_QUEUE_RUNNER_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct yubin_config;

enum runner_result { RUNNER_OK, RUNNER_TEMPFAIL, RUNNER_PERMFAIL };

struct runner_outcome {
	enum runner_result result;
	char status[16];   /* RFC 3463 "5.1.1" */
	char *diagnostic;  /* "550 5.1.1 text", or NULL */
	char *remote;      /* the host that answered, or NULL */
	bool local;        /* delivered here, through deliver */
};

void runner_outcomes_free(struct runner_outcome *o, size_t count);
/* Applies count outcomes (for recipients idx[0..count)) to message id in
 * dir under the queue lock, queues the notices they call for (fd: the
 * message), and rewrites or removes the envelope. Returns the earliest
 * next attempt it set, 0 for none. */
time_t runner_apply(const struct yubin_config *config, const char *dir, const char *id,
                    const size_t *idx, struct runner_outcome *o, size_t count, time_t now, int fd);

#endif

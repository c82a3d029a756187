/* Remote recipients of an authenticated session go into the outbound
 * queue (queue.h) with their DSN parameters; queue_commit() fsyncs before
 * we answer 250. */
#include "smtp/smtp-private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/conn.h"
#include "lib/fdio.h"
#include "lib/xmalloc.h"
#include "smtp/queue.h"

_Static_assert(SMTP_NOTIFY_NEVER == QUEUE_NOTIFY_NEVER &&
	       SMTP_NOTIFY_SUCCESS == QUEUE_NOTIFY_SUCCESS &&
	       SMTP_NOTIFY_FAILURE == QUEUE_NOTIFY_FAILURE &&
	       SMTP_NOTIFY_DELAY == QUEUE_NOTIFY_DELAY, "DSN NOTIFY bits differ");

static void smtp_relay_envelope(struct smtp_session *sess, struct queue_envelope *env)
{
	static const enum queue_ret rets[] = { QUEUE_RET_DEFAULT, QUEUE_RET_FULL, QUEUE_RET_HDRS };
	static const enum queue_body bodies[] = { QUEUE_BODY_7BIT, QUEUE_BODY_8BITMIME,
						  QUEUE_BODY_BINARYMIME };
	memset(env, 0, sizeof(*env));
	env->sender = sess->sender;
	env->ret = rets[sess->mail.ret];
	env->envid = sess->mail.envid_given ? sess->mail.envid : NULL;
	env->body = bodies[sess->mail.body];
	env->smtputf8 = sess->mail.smtputf8;
	env->rcpts = xcalloc(sess->rcpt_count, sizeof(*env->rcpts));
	for (size_t i = 0; i < sess->rcpt_count; i++) {
		const struct smtp_rcpt *r = &sess->rcpts[i];
		if (r->local && !r->requeue)
			continue;
		/* SMTP_NOTIFY_* and QUEUE_NOTIFY_* are the same bits. */
		env->rcpts[env->rcpt_count].address = r->address;
		env->rcpts[env->rcpt_count].orcpt = r->orcpt;
		env->rcpts[env->rcpt_count].notify = r->notify;
		env->rcpt_count++;
	}
	env->origin = sess->auth_user != NULL ?
		xasprintf("%s %s", sess->submission ? "submission" : "smtp", sess->auth_user) :
		xstrdup(sess->submission ? "submission" : "smtp");
}

struct smtp_relay_copy {
	struct queue_msg *msg;
	const char *error;
};

static int smtp_relay_chunk(void *context, const void *data, size_t len)
{
	struct smtp_relay_copy *c = context;
	return queue_write(c->msg, data, len, &c->error) < 0 ? 1 : 0;
}

static int smtp_relay_copy(struct queue_msg *msg, int fd, const char **error_r)
{
	struct smtp_relay_copy c = {msg, NULL};
	int ret = fd_read_all(fd, smtp_relay_chunk, &c);
	if (ret != 0)
		*error_r = ret < 0 ? "read of the message failed" : c.error;
	return ret != 0 ? -1 : 0;
}

int smtp_relay_queue(struct smtp_session *sess, int fd, char **id_r, const char **error_r)
{
	struct queue_envelope env;
	const struct yubin_config *config = conn_config(sess->conn);
	smtp_relay_envelope(sess, &env);
	struct queue_msg *msg = queue_create(config, &env, error_r);
	free(env.rcpts);
	free(env.origin);
	if (msg == NULL)
		return -1;
	if (smtp_relay_copy(msg, fd, error_r) < 0) {
		queue_abort(&msg);
		return -1;
	}
	return queue_commit(&msg, id_r, error_r);
}

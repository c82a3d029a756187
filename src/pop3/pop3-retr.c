/* RETR and TOP: stream a message file in chunks through the CRLF and
 * dot-stuffing transformation, never holding more than one chunk. */
#include "pop3/pop3-private.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/conn.h"
#include "lib/log.h"
#include "lib/strnum.h"
#include "lib/xmalloc.h"
#include "store/store.h"

void pop3_retr_free(struct pop3_session *sess)
{
	if (sess->retr_fd >= 0)
		close(sess->retr_fd);
	sess->retr_fd = -1;
	xfree(sess->retr_in);
	xfree(sess->retr_out);
}

static void pop3_retr_finish(struct pop3_session *sess)
{
	char tail[2 + 3];
	size_t n = pop3_stuff_finish(&sess->stuff, tail);
	memcpy(tail + n, ".\r\n", 3);
	pop3_send(sess, tail, n + 3);
}

/* The reply already began with +OK, so a read error can only end the
 * connection: the client sees no final "." and deletes nothing. */
static void pop3_retr_read_error(struct pop3_session *sess, int err)
{
	log_error("pop3 session=%s user=%s event=error what=read error=\"%s\"",
		  conn_id(sess->conn), sess->address, strerror(err));
	pop3_session_close(sess);
}

static bool pop3_retr_step(struct pop3_session *sess)
{
	while (conn_output_size(sess->conn) < CONN_OUTPUT_HIGH_WATER) {
		if (sess->stuff.done) {
			pop3_retr_finish(sess);
			return true;
		}
		ssize_t n = read(sess->retr_fd, sess->retr_in, POP3_RETR_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			pop3_retr_read_error(sess, errno);
			return true;
		}
		if (n == 0) {
			pop3_retr_finish(sess);
			return true;
		}
		size_t out = pop3_stuff_chunk(&sess->stuff, sess->retr_in, (size_t)n,
					      sess->retr_out);
		pop3_send(sess, sess->retr_out, out);
	}
	return false;
}

/* Opens message idx; on failure replies and returns -1. */
static int pop3_retr_open(struct pop3_session *sess, size_t idx)
{
	enum store_error err = STORE_OK;
	const char *error = NULL;
	int fd = store_msg_open(sess->store, "INBOX", sess->msgs[idx].uid, &err, &error);
	if (fd >= 0) {
		sess->retr_fd = fd;
		return 0;
	}
	if (err == STORE_ERR_NOT_FOUND)
		pop3_reply(sess, "-ERR [SYS/TEMP] Message is no longer available");
	else
		pop3_reply_internal_error(sess, "store_msg_open", error);
	return -1;
}

static void pop3_retr_start(struct pop3_session *sess, bool top, uint64_t lines)
{
	pop3_stuff_init(&sess->stuff, top, lines);
	sess->retr_in = xmalloc(POP3_RETR_CHUNK);
	sess->retr_out = xmalloc(2 * POP3_RETR_CHUNK);
	sess->job = pop3_retr_step;
	pop3_session_run_job(sess);
}

void pop3_cmd_retr(struct pop3_session *sess, struct pop3_command *cmd)
{
	size_t i;
	if (pop3_msg_arg(sess, cmd->argv[0], &i) < 0 || pop3_retr_open(sess, i) < 0)
		return;
	sess->retr_count++;
	sess->retrieved[i] = true;
	pop3_reply(sess, "+OK %" PRIu64 " octets", pop3_msg_octets(&sess->msgs[i]));
	pop3_retr_start(sess, false, 0);
}

void pop3_cmd_top(struct pop3_session *sess, struct pop3_command *cmd)
{
	size_t i;
	uint64_t lines;
	if (pop3_msg_arg(sess, cmd->argv[0], &i) < 0)
		return;
	if (str_to_uint64(cmd->argv[1], &lines) < 0) {
		pop3_reply(sess, "-ERR Invalid number of lines");
		return;
	}
	if (pop3_retr_open(sess, i) < 0)
		return;
	sess->top_count++;
	pop3_reply(sess, "+OK Top of message follows");
	pop3_retr_start(sess, true, lines);
}

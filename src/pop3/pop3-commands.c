/* TRANSACTION state: STAT, LIST, UIDL, DELE, RSET, NOOP, and QUIT (which
 * enters UPDATE). Message numbers index the snapshot taken at login. */
#include "pop3/pop3-private.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "lib/conn.h"
#include "lib/log.h"
#include "lib/strnum.h"
#include "lib/xmalloc.h"
#include "store/store.h"

int pop3_msg_arg(struct pop3_session *sess, const char *arg, size_t *idx_r)
{
	uint32_t n;
	if (str_to_uint32(arg, &n) < 0 || n == 0 || n > sess->count) {
		pop3_reply(sess, "-ERR No such message");
		return -1;
	}
	if (sess->deleted[n - 1]) {
		pop3_reply(sess, "-ERR Message %" PRIu32 " already deleted", n);
		return -1;
	}
	*idx_r = n - 1;
	return 0;
}

void pop3_transaction_free(struct pop3_session *sess)
{
	if (sess->msgs != NULL)
		store_msg_list_free(&sess->msgs, sess->count);
	sess->msgs = NULL;
	sess->count = 0;
	xfree(sess->deleted);
	xfree(sess->retrieved);
	store_close(&sess->store);
	if (sess->lock_fd >= 0)
		close(sess->lock_fd);
	sess->lock_fd = -1;
}

/* Messages not marked deleted, and their octets. */
static size_t pop3_count_live(const struct pop3_session *sess, uint64_t *octets_r)
{
	size_t n = 0;
	*octets_r = 0;
	for (size_t i = 0; i < sess->count; i++) {
		if (sess->deleted[i])
			continue;
		n++;
		*octets_r += pop3_msg_octets(&sess->msgs[i]);
	}
	return n;
}

void pop3_cmd_stat(struct pop3_session *sess, struct pop3_command *cmd)
{
	uint64_t octets;
	size_t n = pop3_count_live(sess, &octets);
	pop3_reply(sess, "+OK %zu %" PRIu64, n, octets);
}

static void pop3_list_line(struct pop3_session *sess, size_t i, bool uidl)
{
	char line[256];
	int n;
	if (uidl)
		n = snprintf(line, sizeof(line), "%zu %s\r\n", i + 1, sess->msgs[i].uidl);
	else
		n = snprintf(line, sizeof(line), "%zu %" PRIu64 "\r\n", i + 1, pop3_msg_octets(&sess->msgs[i]));
	if (n > 0 && (size_t)n < sizeof(line))
		pop3_send(sess, line, (size_t)n);
}

/* A multi-line LIST or UIDL, written as the client reads it. */
static bool pop3_list_step(struct pop3_session *sess)
{
	while (sess->job_next < sess->count) {
		if (conn_output_size(sess->conn) >= CONN_OUTPUT_HIGH_WATER)
			return false;
		size_t i = sess->job_next++;
		if (!sess->deleted[i])
			pop3_list_line(sess, i, sess->job_uidl);
	}
	pop3_send(sess, ".\r\n", 3);
	return true;
}

static void pop3_list_start(struct pop3_session *sess, bool uidl)
{
	sess->job = pop3_list_step;
	sess->job_next = 0;
	sess->job_uidl = uidl;
	pop3_session_run_job(sess);
}

void pop3_cmd_list(struct pop3_session *sess, struct pop3_command *cmd)
{
	size_t i;
	if (cmd->argc == 1) {
		if (pop3_msg_arg(sess, cmd->argv[0], &i) == 0)
			pop3_reply(sess, "+OK %zu %" PRIu64, i + 1, pop3_msg_octets(&sess->msgs[i]));
		return;
	}
	uint64_t octets;
	size_t n = pop3_count_live(sess, &octets);
	pop3_reply(sess, "+OK %zu messages (%" PRIu64 " octets)", n, octets);
	pop3_list_start(sess, false);
}

void pop3_cmd_uidl(struct pop3_session *sess, struct pop3_command *cmd)
{
	size_t i;
	if (cmd->argc == 1) {
		if (pop3_msg_arg(sess, cmd->argv[0], &i) == 0)
			pop3_reply(sess, "+OK %zu %s", i + 1, sess->msgs[i].uidl);
		return;
	}
	pop3_reply(sess, "+OK Unique-ID listing follows");
	pop3_list_start(sess, true);
}

void pop3_cmd_dele(struct pop3_session *sess, struct pop3_command *cmd)
{
	size_t i;
	if (pop3_msg_arg(sess, cmd->argv[0], &i) < 0)
		return;
	sess->deleted[i] = true;
	pop3_reply(sess, "+OK Message %zu deleted", i + 1);
}

void pop3_cmd_rset(struct pop3_session *sess, struct pop3_command *cmd)
{
	for (size_t i = 0; i < sess->count; i++)
		sess->deleted[i] = false;
	uint64_t octets;
	size_t n = pop3_count_live(sess, &octets);
	pop3_reply(sess, "+OK %zu messages (%" PRIu64 " octets)", n, octets);
}

void pop3_cmd_noop(struct pop3_session *sess, struct pop3_command *cmd)
{
	pop3_reply(sess, "+OK");
}

/* The UIDs of the messages whose marks say so (want_deleted), excluding
 * deleted ones when collecting retrieved messages. Caller frees. */
static uint32_t *pop3_collect_uids(const struct pop3_session *sess, bool want_deleted,
				   size_t *count_r)
{
	uint32_t *uids = xcalloc(sess->count, sizeof(*uids));
	size_t n = 0;
	for (size_t i = 0; i < sess->count; i++) {
		bool take = want_deleted ? sess->deleted[i]
					 : sess->retrieved[i] && !sess->deleted[i];
		if (take)
			uids[n++] = sess->msgs[i].uid;
	}
	*count_r = n;
	return uids;
}

/* Retrieved messages become \Seen, as an IMAP or webmail user of the same
 * account expects. A failure costs nothing but the flag. */
static void pop3_mark_seen(struct pop3_session *sess)
{
	const char *error;
	size_t n;
	uint32_t *uids = pop3_collect_uids(sess, false, &n);
	if (n > 0 && store_flags_update(sess->store, "INBOX", uids, n, 1, STORE_FLAG_SEEN,
					&error) < 0)
		log_warn("pop3 session=%s user=%s event=error what=store_flags_update "
			 "error=\"%s\"", conn_id(sess->conn), sess->address, error);
	free(uids);
}

static int pop3_expunge_marked(struct pop3_session *sess)
{
	const char *error;
	size_t n;
	int ret = 0;
	uint32_t *uids = pop3_collect_uids(sess, true, &n);
	if (n > 0 && store_expunge(sess->store, "INBOX", uids, n, &error) < 0) {
		log_error("pop3 session=%s user=%s event=error what=store_expunge count=%zu "
			  "error=\"%s\"", conn_id(sess->conn), sess->address, n, error);
		ret = -1;
	} else {
		sess->deleted_count = n;
	}
	free(uids);
	return ret;
}

/* RFC 1939 6: QUIT in TRANSACTION enters UPDATE and removes the messages
 * marked deleted; a connection that ends otherwise removes nothing. */
void pop3_cmd_quit(struct pop3_session *sess, struct pop3_command *cmd)
{
	if (sess->state == POP3_STATE_AUTHORIZATION) {
		pop3_reply(sess, "+OK Bye");
		pop3_session_close(sess);
		return;
	}
	sess->state = POP3_STATE_UPDATE;
	pop3_mark_seen(sess);
	if (pop3_expunge_marked(sess) < 0)
		pop3_reply(sess, "-ERR [SYS/TEMP] Some deleted messages were not removed");
	else
		pop3_reply(sess, "+OK Logging out, %" PRIu64 " messages deleted",
			   sess->deleted_count);
	pop3_session_close(sess);
}

/* The POP3 server's insides, shared by its files and the unit test. */
#ifndef YUBIN_POP3_PRIVATE_H
#define YUBIN_POP3_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pop3/pop3.h"
#include "store/store.h"

struct conn;
struct dir;
struct sasl;
struct store;
struct store_msg;

/* Longest line read from a client (without CRLF). RFC 2449 allows 255 for
 * commands, but RFC 5034 AUTH responses are longer. */
#define POP3_MAX_LINE 1024
/* Longest argument: RFC 2449 says 40, but real user names are longer. */
#define POP3_MAX_ARG_LEN 255
/* RETR/TOP read the message file in chunks of this size. */
#define POP3_RETR_CHUNK (64 * 1024)

/* The states are bits so that a command can name several. */
enum pop3_state {
	POP3_STATE_AUTHORIZATION = 1 << 0,
	POP3_STATE_TRANSACTION = 1 << 1,
	POP3_STATE_UPDATE = 1 << 2,
};

/* The message transformation RETR and TOP apply while streaming: every LF
 * not preceded by CR becomes CRLF, a line starting with '.' gets another
 * '.', and with a line limit (TOP) output stops after the header, the blank
 * line and at most `body_lines` body lines. Fed any split of the input it
 * produces the same output (a CR that ends one chunk is remembered). */
struct pop3_stuff {
	bool line_start;         /* the next byte begins a line */
	bool last_cr;            /* the previous byte was CR */
	bool in_body;            /* the header's blank line has passed */
	bool limit;              /* TOP: stop after body_lines_left lines */
	bool done;               /* the line limit was reached */
	unsigned int line_bytes; /* bytes in the current line so far, at most 2 */
	uint64_t body_lines_left;
};

void pop3_stuff_init(struct pop3_stuff *st, bool limit, uint64_t body_lines);
/* Transforms len bytes of in into out, which must hold 2 * len bytes.
 * Returns the bytes written; input after the line limit is ignored. */
size_t pop3_stuff_chunk(struct pop3_stuff *st, const char *in, size_t len, char *out);
/* The final CRLF when the message does not end with one; out holds 2 bytes.
 * Returns the bytes written (0, 1 or 2). The ".\r\n" is the caller's. */
size_t pop3_stuff_finish(struct pop3_stuff *st, char *out);

/* An HTTP request line sent to the POP3 port ("GET / HTTP/1.1"). */
bool pop3_is_http_request(const char *line, size_t len);

struct pop3_session {
	struct conn *conn;
	enum pop3_state state;

	/* Lifetime: callbacks nest (depth); on_close only marks the session
	 * closed while a callback is running, and the outermost one frees it. */
	unsigned int depth;
	bool closing;            /* conn_close() was called */
	bool closed;             /* on_close ran: conn is gone */
	bool input_paused;       /* a delayed reply or a long reply is pending */
	bool tls_starting;       /* STLS: read nothing until the handshake ends */
	unsigned int bad_commands;

	/* AUTHORIZATION */
	char *user;              /* USER argument, until PASS */
	struct sasl *sasl;       /* an AUTH exchange waiting for a response */
	char *sasl_mech;         /* its mechanism, upper case */
	const char *delayed_reply; /* written when the failure delay expires */

	/* TRANSACTION: the snapshot taken at login */
	char *address;
	struct store *store;
	int lock_fd;
	struct store_msg *msgs;
	size_t count;
	bool *deleted;
	bool *retrieved;

	/* A long reply in progress: step() writes while the output is below
	 * the high watermark and returns true when the reply is complete. */
	bool (*job)(struct pop3_session *sess);
	size_t job_next;         /* LIST/UIDL: next message index */
	bool job_uidl;
	int retr_fd;
	struct pop3_stuff stuff;
	char *retr_in;
	char *retr_out;

	/* Counters for the logout line */
	uint64_t retr_count, top_count, deleted_count, bytes_out;
};

/* A row of the command table. */
struct pop3_cmd_def {
	const char *name;
	void (*handler)(struct pop3_session *sess, struct pop3_command *cmd);
	unsigned int states;     /* enum pop3_state bits */
	unsigned int min_args, max_args;
};

/* pop3-session.c */
void pop3_send(struct pop3_session *sess, const void *data, size_t len);
void pop3_reply(struct pop3_session *sess, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "-ERR [SYS/TEMP] ..." with the session id; logs what for the operator. */
void pop3_reply_internal_error(struct pop3_session *sess, const char *what,
			       const char *error);
/* Counts a bad command after its error reply; closes after too many. */
void pop3_session_bad_command(struct pop3_session *sess);
void pop3_session_close(struct pop3_session *sess);
/* Bracket every callback: a close inside it frees the session only at the
 * outermost leave. */
void pop3_session_enter(struct pop3_session *sess);
void pop3_session_leave(struct pop3_session *sess);
void pop3_session_pause(struct pop3_session *sess);
void pop3_session_resume(struct pop3_session *sess);
/* Starts sess->job: runs a first step now, pauses input if it must wait. */
void pop3_session_run_job(struct pop3_session *sess);
/* The worker's directory, opened on first use. NULL with *error_r (static
 * or owned by the directory layer until the next call). */
struct dir *pop3_session_dir(struct pop3_session *sess, const char **error_r);
const struct pop3_cmd_def *pop3_cmd_find(const char *name);

/* pop3-auth.c: AUTHORIZATION state */
void pop3_cmd_capa(struct pop3_session *sess, struct pop3_command *cmd);
void pop3_cmd_stls(struct pop3_session *sess, struct pop3_command *cmd);
void pop3_cmd_user(struct pop3_session *sess, struct pop3_command *cmd);
void pop3_cmd_pass(struct pop3_session *sess, struct pop3_command *cmd);
void pop3_cmd_auth(struct pop3_session *sess, struct pop3_command *cmd);
/* A line received while an AUTH exchange waits for the client. */
void pop3_auth_continue(struct pop3_session *sess, char *line, size_t len);
void pop3_auth_abort(struct pop3_session *sess);

/* pop3-commands.c: TRANSACTION state */
void pop3_cmd_stat(struct pop3_session *sess, struct pop3_command *cmd);
void pop3_cmd_list(struct pop3_session *sess, struct pop3_command *cmd);
void pop3_cmd_uidl(struct pop3_session *sess, struct pop3_command *cmd);
void pop3_cmd_dele(struct pop3_session *sess, struct pop3_command *cmd);
void pop3_cmd_rset(struct pop3_session *sess, struct pop3_command *cmd);
void pop3_cmd_noop(struct pop3_session *sess, struct pop3_command *cmd);
void pop3_cmd_quit(struct pop3_session *sess, struct pop3_command *cmd);
/* Parses a message number; on failure replies and returns -1. */
int pop3_msg_arg(struct pop3_session *sess, const char *arg, size_t *idx_r);
/* Releases the snapshot, the lock and the store. */
void pop3_transaction_free(struct pop3_session *sess);

/* pop3-retr.c */
void pop3_cmd_retr(struct pop3_session *sess, struct pop3_command *cmd);
void pop3_cmd_top(struct pop3_session *sess, struct pop3_command *cmd);
void pop3_retr_free(struct pop3_session *sess);

/* The octets RETR sends before dot-stuffing: every LF as CRLF, and a CRLF
 * added when the message does not end with a newline (RFC 1939 LIST). */
static inline uint64_t pop3_msg_octets(const struct store_msg *msg)
{
	return msg->vsize + (msg->eol_missing ? 2 : 0);
}

#endif

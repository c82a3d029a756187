/* The SMTP server's insides, shared by its files. */
#ifndef YUBIN_SMTP_PRIVATE_H
#define YUBIN_SMTP_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "smtp/smtp.h"

struct conn;
struct dir;
struct sasl;

/* RFC 4954 4: AUTH lines may be 12288 octets; other commands are far
 * shorter (RFC 5321 4.5.3.1.4: 512 plus extensions). */
#define SMTP_MAX_LINE 12288
/* Body bytes are read and written in chunks of this size. */
#define SMTP_BODY_CHUNK (64 * 1024)
/* Submission keeps the message header in memory (to check From and add
 * Message-ID and Date) up to this size; a longer one is refused. */
#define SMTP_MAX_HEADER (256 * 1024)

enum smtp_input {
	SMTP_INPUT_COMMAND,
	SMTP_INPUT_DATA,
	SMTP_INPUT_BDAT,
};

struct smtp_rcpt {
	char *address;     /* the forward-path without <> (domain lower case if local) */
	char *orcpt;       /* RFC 3461 ORCPT as received, or NULL */
	unsigned int notify;
	bool local;        /* in a hosted domain: delivered by `deliver` */
	bool requeue;      /* local, but the copy failed: the queue retries or bounces */
};

/* Where the message of a transaction goes while it arrives: an anonymous
 * file (memfd) that starts with the Received header. */
struct smtp_msgfile {
	int fd;
	bool write_error;
	bool header_done;      /* the header/body boundary was passed */
	bool header_too_long;
	const char *header_reply; /* submission: why the header is refused */
	struct buf header;     /* submission: the header, held until its end */
	bool bdat_prev_cr;     /* BDAT bare CR/LF check across chunks */
	bool bdat_bare;
};

struct smtp_session {
	struct conn *conn;
	bool submission;       /* the listener speaks "submission" */

	unsigned int depth;    /* see smtp_session_enter */
	bool closing;
	bool closed;
	bool input_paused;
	bool tls_starting;
	bool output_full;      /* input paused until the replies drain */
	unsigned int errors;
	unsigned int messages;

	char *helo;            /* EHLO/HELO argument (escaped for Received) */
	bool esmtp;
	char *auth_user;       /* the authenticated account */
	struct sasl *sasl;     /* an AUTH exchange waiting for the client */
	char *sasl_mech;
	const char *delayed_reply;

	/* The transaction (RFC 5321 3.3) */
	bool in_mail;
	char *sender;          /* reverse-path without <>; "" = null */
	struct smtp_mail_params mail;
	struct smtp_rcpt *rcpts;
	size_t rcpt_count;
	bool tx_failed;        /* a BDAT of this transaction failed */

	/* The message being received */
	enum smtp_input input;
	struct smtp_data data;
	struct smtp_msgfile body;
	bool body_open;
	uint64_t bdat_left;    /* bytes of the current chunk still to read */
	bool bdat_last;
	uint64_t bdat_size;    /* bytes announced by this transaction's chunks */
	const char *bdat_reply; /* the error answering the current chunk */
	char *chunk_in;
	char *chunk_out;
};

/* A row of the command table. */
#define SMTP_CMD_NEED_HELO 0x1u   /* after EHLO/HELO */
#define SMTP_CMD_NEED_AUTH 0x2u   /* submission: after AUTH */
struct smtp_cmd_def {
	const char *verb;
	void (*handler)(struct smtp_session *sess, char *arg);
	unsigned int flags;
};

/* smtp-session.c */
void smtp_reply(struct smtp_session *sess, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A 4xx/5xx reply: counted; at [smtp] max_errors the session ends with
 * 421. */
void smtp_reply_error(struct smtp_session *sess, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "451 4.3.0" with the session id; what is logged for the operator. */
void smtp_reply_internal_error(struct smtp_session *sess, const char *what,
			       const char *error);
void smtp_session_close(struct smtp_session *sess);
void smtp_session_enter(struct smtp_session *sess);
void smtp_session_leave(struct smtp_session *sess);
void smtp_session_pause(struct smtp_session *sess);
void smtp_session_resume(struct smtp_session *sess);
/* The worker's directory, opened on first use. */
struct dir *smtp_session_dir(struct smtp_session *sess, const char **error_r);
/* Forgets the transaction (RSET, after the end of data, EHLO). */
void smtp_session_reset(struct smtp_session *sess);
const char *smtp_session_hostname(const struct smtp_session *sess);

/* smtp-cmd-hello.c */
void smtp_cmd_ehlo(struct smtp_session *sess, char *arg);
void smtp_cmd_helo(struct smtp_session *sess, char *arg);
void smtp_cmd_starttls(struct smtp_session *sess, char *arg);
void smtp_cmd_noop(struct smtp_session *sess, char *arg);
void smtp_cmd_rset(struct smtp_session *sess, char *arg);
void smtp_cmd_quit(struct smtp_session *sess, char *arg);
void smtp_cmd_vrfy(struct smtp_session *sess, char *arg);
void smtp_cmd_help(struct smtp_session *sess, char *arg);

/* smtp-cmd-auth.c */
void smtp_cmd_auth(struct smtp_session *sess, char *arg);
void smtp_auth_continue(struct smtp_session *sess, char *line, size_t len);
void smtp_auth_abort(struct smtp_session *sess);
/* AUTH is offered and allowed now. */
bool smtp_auth_offered(struct smtp_session *sess);

/* smtp-cmd-mail.c */
void smtp_cmd_mail(struct smtp_session *sess, char *arg);
void smtp_cmd_rcpt(struct smtp_session *sess, char *arg);

/* smtp-cmd-data.c */
/* SIZE for this session: the listener's limit, else [smtp] (0 = none). */
uint64_t smtp_max_size(struct smtp_session *sess);
void smtp_cmd_data(struct smtp_session *sess, char *arg);
void smtp_cmd_bdat(struct smtp_session *sess, char *arg);
/* Reads body bytes while in DATA or BDAT. */
void smtp_data_input(struct smtp_session *sess);
void smtp_body_free(struct smtp_session *sess);

/* smtp-policy.c */
enum smtp_rcpt_verdict {
	SMTP_RCPT_LOCAL,
	SMTP_RCPT_REMOTE,
	SMTP_RCPT_REFUSED,     /* *reply_r says why */
};
enum smtp_rcpt_verdict smtp_policy_rcpt(struct smtp_session *sess,
					const struct smtp_path *path, char **address_r,
					const char **reply_r);
/* The mailbox "<Postmaster>" (no domain) stands for. */
void smtp_policy_postmaster(struct smtp_session *sess, struct smtp_path *path_r);
/* Submission: the envelope sender belongs to the authenticated account.
 * Returns 0, or -1 with *reply_r. */
int smtp_policy_sender(struct smtp_session *sess, const struct smtp_path *path,
		       const char **reply_r);
/* Submission: every From: address belongs to the account. */
int smtp_policy_from_header(struct smtp_session *sess, const char *header, size_t len,
			    const char **reply_r);

/* smtp-message.c: the Received header, the submission header fixes, the
 * end of data. */
int smtp_message_begin(struct smtp_session *sess, const char **error_r);
/* Message bytes as they arrive (unstuffed). */
void smtp_message_write(struct smtp_session *sess, const char *data, size_t len);
/* The data is complete: checks, delivers and queues, and replies. */
void smtp_message_finish(struct smtp_session *sess);

/* smtp-received.c: header lines with their CRLF (malloc'd). */
char *smtp_received_header(const struct smtp_session *sess);
char *smtp_date_header(void);
char *smtp_message_id_header(const struct smtp_session *sess);

/* smtp-relay.c: remote recipients into the queue (queue.h). */
int smtp_relay_queue(struct smtp_session *sess, int fd, char **id_r, const char **error_r);

#endif

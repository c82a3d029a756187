/* The SMTP server: MX (RFC 5321) and submission (RFC 6409, RFC 8314) on
 * the connection layer, and its parsers, exposed for the unit tests and
 * the fuzz target. See docs/smtp.md. */
#ifndef YUBIN_SMTP_H
#define YUBIN_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/conn.h"

/* Listener protocol "smtp" (the MX) and "submission" (587 and 465). */
extern const struct protocol smtp_protocol;
extern const struct protocol submission_protocol;

/* Every reply string below is a complete SMTP reply line without CRLF
 * ("501 5.5.4 Syntax error in parameters"), static. */

/* A command line: an upper-cased verb of 1-15 letters, and the rest after
 * one space ("" when none). NUL or another control byte (other than TAB)
 * anywhere is an error. line must hold len + 1 bytes. */
struct smtp_command {
	char verb[16];
	char *arg;
};
int smtp_parse_command(char *line, size_t len, struct smtp_command *cmd_r,
		       const char **reply_r);

/* RFC 5321 4.1.2 Path and Mailbox, with RFC 6531 UTF-8. */
#define SMTP_MAX_LOCAL 64
#define SMTP_MAX_DOMAIN 255
#define SMTP_MAX_PATH 256
struct smtp_path {
	char address[SMTP_MAX_PATH + 1]; /* local@domain as sent ("" for <>) */
	char local[SMTP_MAX_LOCAL + 1];  /* without quotes and escapes */
	char domain[SMTP_MAX_DOMAIN + 1];
	bool quoted;       /* the local part was a quoted string */
	bool literal;      /* the domain is an address literal [...] */
	bool route;        /* an obsolete source route @a,@b: was given */
	bool utf8;         /* non-ASCII bytes (needs SMTPUTF8) */
};
/* Parses "<path>" at *p and moves *p past it. allow_null: "<>" is taken
 * (MAIL). Returns 0 or -1 with *reply_r. */
int smtp_parse_path(const char **p, bool allow_null, struct smtp_path *path_r,
		    const char **reply_r);

enum smtp_body { SMTP_BODY_7BIT, SMTP_BODY_8BITMIME, SMTP_BODY_BINARYMIME };
enum smtp_ret { SMTP_RET_DEFAULT, SMTP_RET_FULL, SMTP_RET_HDRS };

/* MAIL FROM parameters (RFC 1870, 6152, 3030, 6531, 3461, 4954). */
struct smtp_mail_params {
	bool size_given;
	uint64_t size;
	enum smtp_body body;
	bool smtputf8;
	enum smtp_ret ret;
	char envid[101];   /* ENVID xtext-decoded, "" when not given */
	bool envid_given;
};
/* RCPT TO parameters (RFC 3461). */
#define SMTP_NOTIFY_NEVER   0x1u
#define SMTP_NOTIFY_SUCCESS 0x2u
#define SMTP_NOTIFY_FAILURE 0x4u
#define SMTP_NOTIFY_DELAY   0x8u
struct smtp_rcpt_params {
	unsigned int notify;  /* 0 = not given */
	char orcpt[501];      /* "rfc822;user@host" as received, "" = none */
};
/* Parses the space-separated KEYWORD[=VALUE] list after the path. s is
 * modified. Unknown or repeated keywords and bad values are errors. */
int smtp_parse_mail_params(char *s, struct smtp_mail_params *params_r,
			   const char **reply_r);
int smtp_parse_rcpt_params(char *s, struct smtp_rcpt_params *params_r,
			   const char **reply_r);
/* RFC 3461 4 xtext: decodes into out (size bytes with the NUL). -1 when
 * malformed or too long. */
int smtp_xtext_decode(const char *in, char *out, size_t size);
/* Well-formed UTF-8 (RFC 3629), no NUL. */
bool smtp_utf8_valid(const unsigned char *s, size_t len);

/* The DATA reader (RFC 5321 4.1.1.4, 4.5.2): only CR LF . CR LF ends the
 * data (the CR LF of the DATA command counts as the first); a leading dot
 * is removed from every other line; a CR not followed by LF or an LF not
 * preceded by CR marks the message bad (SMTP smuggling) but reading goes
 * on to the real end. Counts the unstuffed bytes against max (0 = none);
 * past it, and once the message is bad, nothing more is output. */
enum smtp_data_state {
	SMTP_DATA_LINE_START,
	SMTP_DATA_TEXT,
	SMTP_DATA_CR,
	SMTP_DATA_DOT,
	SMTP_DATA_DOT_CR,
	SMTP_DATA_DONE,
};
struct smtp_data {
	enum smtp_data_state state;
	bool bare_cr, bare_lf;
	bool too_big;
	uint64_t size;   /* unstuffed bytes seen (also past max) */
	uint64_t max;
};
void smtp_data_init(struct smtp_data *data, uint64_t max);
/* Consumes bytes of in until the end of data (included) or the end of
 * in; returns how many. The bytes of the message go to out (room for
 * len + 1 bytes: a CR held back from the last call may come out now),
 * their count to *out_len_r. */
size_t smtp_data_feed(struct smtp_data *data, const char *in, size_t len, char *out,
		      size_t *out_len_r);
static inline bool smtp_data_done(const struct smtp_data *data)
{
	return data->state == SMTP_DATA_DONE;
}

#endif

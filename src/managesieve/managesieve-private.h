/* The ManageSieve server's insides, shared by its files. */
#ifndef YUBIN_MANAGESIEVE_PRIVATE_H
#define YUBIN_MANAGESIEVE_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "managesieve/managesieve.h"

struct conn;
struct dir;
struct sasl;
struct sieve_storage;

/* ---- the command parser (managesieve-parser.c) ------------------------- */

/* Bytes of a command outside its literals, before and after login. */
#define MANAGESIEVE_MAX_LINE_PRELOGIN 8192
#define MANAGESIEVE_MAX_LINE 65536
/* A literal before login: a SASL response, never a script. */
#define MANAGESIEVE_MAX_LITERAL_PRELOGIN 8192
/* The command name and its arguments (PUTSCRIPT has two). */
#define MANAGESIEVE_MAX_ARGS 4
/* RFC 5804 4: quoted strings hold at most 1024 octets. */
#define MANAGESIEVE_MAX_QUOTED 1024

enum managesieve_arg_type {
	MANAGESIEVE_ARG_ATOM,    /* command names, numbers, bare SASL responses */
	MANAGESIEVE_ARG_QUOTED,  /* escapes removed */
	MANAGESIEVE_ARG_LITERAL, /* {n+} or {n}: may hold NUL bytes */
};

struct managesieve_arg {
	enum managesieve_arg_type type;
	char *str;  /* NUL-terminated; len bytes */
	size_t len;
};

struct managesieve_parser_limits {
	size_t max_line;       /* bytes outside literals */
	uint64_t max_literal;  /* checked on the literal's header, before its bytes */
};

enum managesieve_parse_result {
	MANAGESIEVE_PARSE_NEED_MORE, /* everything fed was consumed */
	MANAGESIEVE_PARSE_DONE,      /* a complete command: managesieve_parser_args() */
	MANAGESIEVE_PARSE_ERROR,     /* managesieve_parser_error(); the parser skips the
				      * rest of the command by itself on the next feeds */
};

struct managesieve_parser_error {
	const char *text;          /* client-facing, static */
	bool literal_too_large;    /* a literal over max_literal was refused */
};

struct managesieve_parser *managesieve_parser_create(const struct managesieve_parser_limits *limits);
void managesieve_parser_destroy(struct managesieve_parser **parser);
void managesieve_parser_set_limits(struct managesieve_parser *parser,
				   const struct managesieve_parser_limits *limits);
/* Consumes a prefix of data (*consumed_r bytes) and says why it stopped.
 * Empty lines are skipped. */
enum managesieve_parse_result managesieve_parser_feed(struct managesieve_parser *parser,
						      const void *data, size_t size,
						      size_t *consumed_r);
/* After DONE: the words of the command, the first being its name (valid
 * until the next feed or reset). */
const struct managesieve_arg *managesieve_parser_args(const struct managesieve_parser *parser,
						      unsigned int *count_r);
const struct managesieve_parser_error *
managesieve_parser_error(const struct managesieve_parser *parser);
/* Forgets everything and starts at a new command (STARTTLS). */
void managesieve_parser_reset(struct managesieve_parser *parser);

/* Appends str as a quoted string when it can be one, else as a literal. */
void managesieve_write_string(struct buf *out, const char *str, size_t len);

/* ---- the session ------------------------------------------------------- */

struct managesieve_session {
	struct conn *conn;
	struct managesieve_parser *parser;

	/* Lifetime as in POP3: callbacks nest (depth); on_close only marks
	 * the session closed while one runs, the outermost frees it. */
	unsigned int depth;
	bool closing, closed;
	bool input_paused;      /* a delayed reply is pending */
	bool tls_starting;      /* STARTTLS: read nothing until the handshake ends */
	unsigned int bad_commands;

	/* an AUTHENTICATE exchange waiting for the client's response */
	struct sasl *sasl;
	char *sasl_mech;
	const char *delayed_reply;

	/* authenticated */
	char *address;
	struct sieve_storage *storage;

	uint64_t puts, gets;    /* for the logout line */
};

enum managesieve_state {
	MANAGESIEVE_STATE_NONAUTH = 1 << 0,
	MANAGESIEVE_STATE_AUTH = 1 << 1,
};

struct managesieve_cmd_def {
	const char *name;
	void (*handler)(struct managesieve_session *sess, const struct managesieve_arg *args,
			unsigned int count);
	unsigned int states;
	unsigned int min_args, max_args; /* after the name */
};

/* managesieve-session.c */
/* "OK|NO|BYE [(code)] [text]": code may be NULL, text NULL for none. */
void managesieve_reply(struct managesieve_session *sess, const char *status, const char *code,
		       const char *text);
/* NO (TRYLATER) with the session id; logs what for the operator. */
void managesieve_reply_internal_error(struct managesieve_session *sess, const char *what,
				      const char *error);
void managesieve_send(struct managesieve_session *sess, const void *data, size_t len);
void managesieve_send_capabilities(struct managesieve_session *sess);
void managesieve_session_bad_command(struct managesieve_session *sess);
void managesieve_session_close(struct managesieve_session *sess);
void managesieve_session_enter(struct managesieve_session *sess);
void managesieve_session_leave(struct managesieve_session *sess);
void managesieve_session_pause(struct managesieve_session *sess);
void managesieve_session_resume(struct managesieve_session *sess);
/* The parser limits of the session's state (looser after login). */
void managesieve_session_set_limits(struct managesieve_session *sess);
struct dir *managesieve_session_dir(struct managesieve_session *sess, const char **error_r);
const struct managesieve_cmd_def *managesieve_cmd_find(const char *name);

/* managesieve-commands.c: before login */
void managesieve_cmd_authenticate(struct managesieve_session *sess,
				  const struct managesieve_arg *args, unsigned int count);
void managesieve_cmd_starttls(struct managesieve_session *sess,
			      const struct managesieve_arg *args, unsigned int count);
void managesieve_cmd_logout(struct managesieve_session *sess,
			    const struct managesieve_arg *args, unsigned int count);
void managesieve_cmd_capability(struct managesieve_session *sess,
				const struct managesieve_arg *args, unsigned int count);
void managesieve_cmd_noop(struct managesieve_session *sess, const struct managesieve_arg *args,
			  unsigned int count);
/* The client's response to a challenge (a string, or "*" to cancel). */
void managesieve_auth_continue(struct managesieve_session *sess, const struct managesieve_arg *arg);
void managesieve_auth_abort(struct managesieve_session *sess);
/* after login */
void managesieve_cmd_havespace(struct managesieve_session *sess,
			       const struct managesieve_arg *args, unsigned int count);
void managesieve_cmd_putscript(struct managesieve_session *sess,
			       const struct managesieve_arg *args, unsigned int count);
void managesieve_cmd_checkscript(struct managesieve_session *sess,
				 const struct managesieve_arg *args, unsigned int count);
void managesieve_cmd_listscripts(struct managesieve_session *sess,
				 const struct managesieve_arg *args, unsigned int count);
void managesieve_cmd_setactive(struct managesieve_session *sess,
			       const struct managesieve_arg *args, unsigned int count);
void managesieve_cmd_getscript(struct managesieve_session *sess,
			       const struct managesieve_arg *args, unsigned int count);
void managesieve_cmd_deletescript(struct managesieve_session *sess,
				  const struct managesieve_arg *args, unsigned int count);
void managesieve_cmd_renamescript(struct managesieve_session *sess,
				  const struct managesieve_arg *args, unsigned int count);
void managesieve_cmd_unauthenticate(struct managesieve_session *sess,
				    const struct managesieve_arg *args, unsigned int count);
/* Drops the login: the storage and the address. */
void managesieve_logout_state(struct managesieve_session *sess);

#endif

/* POP3 server (RFC 1939, 2449, 2595, 5034, 3206). */
#ifndef YUBIN_POP3_H
#define YUBIN_POP3_H

#include <stddef.h>

#include "lib/conn.h"

extern const struct protocol pop3_protocol;

/* The command parser, exposed for unit tests and the fuzz target: splits a
 * command line into an upper-cased keyword and at most POP3_MAX_ARGS
 * arguments. Returns 0, or -1 with *error_r for the client. */
#define POP3_MAX_ARGS 4
struct pop3_command {
	char name[16];
	size_t argc;
	char *argv[POP3_MAX_ARGS];
	char *rest;        /* everything after the keyword (for PASS, which may hold spaces) */
};
int pop3_parse_command(char *line, size_t len, struct pop3_command *cmd_r,
		       const char **error_r);

#endif

/* POP3 server (RFC 1939, 2449, 2595, 5034, 3206). */
#ifndef YUBIN_POP3_H
#define YUBIN_POP3_H

#include <stddef.h>

#include "lib/conn.h"

extern const struct protocol pop3_protocol;

/* The command parser, exposed for unit tests and the fuzz target: splits a
 * command line into an upper-cased keyword (1-15 ASCII letters) and at most
 * POP3_MAX_ARGS space-separated arguments of at most 255 bytes, NUL-
 * terminating them in place: line must hold len + 1 bytes (line[len] is
 * overwritten with NUL). A control byte anywhere (NUL included) is an error.
 * PASS is not split: its single argument and rest are everything after
 * "PASS " (a password may hold spaces). For the other commands rest reads as
 * the first argument ("" when there is none). Returns 0, or -1 with *error_r,
 * a static string to show the client after "-ERR ". */
#define POP3_MAX_ARGS 4
struct pop3_command {
	char name[16];
	size_t argc;
	char *argv[POP3_MAX_ARGS];
	char *rest;        /* everything after the keyword and one space (PASS) */
};
int pop3_parse_command(char *line, size_t len, struct pop3_command *cmd_r,
		       const char **error_r);

#endif

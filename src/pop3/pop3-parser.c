/* Pure functions of the POP3 server: the command line parser, the RETR/TOP
 * transformation and HTTP detection. No I/O, so the unit test and the fuzz
 * target run them alone. */
#include "pop3/pop3-private.h"

#include <string.h>

/* Commands whose argument is the whole rest of the line, unsplit. */
static const char *const pop3_whole_line_commands[] = { "PASS" };

static bool pop3_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char pop3_upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

static bool pop3_has_control(const char *line, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c < 0x20 || c == 0x7f)
			return true;
	}
	return false;
}

static bool pop3_is_whole_line(const char *name)
{
	size_t n = sizeof(pop3_whole_line_commands) / sizeof(pop3_whole_line_commands[0]);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(name, pop3_whole_line_commands[i]) == 0)
			return true;
	}
	return false;
}

/* Splits *p..end into NUL-terminated arguments separated by spaces. */
static int pop3_split_args(char *p, char *end, struct pop3_command *cmd,
			   const char **error_r)
{
	while (p < end) {
		if (*p == ' ') {
			p++;
			continue;
		}
		if (cmd->argc == POP3_MAX_ARGS) {
			*error_r = "Too many arguments";
			return -1;
		}
		char *start = p;
		while (p < end && *p != ' ')
			p++;
		if ((size_t)(p - start) > POP3_MAX_ARG_LEN) {
			*error_r = "Argument too long";
			return -1;
		}
		*p = '\0';
		p++;
		cmd->argv[cmd->argc++] = start;
	}
	return 0;
}

int pop3_parse_command(char *line, size_t len, struct pop3_command *cmd_r,
		       const char **error_r)
{
	memset(cmd_r, 0, sizeof(*cmd_r));
	if (pop3_has_control(line, len)) {
		*error_r = "Invalid characters in command";
		return -1;
	}
	size_t k = 0;
	while (k < len && pop3_is_alpha(line[k]))
		k++;
	if (k == 0 || k >= sizeof(cmd_r->name) || (k < len && line[k] != ' ')) {
		*error_r = "Invalid command";
		return -1;
	}
	for (size_t i = 0; i < k; i++)
		cmd_r->name[i] = pop3_upper(line[i]);
	cmd_r->name[k] = '\0';
	char *end = line + len;
	char *rest = k < len ? line + k + 1 : end;
	*end = '\0';
	if (pop3_is_whole_line(cmd_r->name)) {
		cmd_r->rest = rest;
		if (*rest != '\0')
			cmd_r->argv[cmd_r->argc++] = rest;
		return 0;
	}
	if (pop3_split_args(rest, end, cmd_r, error_r) < 0)
		return -1;
	cmd_r->rest = cmd_r->argc > 0 ? cmd_r->argv[0] : end;
	return 0;
}

void pop3_stuff_init(struct pop3_stuff *st, bool limit, uint64_t body_lines)
{
	memset(st, 0, sizeof(*st));
	st->line_start = true;
	st->limit = limit;
	st->body_lines_left = body_lines;
}

/* A line ended: follows the header/body boundary and the TOP line count. */
static void pop3_stuff_line_end(struct pop3_stuff *st, bool had_cr)
{
	bool empty = st->line_bytes == 0 || (st->line_bytes == 1 && had_cr);
	st->line_bytes = 0;
	if (!st->in_body) {
		if (!empty)
			return;
		st->in_body = true;
	} else if (st->limit) {
		st->body_lines_left--;
	}
	if (st->limit && st->in_body && st->body_lines_left == 0)
		st->done = true;
}

size_t pop3_stuff_chunk(struct pop3_stuff *st, const char *in, size_t len, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < len && !st->done; i++) {
		char c = in[i];
		bool had_cr = st->last_cr;
		if (c == '\n') {
			if (!had_cr)
				out[o++] = '\r';
			out[o++] = '\n';
			st->last_cr = false;
			st->line_start = true;
			pop3_stuff_line_end(st, had_cr);
			continue;
		}
		if (st->line_start && c == '.')
			out[o++] = '.';
		out[o++] = c;
		st->line_start = false;
		st->last_cr = c == '\r';
		if (st->line_bytes < 2)
			st->line_bytes++;
	}
	return o;
}

size_t pop3_stuff_finish(struct pop3_stuff *st, char *out)
{
	if (st->done || st->line_start)
		return 0;
	size_t o = 0;
	/* A bare CR is data everywhere, also at the very end: the last line
	 * gets a whole CRLF, as LIST counted it. */
	out[o++] = '\r';
	out[o++] = '\n';
	st->line_start = true;
	st->last_cr = false;
	return o;
}

bool pop3_is_http_request(const char *line, size_t len)
{
	static const char *const methods[] = {
		"GET ", "POST ", "HEAD ", "PUT ", "OPTIONS ", "CONNECT ",
		"DELETE ", "PATCH ", "TRACE ",
	};
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		size_t n = strlen(methods[i]);
		if (len >= n && memcmp(line, methods[i], n) == 0)
			return true;
	}
	return false;
}

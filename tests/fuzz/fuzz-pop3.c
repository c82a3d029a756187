/* libFuzzer target for the POP3 server's pure parts: every line of the input
 * goes through pop3_parse_command (as the session would see it), and the
 * whole input through the RETR/TOP transformation, whose output must not
 * depend on where the input is cut and must be well-formed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/pop3-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check_command(const struct pop3_command *cmd, const char *line, size_t len)
{
	size_t n = strlen(cmd->name);
	if (n == 0 || n > 15 || cmd->argc > POP3_MAX_ARGS || cmd->rest == NULL)
		abort();
	for (size_t i = 0; i < cmd->argc; i++) {
		if (cmd->argv[i] < line || cmd->argv[i] > line + len)
			abort();
		if (strcmp(cmd->name, "PASS") != 0 && strlen(cmd->argv[i]) > POP3_MAX_ARG_LEN)
			abort();
	}
}

static void fuzz_lines(const uint8_t *data, size_t size)
{
	size_t start = 0;
	while (start < size) {
		const uint8_t *nl = memchr(data + start, '\n', size - start);
		size_t end = nl != NULL ? (size_t)(nl - data) : size;
		size_t len = end - start;
		if (len > 0 && data[start + len - 1] == '\r')
			len--;
		char *line = malloc(len + 1);
		memcpy(line, data + start, len);
		line[len] = '\0';
		(void)pop3_is_http_request(line, len);
		struct pop3_command cmd;
		const char *error = NULL;
		if (pop3_parse_command(line, len, &cmd, &error) == 0)
			fuzz_check_command(&cmd, line, len);
		else if (error == NULL)
			abort();
		free(line);
		start = end + 1;
	}
}

/* Output must have every LF preceded by CR, end with CRLF, and have every
 * line that starts with '.' stuffed (so no line is a lone "."). */
static void fuzz_check_crlf(const char *out, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (out[i] == '\n' && (i == 0 || out[i - 1] != '\r'))
			abort();
		bool line_start = i == 0 || out[i - 1] == '\n';
		if (line_start && out[i] == '.' && (i + 1 >= len || out[i + 1] != '.'))
			abort();
	}
	if (len > 0 && (len < 2 || out[len - 2] != '\r' || out[len - 1] != '\n'))
		abort();
}

static size_t fuzz_stuff(const uint8_t *data, size_t size, size_t cut, bool top,
			 uint64_t lines, char *out)
{
	struct pop3_stuff st;
	pop3_stuff_init(&st, top, lines);
	size_t n = pop3_stuff_chunk(&st, (const char *)data, cut, out);
	n += pop3_stuff_chunk(&st, (const char *)data + cut, size - cut, out + n);
	n += pop3_stuff_finish(&st, out + n);
	return n;
}

static void fuzz_transform(const uint8_t *data, size_t size)
{
	if (size < 2)
		return;
	bool top = data[0] & 1;
	uint64_t lines = data[0] >> 1;
	size_t cut = data[1] % (size - 1);
	data += 2;
	size -= 2;
	char *whole = malloc(2 * size + 2);
	char *split = malloc(2 * size + 2);
	size_t n1 = fuzz_stuff(data, size, 0, top, lines, whole);
	size_t n2 = fuzz_stuff(data, size, cut <= size ? cut : size, top, lines, split);
	if (n1 != n2 || memcmp(whole, split, n1) != 0 || n1 > 2 * size + 2)
		abort();
	fuzz_check_crlf(whole, n1);
	free(whole);
	free(split);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_lines(data, size);
	fuzz_transform(data, size);
	return 0;
}

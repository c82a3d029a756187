/* libFuzzer target for the SMTP server's parsers: every line of the input
 * goes through smtp_parse_command, and MAIL/RCPT arguments through the
 * path and parameter parsers as the session would call them; the whole
 * input goes through the DATA reader, whose result must not depend on
 * where the input is cut, and whose output must never hold a line that
 * could end the data or a bare CR or LF. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_path_args(char *arg, bool mail)
{
	const char *p = arg;
	struct smtp_path path;
	const char *reply = NULL;
	size_t skip = mail ? 5 : 3;
	if (strlen(arg) < skip)
		return;
	p += skip;
	if (smtp_parse_path(&p, mail, &path, &reply) < 0) {
		if (reply == NULL)
			abort();
		return;
	}
	if (strlen(path.address) > SMTP_MAX_PATH || strlen(path.local) > SMTP_MAX_LOCAL)
		abort();
	char *params = strdup(p);
	if (mail) {
		struct smtp_mail_params mp;
		if (smtp_parse_mail_params(params, &mp, &reply) < 0 && reply == NULL)
			abort();
	} else {
		struct smtp_rcpt_params rp;
		if (smtp_parse_rcpt_params(params, &rp, &reply) < 0 && reply == NULL)
			abort();
	}
	free(params);
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
		struct smtp_command cmd;
		const char *reply = NULL;
		if (smtp_parse_command(line, len, &cmd, &reply) == 0) {
			if (strcmp(cmd.verb, "MAIL") == 0)
				fuzz_path_args(cmd.arg, true);
			else if (strcmp(cmd.verb, "RCPT") == 0)
				fuzz_path_args(cmd.arg, false);
		} else if (reply == NULL) {
			abort();
		}
		free(line);
		start = end + 1;
	}
}

/* The stored message: CRLF line ends only, and no line is "." alone. */
static void fuzz_check_output(const char *out, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (out[i] == '\n' && (i == 0 || out[i - 1] != '\r'))
			abort();
		if (out[i] == '\r' && i + 1 < len && out[i + 1] != '\n')
			abort();
	}
}

struct data_run {
	struct smtp_data d;
	size_t used;
	char *out;
	size_t out_len;
};

static void fuzz_data_run(struct data_run *run, const uint8_t *data, size_t size, size_t step)
{
	smtp_data_init(&run->d, 1000);
	run->out = malloc(size + 2);
	run->used = 0;
	run->out_len = 0;
	while (run->used < size && !smtp_data_done(&run->d)) {
		size_t n = size - run->used < step ? size - run->used : step;
		size_t got;
		run->used += smtp_data_feed(&run->d, (const char *)data + run->used, n,
					    run->out + run->out_len, &got);
		run->out_len += got;
	}
}

static void fuzz_data(const uint8_t *data, size_t size)
{
	struct data_run whole, bytes;
	fuzz_data_run(&whole, data, size, size > 0 ? size : 1);
	fuzz_data_run(&bytes, data, size, 1);
	if (whole.used != bytes.used || whole.out_len != bytes.out_len ||
	    memcmp(whole.out, bytes.out, whole.out_len) != 0 ||
	    whole.d.state != bytes.d.state || whole.d.bare_cr != bytes.d.bare_cr ||
	    whole.d.bare_lf != bytes.d.bare_lf || whole.d.too_big != bytes.d.too_big)
		abort();
	if (whole.out_len > 1000 + 1)
		abort();
	if (!whole.d.bare_cr && !whole.d.bare_lf && smtp_data_done(&whole.d))
		fuzz_check_output(whole.out, whole.out_len);
	/* Done means the consumed input ends with CR LF . CR LF (or is
	 * ". CR LF" at the very start). */
	if (smtp_data_done(&whole.d) &&
	    !(whole.used >= 5 && memcmp(data + whole.used - 5, "\r\n.\r\n", 5) == 0) &&
	    !(whole.used == 3 && memcmp(data, ".\r\n", 3) == 0))
		abort();
	free(whole.out);
	free(bytes.out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_lines(data, size);
	fuzz_data(data, size);
	return 0;
}

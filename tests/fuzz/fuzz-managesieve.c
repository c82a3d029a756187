/* libFuzzer target for the ManageSieve command parser: the input is fed
 * whole and then in pieces whose sizes come from its first byte; both must
 * give the same commands and errors, every argument must respect the
 * limits, and every string written back must parse to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "managesieve/managesieve-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct managesieve_parser_limits fuzz_limits = { 512, 256 };

/* A string written by the server must read back as one argument. */
static void fuzz_round_trip(const struct managesieve_arg *arg)
{
	struct buf out = BUF_INIT(0);
	buf_append_str(&out, "X ");
	managesieve_write_string(&out, arg->str, arg->len);
	buf_append_str(&out, "\r\n");
	/* the server writes {n}; the parser reads it as it reads {n+} */
	struct managesieve_parser_limits limits = { out.len + 1, out.len + 1 };
	struct managesieve_parser *parser = managesieve_parser_create(&limits);
	size_t used;
	unsigned int count;
	if (managesieve_parser_feed(parser, out.data, out.len, &used) != MANAGESIEVE_PARSE_DONE)
		abort();
	const struct managesieve_arg *args = managesieve_parser_args(parser, &count);
	if (count != 2 || args[1].len != arg->len || memcmp(args[1].str, arg->str, arg->len) != 0)
		abort();
	managesieve_parser_destroy(&parser);
	buf_free(&out);
}

static void fuzz_record(struct buf *log, struct managesieve_parser *parser,
			enum managesieve_parse_result res)
{
	if (res == MANAGESIEVE_PARSE_ERROR) {
		buf_printf(log, "E%s|", managesieve_parser_error(parser)->text);
		return;
	}
	unsigned int count;
	const struct managesieve_arg *args = managesieve_parser_args(parser, &count);
	if (count == 0 || count > MANAGESIEVE_MAX_ARGS)
		abort();
	for (unsigned int i = 0; i < count; i++) {
		if (args[i].str[args[i].len] != '\0' ||
		    (args[i].type == MANAGESIEVE_ARG_LITERAL && args[i].len > fuzz_limits.max_literal) ||
		    (args[i].type != MANAGESIEVE_ARG_LITERAL && args[i].len > fuzz_limits.max_line))
			abort();
		buf_printf(log, "%d:%zu:", (int)args[i].type, args[i].len);
		buf_append(log, args[i].str, args[i].len);
		fuzz_round_trip(&args[i]);
	}
	buf_append_char(log, '|');
}

static void fuzz_parse(const uint8_t *data, size_t size, size_t step, struct buf *log)
{
	struct managesieve_parser *parser = managesieve_parser_create(&fuzz_limits);
	size_t pos = 0;
	while (pos < size) {
		size_t chunk = size - pos < step ? size - pos : step;
		size_t used = 0;
		enum managesieve_parse_result res =
			managesieve_parser_feed(parser, data + pos, chunk, &used);
		if (used == 0 || used > chunk)
			abort();
		pos += used;
		if (res != MANAGESIEVE_PARSE_NEED_MORE)
			fuzz_record(log, parser, res);
	}
	managesieve_parser_destroy(&parser);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t step = (size_t)data[0] % 7 + 1;
	struct buf whole = BUF_INIT(0), pieces = BUF_INIT(0);
	fuzz_parse(data + 1, size - 1, size, &whole);
	fuzz_parse(data + 1, size - 1, step, &pieces);
	if (whole.len != pieces.len || (whole.len > 0 && memcmp(whole.data, pieces.data, whole.len) != 0))
		abort();
	buf_free(&whole);
	buf_free(&pieces);
	return 0;
}

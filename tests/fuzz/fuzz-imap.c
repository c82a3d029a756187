/* libFuzzer target for the IMAP command parser. The first bytes choose the
 * session flags, the limits and how literals are answered; the rest is a
 * client's byte stream, parsed twice: in one piece and in chunks whose
 * sizes come from the input. Both runs must produce the same transcript.
 * Every argument also goes through the sequence set parser and the
 * modified UTF-7 codec, whose round trips must be exact. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap-parser.h"
#include "imap/imap-seqset.h"
#include "imap/imap-utf7.h"
#include "lib/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct imap_parser_limits fuzz_limits[] = {
	{ 64, 32, 3, 8 },
	{ 512, 4096, 8, 64 },
	{ 8192, 1 << 20, 32, 1000 },
	{ 1, 0, 0, 0 },
};

struct fuzz_run {
	const struct imap_parser_limits *limits;
	unsigned int flags;
	uint8_t literal_seed;
	unsigned int literals;
	uint64_t streamed;	/* bytes of the current streamed literal */
	struct buf transcript;
};

static void fuzz_check_utf7(const char *str)
{
	struct buf dec = BUF_INIT(0), enc = BUF_INIT(0);
	if (imap_utf7_to_utf8(str, &dec) == 0) {
		/* A name that decodes is in its one canonical form. */
		if (imap_utf8_to_utf7(buf_str(&dec), &enc) < 0 || strcmp(buf_str(&enc), str) != 0)
			abort();
	}
	buf_reset(&dec);
	buf_reset(&enc);
	if (imap_utf8_is_valid(str, strlen(str))) {
		if (imap_utf8_to_utf7(str, &enc) < 0 || imap_utf7_to_utf8(buf_str(&enc), &dec) < 0 ||
		    strcmp(buf_str(&dec), str) != 0)
			abort();
	}
	buf_free(&dec);
	buf_free(&enc);
}

static void fuzz_check_seqset(const char *str)
{
	struct imap_seqset set;
	const char *error;
	if (imap_seqset_parse(&set, str, &error) == 0) {
		imap_seqset_resolve(&set, 1000);
		for (unsigned int i = 1; i < set.count; i++) {
			if (set.ranges[i].first <= set.ranges[i - 1].last + 1ull)
				abort();
		}
		struct imap_seqset_iter iter;
		uint32_t n, k = 0;
		imap_seqset_iter_init(&iter);
		while (k < 100 && imap_seqset_iter_next(&set, &iter, &n)) {
			if (!imap_seqset_contains(&set, n))
				abort();
			k++;
		}
	} else if (error == NULL) {
		abort();
	}
	imap_seqset_free(&set);
}

static void fuzz_check_args(const struct imap_arg *args, unsigned int count, unsigned int depth)
{
	for (unsigned int i = 0; i < count; i++) {
		const struct imap_arg *arg = &args[i];
		if (arg->type == IMAP_ARG_LIST) {
			fuzz_check_args(arg->list->args, arg->list->count, depth + 1);
			continue;
		}
		if (arg->str == NULL)
			continue;
		if (arg->type == IMAP_ARG_ATOM)
			fuzz_check_seqset(arg->str);
		if (strlen(arg->str) == arg->len)
			fuzz_check_utf7(arg->str);
	}
}

static unsigned int fuzz_count_args(const struct imap_arg *args, unsigned int count)
{
	unsigned int n = count;
	for (unsigned int i = 0; i < count; i++) {
		if (args[i].type == IMAP_ARG_LIST)
			n += fuzz_count_args(args[i].list->args, args[i].list->count);
	}
	return n;
}

static void fuzz_done(struct fuzz_run *run, struct imap_parser *p)
{
	const struct imap_command *cmd = imap_parser_command(p);
	if (cmd->line != NULL) {
		buf_append_str(&run->transcript, "LINE ");
		buf_append(&run->transcript, cmd->line, cmd->line_len);
	} else {
		if (cmd->tag == NULL || cmd->name == NULL)
			abort();
		unsigned int max_args = run->limits->max_args;
		if (fuzz_count_args(cmd->args.args, cmd->args.count) > max_args)
			abort();
		buf_printf(&run->transcript, "%s %s ", cmd->tag, cmd->name);
		if (imap_write_args(&run->transcript, cmd->args.args, cmd->args.count) < 0)
			buf_append_str(&run->transcript, "<unwritable>");
		fuzz_check_args(cmd->args.args, cmd->args.count, 0);
		if (strcmp(cmd->name, "IDLE") == 0 || strcmp(cmd->name, "AUTHENTICATE") == 0)
			imap_parser_read_line(p);
	}
	buf_append_char(&run->transcript, '\n');
}

static void fuzz_error(struct fuzz_run *run, struct imap_parser *p)
{
	const struct imap_parser_error *err = imap_parser_error(p);
	if (err->text == NULL)
		abort();
	buf_printf(&run->transcript, "BAD %s\n", err->text);
}

static void fuzz_literal(struct fuzz_run *run, struct imap_parser *p)
{
	const struct imap_literal_info *lit = imap_parser_literal(p);
	if (lit->size > run->limits->max_literal_size)
		abort();
	unsigned int choice = (run->literal_seed >> ((run->literals++ % 4) * 2)) & 3;
	buf_printf(&run->transcript, "LIT %llu %u\n", (unsigned long long)lit->size, choice);
	run->streamed = 0;
	int ret = 0;
	if (choice == 0 || choice == 3)
		ret = imap_parser_literal_inline(p);
	else if (choice == 1)
		ret = imap_parser_literal_stream(p);
	else
		imap_parser_literal_refuse(p);
	if (ret < 0)
		fuzz_error(run, p);
}

/* Chunk sizes: 1..16 bytes from a small generator seeded by the input. */
static size_t fuzz_chunk(uint32_t *state, size_t left)
{
	*state = *state * 1103515245u + 12345u;
	size_t n = 1 + ((*state >> 16) % 16);
	return n < left ? n : left;
}

static char *fuzz_parse(struct fuzz_run *run, const uint8_t *data, size_t size, uint32_t seed)
{
	struct imap_parser *p = imap_parser_create(run->limits, run->flags);
	buf_init(&run->transcript, 0);
	run->literals = 0;
	size_t pos = 0;
	while (pos < size) {
		size_t n = seed == 0 ? size - pos : fuzz_chunk(&seed, size - pos), used = 0;
		enum imap_parse_result res = imap_parser_feed(p, data + pos, n, &used);
		if (used == 0 || used > n)
			abort();
		if (res == IMAP_PARSE_LITERAL_DATA) {
			run->streamed += used;
			if (run->streamed > imap_parser_literal(p)->size)
				abort();
		} else if (res == IMAP_PARSE_NEED_MORE && used != n) {
			abort();
		}
		pos += used;
		if (res == IMAP_PARSE_DONE)
			fuzz_done(run, p);
		else if (res == IMAP_PARSE_ERROR)
			fuzz_error(run, p);
		else if (res == IMAP_PARSE_LITERAL)
			fuzz_literal(run, p);
	}
	imap_parser_destroy(&p);
	return buf_steal(&run->transcript);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	struct fuzz_run run;
	memset(&run, 0, sizeof(run));
	run.flags = data[0] & (IMAP_PARSER_FLAG_UTF8 | IMAP_PARSER_FLAG_LITERAL_MINUS);
	run.limits = &fuzz_limits[data[1] % 4];
	run.literal_seed = data[3];
	uint32_t seed = data[2] | 0x100u;
	data += 4;
	size -= 4;
	char *whole = fuzz_parse(&run, data, size, 0);
	char *chunked = fuzz_parse(&run, data, size, seed);
	if (strcmp(whole, chunked) != 0)
		abort();
	free(whole);
	free(chunked);
	return 0;
}

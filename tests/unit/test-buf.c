#include "lib/buf.h"
#include "lib/strnum.h"
#include "lib/log.h"
#include "test.h"

#include <stdint.h>
#include <stdlib.h>

static void test_buf_limits(void)
{
	struct buf b = BUF_INIT(8);
	CHECK_INT(buf_append_str(&b, "abcd"), 0);
	CHECK_INT(buf_printf(&b, "%d", 1234), 0);
	CHECK_STR(buf_str(&b), "abcd1234");
	CHECK_INT(buf_append_char(&b, 'x'), -1);   /* over max: refused */
	CHECK_STR(buf_str(&b), "abcd1234");         /* and unchanged */
	buf_consume(&b, 2);
	CHECK_STR(buf_str(&b), "cd1234");
	char *s = buf_steal(&b);
	CHECK_STR(s, "cd1234");
	CHECK_INT(b.len, 0);
	free(s);
	buf_free(&b);
}

static void test_numbers(void)
{
	static const struct { const char *in; int ret; uint64_t want; } sizes[] = {
		{ "35M", 0, 35ULL << 20 }, { "1G", 0, 1ULL << 30 }, { "512k", 0, 512 << 10 },
		{ "100", 0, 100 }, { "", -1, 0 }, { "-1", -1, 0 }, { "1X", -1, 0 },
		{ "99999999999999999999", -1, 0 }, { "16777216T", -1, 0 }, { " 1", -1, 0 },
	};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t n = 0;
		CHECK_INT(str_parse_size(sizes[i].in, &n), sizes[i].ret);
		if (sizes[i].ret == 0)
			CHECK_INT(n, sizes[i].want);
	}
	static const struct { const char *in; int ret; uint64_t want; } durs[] = {
		{ "10m", 0, 600000 }, { "30d", 0, 30ULL * 86400000 }, { "2s", 0, 2000 },
		{ "500ms", 0, 500 }, { "7", 0, 7000 }, { "1y", -1, 0 }, { "m", -1, 0 },
	};
	for (size_t i = 0; i < sizeof(durs) / sizeof(durs[0]); i++) {
		uint64_t n = 0;
		CHECK_INT(str_parse_duration(durs[i].in, &n), durs[i].ret);
		if (durs[i].ret == 0)
			CHECK_INT(n, durs[i].want);
	}
	uint32_t u32;
	CHECK_INT(str_to_uint32("4294967295", &u32), 0);
	CHECK_INT(str_to_uint32("4294967296", &u32), -1);
	CHECK_INT(str_to_uint32("12a", &u32), -1);
	int b;
	CHECK_INT(str_parse_bool("Yes", &b), 0);
	CHECK_INT(b, 1);
	CHECK_INT(str_parse_bool("maybe", &b), -1);
}

static void test_escape(void)
{
	char out[16];
	CHECK_STR(log_escape("a\r\nb", 4, out, sizeof(out)), "a\\x0d\\x0ab");
	CHECK_STR(log_escape("0123456789abcdefghij", 20, out, sizeof(out)), "0123456789ab...");
}

int main(void)
{
	test_buf_limits();
	test_numbers();
	test_escape();
	return test_report();
}

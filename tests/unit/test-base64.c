#include "lib/base64.h"
#include "test.h"

#include <string.h>

/* RFC 4648 section 10 test vectors. */
static const struct {
	const char *plain;
	const char *encoded;
} vectors[] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
};

static void test_vectors(void)
{
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		struct buf enc = BUF_INIT(64), dec = BUF_INIT(64);
		CHECK_INT(base64_encode(vectors[i].plain, strlen(vectors[i].plain), &enc), 0);
		CHECK_STR(buf_str(&enc), vectors[i].encoded);
		CHECK_INT(base64_decode(vectors[i].encoded, strlen(vectors[i].encoded), &dec), 0);
		CHECK_STR(buf_str(&dec), vectors[i].plain);
		CHECK_INT(dec.len, strlen(vectors[i].plain));
		buf_free(&enc);
		buf_free(&dec);
	}
}

static void test_binary(void)
{
	static const unsigned char bytes[] = {0x00, 0xff, 0xfe, 0x00, 0x10, 0x83};
	struct buf enc = BUF_INIT(64), dec = BUF_INIT(64);
	CHECK_INT(base64_encode(bytes, sizeof(bytes), &enc), 0);
	CHECK_STR(buf_str(&enc), "AP/+ABCD");
	CHECK_INT(base64_decode(enc.data, enc.len, &dec), 0);
	CHECK_INT(dec.len, sizeof(bytes));
	CHECK(memcmp(dec.data, bytes, sizeof(bytes)) == 0);
	buf_free(&enc);
	buf_free(&dec);
}

static void test_bad_input(void)
{
	static const char *const bad[] = {
	        "Zg=",       "Zg",         "Z",        "Zm9v=", "Zg==Zg==", "Z===", "====", "Zm=v",
	        "Zm9v YmFy", "Zm9v\nYmFy", "Zm9v!mFy", "Zh==",  "Zm9=",     "Zm-v", "Zm_v", "=Zg=",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct buf dec = BUF_INIT(64);
		buf_append_str(&dec, "keep");
		CHECK_INT(base64_decode(bad[i], strlen(bad[i]), &dec), -1);
		CHECK_STR(buf_str(&dec), "keep"); /* unchanged on failure */
		buf_free(&dec);
	}
}

static void test_limits(void)
{
	struct buf out = BUF_INIT(4);
	CHECK_INT(base64_encode("foo", 3, &out), 0);
	CHECK_INT(base64_encode("f", 1, &out), -1);
	CHECK_STR(buf_str(&out), "Zm9v");
	buf_free(&out);

	struct buf dec = BUF_INIT(5);
	CHECK_INT(base64_decode("Zm9vYmFy", 8, &dec), -1);
	CHECK_INT(dec.len, 0);
	CHECK_INT(base64_decode("Zm9vYmE=", 8, &dec), 0);
	CHECK_STR(buf_str(&dec), "fooba");
	buf_free(&dec);
}

int main(void)
{
	test_vectors();
	test_binary();
	test_bad_input();
	test_limits();
	return test_report();
}

#include "lib/strnum.h"

#include <string.h>
#include <strings.h>

int strn_to_uint64(const char *s, size_t len, uint64_t *num_r)
{
	uint64_t n = 0;
	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		unsigned digit = (unsigned)(s[i] - '0');
		if (n > (UINT64_MAX - digit) / 10)
			return -1;
		n = n * 10 + digit;
	}
	*num_r = n;
	return 0;
}

int str_to_uint64(const char *s, uint64_t *num_r)
{
	return strn_to_uint64(s, strlen(s), num_r);
}

int str_to_uint32(const char *s, uint32_t *num_r)
{
	uint64_t n;
	if (str_to_uint64(s, &n) < 0 || n > UINT32_MAX)
		return -1;
	*num_r = (uint32_t)n;
	return 0;
}

static int split_number(const char *s, uint64_t *num_r, const char **unit_r)
{
	size_t digits = strspn(s, "0123456789");
	if (strn_to_uint64(s, digits, num_r) < 0)
		return -1;
	*unit_r = s + digits;
	return 0;
}

static int checked_mul(uint64_t a, uint64_t b, uint64_t *r)
{
	if (a != 0 && b > UINT64_MAX / a)
		return -1;
	*r = a * b;
	return 0;
}

int str_parse_size(const char *s, uint64_t *bytes_r)
{
	static const struct { const char *unit; uint64_t mul; } units[] = {
		{ "", 1 }, { "b", 1 }, { "k", 1024ULL }, { "kb", 1024ULL },
		{ "m", 1024ULL * 1024 }, { "mb", 1024ULL * 1024 },
		{ "g", 1024ULL * 1024 * 1024 }, { "gb", 1024ULL * 1024 * 1024 },
		{ "t", 1024ULL * 1024 * 1024 * 1024 }, { "tb", 1024ULL * 1024 * 1024 * 1024 },
	};
	uint64_t n;
	const char *unit;
	if (split_number(s, &n, &unit) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(unit, units[i].unit) == 0)
			return checked_mul(n, units[i].mul, bytes_r);
	}
	return -1;
}

int str_parse_duration(const char *s, uint64_t *msecs_r)
{
	static const struct { const char *unit; uint64_t ms; } units[] = {
		{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
		{ "h", 3600000ULL }, { "d", 86400000ULL }, { "w", 604800000ULL },
	};
	uint64_t n;
	const char *unit;
	if (split_number(s, &n, &unit) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(unit, units[i].unit) == 0)
			return checked_mul(n, units[i].ms, msecs_r);
	}
	return -1;
}

int str_parse_bool(const char *s, int *bool_r)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*bool_r = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*bool_r = 0;
			return 0;
		}
	}
	return -1;
}

int hex_digit_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

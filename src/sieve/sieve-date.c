/* The date and currentdate tests (RFC 5260): a small RFC 5322 date parser
 * (obsolete forms included), conversion between zones, and the date-parts. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lib/xmalloc.h"
#include "sieve/sieve-run.h"

struct sieve_date {
	int64_t t; /* seconds since the epoch, UTC */
	int zone;  /* minutes east of UTC, as written in the message */
};

static const char *const month_names[] = {
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
};

static const char *const day_names[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* ---- parsing ---- */

struct date_lexer {
	const char *s;
};

/* Skips blanks, commas and (nested) comments. */
static void lex_skip(struct date_lexer *lx)
{
	int depth = 0;

	for (; *lx->s != '\0'; lx->s++) {
		if (*lx->s == '(')
			depth++;
		else if (*lx->s == ')' && depth > 0)
			depth--;
		else if (depth == 0 && !isspace((unsigned char)*lx->s) && *lx->s != ',')
			break;
	}
}

static int lex_number(struct date_lexer *lx, int max_digits, int *n_r, int *digits_r)
{
	int n = 0, digits = 0;

	lex_skip(lx);
	while (isdigit((unsigned char)*lx->s) && digits < max_digits) {
		n = n * 10 + (*lx->s - '0');
		lx->s++;
		digits++;
	}
	if (digits == 0)
		return -1;
	*n_r = n;
	if (digits_r != NULL)
		*digits_r = digits;
	return 0;
}

static int lex_word(struct date_lexer *lx, char *out, size_t size)
{
	size_t n = 0;

	lex_skip(lx);
	while (isalpha((unsigned char)*lx->s) && n + 1 < size)
		out[n++] = *lx->s++;
	out[n] = '\0';
	return n > 0 ? 0 : -1;
}

struct zone_name {
	const char *name;
	int minutes;
};

static const struct zone_name zone_names[] = {
        {"UT", 0},     {"GMT", 0},    {"Z", 0},      {"EST", -300}, {"EDT", -240}, {"CST", -360},
        {"CDT", -300}, {"MST", -420}, {"MDT", -360}, {"PST", -480}, {"PDT", -420},
};

/* "+hhmm"/"-hhmm" or an obsolete name; unknown names (military zones) are
 * -0000, i.e. 0 (RFC 5322 4.3). */
static int parse_zone(const char *s, int *zone_r)
{
	if ((s[0] == '+' || s[0] == '-') && strlen(s) >= 5) {
		for (int i = 1; i <= 4; i++) {
			if (!isdigit((unsigned char)s[i]))
				return -1;
		}
		int hh = (s[1] - '0') * 10 + (s[2] - '0'), mm = (s[3] - '0') * 10 + (s[4] - '0');
		if (mm > 59)
			return -1;
		*zone_r = (s[0] == '-' ? -1 : 1) * (hh * 60 + mm);
		return 0;
	}
	for (size_t i = 0; i < sizeof(zone_names) / sizeof(zone_names[0]); i++) {
		if (strcasecmp(s, zone_names[i].name) == 0) {
			*zone_r = zone_names[i].minutes;
			return 0;
		}
	}
	*zone_r = 0;
	return isalpha((unsigned char)s[0]) ? 0 : -1;
}

static int parse_month(struct date_lexer *lx, int *month_r)
{
	char word[16];

	if (lex_word(lx, word, sizeof(word)) < 0)
		return -1;
	for (int i = 0; i < 12; i++) {
		if (strncasecmp(word, month_names[i], 3) == 0 && strlen(word) >= 3) {
			*month_r = i + 1;
			return 0;
		}
	}
	return -1;
}

static int parse_time(struct date_lexer *lx, int *h, int *mi, int *sec)
{
	if (lex_number(lx, 2, h, NULL) < 0 || *lx->s != ':')
		return -1;
	lx->s++;
	if (lex_number(lx, 2, mi, NULL) < 0)
		return -1;
	*sec = 0;
	if (*lx->s == ':') {
		lx->s++;
		if (lex_number(lx, 2, sec, NULL) < 0)
			return -1;
	}
	return *h < 24 && *mi < 60 && *sec <= 60 ? 0 : -1;
}

static int parse_date(const char *s, struct sieve_date *date)
{
	struct date_lexer lx = {s};
	char word[16], zone[16];
	int day, month, year, digits, h, mi, sec;

	lex_skip(&lx);
	if (isalpha((unsigned char)*lx.s) && lex_word(&lx, word, sizeof(word)) < 0)
		return -1;
	if (lex_number(&lx, 2, &day, NULL) < 0 || parse_month(&lx, &month) < 0 ||
	    lex_number(&lx, 4, &year, &digits) < 0 || parse_time(&lx, &h, &mi, &sec) < 0)
		return -1;
	/* obsolete years (RFC 5322 4.3) */
	if (digits == 2)
		year += year < 50 ? 2000 : 1900;
	else if (digits == 3)
		year += 1900;
	lex_skip(&lx);
	size_t n = strcspn(lx.s, " \t(");
	if (n == 0 || n >= sizeof(zone))
		return -1;
	memcpy(zone, lx.s, n);
	zone[n] = '\0';
	if (day < 1 || day > 31 || parse_zone(zone, &date->zone) < 0)
		return -1;
	date->t = days_from_civil(year, month, day) * 86400 + h * 3600 + mi * 60 + sec -
	          (int64_t)date->zone * 60;
	return 0;
}

/* ---- date-parts ---- */

struct broken {
	int64_t year, days;
	int month, day, hour, minute, second, zone, weekday;
};

static void break_down(int64_t t, int zone, struct broken *b)
{
	int64_t local = t + (int64_t)zone * 60;
	int64_t days = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
	int64_t secs = local - days * 86400;

	civil_from_days(days, &b->year, &b->month, &b->day);
	b->days = days;
	b->hour = (int)(secs / 3600);
	b->minute = (int)(secs / 60 % 60);
	b->second = (int)(secs % 60);
	b->zone = zone;
	b->weekday = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
}

static char *zone_str(int zone, bool colon)
{
	int a = zone < 0 ? -zone : zone;

	return xasprintf("%c%02d%s%02d", zone < 0 ? '-' : '+', a / 60, colon ? ":" : "", a % 60);
}

static char *part_iso8601(const struct broken *b)
{
	char *z = zone_str(b->zone, true);
	char *s = xasprintf("%04lld-%02d-%02dT%02d:%02d:%02d%s", (long long)b->year, b->month,
	                    b->day, b->hour, b->minute, b->second, z);
	free(z);
	return s;
}

static char *part_std11(const struct broken *b)
{
	static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	char *z = zone_str(b->zone, false);
	char *s =
	        xasprintf("%s, %02d %s %04lld %02d:%02d:%02d %s", day_names[b->weekday], b->day,
	                  mon[b->month - 1], (long long)b->year, b->hour, b->minute, b->second, z);
	free(z);
	return s;
}

static char *date_part(const struct broken *b, const char *part)
{
	if (strcasecmp(part, "year") == 0)
		return xasprintf("%04lld", (long long)b->year);
	if (strcasecmp(part, "month") == 0)
		return xasprintf("%02d", b->month);
	if (strcasecmp(part, "day") == 0)
		return xasprintf("%02d", b->day);
	if (strcasecmp(part, "date") == 0)
		return xasprintf("%04lld-%02d-%02d", (long long)b->year, b->month, b->day);
	if (strcasecmp(part, "julian") == 0) /* Modified Julian Day (RFC 5260 4.2) */
		return xasprintf("%lld", (long long)(b->days - days_from_civil(1858, 11, 17)));
	if (strcasecmp(part, "hour") == 0)
		return xasprintf("%02d", b->hour);
	if (strcasecmp(part, "minute") == 0)
		return xasprintf("%02d", b->minute);
	if (strcasecmp(part, "second") == 0)
		return xasprintf("%02d", b->second);
	if (strcasecmp(part, "time") == 0)
		return xasprintf("%02d:%02d:%02d", b->hour, b->minute, b->second);
	if (strcasecmp(part, "iso8601") == 0)
		return part_iso8601(b);
	if (strcasecmp(part, "std11") == 0)
		return part_std11(b);
	if (strcasecmp(part, "zone") == 0)
		return zone_str(b->zone, false);
	if (strcasecmp(part, "weekday") == 0)
		return xasprintf("%d", b->weekday);
	return NULL;
}

/* ---- the tests ---- */

static int local_zone(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL)
		return 0;
	return (int)(tm.tm_gmtoff / 60);
}

/* The zone to show a date in: :zone, :originalzone (the date's own), or
 * the server's local zone (RFC 5260 4.1). -1 on a bad :zone. */
static int target_zone(struct sieve_run *run, const struct sieve_node *node,
                       const struct sieve_date *date, int *zone_r)
{
	const struct sieve_tag *zone = sieve_node_tag(node, ":zone");

	if (zone != NULL) {
		char *z = sieve_arg_string(run, zone->value);
		int r = parse_zone(z, zone_r);
		free(z);
		if (r < 0 || *zone_r < -1439 || *zone_r > 1439)
			return sieve_run_error(run, node->line, "date: bad :zone");
		return 0;
	}
	*zone_r = sieve_node_tag(node, ":originalzone") != NULL ? date->zone : local_zone(date->t);
	return 0;
}

/* Adds the date-part of date to values; -1 on an unknown part. */
static int add_date_value(struct sieve_run *run, const struct sieve_node *node,
                          const struct sieve_date *date, const char *part,
                          struct sieve_strlist *values)
{
	struct broken b;
	int zone;

	if (target_zone(run, node, date, &zone) < 0)
		return -1;
	break_down(date->t, zone, &b);
	char *v = date_part(&b, part);
	if (v == NULL)
		return sieve_run_error(run, node->line, "unknown date-part \"%s\"", part);
	sieve_strlist_push(values, v);
	return 0;
}

static int match_dates(struct sieve_run *run, const struct sieve_node *node,
                       struct sieve_strlist *values, const struct sieve_arg *keys)
{
	struct sieve_matcher m;

	if (sieve_matcher_init(run, node, keys, &m) < 0) {
		sieve_strlist_free(values);
		return -1;
	}
	int ret = sieve_match_values(run, &m, values);
	sieve_matcher_free(&m);
	sieve_strlist_free(values);
	return ret;
}

/* Received: the date follows the last ';' (RFC 5260 4.1) */
static const char *date_text(const char *name, const char *value)
{
	const char *semi = strrchr(value, ';');

	return strcasecmp(name, "received") == 0 && semi != NULL ? semi + 1 : value;
}

int sieve_test_date(struct sieve_run *run, const struct sieve_node *node)
{
	if (node->arg_count < 3)
		return sieve_run_error(run, node->line, "date needs three arguments");
	char *name = sieve_arg_string(run, &node->args[0]);
	char *part = sieve_arg_string(run, &node->args[1]);
	struct sieve_strlist raw = {NULL, 0}, values = {NULL, 0};
	size_t hlen;
	const char *header = sieve_run_header(run, &hlen);
	int ret = 0;

	sieve_header_values(header, hlen, name, &raw);
	sieve_apply_index(node, &raw);
	for (size_t i = 0; i < raw.count && ret == 0; i++) {
		struct sieve_date date;
		if (parse_date(date_text(name, raw.items[i]), &date) == 0)
			ret = add_date_value(run, node, &date, part, &values);
	}
	sieve_strlist_free(&raw);
	free(name);
	free(part);
	if (ret < 0) {
		sieve_strlist_free(&values);
		return -1;
	}
	return match_dates(run, node, &values, &node->args[2]);
}

int sieve_test_currentdate(struct sieve_run *run, const struct sieve_node *node)
{
	if (node->arg_count < 2)
		return sieve_run_error(run, node->line, "currentdate needs two arguments");
	struct sieve_date now = {(int64_t)run->msg->now, local_zone((int64_t)run->msg->now)};
	char *part = sieve_arg_string(run, &node->args[0]);
	struct sieve_strlist values = {NULL, 0};
	int ret = add_date_value(run, node, &now, part, &values);

	free(part);
	if (ret < 0) {
		sieve_strlist_free(&values);
		return -1;
	}
	return match_dates(run, node, &values, &node->args[1]);
}

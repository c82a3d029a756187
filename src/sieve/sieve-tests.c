/* Tests: address, header, envelope, exists, size, true, false, allof,
 * anyof, not (RFC 5228 5), string (RFC 5229), hasflag (RFC 5232),
 * mailboxexists (RFC 5490), duplicate (RFC 7352), :index/:last (RFC 5260
 * 6), and the table that dispatches every test by name. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "mime/mime.h"
#include "sieve/sieve-run.h"

#define DUPLICATE_DEFAULT_SECONDS (7 * 86400)
#define MAX_ADDRESSES 1000

/* ---- the header block ---- */

static size_t line_end(const char *h, size_t len, size_t pos)
{
	const char *nl = memchr(h + pos, '\n', len - pos);

	return nl != NULL ? (size_t)(nl - h) + 1 : len;
}

/* The unfolded value of the field starting at pos (after "Name:"), CR and
 * LF removed, outer blanks trimmed; *next_r is where the next field starts. */
static char *field_value(const char *h, size_t len, size_t start, size_t *next_r)
{
	struct buf v = BUF_INIT(0);
	size_t pos = start;

	(void)buf_append_str(&v, "");
	do {
		size_t end = line_end(h, len, pos);
		for (size_t i = pos; i < end; i++) {
			if (h[i] != '\r' && h[i] != '\n')
				(void)buf_append_char(&v, h[i]);
		}
		pos = end;
	} while (pos < len && (h[pos] == ' ' || h[pos] == '\t'));
	*next_r = pos;
	char *s = buf_steal(&v), *p = s;
	while (*p == ' ' || *p == '\t')
		p++;
	size_t n = strlen(p);
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	memmove(s, p, n);
	s[n] = '\0';
	return s;
}

void sieve_header_values(const char *header, size_t len, const char *name,
                         struct sieve_strlist *values)
{
	size_t pos = 0, name_len = strlen(name);

	while (pos < len && header[pos] != '\r' && header[pos] != '\n') {
		const char *colon = memchr(header + pos, ':', line_end(header, len, pos) - pos);
		size_t next;

		if (colon == NULL || header[pos] == ' ' || header[pos] == '\t') {
			pos = line_end(header, len, pos);
			continue;
		}
		size_t flen = (size_t)(colon - header) - pos;
		while (flen > 0 &&
		       (header[pos + flen - 1] == ' ' || header[pos + flen - 1] == '\t'))
			flen--;
		bool want = flen == name_len && strncasecmp(header + pos, name, name_len) == 0;
		char *value = field_value(header, len, (size_t)(colon - header) + 1, &next);
		if (want) {
			sieve_strlist_push(values, value);
		} else {
			free(value);
		}
		pos = next;
	}
}

void sieve_apply_index(const struct sieve_node *node, struct sieve_strlist *values)
{
	const struct sieve_tag *index = sieve_node_tag(node, ":index");

	if (index == NULL || index->value == NULL)
		return;
	uint64_t n = index->value->number;
	bool last = sieve_node_tag(node, ":last") != NULL;
	if (n == 0 || n > values->count) {
		sieve_strlist_free(values);
		return;
	}
	size_t keep = last ? values->count - (size_t)n : (size_t)n - 1;
	char *chosen = values->items[keep];
	values->items[keep] = NULL;
	sieve_strlist_free(values);
	sieve_strlist_push(values, chosen);
}

/* Runs a matcher over values built by collect, with keys from the last
 * positional argument. */
static int match_test(struct sieve_run *run, const struct sieve_node *node,
                      struct sieve_strlist *values)
{
	struct sieve_matcher m;
	int ret = -1;

	if (node->arg_count > 0 &&
	    sieve_matcher_init(run, node, &node->args[node->arg_count - 1], &m) == 0) {
		ret = sieve_match_values(run, &m, values);
		sieve_matcher_free(&m);
	}
	sieve_strlist_free(values);
	return ret;
}

/* ---- header ---- */

static int test_header(struct sieve_run *run, const struct sieve_node *node)
{
	struct sieve_strlist names, values = {NULL, 0};
	size_t hlen;
	const char *header = sieve_run_header(run, &hlen);

	sieve_strlist_from_arg(run, &node->args[0], &names);
	for (size_t i = 0; i < names.count; i++) {
		struct sieve_strlist raw = {NULL, 0};

		sieve_header_values(header, hlen, names.items[i], &raw);
		sieve_apply_index(node, &raw);
		for (size_t j = 0; j < raw.count; j++) {
			char *dec = mime_header_decode(raw.items[j], strlen(raw.items[j]));
			sieve_strlist_push(&values, dec);
		}
		sieve_strlist_free(&raw);
	}
	sieve_strlist_free(&names);
	return match_test(run, node, &values);
}

/* ---- address parts (RFC 5228 2.7.4, RFC 5233 subaddress) ---- */

static const char *const address_parts[] = {":all", ":localpart", ":domain", ":user", ":detail"};

static int address_part(const struct sieve_node *node)
{
	for (size_t i = 0; i < sizeof(address_parts) / sizeof(address_parts[0]); i++) {
		if (sieve_node_tag(node, address_parts[i]) != NULL)
			return (int)i;
	}
	return 0;
}

/* Appends the part of local@domain; :detail is absent (nothing added)
 * when the local part has no '+'. */
static void add_address_part(struct sieve_strlist *values, int part, const char *local,
                             const char *domain)
{
	const char *plus = strchr(local, '+');

	switch (part) {
	case 0: {
		char *all = domain[0] != '\0' ? xasprintf("%s@%s", local, domain) : xstrdup(local);
		sieve_strlist_add(values, all, strlen(all));
		free(all);
		break;
	}
	case 1:
		sieve_strlist_add(values, local, strlen(local));
		break;
	case 2:
		sieve_strlist_add(values, domain, strlen(domain));
		break;
	case 3:
		sieve_strlist_add(values, local,
		                  plus != NULL ? (size_t)(plus - local) : strlen(local));
		break;
	default:
		if (plus != NULL)
			sieve_strlist_add(values, plus + 1, strlen(plus + 1));
		break;
	}
}

static void address_values(const char *raw, int part, struct sieve_strlist *values)
{
	struct mime_address *list = mime_address_parse(raw, strlen(raw), MAX_ADDRESSES);

	for (struct mime_address *a = list; a != NULL; a = a->next) {
		if (a->host == NULL)
			continue; /* group start or end */
		add_address_part(values, part, a->mailbox != NULL ? a->mailbox : "", a->host);
	}
	mime_address_free(&list);
}

static int test_address(struct sieve_run *run, const struct sieve_node *node)
{
	struct sieve_strlist names, values = {NULL, 0};
	size_t hlen;
	const char *header = sieve_run_header(run, &hlen);
	int part = address_part(node);

	sieve_strlist_from_arg(run, &node->args[0], &names);
	for (size_t i = 0; i < names.count; i++) {
		struct sieve_strlist raw = {NULL, 0};

		sieve_header_values(header, hlen, names.items[i], &raw);
		sieve_apply_index(node, &raw);
		for (size_t j = 0; j < raw.count; j++)
			address_values(raw.items[j], part, &values);
		sieve_strlist_free(&raw);
	}
	sieve_strlist_free(&names);
	return match_test(run, node, &values);
}

static void envelope_value(const char *addr, int part, struct sieve_strlist *values)
{
	const char *at = strrchr(addr, '@');

	/* RFC 5228 5.4: the null reverse path is "" whatever the part */
	if (addr[0] == '\0') {
		sieve_strlist_add(values, "", 0);
		return;
	}
	char *local = at != NULL ? xstrndup(addr, (size_t)(at - addr)) : xstrdup(addr);
	add_address_part(values, part, local, at != NULL ? at + 1 : "");
	free(local);
}

static int test_envelope(struct sieve_run *run, const struct sieve_node *node)
{
	struct sieve_strlist names, values = {NULL, 0};
	int part = address_part(node);

	sieve_strlist_from_arg(run, &node->args[0], &names);
	for (size_t i = 0; i < names.count; i++) {
		const char *addr = NULL;

		if (strcasecmp(names.items[i], "from") == 0)
			addr = run->msg->envelope_from;
		else if (strcasecmp(names.items[i], "to") == 0)
			addr = run->msg->envelope_to;
		if (addr != NULL)
			envelope_value(addr, part, &values);
	}
	sieve_strlist_free(&names);
	return match_test(run, node, &values);
}

/* ---- exists, size, true, false, allof, anyof, not ---- */

static int test_exists(struct sieve_run *run, const struct sieve_node *node)
{
	struct sieve_strlist names;
	size_t hlen;
	const char *header = sieve_run_header(run, &hlen);
	int ret = 1;

	sieve_strlist_from_arg(run, &node->args[0], &names);
	for (size_t i = 0; i < names.count && ret == 1; i++) {
		struct sieve_strlist raw = {NULL, 0};
		sieve_header_values(header, hlen, names.items[i], &raw);
		ret = raw.count > 0;
		sieve_strlist_free(&raw);
	}
	sieve_strlist_free(&names);
	return ret;
}

static int test_size(struct sieve_run *run, const struct sieve_node *node)
{
	size_t hlen;
	(void)sieve_run_header(run, &hlen);
	uint64_t size = hlen + (run->msg->len - run->result->body_offset);
	uint64_t limit = node->arg_count > 0 ? node->args[0].number : 0;

	if (sieve_node_tag(node, ":over") != NULL)
		return size > limit;
	return size < limit;
}

static int test_true(struct sieve_run *run, const struct sieve_node *node)
{
	(void)run;
	(void)node;
	return 1;
}

static int test_false(struct sieve_run *run, const struct sieve_node *node)
{
	(void)run;
	(void)node;
	return 0;
}

/* allof stops at the first false, anyof at the first true (RFC 5228 5.2) */
static int test_list(struct sieve_run *run, const struct sieve_node *node, int stop_on)
{
	for (size_t i = 0; i < node->test_count; i++) {
		int r = sieve_run_test(run, &node->tests[i]);
		if (r < 0 || r == stop_on)
			return r;
	}
	return !stop_on;
}

static int test_allof(struct sieve_run *run, const struct sieve_node *node)
{
	return test_list(run, node, 0);
}

static int test_anyof(struct sieve_run *run, const struct sieve_node *node)
{
	return test_list(run, node, 1);
}

static int test_not(struct sieve_run *run, const struct sieve_node *node)
{
	if (node->test_count == 0)
		return sieve_run_error(run, node->line, "not without a test");
	int r = sieve_run_test(run, &node->tests[0]);
	return r < 0 ? -1 : !r;
}

/* ---- string, hasflag, mailboxexists, duplicate ---- */

static int test_string(struct sieve_run *run, const struct sieve_node *node)
{
	struct sieve_strlist source, values = {NULL, 0};
	bool count = sieve_node_tag(node, ":count") != NULL;

	sieve_strlist_from_arg(run, &node->args[0], &source);
	for (size_t i = 0; i < source.count; i++) {
		/* RFC 5229 5: :count does not count empty strings */
		if (!count || source.items[i][0] != '\0')
			sieve_strlist_add(&values, source.items[i], strlen(source.items[i]));
	}
	sieve_strlist_free(&source);
	return match_test(run, node, &values);
}

static int test_hasflag(struct sieve_run *run, const struct sieve_node *node)
{
	struct sieve_strlist values = {NULL, 0};

	if (node->arg_count > 1) {
		const struct sieve_arg *vars = &node->args[0];
		for (size_t i = 0; i < vars->count; i++)
			sieve_flags_split(sieve_vars_get(run, vars->strings[i].data), &values);
	} else {
		sieve_flags_split(run->flags, &values);
	}
	return match_test(run, node, &values);
}

static int test_mailboxexists(struct sieve_run *run, const struct sieve_node *node)
{
	struct sieve_strlist names;
	const struct sieve_callbacks *cb = run->callbacks;
	int ret = 1;

	sieve_strlist_from_arg(run, &node->args[0], &names);
	for (size_t i = 0; i < names.count && ret == 1; i++)
		ret = cb != NULL && cb->mailbox_exists != NULL &&
		      cb->mailbox_exists(cb->context, names.items[i]);
	sieve_strlist_free(&names);
	return ret;
}

static void duplicate_record(struct sieve_result *res, const char *key, uint64_t seconds)
{
	for (size_t i = 0; i < res->duplicate_count; i++) {
		if (strcmp(res->duplicates[i], key) == 0) {
			res->duplicate_seconds[i] = seconds;
			return;
		}
	}
	res->duplicates = xreallocarray(res->duplicates, res->duplicate_count + 1, sizeof(char *));
	res->duplicate_seconds =
	        xreallocarray(res->duplicate_seconds, res->duplicate_count + 1, sizeof(uint64_t));
	res->duplicates[res->duplicate_count] = xstrdup(key);
	res->duplicate_seconds[res->duplicate_count++] = seconds;
}

/* The unique id: :uniqueid, else the :header field (Message-ID by default,
 * RFC 7352 3.1); NULL when the message has none. */
static char *duplicate_id(struct sieve_run *run, const struct sieve_node *node)
{
	const struct sieve_tag *uid = sieve_node_tag(node, ":uniqueid");
	const struct sieve_tag *hdr = sieve_node_tag(node, ":header");

	if (uid != NULL)
		return sieve_arg_string(run, uid->value);
	char *name = hdr != NULL ? sieve_arg_string(run, hdr->value) : xstrdup("message-id");
	struct sieve_strlist raw = {NULL, 0};
	size_t hlen;
	const char *header = sieve_run_header(run, &hlen);
	sieve_header_values(header, hlen, name, &raw);
	char *id = raw.count > 0 ? xstrdup(raw.items[0]) : NULL;
	sieve_strlist_free(&raw);
	free(name);
	return id;
}

static int test_duplicate(struct sieve_run *run, const struct sieve_node *node)
{
	const struct sieve_tag *secs = sieve_node_tag(node, ":seconds");
	uint64_t seconds = secs != NULL && secs->value != NULL ? secs->value->number
	                                                       : DUPLICATE_DEFAULT_SECONDS;
	char *id = duplicate_id(run, node);
	const struct sieve_callbacks *cb = run->callbacks;

	if (id == NULL)
		return 0;
	const struct sieve_tag *htag = sieve_node_tag(node, ":handle");
	char *h = htag != NULL ? sieve_arg_string(run, htag->value) : xstrdup("");
	char *key = xasprintf("%s\n%s", h, id);
	bool seen = cb != NULL && cb->duplicate_seen != NULL &&
	            cb->duplicate_seen(cb->context, key, seconds);
	/* :last refreshes the record on every delivery; without it, only an
	 * unseen id is recorded (RFC 7352 3.4) */
	if (!seen || sieve_node_tag(node, ":last") != NULL)
		duplicate_record(run->result, key, seconds);
	free(key);
	free(h);
	free(id);
	return seen;
}

/* ---- the table ---- */

struct sieve_test_entry {
	const char *name;
	sieve_test_func *func;
};

static const struct sieve_test_entry tests[] = {
        {"address", test_address},
        {"header", test_header},
        {"envelope", test_envelope},
        {"exists", test_exists},
        {"size", test_size},
        {"true", test_true},
        {"false", test_false},
        {"allof", test_allof},
        {"anyof", test_anyof},
        {"not", test_not},
        {"string", test_string},
        {"hasflag", test_hasflag},
        {"mailboxexists", test_mailboxexists},
        {"duplicate", test_duplicate},
        {"body", sieve_test_body},
        {"date", sieve_test_date},
        {"currentdate", sieve_test_currentdate},
};

sieve_test_func *sieve_tests_lookup(const char *name)
{
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (strcmp(tests[i].name, name) == 0)
			return tests[i].func;
	}
	return NULL;
}

/* Comparators (RFC 4790, RFC 5051) and match types (RFC 5228 2.7, RFC 5231
 * relational). Matching reads both strings one character at a time through
 * the comparator, which folds it; so wildcards and captures work on the
 * original text and the folding never depends on the process locale. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "sieve/sieve-run.h"

#define MAX_WILDCARDS 256
/* A big value against a long key is quadratic work: a match checks the
 * time budget every MATCH_STEPS character steps, sieve_match_values
 * every MATCH_PAIRS value/key pairs. */
#define MATCH_STEPS (1u << 16)
#define MATCH_PAIRS 256

/* Reads the character at s[*pos] (not at the NUL), advances *pos, returns
 * it folded the comparator's way. */
typedef uint32_t sieve_cmp_next(const char *s, size_t *pos);

struct sieve_comparator {
	const char *name;
	sieve_cmp_next *next; /* NULL for i;ascii-numeric */
};

static uint32_t next_octet(const char *s, size_t *pos)
{
	return (unsigned char)s[(*pos)++];
}

/* One UTF-8 code point; an invalid byte stands for itself above the
 * Unicode range so it only ever equals the same byte. */
static uint32_t utf8_decode(const char *s, size_t *pos)
{
	const unsigned char *p = (const unsigned char *)s + *pos;
	uint32_t c = p[0];
	size_t n = c >= 0xf0 && c < 0xf8 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 1;

	if (c < 0x80 || n == 1) {
		(*pos)++;
		return c < 0x80 ? c : 0x110000 + c;
	}
	c &= 0x3f >> (n - 1);
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80) {
			(*pos)++;
			return 0x110000 + p[0];
		}
		c = (c << 6) | (p[i] & 0x3f);
	}
	*pos += n;
	return c;
}

/* Pairs where the upper case letter has the even (or odd) code point. */
static uint32_t fold_pair(uint32_t c, bool upper_even)
{
	return ((c & 1) == 0) == upper_even ? c + 1 : c;
}

static uint32_t fold_latin(uint32_t c)
{
	if ((c >= 0xc0 && c <= 0xde && c != 0xd7))
		return c + 0x20;
	if (c == 0xb5)
		return 0x3bc;
	if ((c >= 0x100 && c <= 0x12f) || (c >= 0x132 && c <= 0x137) || (c >= 0x14a && c <= 0x177))
		return fold_pair(c, true);
	if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e))
		return fold_pair(c, false);
	if (c == 0x178)
		return 0xff;
	if (c == 0x17f)
		return 's';
	return c;
}

static uint32_t fold_greek(uint32_t c)
{
	static const uint32_t map[][2] = {
	        {0x386, 0x3ac}, {0x388, 0x3ad}, {0x389, 0x3ae}, {0x38a, 0x3af},
	        {0x38c, 0x3cc}, {0x38e, 0x3cd}, {0x38f, 0x3ce}, {0x3c2, 0x3c3},
	        {0x345, 0x3b9}, {0x3d0, 0x3b2}, {0x3d1, 0x3b8}, {0x3d5, 0x3c6},
	        {0x3d6, 0x3c0}, {0x3f0, 0x3ba}, {0x3f1, 0x3c1}, {0x3f5, 0x3b5},
	};

	if ((c >= 0x391 && c <= 0x3a1) || (c >= 0x3a3 && c <= 0x3ab))
		return c + 0x20;
	if (c >= 0x3d8 && c <= 0x3ef)
		return fold_pair(c, true);
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (map[i][0] == c)
			return map[i][1];
	}
	return c;
}

static uint32_t fold_cyrillic(uint32_t c)
{
	if (c >= 0x400 && c <= 0x40f)
		return c + 0x50;
	if (c >= 0x410 && c <= 0x42f)
		return c + 0x20;
	if ((c >= 0x460 && c <= 0x481) || (c >= 0x48a && c <= 0x4bf) || (c >= 0x4d0 && c <= 0x52f))
		return fold_pair(c, true);
	if (c == 0x4c0)
		return 0x4cf;
	if (c >= 0x4c1 && c <= 0x4ce)
		return fold_pair(c, false);
	return c;
}

uint32_t sieve_unicode_fold(uint32_t c)
{
	if (c < 0x80)
		return c >= 'A' && c <= 'Z' ? c + 32 : c;
	if (c < 0x180)
		return fold_latin(c);
	if (c >= 0x345 && c < 0x400)
		return fold_greek(c);
	if (c >= 0x400 && c < 0x530)
		return fold_cyrillic(c);
	if (c >= 0xff21 && c <= 0xff3a)
		return c + 0x20;
	return c;
}

/* Folds A-Z only, but reads whole UTF-8 characters so that "?" is one
 * character (RFC 5228 2.7.1); equality and order are those of the octets. */
static uint32_t next_ascii(const char *s, size_t *pos)
{
	uint32_t c = utf8_decode(s, pos);

	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static uint32_t next_unicode(const char *s, size_t *pos)
{
	return sieve_unicode_fold(utf8_decode(s, pos));
}

static const struct sieve_comparator comparators[] = {
        {"i;octet", next_octet},
        {"i;ascii-casemap", next_ascii},
        {"i;unicode-casemap", next_unicode},
        {"i;ascii-numeric", NULL},
};

/* ---- the time budget of one match ---- */

struct match_budget {
	const struct sieve_matcher *m;
	size_t steps;
};

/* False once the budget is spent. */
static bool budget_spend(struct match_budget *b, size_t steps)
{
	b->steps += steps;
	if (b->steps < MATCH_STEPS || b->m->run == NULL)
		return true;
	b->steps = 0;
	return sieve_run_check_time(b->m->run, b->m->line) == 0;
}

/* ---- :is, :contains, :value ---- */

/* Compares the folded characters of a and b: <0, 0, >0. When prefix is
 * true, only whether b is a prefix of a (0) matters. */
static int cmp_strings(sieve_cmp_next *next, const char *a, const char *b, bool prefix)
{
	size_t ia = 0, ib = 0;

	for (;;) {
		if (b[ib] == '\0')
			return a[ia] == '\0' || prefix ? 0 : 1;
		if (a[ia] == '\0')
			return -1;
		uint32_t ca = next(a, &ia), cb = next(b, &ib);
		if (ca != cb)
			return ca < cb ? -1 : 1;
	}
}

static bool match_contains(sieve_cmp_next *next, const char *value, const char *key,
                           struct match_budget *budget)
{
	size_t pos = 0, key_len = strlen(key) + 1;

	for (;;) {
		if (cmp_strings(next, value + pos, key, true) == 0)
			return true;
		if (value[pos] == '\0' || !budget_spend(budget, key_len))
			return false;
		(void)next(value, &pos);
	}
}

/* i;ascii-numeric (RFC 4790 9.1): the leading digits as a number; a string
 * without one is positive infinity. Digits compare as strings so any
 * length works. */
static int cmp_numeric(const char *a, const char *b)
{
	bool inf_a = !isdigit((unsigned char)a[0]), inf_b = !isdigit((unsigned char)b[0]);

	if (inf_a || inf_b)
		return inf_a == inf_b ? 0 : inf_a ? 1 : -1;
	while (*a == '0' && isdigit((unsigned char)a[1]))
		a++;
	while (*b == '0' && isdigit((unsigned char)b[1]))
		b++;
	size_t la = 0, lb = 0;
	while (isdigit((unsigned char)a[la]))
		la++;
	while (isdigit((unsigned char)b[lb]))
		lb++;
	if (la != lb)
		return la < lb ? -1 : 1;
	int r = memcmp(a, b, la);
	return r < 0 ? -1 : r > 0 ? 1 : 0;
}

static int cmp_values(const struct sieve_comparator *cmp, const char *a, const char *b)
{
	if (cmp->next == NULL)
		return cmp_numeric(a, b);
	return cmp_strings(cmp->next, a, b, false);
}

static bool rel_holds(enum sieve_rel_op op, int r)
{
	switch (op) {
	case SIEVE_REL_GT:
		return r > 0;
	case SIEVE_REL_GE:
		return r >= 0;
	case SIEVE_REL_LT:
		return r < 0;
	case SIEVE_REL_LE:
		return r <= 0;
	case SIEVE_REL_EQ:
		return r == 0;
	case SIEVE_REL_NE:
		return r != 0;
	}
	return false;
}

/* ---- :matches ---- */

struct glob_state {
	sieve_cmp_next *next;
	const char *v, *p;
	size_t cap_start[MAX_WILDCARDS], cap_end[MAX_WILDCARDS];
	size_t wild;
	struct match_budget *budget;
};

/* One pattern step at *pi against the value at *vi: 1 matched (advanced),
 * 0 mismatch, 2 was a star (recorded by the caller). */
static int glob_step(struct glob_state *g, size_t *pi, size_t *vi)
{
	char c = g->p[*pi];

	if (c == '*')
		return 2;
	if (g->v[*vi] == '\0')
		return 0;
	if (c == '?') {
		size_t start = *vi;
		(void)g->next(g->v, vi);
		if (g->wild < MAX_WILDCARDS) {
			g->cap_start[g->wild] = start;
			g->cap_end[g->wild] = *vi;
		}
		g->wild++;
		(*pi)++;
		return 1;
	}
	if (c == '\\' && g->p[*pi + 1] != '\0')
		(*pi)++;
	return g->next(g->p, pi) == g->next(g->v, vi);
}

/* Iterative wildcard matching: on a mismatch the last star takes one more
 * character; earlier stars keep the shortest span that worked. */
static bool glob_match(struct glob_state *g)
{
	size_t pi = 0, vi = 0;
	size_t star_pi = SIZE_MAX, star_vi = 0, star_wild = 0;

	for (;;) {
		if (g->p[pi] == '\0' && g->v[vi] == '\0')
			return true;
		if (!budget_spend(g->budget, 1))
			return false;
		int r = g->p[pi] == '\0' ? 0 : glob_step(g, &pi, &vi);
		if (r == 2) {
			star_pi = ++pi;
			star_vi = vi;
			star_wild = g->wild;
			if (g->wild < MAX_WILDCARDS)
				g->cap_start[g->wild] = g->cap_end[g->wild] = vi;
			g->wild++;
			continue;
		}
		if (r == 1)
			continue;
		if (star_pi == SIZE_MAX || g->v[star_vi] == '\0')
			return false;
		(void)g->next(g->v, &star_vi);
		pi = star_pi;
		vi = star_vi;
		g->wild = star_wild + 1;
		if (star_wild < MAX_WILDCARDS)
			g->cap_end[star_wild] = star_vi;
	}
}

static void glob_captures(const struct glob_state *g, struct sieve_strlist *captures)
{
	sieve_strlist_add(captures, g->v, strlen(g->v));
	for (size_t i = 0; i < g->wild && i + 1 < SIEVE_MAX_MATCH_VARS; i++)
		sieve_strlist_add(captures, g->v + g->cap_start[i],
		                  g->cap_end[i] - g->cap_start[i]);
}

bool sieve_match_one(const struct sieve_matcher *m, const char *value, const char *key,
                     struct sieve_strlist *captures)
{
	struct match_budget budget = {m, 0};

	if (m->run != NULL && m->run->result->error != NULL)
		return false; /* the budget ran out in an earlier match */
	switch (m->type) {
	case SIEVE_MATCH_IS:
		return cmp_values(m->cmp, value, key) == 0;
	case SIEVE_MATCH_CONTAINS:
		return match_contains(m->cmp->next, value, key, &budget);
	case SIEVE_MATCH_VALUE:
	case SIEVE_MATCH_COUNT:
		return rel_holds(m->op, cmp_values(m->cmp, value, key));
	case SIEVE_MATCH_MATCHES: {
		struct glob_state *g = xcalloc(1, sizeof(*g));
		g->next = m->cmp->next;
		g->v = value;
		g->p = key;
		g->budget = &budget;
		bool ok = glob_match(g);
		if (ok && captures != NULL)
			glob_captures(g, captures);
		free(g);
		return ok;
	}
	}
	return false;
}

char *sieve_match_quote_wildcards(const char *s)
{
	struct buf out = BUF_INIT(0);

	(void)buf_append_str(&out, "");
	for (; *s != '\0'; s++) {
		if (*s == '*' || *s == '?' || *s == '\\')
			(void)buf_append_char(&out, '\\');
		(void)buf_append_char(&out, *s);
	}
	return buf_steal(&out);
}

/* ---- the matcher ---- */

static const char *const match_tags[] = {":is", ":contains", ":matches", ":value", ":count"};

static const char *const rel_names[] = {"gt", "ge", "lt", "le", "eq", "ne"};

static int matcher_rel(struct sieve_run *run, const struct sieve_tag *tag, struct sieve_matcher *m)
{
	char *op = sieve_arg_string(run, tag->value);

	for (size_t i = 0; i < sizeof(rel_names) / sizeof(rel_names[0]); i++) {
		if (strcasecmp(op, rel_names[i]) == 0) {
			m->op = (enum sieve_rel_op)i;
			free(op);
			return 0;
		}
	}
	free(op);
	return sieve_run_error(run, tag->line, "unknown relational operator");
}

static int matcher_comparator(struct sieve_run *run, const struct sieve_node *node,
                              struct sieve_matcher *m)
{
	const struct sieve_tag *tag = sieve_node_tag(node, ":comparator");

	m->cmp = &comparators[1];
	if (tag == NULL)
		return 0;
	char *name = sieve_arg_string(run, tag->value);
	for (size_t i = 0; i < sizeof(comparators) / sizeof(comparators[0]); i++) {
		if (strcmp(name, comparators[i].name) == 0) {
			m->cmp = &comparators[i];
			free(name);
			return 0;
		}
	}
	free(name);
	return sieve_run_error(run, tag->line, "unknown comparator");
}

int sieve_matcher_init(struct sieve_run *run, const struct sieve_node *node,
                       const struct sieve_arg *keys_arg, struct sieve_matcher *m)
{
	memset(m, 0, sizeof(*m));
	m->run = run;
	m->line = node->line;
	if (matcher_comparator(run, node, m) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(match_tags) / sizeof(match_tags[0]); i++) {
		const struct sieve_tag *tag = sieve_node_tag(node, match_tags[i]);

		if (tag == NULL)
			continue;
		m->type = (enum sieve_match_type)i;
		if (tag->value != NULL && matcher_rel(run, tag, m) < 0)
			return -1;
	}
	if (m->cmp->next == NULL &&
	    (m->type == SIEVE_MATCH_CONTAINS || m->type == SIEVE_MATCH_MATCHES))
		return sieve_run_error(run, node->line,
		                       "i;ascii-numeric does not support :contains or :matches");
	sieve_strlist_from_arg(run, keys_arg, &m->keys);
	return 0;
}

void sieve_matcher_free(struct sieve_matcher *m)
{
	sieve_strlist_free(&m->keys);
}

static int match_count(const struct sieve_matcher *m, const struct sieve_strlist *values)
{
	char count[32];

	(void)snprintf(count, sizeof(count), "%zu", values->count);
	for (size_t k = 0; k < m->keys.count; k++) {
		if (sieve_match_one(m, count, m->keys.items[k], NULL))
			return 1;
	}
	return 0;
}

int sieve_match_values(struct sieve_run *run, struct sieve_matcher *m,
                       const struct sieve_strlist *values)
{
	bool want_captures =
	        m->type == SIEVE_MATCH_MATCHES && (run->extensions & SIEVE_EXT_VARIABLES) != 0;
	size_t pairs = 0;

	if (m->type == SIEVE_MATCH_COUNT)
		return match_count(m, values);
	for (size_t v = 0; v < values->count; v++) {
		for (size_t k = 0; k < m->keys.count; k++) {
			struct sieve_strlist caps = {NULL, 0};

			if (++pairs % MATCH_PAIRS == 0 && sieve_run_check_time(run, m->line) < 0)
				return -1;
			if (!sieve_match_one(m, values->items[v], m->keys.items[k],
			                     want_captures ? &caps : NULL)) {
				if (run->result->error != NULL)
					return -1;
				continue;
			}
			if (want_captures)
				sieve_vars_set_match(run, caps.items, caps.count);
			sieve_strlist_free(&caps);
			return 1;
		}
	}
	return 0;
}

/* Validation of Sieve commands and tests against one table: for each
 * command and test its extension, its tags (with the type of their values
 * and the groups of which only one may be given), its positional arguments,
 * whether it takes tests or a block, and where it may stand. The parser
 * calls in here for each node as soon as its arguments are read. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/xmalloc.h"
#include "sieve/sieve-parse-private.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- extensions -------------------------------------------------------- */

static const struct {
	const char *name;
	uint32_t bits; /* what `require` of it enables */
} extensions[] = {
        {"fileinto", SIEVE_EXT_FILEINTO},
        {"reject", SIEVE_EXT_REJECT},
        {"ereject", SIEVE_EXT_EREJECT},
        {"envelope", SIEVE_EXT_ENVELOPE},
        {"encoded-character", SIEVE_EXT_ENCODED_CHARACTER},
        {"imap4flags", SIEVE_EXT_IMAP4FLAGS},
        {"variables", SIEVE_EXT_VARIABLES},
        {"vacation", SIEVE_EXT_VACATION},
        /* RFC 6131 3: vacation-seconds implies vacation */
        {"vacation-seconds", SIEVE_EXT_VACATION_SECONDS | SIEVE_EXT_VACATION},
        {"relational", SIEVE_EXT_RELATIONAL},
        {"subaddress", SIEVE_EXT_SUBADDRESS},
        {"body", SIEVE_EXT_BODY},
        {"copy", SIEVE_EXT_COPY},
        {"date", SIEVE_EXT_DATE},
        {"index", SIEVE_EXT_INDEX},
        {"mailbox", SIEVE_EXT_MAILBOX},
        {"include", SIEVE_EXT_INCLUDE},
        {"duplicate", SIEVE_EXT_DUPLICATE},
        {"editheader", SIEVE_EXT_EDITHEADER},
        {"comparator-i;ascii-numeric", SIEVE_EXT_COMPARATOR_NUMERIC},
        {"comparator-i;unicode-casemap", SIEVE_EXT_COMPARATOR_UNICODE},
};

const char *sieve_extensions(void)
{
	return "fileinto reject ereject envelope encoded-character imap4flags variables "
	       "vacation vacation-seconds relational subaddress body copy date index "
	       "mailbox include duplicate editheader comparator-i;ascii-numeric "
	       "comparator-i;unicode-casemap";
}

/* The name of the first extension in bits, for "used without require". */
static const char *extension_name(uint32_t bits)
{
	for (size_t i = 0; i < ARRAY_LEN(extensions); i++) {
		if ((extensions[i].bits & bits) != 0)
			return extensions[i].name;
	}
	return "?";
}

static const struct {
	const char *name;
	uint32_t ext;
} comparators[] = {
        {"i;octet", 0},
        {"i;ascii-casemap", 0},
        {"i;ascii-numeric", SIEVE_EXT_COMPARATOR_NUMERIC},
        {"i;unicode-casemap", SIEVE_EXT_COMPARATOR_UNICODE},
};

static const char *const relational_ops[] = {"gt", "ge", "lt", "le", "eq", "ne"};

static const char *const date_parts[] = {
        "year",   "month", "day",     "date",  "julian", "hour",    "minute",
        "second", "time",  "iso8601", "std11", "zone",   "weekday",
};

/* ---- the table --------------------------------------------------------- */

enum value_type { V_NONE, V_STRING, V_LIST, V_NUMBER };

/* Of the tags of one group, at most one may be given. */
enum tag_group {
	G_NONE,
	G_MATCH,
	G_COMPARATOR,
	G_ADDRESS_PART,
	G_TRANSFORM,
	G_ZONE,
	G_PERIOD,
	G_LOCATION,
	G_DUP_KEY,
	G_CASE,
	G_CASEFIRST,
	G_SIZE,
};

static const char *const group_names[] = {
        [G_MATCH] = "match type",
        [G_COMPARATOR] = "comparator",
        [G_ADDRESS_PART] = "address part",
        [G_TRANSFORM] = "body transform",
        [G_ZONE] = "of :zone and :originalzone",
        [G_PERIOD] = "of :days and :seconds",
        [G_LOCATION] = "of :personal and :global",
        [G_DUP_KEY] = "of :header and :uniqueid",
        [G_CASE] = "of :lower and :upper",
        [G_CASEFIRST] = "of :lowerfirst and :upperfirst",
        [G_SIZE] = "of :over and :under",
};

/* Checks of a tag's value or presence beyond its type. */
enum tag_check { C_NONE, C_COMPARATOR, C_RELATIONAL, C_NEEDS_INDEX, C_POSITIVE };

struct tag_spec {
	const char *name;
	enum value_type value;
	enum tag_group group;
	uint32_t ext;
	enum tag_check check;
};

static const struct tag_spec match_tags[] = {
        {":is", V_NONE, G_MATCH, 0, C_NONE},
        {":contains", V_NONE, G_MATCH, 0, C_NONE},
        {":matches", V_NONE, G_MATCH, 0, C_NONE},
        {":count", V_STRING, G_MATCH, SIEVE_EXT_RELATIONAL, C_RELATIONAL},
        {":value", V_STRING, G_MATCH, SIEVE_EXT_RELATIONAL, C_RELATIONAL},
        {NULL, V_NONE, G_NONE, 0, C_NONE},
};
static const struct tag_spec comparator_tags[] = {
        {":comparator", V_STRING, G_COMPARATOR, 0, C_COMPARATOR},
        {NULL, V_NONE, G_NONE, 0, C_NONE},
};
static const struct tag_spec address_part_tags[] = {
        {":all", V_NONE, G_ADDRESS_PART, 0, C_NONE},
        {":localpart", V_NONE, G_ADDRESS_PART, 0, C_NONE},
        {":domain", V_NONE, G_ADDRESS_PART, 0, C_NONE},
        {":user", V_NONE, G_ADDRESS_PART, SIEVE_EXT_SUBADDRESS, C_NONE},
        {":detail", V_NONE, G_ADDRESS_PART, SIEVE_EXT_SUBADDRESS, C_NONE},
        {NULL, V_NONE, G_NONE, 0, C_NONE},
};
static const struct tag_spec index_tags[] = {
        {":index", V_NUMBER, G_NONE, SIEVE_EXT_INDEX, C_POSITIVE},
        {":last", V_NONE, G_NONE, SIEVE_EXT_INDEX, C_NEEDS_INDEX},
        {NULL, V_NONE, G_NONE, 0, C_NONE},
};
static const struct tag_spec keep_tags[] = {
        {":flags", V_LIST, G_NONE, SIEVE_EXT_IMAP4FLAGS, C_NONE},
        {NULL, V_NONE, G_NONE, 0, C_NONE},
};
static const struct tag_spec fileinto_tags[] = {
        {":flags", V_LIST, G_NONE, SIEVE_EXT_IMAP4FLAGS, C_NONE},
        {":copy", V_NONE, G_NONE, SIEVE_EXT_COPY, C_NONE},
        {":create", V_NONE, G_NONE, SIEVE_EXT_MAILBOX, C_NONE},
        {NULL, V_NONE, G_NONE, 0, C_NONE},
};
static const struct tag_spec redirect_tags[] = {
        {":copy", V_NONE, G_NONE, SIEVE_EXT_COPY, C_NONE},
        {NULL, V_NONE, G_NONE, 0, C_NONE},
};
static const struct tag_spec size_tags[] = {
        {":over", V_NONE, G_SIZE, 0, C_NONE},
        {":under", V_NONE, G_SIZE, 0, C_NONE},
        {NULL, V_NONE, G_NONE, 0, C_NONE},
};
static const struct tag_spec set_tags[] = {
        {":lower", V_NONE, G_CASE, 0, C_NONE},
        {":upper", V_NONE, G_CASE, 0, C_NONE},
        {":lowerfirst", V_NONE, G_CASEFIRST, 0, C_NONE},
        {":upperfirst", V_NONE, G_CASEFIRST, 0, C_NONE},
        {":quotewildcard", V_NONE, G_NONE, 0, C_NONE},
        {":length", V_NONE, G_NONE, 0, C_NONE},
        {NULL, V_NONE, G_NONE, 0, C_NONE},
};
static const struct tag_spec vacation_tags[] = {
        {":days", V_NUMBER, G_PERIOD, 0, C_NONE},
        {":seconds", V_NUMBER, G_PERIOD, SIEVE_EXT_VACATION_SECONDS, C_NONE},
        {":subject", V_STRING, G_NONE, 0, C_NONE},
        {":from", V_STRING, G_NONE, 0, C_NONE},
        {":addresses", V_LIST, G_NONE, 0, C_NONE},
        {":mime", V_NONE, G_NONE, 0, C_NONE},
        {":handle", V_STRING, G_NONE, 0, C_NONE},
        {NULL, V_NONE, G_NONE, 0, C_NONE},
};
static const struct tag_spec body_tags[] = {
        {":raw", V_NONE, G_TRANSFORM, 0, C_NONE},
        {":content", V_LIST, G_TRANSFORM, 0, C_NONE},
        {":text", V_NONE, G_TRANSFORM, 0, C_NONE},
        {NULL, V_NONE, G_NONE, 0, C_NONE},
};
static const struct tag_spec date_tags[] = {
        {":zone", V_STRING, G_ZONE, 0, C_NONE},
        {":originalzone", V_NONE, G_ZONE, 0, C_NONE},
        {NULL, V_NONE, G_NONE, 0, C_NONE},
};
static const struct tag_spec currentdate_tags[] = {
        {":zone", V_STRING, G_ZONE, 0, C_NONE},
        {NULL, V_NONE, G_NONE, 0, C_NONE},
};
static const struct tag_spec include_tags[] = {
        {":personal", V_NONE, G_LOCATION, 0, C_NONE},
        {":global", V_NONE, G_LOCATION, 0, C_NONE},
        {":once", V_NONE, G_NONE, 0, C_NONE},
        {":optional", V_NONE, G_NONE, 0, C_NONE},
        {NULL, V_NONE, G_NONE, 0, C_NONE},
};
static const struct tag_spec duplicate_tags[] = {
        {":handle", V_STRING, G_NONE, 0, C_NONE},      {":header", V_STRING, G_DUP_KEY, 0, C_NONE},
        {":uniqueid", V_STRING, G_DUP_KEY, 0, C_NONE}, {":seconds", V_NUMBER, G_NONE, 0, C_NONE},
        {":last", V_NONE, G_NONE, 0, C_NONE},          {NULL, V_NONE, G_NONE, 0, C_NONE},
};
static const struct tag_spec addheader_tags[] = {
        {":last", V_NONE, G_NONE, 0, C_NONE},
        {NULL, V_NONE, G_NONE, 0, C_NONE},
};
static const struct tag_spec deleteheader_tags[] = {
        {":index", V_NUMBER, G_NONE, 0, C_POSITIVE},
        {":last", V_NONE, G_NONE, 0, C_NEEDS_INDEX},
        {NULL, V_NONE, G_NONE, 0, C_NONE},
};

/* Positional argument kinds; the checked kinds are strings. */
enum arg_kind { A_STRING, A_LIST, A_NUMBER, A_DATE_PART, A_VARNAME, A_RELATIONAL, A_FIELD };

enum spec_flags {
	F_TEST = 1 << 0,     /* a test, not a command */
	F_BLOCK = 1 << 1,    /* takes a block (if, elsif, else) */
	F_AFTER_IF = 1 << 2, /* only right after if/elsif */
	F_OPENS_IF = 1 << 3, /* elsif/else may follow */
	F_REQUIRE = 1 << 4,  /* only at the start of the script */
};

#define MAX_TAG_SETS 4
#define MAX_ARGS 3

struct sieve_cmd_spec {
	const char *name;
	unsigned int flags;
	uint32_t ext; /* all of these must be required */
	const struct tag_spec *tag_sets[MAX_TAG_SETS];
	enum arg_kind args[MAX_ARGS];
	unsigned int min_args, max_args;
	bool optional_leading; /* optional arguments come first (imap4flags) */
	enum sieve_test_mode tests;
	enum tag_group required_group; /* one tag of it must be given */
};

/* clang-format off */
#define NO_TAGS { NULL }
#define MATCH_CMP { match_tags, comparator_tags }
#define ADDRESS_TAGS { match_tags, comparator_tags, address_part_tags, index_tags }
#define ENVELOPE_TAGS { match_tags, comparator_tags, address_part_tags }
#define HEADER_TAGS { match_tags, comparator_tags, index_tags }
#define BODY_TAGS { match_tags, comparator_tags, body_tags }
#define DATE_TAGS { match_tags, comparator_tags, date_tags, index_tags }
#define CURRENTDATE_TAGS { match_tags, comparator_tags, currentdate_tags }
#define DELETEHEADER_TAGS { deleteheader_tags, match_tags, comparator_tags }
#define NO_ARGS { 0 }
#define ONE(kind) { kind }
#define TWO(a, b) { a, b }
#define THREE(a, b, c) { a, b, c }
#define T_NONE SIEVE_TESTS_NONE
#define T_ONE SIEVE_TESTS_ONE
#define T_LIST SIEVE_TESTS_LIST
#define EXT(name) SIEVE_EXT_##name
static const struct sieve_cmd_spec specs[] = {
	/* name, flags, extensions, tags, positional arguments, min, max,
	 * optional arguments first, tests, required tag group */
	/* RFC 5228 commands */
	{ "require",       F_REQUIRE,                         0,                             NO_TAGS,            ONE(A_LIST),                          1, 1, false, T_NONE, G_NONE },
	{ "if",            F_BLOCK | F_OPENS_IF,              0,                             NO_TAGS,            NO_ARGS,                              0, 0, false, T_ONE,  G_NONE },
	{ "elsif",         F_BLOCK | F_AFTER_IF | F_OPENS_IF, 0,                             NO_TAGS,            NO_ARGS,                              0, 0, false, T_ONE,  G_NONE },
	{ "else",          F_BLOCK | F_AFTER_IF,              0,                             NO_TAGS,            NO_ARGS,                              0, 0, false, T_NONE, G_NONE },
	{ "stop",          0,                                 0,                             NO_TAGS,            NO_ARGS,                              0, 0, false, T_NONE, G_NONE },
	{ "keep",          0,                                 0,                             { keep_tags },      NO_ARGS,                              0, 0, false, T_NONE, G_NONE },
	{ "discard",       0,                                 0,                             NO_TAGS,            NO_ARGS,                              0, 0, false, T_NONE, G_NONE },
	{ "redirect",      0,                                 0,                             { redirect_tags },  ONE(A_STRING),                        1, 1, false, T_NONE, G_NONE },
	/* extension commands */
	{ "fileinto",      0,                                 EXT(FILEINTO),                 { fileinto_tags },  ONE(A_STRING),                        1, 1, false, T_NONE, G_NONE },
	{ "reject",        0,                                 EXT(REJECT),                   NO_TAGS,            ONE(A_STRING),                        1, 1, false, T_NONE, G_NONE },
	{ "ereject",       0,                                 EXT(EREJECT),                  NO_TAGS,            ONE(A_STRING),                        1, 1, false, T_NONE, G_NONE },
	{ "setflag",       0,                                 EXT(IMAP4FLAGS),               NO_TAGS,            TWO(A_VARNAME, A_LIST),               1, 2, true,  T_NONE, G_NONE },
	{ "addflag",       0,                                 EXT(IMAP4FLAGS),               NO_TAGS,            TWO(A_VARNAME, A_LIST),               1, 2, true,  T_NONE, G_NONE },
	{ "removeflag",    0,                                 EXT(IMAP4FLAGS),               NO_TAGS,            TWO(A_VARNAME, A_LIST),               1, 2, true,  T_NONE, G_NONE },
	{ "set",           0,                                 EXT(VARIABLES),                { set_tags },       TWO(A_VARNAME, A_STRING),             2, 2, false, T_NONE, G_NONE },
	{ "vacation",      0,                                 EXT(VACATION),                 { vacation_tags },  ONE(A_STRING),                        1, 1, false, T_NONE, G_NONE },
	{ "include",       0,                                 EXT(INCLUDE),                  { include_tags },   ONE(A_STRING),                        1, 1, false, T_NONE, G_NONE },
	{ "return",        0,                                 EXT(INCLUDE),                  NO_TAGS,            NO_ARGS,                              0, 0, false, T_NONE, G_NONE },
	{ "global",        0,                                 EXT(INCLUDE) | EXT(VARIABLES), NO_TAGS,            ONE(A_LIST),                          1, 1, false, T_NONE, G_NONE },
	{ "addheader",     0,                                 EXT(EDITHEADER),               { addheader_tags }, TWO(A_FIELD, A_STRING),               2, 2, false, T_NONE, G_NONE },
	{ "deleteheader",  0,                                 EXT(EDITHEADER),               DELETEHEADER_TAGS,  TWO(A_FIELD, A_LIST),                 1, 2, false, T_NONE, G_NONE },
	/* RFC 5228 tests */
	{ "address",       F_TEST,                            0,                             ADDRESS_TAGS,       TWO(A_LIST, A_LIST),                  2, 2, false, T_NONE, G_NONE },
	{ "allof",         F_TEST,                            0,                             NO_TAGS,            NO_ARGS,                              0, 0, false, T_LIST, G_NONE },
	{ "anyof",         F_TEST,                            0,                             NO_TAGS,            NO_ARGS,                              0, 0, false, T_LIST, G_NONE },
	{ "envelope",      F_TEST,                            EXT(ENVELOPE),                 ENVELOPE_TAGS,      TWO(A_LIST, A_LIST),                  2, 2, false, T_NONE, G_NONE },
	{ "exists",        F_TEST,                            0,                             NO_TAGS,            ONE(A_LIST),                          1, 1, false, T_NONE, G_NONE },
	{ "false",         F_TEST,                            0,                             NO_TAGS,            NO_ARGS,                              0, 0, false, T_NONE, G_NONE },
	{ "header",        F_TEST,                            0,                             HEADER_TAGS,        TWO(A_LIST, A_LIST),                  2, 2, false, T_NONE, G_NONE },
	{ "not",           F_TEST,                            0,                             NO_TAGS,            NO_ARGS,                              0, 0, false, T_ONE,  G_NONE },
	{ "size",          F_TEST,                            0,                             { size_tags },      ONE(A_NUMBER),                        1, 1, false, T_NONE, G_SIZE },
	{ "true",          F_TEST,                            0,                             NO_TAGS,            NO_ARGS,                              0, 0, false, T_NONE, G_NONE },
	/* extension tests */
	{ "hasflag",       F_TEST,                            EXT(IMAP4FLAGS),               MATCH_CMP,          TWO(A_LIST, A_LIST),                  1, 2, true,  T_NONE, G_NONE },
	{ "string",        F_TEST,                            EXT(VARIABLES),                MATCH_CMP,          TWO(A_LIST, A_LIST),                  2, 2, false, T_NONE, G_NONE },
	{ "body",          F_TEST,                            EXT(BODY),                     BODY_TAGS,          ONE(A_LIST),                          1, 1, false, T_NONE, G_NONE },
	{ "date",          F_TEST,                            EXT(DATE),                     DATE_TAGS,          THREE(A_STRING, A_DATE_PART, A_LIST), 3, 3, false, T_NONE, G_NONE },
	{ "currentdate",   F_TEST,                            EXT(DATE),                     CURRENTDATE_TAGS,   TWO(A_DATE_PART, A_LIST),             2, 2, false, T_NONE, G_NONE },
	{ "mailboxexists", F_TEST,                            EXT(MAILBOX),                  NO_TAGS,            ONE(A_LIST),                          1, 1, false, T_NONE, G_NONE },
	{ "duplicate",     F_TEST,                            EXT(DUPLICATE),                { duplicate_tags }, NO_ARGS,                              0, 0, false, T_NONE, G_NONE },
};
/* clang-format on */

enum sieve_test_mode sieve_spec_tests(const struct sieve_cmd_spec *spec)
{
	return spec->tests;
}

bool sieve_spec_block(const struct sieve_cmd_spec *spec)
{
	return (spec->flags & F_BLOCK) != 0;
}

/* ---- looking up and placing a command ---------------------------------- */

static const struct sieve_cmd_spec *find_spec(const char *name, bool test)
{
	for (size_t i = 0; i < ARRAY_LEN(specs); i++) {
		if (((specs[i].flags & F_TEST) != 0) == test && strcmp(specs[i].name, name) == 0)
			return &specs[i];
	}
	return NULL;
}

static int check_placement(struct sieve_validator *v, const struct sieve_cmd_spec *spec,
                           const struct sieve_node *node, bool top_level, struct sieve_error *err)
{
	if ((spec->flags & F_REQUIRE) != 0 && (!top_level || v->other_command)) {
		sieve_error_set(err, node->line, node->column,
		                "require must come before any other command");
		return -1;
	}
	if ((spec->flags & F_AFTER_IF) != 0 && !v->after_if) {
		sieve_error_set(err, node->line, node->column,
		                "\"%s\" without a preceding \"if\" or \"elsif\"", spec->name);
		return -1;
	}
	if ((spec->flags & F_REQUIRE) == 0)
		v->other_command = true;
	return 0;
}

const struct sieve_cmd_spec *sieve_validate_start(struct sieve_validator *v,
                                                  const struct sieve_node *node, bool test,
                                                  bool top_level, struct sieve_error *err)
{
	const struct sieve_cmd_spec *spec = find_spec(node->name, test);
	char name[48];

	if (spec == NULL) {
		sieve_error_quote(name, sizeof(name), node->name, strlen(node->name));
		sieve_error_set(err, node->line, node->column, "unknown %s \"%s\"",
		                test ? "test" : "command", name);
		return NULL;
	}
	uint32_t missing = spec->ext & ~v->extensions;
	if (missing != 0) {
		sieve_error_set(err, node->line, node->column, "\"%s\" used without require \"%s\"",
		                spec->name, extension_name(missing));
		return NULL;
	}
	if (!test && check_placement(v, spec, node, top_level, err) < 0)
		return NULL;
	return spec;
}

void sieve_validate_end(struct sieve_validator *v, const struct sieve_cmd_spec *spec)
{
	v->after_if = (spec->flags & F_OPENS_IF) != 0;
}

void sieve_raw_args_free(struct sieve_raw_arg *raw, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(raw[i].tag);
		for (size_t j = 0; j < raw[i].arg.count; j++)
			free(raw[i].arg.strings[j].data);
		free(raw[i].arg.strings);
	}
	free(raw);
}

/* ---- values ------------------------------------------------------------ */

static bool name_in(const char *const *names, size_t count, const struct sieve_string *s)
{
	for (size_t i = 0; i < count; i++) {
		if (strlen(names[i]) == s->len && strcasecmp(names[i], s->data) == 0)
			return true;
	}
	return false;
}

/* Strings that hold "${" may be variable references expanded at run time;
 * only literal values are checked here. */
static bool is_literal(const struct sieve_validator *v, const struct sieve_string *s)
{
	return (v->extensions & SIEVE_EXT_VARIABLES) == 0 || strstr(s->data, "${") == NULL;
}

/* RFC 5229 3: identifier ("." identifier)*, no leading digit. */
static bool variable_name_valid(const struct sieve_string *s)
{
	bool start = true;

	if (s->len == 0 || strlen(s->data) != s->len)
		return false;
	for (const char *p = s->data; *p != '\0'; p++) {
		bool alpha = isalpha((unsigned char)*p) || *p == '_';
		if (*p == '.' && !start) {
			start = true;
			continue;
		}
		if (!alpha && (start || !isdigit((unsigned char)*p)))
			return false;
		start = false;
	}
	return !start;
}

/* RFC 5322 field-name: printable US-ASCII except ":" (RFC 5293 4). */
static bool field_name_valid(const struct sieve_string *s)
{
	if (s->len == 0)
		return false;
	for (size_t i = 0; i < s->len; i++) {
		unsigned char c = (unsigned char)s->data[i];
		if (c < 33 || c > 126 || c == ':')
			return false;
	}
	return true;
}

static int check_string(const struct sieve_validator *v, enum arg_kind kind,
                        const struct sieve_arg *arg, struct sieve_error *err)
{
	const struct sieve_string *s = &arg->strings[0];
	char q[48];

	sieve_error_quote(q, sizeof(q), s->data, s->len);
	if (kind == A_DATE_PART && is_literal(v, s) &&
	    !name_in(date_parts, ARRAY_LEN(date_parts), s)) {
		sieve_error_set(err, arg->line, arg->column, "unknown date part \"%s\"", q);
		return -1;
	}
	if (kind == A_RELATIONAL && is_literal(v, s) &&
	    !name_in(relational_ops, ARRAY_LEN(relational_ops), s)) {
		sieve_error_set(err, arg->line, arg->column, "unknown relational operator \"%s\"",
		                q);
		return -1;
	}
	if (kind == A_FIELD && is_literal(v, s) && !field_name_valid(s)) {
		sieve_error_set(err, arg->line, arg->column, "invalid header field name \"%s\"", q);
		return -1;
	}
	if (kind == A_VARNAME && !variable_name_valid(s)) {
		sieve_error_set(err, arg->line, arg->column, "invalid variable name \"%s\"", q);
		return -1;
	}
	return 0;
}

static const char *kind_name(enum arg_kind kind)
{
	return kind == A_NUMBER ? "a number" : kind == A_LIST ? "a string list" : "a string";
}

/* Checks arg against kind; a single string becomes a list of one where a
 * list is expected. */
static int check_arg(const struct sieve_validator *v, enum arg_kind kind, struct sieve_arg *arg,
                     const char *what, struct sieve_error *err)
{
	bool ok;

	if (kind == A_NUMBER)
		ok = arg->type == SIEVE_ARG_NUMBER;
	else if (kind == A_LIST)
		ok = arg->type != SIEVE_ARG_NUMBER;
	else
		ok = arg->type == SIEVE_ARG_STRING;
	if (!ok) {
		sieve_error_set(err, arg->line, arg->column, "%s must be %s", what,
		                kind_name(kind));
		return -1;
	}
	if (kind == A_LIST)
		arg->type = SIEVE_ARG_STRING_LIST;
	if (kind != A_NUMBER && kind != A_LIST)
		return check_string(v, kind, arg, err);
	return 0;
}

/* ---- tags -------------------------------------------------------------- */

static const struct tag_spec *find_tag(const struct sieve_cmd_spec *spec, const char *name)
{
	for (size_t i = 0; i < MAX_TAG_SETS && spec->tag_sets[i] != NULL; i++) {
		for (const struct tag_spec *t = spec->tag_sets[i]; t->name != NULL; t++) {
			if (strcmp(t->name, name) == 0)
				return t;
		}
	}
	return NULL;
}

static int check_comparator(const struct sieve_validator *v, const struct sieve_arg *arg,
                            struct sieve_error *err)
{
	const struct sieve_string *s = &arg->strings[0];
	char q[48];

	sieve_error_quote(q, sizeof(q), s->data, s->len);
	for (size_t i = 0; i < ARRAY_LEN(comparators); i++) {
		if (strlen(comparators[i].name) != s->len ||
		    strcasecmp(comparators[i].name, s->data) != 0)
			continue;
		if ((comparators[i].ext & ~v->extensions) == 0)
			return 0;
		sieve_error_set(err, arg->line, arg->column,
		                "comparator \"%s\" used without require \"%s\"", q,
		                extension_name(comparators[i].ext));
		return -1;
	}
	sieve_error_set(err, arg->line, arg->column, "unknown comparator \"%s\"", q);
	return -1;
}

static int check_tag_value(const struct sieve_validator *v, const struct tag_spec *t,
                           struct sieve_arg *arg, struct sieve_error *err)
{
	static const enum arg_kind kinds[] = {
	        [V_STRING] = A_STRING, [V_LIST] = A_LIST, [V_NUMBER] = A_NUMBER};
	char what[64];

	snprintf(what, sizeof(what), "the value of \"%s\"", t->name);
	enum arg_kind kind = t->check == C_RELATIONAL ? A_RELATIONAL : kinds[t->value];
	if (check_arg(v, kind, arg, what, err) < 0)
		return -1;
	if (t->check == C_COMPARATOR)
		return check_comparator(v, arg, err);
	if (t->check == C_POSITIVE && arg->number == 0) {
		sieve_error_set(err, arg->line, arg->column, "\"%s\" must be 1 or more", t->name);
		return -1;
	}
	return 0;
}

/* Refuses a tag given twice, or two of one group. */
static int check_tag_unique(const struct sieve_cmd_spec *spec, const struct sieve_node *node,
                            const struct tag_spec *t, const struct sieve_tag *tag,
                            struct sieve_error *err)
{
	for (size_t i = 0; i < node->tag_count; i++) {
		const struct tag_spec *other = find_tag(spec, node->tags[i].name);
		if (other == t) {
			sieve_error_set(err, tag->line, tag->column, "tag \"%s\" given twice",
			                t->name);
			return -1;
		}
		if (t->group != G_NONE && other->group == t->group) {
			sieve_error_set(err, tag->line, tag->column,
			                "only one %s allowed (\"%s\" and \"%s\")",
			                group_names[t->group], other->name, t->name);
			return -1;
		}
	}
	return 0;
}

static const struct tag_spec *lookup_tag(const struct sieve_validator *v,
                                         const struct sieve_cmd_spec *spec,
                                         const struct sieve_tag *tag, struct sieve_error *err)
{
	const struct tag_spec *t = find_tag(spec, tag->name);
	char q[48];

	if (t == NULL) {
		sieve_error_quote(q, sizeof(q), tag->name, strlen(tag->name));
		sieve_error_set(err, tag->line, tag->column, "unknown tag \"%s\" for \"%s\"", q,
		                spec->name);
		return NULL;
	}
	if ((t->ext & ~v->extensions) != 0) {
		sieve_error_set(err, tag->line, tag->column, "\"%s\" used without require \"%s\"",
		                t->name, extension_name(t->ext & ~v->extensions));
		return NULL;
	}
	return t;
}

/* Moves raw[*i] (a tag) and its value, if it takes one, into node. */
static int bind_tag(const struct sieve_validator *v, const struct sieve_cmd_spec *spec,
                    struct sieve_node *node, struct sieve_raw_arg *raw, size_t raw_count, size_t *i,
                    struct sieve_error *err)
{
	struct sieve_tag tag = {raw[*i].tag, raw[*i].arg.line, raw[*i].arg.column, NULL};
	const struct tag_spec *t = lookup_tag(v, spec, &tag, err);

	if (t == NULL || check_tag_unique(spec, node, t, &tag, err) < 0)
		return -1;
	if (t->value != V_NONE) {
		if (*i + 1 >= raw_count || raw[*i + 1].tag != NULL) {
			sieve_error_set(err, tag.line, tag.column, "\"%s\" needs %s", t->name,
			                kind_name(t->value == V_NUMBER ? A_NUMBER
			                          : t->value == V_LIST ? A_LIST
			                                               : A_STRING));
			return -1;
		}
		if (check_tag_value(v, t, &raw[*i + 1].arg, err) < 0)
			return -1;
		tag.value = xmalloc(sizeof(*tag.value));
		*tag.value = raw[*i + 1].arg;
		memset(&raw[*i + 1].arg, 0, sizeof(raw[*i + 1].arg));
	}
	raw[*i].tag = NULL;
	node->tags = xreallocarray(node->tags, node->tag_count + 1, sizeof(*node->tags));
	node->tags[node->tag_count++] = tag;
	*i += t->value != V_NONE ? 2 : 1;
	return 0;
}

static int check_tag_presence(const struct sieve_cmd_spec *spec, const struct sieve_node *node,
                              struct sieve_error *err)
{
	bool group_seen = false;

	for (size_t i = 0; i < node->tag_count; i++) {
		const struct tag_spec *t = find_tag(spec, node->tags[i].name);
		if (t->group != G_NONE && t->group == spec->required_group)
			group_seen = true;
		if (t->check == C_NEEDS_INDEX && sieve_node_tag(node, ":index") == NULL) {
			sieve_error_set(err, node->tags[i].line, node->tags[i].column,
			                "\":last\" needs \":index\"");
			return -1;
		}
	}
	if (spec->required_group != G_NONE && !group_seen) {
		sieve_error_set(err, node->line, node->column, "\"%s\" needs one %s", spec->name,
		                group_names[spec->required_group]);
		return -1;
	}
	return 0;
}

/* ---- positional arguments ---------------------------------------------- */

static int check_args(const struct sieve_validator *v, const struct sieve_cmd_spec *spec,
                      struct sieve_node *node, struct sieve_error *err)
{
	char what[64];

	if (node->arg_count < spec->min_args || node->arg_count > spec->max_args) {
		const struct sieve_arg *extra =
		        node->arg_count > spec->max_args ? &node->args[spec->max_args] : NULL;
		unsigned int want =
		        node->arg_count > spec->max_args ? spec->max_args : spec->min_args;
		sieve_error_set(err, extra != NULL ? extra->line : node->line,
		                extra != NULL ? extra->column : node->column,
		                "\"%s\" takes %s%u argument%s, not %zu", spec->name,
		                spec->min_args == spec->max_args ? ""
		                : extra != NULL                  ? "at most "
		                                                 : "at least ",
		                want, want == 1 ? "" : "s", node->arg_count);
		return -1;
	}
	size_t skip = spec->optional_leading ? spec->max_args - node->arg_count : 0;
	for (size_t i = 0; i < node->arg_count; i++) {
		snprintf(what, sizeof(what), "argument %zu of \"%s\"", i + 1, spec->name);
		if (check_arg(v, spec->args[skip + i], &node->args[i], what, err) < 0)
			return -1;
	}
	return 0;
}

static int do_require(struct sieve_validator *v, const struct sieve_arg *arg,
                      struct sieve_error *err)
{
	char q[48];

	for (size_t i = 0; i < arg->count; i++) {
		const struct sieve_string *s = &arg->strings[i];
		size_t e = 0;
		while (e < ARRAY_LEN(extensions) && (strlen(extensions[e].name) != s->len ||
		                                     strcmp(extensions[e].name, s->data) != 0))
			e++;
		if (e == ARRAY_LEN(extensions)) {
			sieve_error_quote(q, sizeof(q), s->data, s->len);
			sieve_error_set(err, arg->line, arg->column, "unsupported extension \"%s\"",
			                q);
			return -1;
		}
		v->extensions |= extensions[e].bits;
	}
	return 0;
}

static int decode_arg(struct sieve_arg *arg, struct sieve_error *err)
{
	const char *error;

	for (size_t i = 0; i < arg->count; i++) {
		if (sieve_decode_encoded(&arg->strings[i], &error) < 0) {
			sieve_error_set(err, arg->line, arg->column, "%s", error);
			return -1;
		}
	}
	return 0;
}

/* Decoded before the checks, so that an encoded comparator name counts. */
static int decode_raw(struct sieve_raw_arg *raw, size_t raw_count, struct sieve_error *err)
{
	for (size_t i = 0; i < raw_count; i++) {
		if (raw[i].tag == NULL && decode_arg(&raw[i].arg, err) < 0)
			return -1;
	}
	return 0;
}

int sieve_validate_node(struct sieve_validator *v, const struct sieve_cmd_spec *spec,
                        struct sieve_node *node, struct sieve_raw_arg *raw, size_t raw_count,
                        struct sieve_error *err)
{
	size_t i = 0;

	if ((v->extensions & SIEVE_EXT_ENCODED_CHARACTER) != 0 && (spec->flags & F_REQUIRE) == 0 &&
	    decode_raw(raw, raw_count, err) < 0)
		return -1;
	while (i < raw_count) {
		if (raw[i].tag != NULL) {
			if (bind_tag(v, spec, node, raw, raw_count, &i, err) < 0)
				return -1;
			continue;
		}
		node->args = xreallocarray(node->args, node->arg_count + 1, sizeof(*node->args));
		node->args[node->arg_count++] = raw[i].arg;
		memset(&raw[i].arg, 0, sizeof(raw[i].arg));
		i++;
	}
	if (check_tag_presence(spec, node, err) < 0 || check_args(v, spec, node, err) < 0)
		return -1;
	if ((spec->flags & F_REQUIRE) != 0)
		return do_require(v, &node->args[0], err);
	return 0;
}

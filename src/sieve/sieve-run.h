/* The interpreter's shared state and the functions its files share
 * (sieve-run.c, sieve-match.c, sieve-tests.c, sieve-vars.c, sieve-body.c,
 * sieve-date.c, sieve-edit.c, sieve-actions.c). Not for other modules. */
#ifndef YUBIN_SIEVE_RUN_H
#define YUBIN_SIEVE_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "sieve/sieve-private.h"

#define SIEVE_MAX_VAR_SIZE 4096 /* RFC 5229 5: at least 4000 octets */
#define SIEVE_MAX_VARIABLES 256
#define SIEVE_MAX_MATCH_VARS 10      /* ${0}..${9} */
#define SIEVE_MAX_STRING (64 * 1024) /* one expanded string */

struct sieve_var {
	char *name; /* lower case */
	char *value;
};

struct sieve_var_table {
	struct sieve_var *vars;
	size_t count;
};

/* A list of expanded strings, each malloc'd and NUL-terminated. */
struct sieve_strlist {
	char **items;
	size_t count;
};

struct sieve_run {
	const struct sieve_message *msg;
	const struct sieve_callbacks *callbacks;
	const struct sieve_limits *limits;
	struct sieve_result *result;
	const struct sieve_script *script; /* the one running now */
	uint32_t extensions;               /* of script */
	struct sieve_var_table locals;
	struct sieve_var_table *globals;   /* shared with included scripts */
	struct sieve_strlist global_names; /* declared by `global` here */
	char *match_vars[SIEVE_MAX_MATCH_VARS];
	char *flags;        /* imap4flags internal variable: "\\Seen $Work" */
	bool vacation_done; /* one vacation per message (RFC 5230 4.7) */
	bool returned;      /* `return` (RFC 6609) ends the current script */
	unsigned int include_depth;
	char **included; /* names included with :once */
	size_t included_count;
	struct timespec start;
};

/* ---- sieve-run.c ---- */
/* Sets result->error (first error wins) and returns -1. */
int sieve_run_error(struct sieve_run *run, unsigned int line, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* -1 (error set) when the time budget is spent. */
int sieve_run_check_time(struct sieve_run *run, unsigned int line);
/* Runs a block of commands: 0 go on, 1 stopped or returned, -1 error. */
int sieve_run_block(struct sieve_run *run, const struct sieve_node *cmds, size_t count);
/* Evaluates a test: 1 true, 0 false, -1 error. */
int sieve_run_test(struct sieve_run *run, const struct sieve_node *test);
/* The header block the script sees now (with earlier edits). */
const char *sieve_run_header(const struct sieve_run *run, size_t *len_r);

/* ---- sieve-vars.c ---- */
/* The string with ${...} expanded when variables is required; malloc'd. */
char *sieve_vars_expand(struct sieve_run *run, const struct sieve_string *str);
void sieve_strlist_from_arg(struct sieve_run *run, const struct sieve_arg *arg,
                            struct sieve_strlist *list_r);
/* Appends s (taking it over). */
void sieve_strlist_push(struct sieve_strlist *list, char *s);
void sieve_strlist_add(struct sieve_strlist *list, const char *s, size_t len);
void sieve_strlist_free(struct sieve_strlist *list);
/* A string argument (the first string of arg), expanded, malloc'd. */
char *sieve_arg_string(struct sieve_run *run, const struct sieve_arg *arg);
const char *sieve_vars_get(const struct sieve_run *run, const char *name);
void sieve_vars_set(struct sieve_run *run, const char *name, const char *value);
void sieve_vars_set_match(struct sieve_run *run, char *const *values, size_t count);
void sieve_vars_free(struct sieve_run *run);
void sieve_var_table_free(struct sieve_var_table *table);
int sieve_cmd_global(struct sieve_run *run, const struct sieve_node *node);
int sieve_cmd_set(struct sieve_run *run, const struct sieve_node *node);

/* ---- sieve-match.c ---- */
enum sieve_match_type {
	SIEVE_MATCH_IS,
	SIEVE_MATCH_CONTAINS,
	SIEVE_MATCH_MATCHES,
	SIEVE_MATCH_VALUE,
	SIEVE_MATCH_COUNT,
};

enum sieve_rel_op {
	SIEVE_REL_GT,
	SIEVE_REL_GE,
	SIEVE_REL_LT,
	SIEVE_REL_LE,
	SIEVE_REL_EQ,
	SIEVE_REL_NE
};

struct sieve_comparator;

struct sieve_matcher {
	enum sieve_match_type type;
	enum sieve_rel_op op;
	const struct sieve_comparator *cmp;
	struct sieve_strlist keys;
	struct sieve_run *run; /* long matches check its time budget */
	unsigned int line;     /* of the test, for that error */
};

/* From the node's :comparator and match-type tags; keys from keys_arg. */
int sieve_matcher_init(struct sieve_run *run, const struct sieve_node *node,
                       const struct sieve_arg *keys_arg, struct sieve_matcher *m);
void sieve_matcher_free(struct sieve_matcher *m);
/* Matches values against the keys (any value, any key; :count counts
 * values). Sets the match variables on a :matches success. 1/0, -1 when
 * the time budget ran out. */
int sieve_match_values(struct sieve_run *run, struct sieve_matcher *m,
                       const struct sieve_strlist *values);
/* Comparing one value with one key; captures NULL when not wanted. False
 * once the time budget is spent (the error is set then). */
bool sieve_match_one(const struct sieve_matcher *m, const char *value, const char *key,
                     struct sieve_strlist *captures);
/* RFC 5051 simple folding of one code point (see docs/sieve.md). */
uint32_t sieve_unicode_fold(uint32_t c);
/* The wildcard characters *, ? and \ escaped (for :quotewildcard). */
char *sieve_match_quote_wildcards(const char *s);

/* ---- sieve-tests.c ---- */
typedef int sieve_test_func(struct sieve_run *run, const struct sieve_node *node);
sieve_test_func *sieve_tests_lookup(const char *name);
/* Raw (CRLF-free, unfolded) values of the fields named name, in order. */
void sieve_header_values(const char *header, size_t len, const char *name,
                         struct sieve_strlist *values);
/* Applies :index/:last to a list of values (keeps one or none). */
void sieve_apply_index(const struct sieve_node *node, struct sieve_strlist *values);

/* ---- sieve-body.c, sieve-date.c ---- */
int sieve_test_body(struct sieve_run *run, const struct sieve_node *node);
int sieve_test_date(struct sieve_run *run, const struct sieve_node *node);
int sieve_test_currentdate(struct sieve_run *run, const struct sieve_node *node);

/* ---- sieve-edit.c ---- */
int sieve_cmd_addheader(struct sieve_run *run, const struct sieve_node *node);
int sieve_cmd_deleteheader(struct sieve_run *run, const struct sieve_node *node);

/* ---- sieve-actions.c ---- */
int sieve_cmd_keep(struct sieve_run *run, const struct sieve_node *node);
int sieve_cmd_fileinto(struct sieve_run *run, const struct sieve_node *node);
int sieve_cmd_redirect(struct sieve_run *run, const struct sieve_node *node);
int sieve_cmd_reject(struct sieve_run *run, const struct sieve_node *node);
int sieve_cmd_discard(struct sieve_run *run, const struct sieve_node *node);
int sieve_cmd_vacation(struct sieve_run *run, const struct sieve_node *node);
int sieve_cmd_flags(struct sieve_run *run, const struct sieve_node *node);
/* Flags of a string (space separated) into a list, duplicates dropped. */
void sieve_flags_split(const char *s, struct sieve_strlist *list);

#endif

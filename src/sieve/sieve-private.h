/* The compiled form of a script: a validated tree shared by the parser
 * (sieve-lex.c, sieve-parse.c, sieve-validate.c) and the interpreter
 * (sieve-run*.c). The validator guarantees what the interpreter relies on:
 * every command and test is known and its extension required, tags are
 * known for it and given at most once, each tag that takes a value has one
 * of the right type, positional arguments have the right count and types,
 * elsif/else follow an if/elsif, and blocks appear only where allowed. */
#ifndef YUBIN_SIEVE_PRIVATE_H
#define YUBIN_SIEVE_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sieve/sieve.h"

/* Extensions a script may `require` (bits of sieve_script.extensions). */
enum sieve_ext {
	SIEVE_EXT_FILEINTO = 1u << 0,
	SIEVE_EXT_REJECT = 1u << 1,
	SIEVE_EXT_EREJECT = 1u << 2,
	SIEVE_EXT_ENVELOPE = 1u << 3,
	SIEVE_EXT_ENCODED_CHARACTER = 1u << 4,
	SIEVE_EXT_IMAP4FLAGS = 1u << 5,
	SIEVE_EXT_VARIABLES = 1u << 6,
	SIEVE_EXT_VACATION = 1u << 7,
	SIEVE_EXT_VACATION_SECONDS = 1u << 8,
	SIEVE_EXT_RELATIONAL = 1u << 9,
	SIEVE_EXT_SUBADDRESS = 1u << 10,
	SIEVE_EXT_BODY = 1u << 11,
	SIEVE_EXT_COPY = 1u << 12,
	SIEVE_EXT_DATE = 1u << 13,
	SIEVE_EXT_INDEX = 1u << 14,
	SIEVE_EXT_MAILBOX = 1u << 15,
	SIEVE_EXT_INCLUDE = 1u << 16,
	SIEVE_EXT_DUPLICATE = 1u << 17,
	SIEVE_EXT_EDITHEADER = 1u << 18,
	SIEVE_EXT_COMPARATOR_NUMERIC = 1u << 19, /* "comparator-i;ascii-numeric" */
	SIEVE_EXT_COMPARATOR_UNICODE = 1u << 20, /* "comparator-i;unicode-casemap" */
};

/* A string after the parser's work: quoted-string escapes removed,
 * multi-line dot-stuffing undone, and with encoded-character required,
 * "${hex:...}" and "${unicode:...}" decoded. Variable references stay as
 * they are; the interpreter expands them when variables is required. */
struct sieve_string {
	char *data; /* NUL-terminated; len excludes the NUL (data may hold NUL) */
	size_t len;
};

enum sieve_arg_type {
	SIEVE_ARG_NUMBER,      /* with K/M/G applied; fits uint64_t */
	SIEVE_ARG_STRING,      /* strings[0] */
	SIEVE_ARG_STRING_LIST, /* strings[0..count) ("a" alone is a list of one) */
};

struct sieve_arg {
	enum sieve_arg_type type;
	unsigned int line, column;
	uint64_t number;
	struct sieve_string *strings;
	size_t count;
};

/* A tagged argument (":copy", ":comparator" "i;octet", ":days" 3). */
struct sieve_tag {
	char *name;             /* lower case, with the colon: ":comparator" */
	unsigned int line, column;
	struct sieve_arg *value; /* NULL for tags that take no value */
};

/* A command or a test. For "if"/"elsif": tests[0] is the condition and
 * block the commands; "else": block only; "allof"/"anyof": tests; "not":
 * tests[0]. Names are lower case. */
struct sieve_node {
	char *name;
	unsigned int line, column;
	struct sieve_tag *tags;
	size_t tag_count;
	struct sieve_arg *args;   /* positional arguments, in order */
	size_t arg_count;
	struct sieve_node *tests;
	size_t test_count;
	struct sieve_node *block; /* commands of the block */
	size_t block_count;
};

struct sieve_script {
	char *name;
	uint32_t extensions; /* enum sieve_ext bits required by the script */
	struct sieve_node *commands;
	size_t command_count;
};

/* The tag named name (":copy") of node, or NULL. */
const struct sieve_tag *sieve_node_tag(const struct sieve_node *node, const char *name);
void sieve_node_free_fields(struct sieve_node *node);

#endif

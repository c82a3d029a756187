/* Internal interfaces of the Sieve compiler: the lexer (sieve-lex.c), the
 * parser (sieve-parse.c) and the validation table (sieve-validate.c). The
 * parser reads a command's arguments in source order and hands them to the
 * validator, which binds tags to their values and checks them against the
 * table; the compiled tree is then the one of sieve-private.h. */
#ifndef YUBIN_SIEVE_PARSE_PRIVATE_H
#define YUBIN_SIEVE_PARSE_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sieve/sieve-private.h"

/* Nesting of blocks and tests together; keeps recursion on the stack small. */
#define SIEVE_MAX_NESTING 32

/* ---- errors ------------------------------------------------------------ */

void sieve_error_set(struct sieve_error *err, unsigned int line, unsigned int column,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Copies up to 40 bytes of s into out (size >= 48) for an error message,
 * printable ASCII only ("..." when cut). */
void sieve_error_quote(char *out, size_t out_size, const char *s, size_t len);

/* ---- lexer ------------------------------------------------------------- */

enum sieve_token_type {
	SIEVE_TOK_EOF,
	SIEVE_TOK_IDENTIFIER, /* text: lower case */
	SIEVE_TOK_TAG,        /* text: lower case, with the colon */
	SIEVE_TOK_NUMBER,     /* number: quantifier applied */
	SIEVE_TOK_STRING,     /* text/len: quoted or multi-line, unescaped */
	SIEVE_TOK_LBRACKET,
	SIEVE_TOK_RBRACKET,
	SIEVE_TOK_LPAREN,
	SIEVE_TOK_RPAREN,
	SIEVE_TOK_LBRACE,
	SIEVE_TOK_RBRACE,
	SIEVE_TOK_COMMA,
	SIEVE_TOK_SEMICOLON,
};

struct sieve_token {
	enum sieve_token_type type;
	unsigned int line, column;
	char *text; /* malloc'd for identifiers, tags and strings; else NULL */
	size_t len;
	uint64_t number;
};

struct sieve_lexer {
	const char *p, *end;
	unsigned int line, column;
	struct sieve_error *err;
};

void sieve_lexer_init(struct sieve_lexer *lex, const char *source, size_t len,
                      struct sieve_error *err);
/* 0 with the next token in *tok (the caller frees tok->text), or -1 with
 * the error set. */
int sieve_lexer_next(struct sieve_lexer *lex, struct sieve_token *tok);
/* "identifier \"stop\"", "\";\"", "end of script": for error messages. */
void sieve_token_describe(const struct sieve_token *tok, char *out, size_t out_size);

/* ---- validation -------------------------------------------------------- */

enum sieve_test_mode {
	SIEVE_TESTS_NONE,
	SIEVE_TESTS_ONE,  /* if, elsif, not */
	SIEVE_TESTS_LIST, /* allof, anyof */
};

struct sieve_cmd_spec;

/* One argument as written, before tags are bound to their values. */
struct sieve_raw_arg {
	char *tag;            /* a tag (lower case, with colon), or NULL */
	struct sieve_arg arg; /* otherwise: a number, string or string list */
};

struct sieve_validator {
	uint32_t extensions; /* required so far */
	bool other_command;  /* a command other than require was seen */
	bool after_if;       /* the previous command of this block was if/elsif */
};

/* The spec of command (test false) or test (test true) node, after checking
 * that it exists, that its extension is required and that it may stand
 * here. NULL with the error set otherwise. */
const struct sieve_cmd_spec *sieve_validate_start(struct sieve_validator *v,
                                                  const struct sieve_node *node, bool test,
                                                  bool top_level, struct sieve_error *err);
enum sieve_test_mode sieve_spec_tests(const struct sieve_cmd_spec *spec);
bool sieve_spec_block(const struct sieve_cmd_spec *spec);
/* Binds the raw arguments into node (moving their contents; the caller
 * frees what is left in raw with sieve_raw_args_free), checks them and, for
 * require, records the extensions. 0 or -1 with the error set. */
int sieve_validate_node(struct sieve_validator *v, const struct sieve_cmd_spec *spec,
                        struct sieve_node *node, struct sieve_raw_arg *raw, size_t raw_count,
                        struct sieve_error *err);
/* Called after the node is complete (its block parsed): updates after_if. */
void sieve_validate_end(struct sieve_validator *v, const struct sieve_cmd_spec *spec);
void sieve_raw_args_free(struct sieve_raw_arg *raw, size_t count);

/* RFC 5228 2.4.2.4: decodes ${hex:..} and ${unicode:..} in str. 0, or -1
 * with *error_r (static) on a code point out of range. */
int sieve_decode_encoded(struct sieve_string *str, const char **error_r);

#endif

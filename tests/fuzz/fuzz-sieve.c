/* libFuzzer target for the Sieve compiler: any bytes must give either a
 * script whose tree keeps the promises of sieve-private.h (lower-case
 * names, tags with a colon, NUL-terminated strings, string lists where a
 * list was asked for) or NULL with a positioned, non-empty message; never
 * a crash, a leak or a stack overflow. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sieve/sieve-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_name(const char *name)
{
	if (name == NULL || *name == '\0')
		abort();
	for (const char *p = name; *p != '\0'; p++) {
		if (isupper((unsigned char)*p))
			abort();
	}
}

static void check_arg(const struct sieve_arg *arg)
{
	if (arg->line == 0 || arg->column == 0)
		abort();
	if (arg->type == SIEVE_ARG_NUMBER) {
		if (arg->count != 0)
			abort();
		return;
	}
	if (arg->count == 0 || (arg->type == SIEVE_ARG_STRING && arg->count != 1))
		abort();
	for (size_t i = 0; i < arg->count; i++) {
		if (arg->strings[i].data == NULL ||
		    arg->strings[i].data[arg->strings[i].len] != '\0')
			abort();
	}
}

static void check_node(const struct sieve_node *node)
{
	check_name(node->name);
	if (node->line == 0 || node->column == 0)
		abort();
	for (size_t i = 0; i < node->tag_count; i++) {
		check_name(node->tags[i].name);
		if (node->tags[i].name[0] != ':' ||
		    sieve_node_tag(node, node->tags[i].name) != &node->tags[i])
			abort(); /* a tag is never given twice */
		if (node->tags[i].value != NULL)
			check_arg(node->tags[i].value);
	}
	for (size_t i = 0; i < node->arg_count; i++)
		check_arg(&node->args[i]);
	for (size_t i = 0; i < node->test_count; i++)
		check_node(&node->tests[i]);
	for (size_t i = 0; i < node->block_count; i++)
		check_node(&node->block[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sieve_error err;
	struct sieve_script *script = sieve_compile("fuzz", (const char *)data, size, NULL, &err);

	if (script == NULL) {
		if (err.line == 0 || err.column == 0 || err.message[0] == '\0' ||
		    memchr(err.message, '\0', sizeof(err.message)) == NULL)
			abort();
		return 0;
	}
	if (strcmp(sieve_script_name(script), "fuzz") != 0)
		abort();
	for (size_t i = 0; i < script->command_count; i++)
		check_node(&script->commands[i]);
	sieve_script_free(&script);
	if (script != NULL)
		abort();
	return 0;
}

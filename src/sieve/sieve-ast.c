/* Small helpers over the compiled tree (sieve-private.h). */
#include <stdlib.h>
#include <string.h>

#include "sieve/sieve-private.h"

const struct sieve_tag *sieve_node_tag(const struct sieve_node *node, const char *name)
{
	for (size_t i = 0; i < node->tag_count; i++) {
		if (strcmp(node->tags[i].name, name) == 0)
			return &node->tags[i];
	}
	return NULL;
}

static void sieve_arg_free_fields(struct sieve_arg *arg)
{
	for (size_t i = 0; i < arg->count; i++)
		free(arg->strings[i].data);
	free(arg->strings);
}

void sieve_node_free_fields(struct sieve_node *node)
{
	for (size_t i = 0; i < node->tag_count; i++) {
		free(node->tags[i].name);
		if (node->tags[i].value != NULL) {
			sieve_arg_free_fields(node->tags[i].value);
			free(node->tags[i].value);
		}
	}
	free(node->tags);
	for (size_t i = 0; i < node->arg_count; i++)
		sieve_arg_free_fields(&node->args[i]);
	free(node->args);
	for (size_t i = 0; i < node->test_count; i++)
		sieve_node_free_fields(&node->tests[i]);
	free(node->tests);
	for (size_t i = 0; i < node->block_count; i++)
		sieve_node_free_fields(&node->block[i]);
	free(node->block);
	free(node->name);
}

const struct sieve_limits sieve_default_limits = {
        .max_script_size = 64 * 1024,
        .max_actions = 32,
        .max_redirects = 4,
        .max_include_depth = 5,
        .max_run_ms = 1000,
};

void sieve_script_free(struct sieve_script **script)
{
	struct sieve_script *s = *script;

	if (s == NULL)
		return;
	for (size_t i = 0; i < s->command_count; i++)
		sieve_node_free_fields(&s->commands[i]);
	free(s->commands);
	free(s->name);
	free(s);
	*script = NULL;
}

const char *sieve_script_name(const struct sieve_script *script)
{
	return script->name;
}

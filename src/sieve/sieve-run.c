/* Running a compiled script: control flow (if/elsif/else, stop, require),
 * the command table, include/return (RFC 6609), the limits, and
 * sieve_execute. Actions are only collected; deliver carries them out. */
#include <stdarg.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "mime/mime.h"
#include "sieve/sieve-run.h"

int sieve_run_error(struct sieve_run *run, unsigned int line, const char *fmt, ...)
{
	va_list ap;

	if (run->result->error != NULL)
		return -1;
	va_start(ap, fmt);
	run->result->error = xvasprintf(fmt, ap);
	va_end(ap);
	run->result->error_line = line;
	return -1;
}

static uint64_t elapsed_ms(const struct timespec *start)
{
	struct timespec now;

	(void)clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t ms = (int64_t)(now.tv_sec - start->tv_sec) * 1000 +
	             (now.tv_nsec - start->tv_nsec) / 1000000;
	return ms < 0 ? 0 : (uint64_t)ms;
}

int sieve_run_check_time(struct sieve_run *run, unsigned int line)
{
	/* ">=" so that a budget of 0 ms stops at the first check */
	if (elapsed_ms(&run->start) >= run->limits->max_run_ms)
		return sieve_run_error(run, line, "time budget of %u ms spent",
		                       run->limits->max_run_ms);
	return 0;
}

const char *sieve_run_header(const struct sieve_run *run, size_t *len_r)
{
	if (run->result->edited_header != NULL) {
		*len_r = run->result->edited_header_len;
		return run->result->edited_header;
	}
	*len_r = run->result->body_offset;
	return run->msg->data;
}

/* ---- tests ---- */

int sieve_run_test(struct sieve_run *run, const struct sieve_node *test)
{
	sieve_test_func *func = sieve_tests_lookup(test->name);

	if (sieve_run_check_time(run, test->line) < 0)
		return -1;
	if (func == NULL)
		return sieve_run_error(run, test->line, "unknown test \"%s\"", test->name);
	return func(run, test);
}

/* ---- commands ---- */

static int cmd_require(struct sieve_run *run, const struct sieve_node *node)
{
	(void)run;
	(void)node;
	return 0;
}

static int cmd_stop(struct sieve_run *run, const struct sieve_node *node)
{
	(void)node;
	run->result->stopped = true;
	return 1;
}

static int cmd_return(struct sieve_run *run, const struct sieve_node *node)
{
	(void)node;
	run->returned = true;
	return 1;
}

static bool included_before(const struct sieve_run *run, const char *key)
{
	for (size_t i = 0; i < run->included_count; i++) {
		if (strcmp(run->included[i], key) == 0)
			return true;
	}
	return false;
}

static int run_script(struct sieve_run *run, const struct sieve_script *script);

static int include_script(struct sieve_run *run, const struct sieve_node *node,
                          struct sieve_script *script)
{
	/* an included script has its own variables (no "global" support) */
	struct sieve_run sub = *run;

	memset(&sub.locals, 0, sizeof(sub.locals));
	memset(&sub.global_names, 0, sizeof(sub.global_names));
	memset(sub.match_vars, 0, sizeof(sub.match_vars));
	sub.include_depth = run->include_depth + 1;
	sub.returned = false;
	int ret = run_script(&sub, script);
	sieve_vars_free(&sub);
	run->flags = sub.flags;
	run->vacation_done = sub.vacation_done;
	run->included = sub.included;
	run->included_count = sub.included_count;
	(void)node;
	return ret < 0 ? -1 : run->result->stopped ? 1 : 0;
}

static int cmd_include(struct sieve_run *run, const struct sieve_node *node)
{
	bool global = sieve_node_tag(node, ":global") != NULL;
	bool once = sieve_node_tag(node, ":once") != NULL;
	bool optional = sieve_node_tag(node, ":optional") != NULL;
	char *name = sieve_arg_string(run, node->arg_count > 0 ? &node->args[0] : NULL);
	char *key = xasprintf("%c%s", global ? 'g' : 'p', name);
	struct sieve_error err = {0, 0, ""};
	int ret = 0;

	if (once && included_before(run, key))
		goto out;
	if (run->include_depth + 1 > run->limits->max_include_depth) {
		ret = sieve_run_error(run, node->line, "include nested deeper than %u",
		                      run->limits->max_include_depth);
		goto out;
	}
	struct sieve_script *script =
	        run->callbacks == NULL || run->callbacks->include == NULL
	                ? NULL
	                : run->callbacks->include(run->callbacks->context, global, name, &err);
	if (script == NULL) {
		if (!optional)
			ret = sieve_run_error(run, node->line, "include \"%s\" failed: %s", name,
			                      err.message[0] != '\0' ? err.message
			                                             : "no such script");
		goto out;
	}
	run->included = xreallocarray(run->included, run->included_count + 1, sizeof(char *));
	run->included[run->included_count++] = key;
	key = NULL;
	ret = include_script(run, node, script);
	sieve_script_free(&script);
out:
	free(key);
	free(name);
	return ret;
}

static int cmd_if(struct sieve_run *run, const struct sieve_node *node)
{
	if (node->test_count == 0)
		return sieve_run_error(run, node->line, "if without a test");
	int r = sieve_run_test(run, &node->tests[0]);
	if (r <= 0)
		return r < 0 ? -1 : 2;
	return sieve_run_block(run, node->block, node->block_count);
}

static int cmd_else(struct sieve_run *run, const struct sieve_node *node)
{
	return sieve_run_block(run, node->block, node->block_count);
}

struct sieve_command {
	const char *name;
	int (*run)(struct sieve_run *run, const struct sieve_node *node);
};

static const struct sieve_command commands[] = {
        {"require", cmd_require},
        {"if", cmd_if},
        {"elsif", cmd_if},
        {"else", cmd_else},
        {"stop", cmd_stop},
        {"return", cmd_return},
        {"include", cmd_include},
        {"global", sieve_cmd_global},
        {"keep", sieve_cmd_keep},
        {"fileinto", sieve_cmd_fileinto},
        {"redirect", sieve_cmd_redirect},
        {"reject", sieve_cmd_reject},
        {"ereject", sieve_cmd_reject},
        {"discard", sieve_cmd_discard},
        {"vacation", sieve_cmd_vacation},
        {"set", sieve_cmd_set},
        {"setflag", sieve_cmd_flags},
        {"addflag", sieve_cmd_flags},
        {"removeflag", sieve_cmd_flags},
        {"addheader", sieve_cmd_addheader},
        {"deleteheader", sieve_cmd_deleteheader},
};

static const struct sieve_command *command_lookup(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	}
	return NULL;
}

static bool is_branch(const char *name)
{
	return strcmp(name, "elsif") == 0 || strcmp(name, "else") == 0;
}

/* A command returns 0 (go on), 1 (stop/return), 2 (an if/elsif whose test
 * was false: the next elsif/else runs), -1 (error). */
int sieve_run_block(struct sieve_run *run, const struct sieve_node *cmds, size_t count)
{
	bool chain_done = false;

	for (size_t i = 0; i < count; i++) {
		const struct sieve_node *cmd = &cmds[i];
		const struct sieve_command *c = command_lookup(cmd->name);

		if (is_branch(cmd->name) && chain_done)
			continue;
		if (sieve_run_check_time(run, cmd->line) < 0)
			return -1;
		if (c == NULL)
			return sieve_run_error(run, cmd->line, "unknown command \"%s\"", cmd->name);
		int r = c->run(run, cmd);
		if (r < 0 || r == 1)
			return r;
		chain_done = r != 2 && (strcmp(cmd->name, "if") == 0 || is_branch(cmd->name));
	}
	return 0;
}

static int run_script(struct sieve_run *run, const struct sieve_script *script)
{
	run->script = script;
	run->extensions = script->extensions;
	int r = sieve_run_block(run, script->commands, script->command_count);
	return r < 0 ? -1 : 0;
}

/* ---- sieve_execute ---- */


static char *flags_join(char *const *flags, size_t count)
{
	struct buf b = BUF_INIT(0);

	(void)buf_append_str(&b, "");
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			(void)buf_append_char(&b, ' ');
		(void)buf_append_str(&b, flags[i]);
	}
	return buf_steal(&b);
}

static void flags_store(struct sieve_result *result, const char *flags)
{
	struct sieve_strlist list = {NULL, 0};

	for (size_t i = 0; i < result->keep_flag_count; i++)
		free(result->keep_flags[i]);
	free(result->keep_flags);
	sieve_flags_split(flags, &list);
	result->keep_flags = list.items;
	result->keep_flag_count = list.count;
}

int sieve_execute(const struct sieve_script *script, const struct sieve_message *msg,
                  const struct sieve_callbacks *callbacks, const struct sieve_limits *limits,
                  struct sieve_result *result)
{
	struct sieve_run run;
	struct sieve_var_table globals = {NULL, 0};

	memset(&run, 0, sizeof(run));
	run.globals = &globals;
	run.msg = msg;
	run.callbacks = callbacks;
	run.limits = limits != NULL ? limits : &sieve_default_limits;
	run.result = result;
	(void)clock_gettime(CLOCK_MONOTONIC, &run.start);
	if (result->edited_header == NULL)
		result->body_offset = mime_header_size(msg->data, msg->len);
	run.flags = flags_join(result->keep_flags, result->keep_flag_count);
	for (size_t i = 0; i < result->action_count; i++) {
		if (result->actions[i].type == SIEVE_ACTION_VACATION)
			run.vacation_done = true;
	}
	int ret = result->error != NULL ? -1 : run_script(&run, script);
	flags_store(result, run.flags);
	free(run.flags);
	sieve_vars_free(&run);
	sieve_var_table_free(&globals);
	for (size_t i = 0; i < run.included_count; i++)
		free(run.included[i]);
	free(run.included);
	return ret;
}

/* libFuzzer target for the Sieve interpreter. Input: a script, a NUL
 * byte, then the message (no NUL: the whole input is the script and the
 * message is empty). A script that compiles runs twice on one result, the
 * way deliver runs the routing script and then the account's, with every
 * callback set; the result must keep the promises of sieve.h (an error
 * exactly when -1 is returned, the limits on actions and redirects, the
 * fields each action type carries), and nothing may crash, leak or hang.
 * Bit 0 of the first byte picks the null envelope sender, bit 1 another
 * "now" (the epoch, for date edge cases). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"
#include "sieve/sieve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW 1700000000 /* 2023-11-14 22:13:20 UTC */

/* What `include "inc"` gets: a script using what included scripts may
 * touch (globals, flags, return, actions). */
static const char inc_source[] =
        "require [\"include\", \"variables\", \"imap4flags\", \"fileinto\"];\r\n"
        "global \"g\";\r\n"
        "set \"g\" \"${g}.inc\";\r\n"
        "addflag \"$Included\";\r\n"
        "if header :contains \"subject\" \"return\" { return; }\r\n"
        "fileinto \"Included\";\r\n";

/* What `include "bad"` gets: a script that does not compile. */
static const char bad_source[] = "require \"fileinto\";\r\nfileinta \"x\";\r\n";

struct fuzz_ctx {
	const char *source; /* the fuzzed script, for include "self" */
	size_t len;
	const struct sieve_limits *limits;
	unsigned int duplicate_calls;
};

/* Reads every byte, so that ASan checks the length given with them. */
static void touch(const char *p, size_t len)
{
	volatile unsigned char sink = 0;

	for (size_t i = 0; i < len; i++)
		sink ^= (unsigned char)p[i];
	(void)sink;
}

static void touch_str(const char *s)
{
	if (s != NULL)
		touch(s, strlen(s) + 1);
}

static void check_error(const struct sieve_error *err)
{
	if (err->line == 0 || err->column == 0 || err->message[0] == '\0' ||
	    memchr(err->message, '\0', sizeof(err->message)) == NULL)
		abort();
}

static bool cb_mailbox_exists(void *context, const char *mailbox)
{
	(void)context;
	return mailbox[0] == 'I';
}

static bool cb_duplicate_seen(void *context, const char *key, uint64_t seconds)
{
	struct fuzz_ctx *ctx = context;

	touch_str(key);
	(void)seconds;
	return (ctx->duplicate_calls++ & 1) != 0;
}

static struct sieve_script *compile_named(struct fuzz_ctx *ctx, const char *name,
                                          const char *source, size_t len, struct sieve_error *err)
{
	struct sieve_script *script = sieve_compile(name, source, len, ctx->limits, err);

	if (script == NULL)
		check_error(err);
	return script;
}

/* "inc": a fixed script; "self": the fuzzed script again (nesting up to
 * the include depth); "bad": a compile error; anything else: absent. */
static struct sieve_script *cb_include(void *context, bool global, const char *name,
                                       struct sieve_error *err)
{
	struct fuzz_ctx *ctx = context;

	(void)global;
	if (strcmp(name, "inc") == 0)
		return compile_named(ctx, name, inc_source, sizeof(inc_source) - 1, err);
	if (strcmp(name, "self") == 0)
		return compile_named(ctx, name, ctx->source, ctx->len, err);
	if (strcmp(name, "bad") == 0) {
		struct sieve_script *script =
		        compile_named(ctx, name, bad_source, sizeof(bad_source) - 1, err);
		if (script != NULL)
			abort();
		return NULL;
	}
	memset(err, 0, sizeof(*err));
	snprintf(err->message, sizeof(err->message), "no script \"%s\"", name);
	return NULL;
}

static void check_strv(char *const *v, size_t count)
{
	if (count > 0 && v == NULL)
		abort();
	for (size_t i = 0; i < count; i++) {
		if (v[i] == NULL)
			abort();
		touch_str(v[i]);
	}
}

static void check_vacation(const struct sieve_vacation *vac)
{
	if (vac == NULL || vac->reason == NULL || vac->handle == NULL)
		abort();
	touch_str(vac->reason);
	touch_str(vac->handle);
	touch_str(vac->subject);
	touch_str(vac->from);
	check_strv(vac->addresses, vac->address_count);
}

/* The fields each action type promises; every string is read so that a
 * freed or unterminated one shows. */
static void check_action(const struct sieve_action *a)
{
	switch (a->type) {
	case SIEVE_ACTION_FILEINTO:
		if (a->mailbox == NULL || a->mailbox[0] == '\0')
			abort();
		break;
	case SIEVE_ACTION_REDIRECT:
		if (a->address == NULL || strchr(a->address, '@') == NULL)
			abort();
		break;
	case SIEVE_ACTION_REJECT:
	case SIEVE_ACTION_EREJECT:
		if (a->reason == NULL)
			abort();
		break;
	case SIEVE_ACTION_VACATION:
		check_vacation(a->vacation);
		break;
	case SIEVE_ACTION_KEEP:
	case SIEVE_ACTION_DISCARD:
		break;
	default:
		abort();
	}
	touch_str(a->mailbox);
	touch_str(a->address);
	touch_str(a->reason);
	check_strv(a->flags, a->flag_count);
}

static void check_result(const struct sieve_result *r, int ret, const struct sieve_message *msg,
                         const struct sieve_limits *limits)
{
	unsigned int redirects = 0;

	if ((ret < 0) != (r->error != NULL) || (ret != 0 && ret != -1))
		abort();
	touch_str(r->error);
	if (r->action_count > limits->max_actions || (r->action_count > 0 && r->actions == NULL))
		abort();
	for (size_t i = 0; i < r->action_count; i++) {
		check_action(&r->actions[i]);
		redirects += r->actions[i].type == SIEVE_ACTION_REDIRECT;
	}
	if (redirects > limits->max_redirects)
		abort();
	if (r->body_offset > msg->len)
		abort();
	if (r->edited_header != NULL)
		touch(r->edited_header, r->edited_header_len);
	check_strv(r->duplicates, r->duplicate_count);
	if (r->duplicate_count > 0 && r->duplicate_seconds == NULL)
		abort();
	check_strv(r->keep_flags, r->keep_flag_count);
}

static void run_twice(const struct sieve_script *script, const struct sieve_message *msg,
                      struct fuzz_ctx *ctx)
{
	const struct sieve_callbacks callbacks = {
	        ctx,
	        cb_mailbox_exists,
	        cb_duplicate_seen,
	        cb_include,
	};
	struct sieve_result result;

	sieve_result_init(&result);
	int ret = sieve_execute(script, msg, &callbacks, ctx->limits, &result);
	check_result(&result, ret, msg, ctx->limits);
	/* deliver skips the account's script after a stop or a routing error */
	if (ret == 0 && !result.stopped) {
		ret = sieve_execute(script, msg, &callbacks, ctx->limits, &result);
		check_result(&result, ret, msg, ctx->limits);
	}
	sieve_result_free(&result);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t script_len = nul != NULL ? (size_t)(nul - data) : size;
	size_t msg_len = nul != NULL ? size - script_len - 1 : 0;
	unsigned int knobs = size > 0 ? data[0] : 0;
	struct sieve_limits limits = sieve_default_limits;
	struct sieve_error err;

	limits.max_run_ms = 50;
	/* exact-size copies: a read past either end is an ASan report */
	char *source = xmalloc(script_len > 0 ? script_len : 1);
	char *message = xmalloc(msg_len > 0 ? msg_len : 1);
	memcpy(source, data, script_len);
	if (msg_len > 0)
		memcpy(message, nul + 1, msg_len);

	struct fuzz_ctx ctx = {source, script_len, &limits, 0};
	struct sieve_script *script = compile_named(&ctx, "fuzz", source, script_len, &err);
	if (script != NULL) {
		struct sieve_message msg = {
		        message,
		        msg_len,
		        (knobs & 1) != 0 ? "" : "alice+lists@example.org",
		        "bob+tag@example.com",
		        "bob@example.com",
		        (knobs & 2) != 0 ? 0 : FUZZ_NOW,
		};
		run_twice(script, &msg, &ctx);
		sieve_script_free(&script);
	}
	free(source);
	free(message);
	return 0;
}

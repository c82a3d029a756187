/* The per-account step of delivery: the account's routing script (its
 * forwarding settings) and its own active Sieve script run in turn on one
 * result, then deliver-actions.c carries out what they decided. A script
 * that does not compile or fails at run time never loses mail: the
 * message is kept in INBOX and the account gets a notice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/deliver-private.h"
#include "dir/dir.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "sieve/sieve.h"
#include "store/store.h"

#define DELIVER_TEMP_REASON "temporary local problem, try again later"

/* What the interpreter asks of the account while it runs. */
struct deliver_sieve {
	struct deliver_account_ctx *ctx;
	struct sieve_storage *storage;
	struct sieve_limits limits;
};

static void deliver_sieve_limits(const struct yubin_config *config, struct sieve_limits *limits)
{
	*limits = sieve_default_limits;
	limits->max_script_size = (size_t)config->sieve.max_script_size;
	limits->max_actions = config->sieve.max_actions;
	limits->max_redirects = config->sieve.max_redirects;
	limits->max_run_ms = (unsigned int)config->sieve.max_run_time;
}

static bool cb_mailbox_exists(void *context, const char *mailbox)
{
	struct deliver_sieve *ds = context;
	struct store_mailbox_info info;
	enum store_error err;
	const char *error;
	return store_mailbox_info(ds->ctx->store, mailbox, &info, &err, &error) == 0;
}

static bool cb_duplicate_seen(void *context, const char *key, uint64_t seconds)
{
	struct deliver_sieve *ds = context;
	const char *error;
	int ret = store_memory_seen(ds->ctx->store, "duplicate", key, seconds, ds->ctx->now,
	                            &error);
	if (ret < 0)
		log_warn("deliver to=%s event=duplicate_check_failed error=\"%s\"",
		         ds->ctx->account->address, error);
	return ret > 0;
}

/* A global script: <global_dir>/<name>.sieve (relative to data_dir). */
static char *global_source(const struct yubin_config *config, const char *name, size_t *len_r)
{
	const char *dir = config->sieve.global_dir;
	if (dir[0] == '\0' || !sieve_storage_name_valid(name))
		return NULL;
	char *path = dir[0] == '/' ? xasprintf("%s/%s.sieve", dir, name)
	                           : xasprintf("%s/%s/%s.sieve", config->server.data_dir, dir, name);
	char *source = NULL;
	FILE *f = fopen(path, "re");
	if (f != NULL) {
		source = xmalloc(config->sieve.max_script_size + 1);
		*len_r = fread(source, 1, config->sieve.max_script_size + 1, f);
		fclose(f);
	}
	free(path);
	return source;
}

static struct sieve_script *cb_include(void *context, bool global, const char *name,
                                       struct sieve_error *err)
{
	struct deliver_sieve *ds = context;
	char *source = NULL;
	size_t len = 0;
	const char *error = "no such script";
	if (global)
		source = global_source(ds->ctx->in->config, name, &len);
	else if (ds->storage != NULL &&
	         sieve_storage_get(ds->storage, name, &source, &len, &error) <= 0)
		source = NULL;
	if (source == NULL) {
		memset(err, 0, sizeof(*err));
		snprintf(err->message, sizeof(err->message), "include \"%s\": %s", name, error);
		return NULL;
	}
	struct sieve_script *script = sieve_compile(name, source, len, &ds->limits, err);
	free(source);
	return script;
}

static void plan_fail(struct deliver_plan *plan, const char *script, unsigned int line,
                      const char *why)
{
	plan->force_keep = true;
	free(plan->failed_script);
	free(plan->failed_why);
	plan->failed_script = xstrdup(script);
	plan->failed_line = line;
	plan->failed_why = xstrdup(why);
}

/* Compiled scripts of this process, by name and exact text: a serve
 * worker or the queue runner delivers many messages with the same few
 * scripts, and compiling is most of what a script costs (about half of
 * a 20-rule script's time; docs/performance.md). A changed script has new
 * text and is compiled again; the cache only ever saves work. */
#define SCRIPT_CACHE_SIZE 16

struct script_cache_entry {
	char *name;
	char *source;
	size_t len;
	struct sieve_script *script;
	unsigned long used;
};

static struct script_cache_entry script_cache[SCRIPT_CACHE_SIZE];
static unsigned long script_cache_clock;

static struct script_cache_entry *script_cache_find(const char *name, const char *source,
                                                    size_t len)
{
	struct script_cache_entry *oldest = &script_cache[0];
	for (size_t i = 0; i < SCRIPT_CACHE_SIZE; i++) {
		struct script_cache_entry *e = &script_cache[i];
		if (e->script != NULL && e->len == len && strcmp(e->name, name) == 0 &&
		    memcmp(e->source, source, len) == 0)
			return e;
		if (e->used < oldest->used)
			oldest = e;
	}
	/* not there: the least recently used entry makes room */
	sieve_script_free(&oldest->script);
	xfree(oldest->name);
	xfree(oldest->source);
	oldest->len = 0;
	return oldest;
}

/* The compiled script, valid until the next call; NULL with *err filled
 * when it does not compile. */
static const struct sieve_script *script_compiled(const char *name, const char *source,
                                                  size_t len, const struct sieve_limits *limits,
                                                  struct sieve_error *err)
{
	struct script_cache_entry *e = script_cache_find(name, source, len);
	if (e->script == NULL) {
		e->script = sieve_compile(name, source, len, limits, err);
		if (e->script == NULL)
			return NULL;
		e->name = xstrdup(name);
		e->source = xmalloc(len + 1);
		memcpy(e->source, source, len);
		e->len = len;
	}
	e->used = ++script_cache_clock;
	return e->script;
}

/* A script did not compile or failed at run time: logged; the message is
 * kept, and the account is told when it is its own script. */
static void script_failed(struct deliver_sieve *ds, struct deliver_plan *plan, const char *name,
                          bool user, const char *event, unsigned int line, const char *why)
{
	char esc_name[300], esc_why[600];
	log_warn("deliver to=%s script=\"%s\" event=%s line=%u error=\"%s\"",
	         ds->ctx->account->address, log_escape(name, strlen(name), esc_name, sizeof(esc_name)),
	         event, line, log_escape(why, strlen(why), esc_why, sizeof(esc_why)));
	if (user)
		plan_fail(plan, name, line, why);
	else
		plan->force_keep = true;
}

/* Runs one script's source on the plan's result. user: the account's own
 * script (its failure is told to the account). */
static void run_source(struct deliver_sieve *ds, struct deliver_plan *plan, const char *name,
                       const char *source, size_t len, bool user)
{
	struct sieve_error err;
	const struct sieve_script *script = script_compiled(name, source, len, &ds->limits, &err);
	if (script == NULL) {
		script_failed(ds, plan, name, user, "compile_error", err.line, err.message);
		return;
	}
	const struct deliver_input *in = ds->ctx->in;
	struct sieve_message msg = {
	        .data = in->data,
	        .len = in->size,
	        .envelope_from = in->env_from != NULL ? in->env_from : "",
	        .envelope_to = ds->ctx->rcpt,
	        .account = ds->ctx->account->address,
	        .now = ds->ctx->now,
	};
	struct sieve_callbacks cb = {
	        .context = ds,
	        .mailbox_exists = cb_mailbox_exists,
	        .duplicate_seen = cb_duplicate_seen,
	        .include = cb_include,
	};
	if (sieve_execute(script, &msg, &cb, &ds->limits, plan->result) < 0) {
		const struct sieve_result *r = plan->result;
		script_failed(ds, plan, name, user, "runtime_error", r->error_line,
		              r->error != NULL ? r->error : "runtime error");
	} else if (!plan->force_keep) {
		plan->action_count = plan->result->action_count;
	}
}

/* The account's active script: 1 with its name and source, 0 when none. */
static int user_script(struct deliver_sieve *ds, char **name_r, char **source_r, size_t *len_r,
                       const char **error_r)
{
	char *root = store_account_root(ds->ctx->in->config->server.data_dir,
	                                ds->ctx->account->address);
	struct sieve_storage_limits none = {0, 0};
	int ret = sieve_storage_open(root, &none, &ds->storage, error_r);
	free(root);
	if (ret < 0)
		return -1;
	ret = sieve_storage_active(ds->storage, name_r, error_r);
	if (ret <= 0)
		return ret;
	ret = sieve_storage_get(ds->storage, *name_r, source_r, len_r, error_r);
	if (ret <= 0) {
		/* "active" names a script that is gone: as if none. */
		xfree(*name_r);
		return ret;
	}
	return 1;
}

/* Runs the routing script, then the user's; fills plan. -1 when the
 * script storage cannot be read (temporary). */
static int deliver_sieve_run(struct deliver_sieve *ds, struct deliver_plan *plan)
{
	const struct deliver_input *in = ds->ctx->in;
	char *routing = deliver_routing_script(in->config, in->dir, ds->ctx->account);
	if (routing != NULL) {
		run_source(ds, plan, "routing", routing, strlen(routing), false);
		free(routing);
	}
	if (plan->result->stopped || plan->force_keep)
		return 0;
	char *name = NULL, *source = NULL;
	size_t len = 0;
	const char *error;
	int ret = user_script(ds, &name, &source, &len, &error);
	if (ret < 0) {
		log_error("deliver to=%s status=failed error=\"sieve storage: %s\"",
		          ds->ctx->account->address, error);
		return -1;
	}
	if (ret > 0)
		run_source(ds, plan, name, source, len, true);
	free(name);
	free(source);
	return 0;
}

static void plan_free(struct deliver_plan *plan)
{
	sieve_result_free(plan->result);
	free(plan->failed_script);
	free(plan->failed_why);
}

static enum deliver_status deliver_with_store(struct deliver_account_ctx *ctx, char **reason_r)
{
	struct deliver_sieve ds = {.ctx = ctx};
	deliver_sieve_limits(ctx->in->config, &ds.limits);
	struct sieve_result result;
	sieve_result_init(&result);
	struct deliver_plan plan = {.result = &result};
	enum deliver_status status = DELIVER_TEMPFAIL;
	if (deliver_sieve_run(&ds, &plan) == 0)
		status = deliver_actions_apply(ctx, &plan, reason_r);
	else
		*reason_r = xstrdup(DELIVER_TEMP_REASON);
	if (status == DELIVER_OK && plan.failed_script != NULL)
		deliver_notice_script_failed(ctx, plan.failed_script, plan.failed_line,
		                             plan.failed_why);
	plan_free(&plan);
	sieve_storage_close(&ds.storage);
	return status;
}

enum deliver_status deliver_sieve_account(const struct deliver_input *in, const char *rcpt,
                                          const struct dir_account *account, char **reason_r)
{
	const char *error = "address cannot name a mail folder";
	struct deliver_account_ctx ctx = {.in = in, .rcpt = rcpt, .account = account,
	                                  .now = time(NULL)};
	char *root = store_account_root(in->config->server.data_dir, account->address);
	if (root != NULL && store_account_create(root, &error) == 0 &&
	    store_open(root, &ctx.store, &error) == 0) {
		free(root);
		store_set_quota(ctx.store, account->quota_bytes, account->quota_messages);
		enum deliver_status status = deliver_with_store(&ctx, reason_r);
		store_close(&ctx.store);
		return status;
	}
	log_error("deliver to=%s status=failed error=\"%s\"", account->address, error);
	*reason_r = xstrdup(DELIVER_TEMP_REASON);
	free(root);
	return DELIVER_TEMPFAIL;
}

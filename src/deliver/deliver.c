/* Local delivery: each recipient is resolved through the directory and
 * every account it reaches gets one copy in its INBOX through the store.
 * The message is read from the caller's file in chunks, never whole. */
#include "deliver/deliver.h"
#include "deliver/deliver-private.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dir/dir.h"
#include "fts/fts.h"
#include "lib/config.h"
#include "lib/fdio.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "mime/mime.h"
#include "store/store.h"

/* One account already handled for this message (aliases and several
 * recipients may reach it more than once: it gets one copy). */
struct deliver_done {
	char *account;
	enum deliver_status status;
	char *reason;
};

struct deliver_ctx {
	const struct yubin_config *config;
	struct dir *dir;
	int fd;
	uint64_t size;
	struct deliver_done *done;
	size_t done_count;
	struct deliver_input in;  /* the message for deliver-sieve.c */
	const char *rcpt;         /* the recipient being resolved */
	char *reason;             /* the last account's reason (owned) */
};

/* Rank for "worst status": TEMPFAIL > PERMFAIL > UNKNOWN_USER > OK. */
static const int deliver_rank[] = {
        [DELIVER_OK] = 0,
        [DELIVER_UNKNOWN_USER] = 1,
        [DELIVER_PERMFAIL] = 2,
        [DELIVER_TEMPFAIL] = 3,
};

static const int deliver_exit_codes[] = {
        [DELIVER_OK] = 0,
        [DELIVER_UNKNOWN_USER] = 67, /* EX_NOUSER */
        [DELIVER_TEMPFAIL] = 75,     /* EX_TEMPFAIL */
        [DELIVER_PERMFAIL] = 77,     /* EX_NOPERM */
};

int deliver_exit_code(enum deliver_status status)
{
	if ((size_t)status >= sizeof(deliver_exit_codes) / sizeof(deliver_exit_codes[0]))
		return 75;
	return deliver_exit_codes[status];
}

/* digits: 1 to 3 of them, then stop */
static const char *deliver_code_digits(const char *p)
{
	size_t n = 0;
	while (n < 3 && p[n] >= '0' && p[n] <= '9')
		n++;
	return n > 0 ? p + n : NULL;
}

bool deliver_reason_code(const char *reason, char *code, const char **text_r)
{
	if (reason == NULL || (reason[0] != '4' && reason[0] != '5') || reason[1] != '.')
		return false;
	const char *p = deliver_code_digits(reason + 2);
	if (p == NULL || *p != '.' || (p = deliver_code_digits(p + 1)) == NULL || *p != ' ')
		return false;
	size_t len = (size_t)(p - reason);
	memcpy(code, reason, len);
	code[len] = '\0';
	*text_r = p + 1;
	return true;
}

static enum deliver_status deliver_worst(enum deliver_status a, enum deliver_status b)
{
	return deliver_rank[b] > deliver_rank[a] ? b : a;
}

/* Keeps the reason of the worst status seen for a recipient. */
static void deliver_result_merge(struct deliver_result *result, enum deliver_status status,
                                 const char *reason)
{
	if (result->reason != NULL && deliver_rank[status] <= deliver_rank[result->status])
		return;
	result->status = deliver_worst(result->status, status);
	free(result->reason);
	result->reason = reason != NULL ? xstrdup(reason) : NULL;
}

/* The account's step: its routing and Sieve scripts, then their actions
 * (deliver-sieve.c). The reason stays valid until the next account. */
static enum deliver_status deliver_store(struct deliver_ctx *ctx, const char *account,
                                         const struct dir_account *acct, const char **reason_r)
{
	(void)account;
	xfree(ctx->reason);
	enum deliver_status status = deliver_sieve_account(&ctx->in, ctx->rcpt, acct, &ctx->reason);
	*reason_r = ctx->reason;
	return status;
}

static enum deliver_status deliver_account(struct deliver_ctx *ctx, const char *account,
                                           const char **reason_r)
{
	struct dir_account *acct = NULL;
	const char *error;
	int ret = dir_account_lookup(ctx->dir, account, &acct, &error);
	if (ret <= 0) {
		if (ret < 0)
			log_error("deliver to=%s status=failed error=%s", account, error);
		*reason_r = "temporary local problem, try again later";
		return DELIVER_TEMPFAIL;
	}
	enum deliver_status status = deliver_store(ctx, account, acct, reason_r);
	if (status == DELIVER_OK)
		deliver_quota_warn(ctx->config, acct);
	dir_account_free(&acct);
	return status;
}

/* Loop protection (docs/forwarding.md): a message that already passed
 * this account (its Delivered-To line, added by every redirect) is
 * refused, so two accounts forwarding to each other end in one bounce. */
static enum deliver_status deliver_routed(struct deliver_ctx *ctx, const char *account,
                                          const char **reason_r)
{
	/* The caller copies the reason at once (single-threaded). */
	static char loop_reason[400];
	if (deliver_routing_loop(ctx->fd, account)) {
		log_info("deliver to=%s status=loop", account);
		snprintf(loop_reason, sizeof(loop_reason), "5.4.6 mail forwarding loop for %s",
		         account);
		*reason_r = loop_reason;
		return DELIVER_PERMFAIL;
	}
	return deliver_account(ctx, account, reason_r);
}

/* Delivers to an account once per message; later recipients that reach
 * it share the first outcome. */
static void deliver_to_account(struct deliver_ctx *ctx, const char *account,
                               struct deliver_result *result)
{
	for (size_t i = 0; i < ctx->done_count; i++) {
		if (strcmp(ctx->done[i].account, account) == 0) {
			deliver_result_merge(result, ctx->done[i].status, ctx->done[i].reason);
			return;
		}
	}
	const char *reason = NULL;
	enum deliver_status status = deliver_routed(ctx, account, &reason);
	ctx->done = xreallocarray(ctx->done, ctx->done_count + 1, sizeof(*ctx->done));
	ctx->done[ctx->done_count].account = xstrdup(account);
	ctx->done[ctx->done_count].status = status;
	ctx->done[ctx->done_count].reason = reason != NULL ? xstrdup(reason) : NULL;
	ctx->done_count++;
	deliver_result_merge(result, status, reason);
}

/* An alias delivers to hosted accounts only (`alias add` refuses other
 * targets); one that names an outside address is a directory to fix, so
 * the mail waits (temporary) instead of bouncing. */
static void deliver_external(const char *recipient, const char *target,
                             struct deliver_result *result)
{
	char esc[300];
	log_warn("deliver rcpt=%s external=%s status=deferred reason=alias_target_not_hosted",
	         recipient, log_escape(target, strlen(target), esc, sizeof(esc)));
	deliver_result_merge(result, DELIVER_TEMPFAIL,
	                     "an alias target is outside the hosted domains");
}

static void deliver_recipient(struct deliver_ctx *ctx, struct deliver_result *result)
{
	char **accounts, **external;
	size_t naccounts, nexternal;
	const char *error;
	char esc[300];
	const char *rcpt =
	        log_escape(result->recipient, strlen(result->recipient), esc, sizeof(esc));
	int ret = dir_resolve(ctx->dir, result->recipient, &accounts, &naccounts, &external,
	                      &nexternal, &error);
	if (ret < 0) {
		log_error("deliver rcpt=%s status=failed error=%s", rcpt, error);
		deliver_result_merge(result, DELIVER_TEMPFAIL,
		                     "temporary local problem, try again later");
		return;
	}
	if (ret == 0) {
		/* A bounce to an SRS address of ours goes back to the sender. */
		const char *why;
		ret = deliver_srs_pass_back(ctx->config, result->recipient, ctx->fd, &why);
		if (ret != 0) {
			deliver_result_merge(result, ret > 0 ? DELIVER_OK : DELIVER_TEMPFAIL,
			                     ret > 0 ? NULL : why);
			return;
		}
		log_info("deliver rcpt=%s status=unknown_user", rcpt);
		deliver_result_merge(result, DELIVER_UNKNOWN_USER, "no such user");
		return;
	}
	ctx->rcpt = result->recipient;
	for (size_t i = 0; i < naccounts; i++)
		deliver_to_account(ctx, accounts[i], result);
	for (size_t i = 0; i < nexternal; i++)
		deliver_external(rcpt, external[i], result);
	dir_strings_free(&accounts, naccounts);
	dir_strings_free(&external, nexternal);
}

static void deliver_ctx_free(struct deliver_ctx *ctx)
{
	for (size_t i = 0; i < ctx->done_count; i++) {
		free(ctx->done[i].account);
		free(ctx->done[i].reason);
	}
	free(ctx->done);
	free(ctx->reason);
}

/* Marks every recipient with the same outcome (the message itself is
 * unusable). */
static enum deliver_status deliver_fail_all(struct deliver_result *results, size_t count,
                                            enum deliver_status status, const char *reason)
{
	for (size_t i = 0; i < count; i++)
		deliver_result_merge(&results[i], status, reason);
	return count > 0 ? status : DELIVER_OK;
}

/* The envelope sender from a Return-Path field (`yubin deliver` behind
 * an MTA that adds one), when the caller did not give it. */
static char *deliver_return_path(const char *data, size_t size)
{
	char *v = mime_header_get(data, mime_header_size(data, size), "Return-Path");
	if (v == NULL)
		return NULL;
	char *p = v + strspn(v, " \t<");
	size_t len = strcspn(p, "> \t");
	char *from = xstrndup(p, len);
	free(v);
	return from;
}

static enum deliver_status deliver_all(struct deliver_ctx *ctx, struct deliver_result *results,
                                       size_t count, const char *env_from)
{
	void *map = NULL;
	if (ctx->size > 0) {
		map = mmap(NULL, ctx->size, PROT_READ, MAP_PRIVATE, ctx->fd, 0);
		if (map == MAP_FAILED) {
			log_error("deliver status=failed error=\"mmap: %s\"", strerror(errno));
			return deliver_fail_all(results, count, DELIVER_TEMPFAIL,
			                        "temporary local problem, try again later");
		}
	}
	ctx->in = (struct deliver_input){.config = ctx->config, .dir = ctx->dir, .fd = ctx->fd,
	                                 .data = map != NULL ? map : "", .size = ctx->size};
	char *return_path = env_from == NULL ? deliver_return_path(ctx->in.data, ctx->in.size) : NULL;
	ctx->in.env_from = env_from != NULL ? env_from : return_path;
	enum deliver_status worst = DELIVER_OK;
	for (size_t i = 0; i < count; i++) {
		deliver_recipient(ctx, &results[i]);
		worst = deliver_worst(worst, results[i].status);
	}
	free(return_path);
	if (map != NULL)
		munmap(map, ctx->size);
	return worst;
}

static enum deliver_status deliver_run(const struct yubin_config *config, struct dir *dir, int fd,
                                       const char *env_from, const char *const *recipients,
                                       size_t count, struct deliver_result *results)
{
	struct deliver_ctx ctx = {.config = config, .dir = dir, .fd = fd};
	for (size_t i = 0; i < count; i++) {
		results[i].recipient = recipients[i];
		results[i].status = DELIVER_OK;
		results[i].reason = NULL;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		log_error("deliver status=failed error=fstat: %s", strerror(errno));
		return deliver_fail_all(results, count, DELIVER_TEMPFAIL,
		                        "temporary local problem, try again later");
	}
	ctx.size = (uint64_t)st.st_size;
	if (config->mail.max_message_size != 0 && ctx.size > config->mail.max_message_size) {
		log_info("deliver status=too_big size=%llu max=%llu", (unsigned long long)ctx.size,
		         (unsigned long long)config->mail.max_message_size);
		return deliver_fail_all(results, count, DELIVER_PERMFAIL, "message too big");
	}
	enum deliver_status worst = deliver_all(&ctx, results, count, env_from);
	deliver_ctx_free(&ctx);
	return worst;
}

/* deliver_message (deliver-virus.c) scans first, then comes here. */
enum deliver_status deliver_message_scanned(const struct yubin_config *config, struct dir *dir,
                                            int fd, const char *const *recipients,
                                            size_t count, struct deliver_result *results)
{
	return deliver_run(config, dir, fd, NULL, recipients, count, results);
}

/* Scanned here (deliver_scan), then delivered with the sender. */
static enum deliver_status deliver_message_from(const struct yubin_config *config,
                                                struct dir *dir, int fd, const char *from,
                                                const char *const *recipients, size_t count,
                                                struct deliver_result *results)
{
	int cleaned = -1;
	const char *error;
	if (deliver_scan(config, fd, &cleaned, &error) == DELIVER_SCAN_TEMPFAIL) {
		log_warn("deliver status=deferred reason=virus_scan error=\"%s\"", error);
		for (size_t i = 0; i < count; i++) {
			results[i].recipient = recipients[i];
			results[i].status = DELIVER_OK;
			results[i].reason = NULL;
		}
		return deliver_fail_all(results, count, DELIVER_TEMPFAIL,
		                        "virus scan failed, try again later");
	}
	enum deliver_status status = deliver_run(config, dir, cleaned >= 0 ? cleaned : fd, from,
	                                         recipients, count, results);
	if (cleaned >= 0)
		close(cleaned);
	return status;
}

enum deliver_status deliver_message_env(const struct yubin_config *config, struct dir *dir,
                                        int fd, const struct deliver_envelope *env,
                                        const char *const *recipients, size_t count,
                                        struct deliver_result *results)
{
	if (env == NULL || !env->scanned)
		return deliver_message_from(config, dir, fd, env != NULL ? env->from : NULL,
		                            recipients, count, results);
	return deliver_run(config, dir, fd, env->from, recipients, count, results);
}

void deliver_results_free(struct deliver_result *results, size_t count)
{
	for (size_t i = 0; i < count; i++)
		xfree(results[i].reason);
}

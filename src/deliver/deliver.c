/* Local delivery: each recipient is resolved through the directory and
 * every account it reaches gets one copy in its INBOX through the store.
 * The message is read from the caller's file in chunks, never whole. */
#include "deliver/deliver.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dir/dir.h"
#include "fts/fts.h"
#include "lib/config.h"
#include "lib/fdio.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
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

static int deliver_chunk(void *context, const void *data, size_t len)
{
	return store_save_write(context, data, len) < 0 ? 1 : 0;
}

/* Copies the message (pread from offset 0, in chunks) into the save. */
static int deliver_copy(struct deliver_ctx *ctx, struct store_save *save, const char **error_r)
{
	int ret = fd_read_all(ctx->fd, deliver_chunk, save);
	if (ret != 0)
		*error_r = ret < 0 ? "reading the message failed" : "writing the message failed";
	return ret != 0 ? -1 : 0;
}

static enum deliver_status deliver_save_error(struct deliver_ctx *ctx, const char *account,
                                              enum store_error err, const char *error,
                                              const char **reason_r)
{
	if (err == STORE_ERR_QUOTA) {
		log_info("deliver to=%s status=over_quota", account);
		*reason_r = "mailbox full";
		return ctx->config->mail.quota_tempfail ? DELIVER_TEMPFAIL : DELIVER_PERMFAIL;
	}
	log_error("deliver to=%s status=failed error=%s", account, error);
	*reason_r = "temporary local problem, try again later";
	return DELIVER_TEMPFAIL;
}

/* The message is delivered: a failure to index it only costs the first
 * SEARCH that needs it (which catches up), so it is logged, not fatal. */
static void deliver_index(struct store *store, const char *account, uint32_t uid)
{
	const char *error;
	if (fts_index_message(store, "INBOX", uid, &error) < 0)
		log_warn("deliver to=%s uid=%u event=fts_index_failed error=\"%s\"", account, uid,
		         error);
}

/* Saves one copy into the account's INBOX. */
static enum deliver_status deliver_store(struct deliver_ctx *ctx, const char *account,
                                         const struct dir_account *acct, const char **reason_r)
{
	const char *error;
	enum store_error err = STORE_ERR_TEMP;
	struct store *store = NULL;
	char *root = store_account_root(ctx->config->server.data_dir, account);
	enum deliver_status status = DELIVER_TEMPFAIL;
	if (root == NULL) {
		error = "address cannot name a mail folder";
	} else if (store_account_create(root, &error) == 0 &&
	           store_open(root, &store, &error) == 0) {
		store_set_quota(store, acct->quota_bytes, acct->quota_messages);
		struct store_save *save = store_save_begin(store, "INBOX", &err, &error);
		uint32_t uid = 0;
		if (save != NULL && deliver_copy(ctx, save, &error) < 0) {
			err = STORE_ERR_TEMP;
			store_save_abort(&save);
		}
		if (save != NULL && store_save_finish(&save, &uid, &err, &error) == 0) {
			log_info("deliver to=%s uid=%u mailbox=INBOX size=%llu", account, uid,
			         (unsigned long long)ctx->size);
			status = DELIVER_OK;
			deliver_index(store, account, uid);
		}
		store_close(&store);
	}
	if (status != DELIVER_OK)
		status = deliver_save_error(ctx, account, err, error, reason_r);
	free(root);
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
	dir_account_free(&acct);
	return status;
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
	enum deliver_status status = deliver_account(ctx, account, &reason);
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
		log_info("deliver rcpt=%s status=unknown_user", rcpt);
		deliver_result_merge(result, DELIVER_UNKNOWN_USER, "no such user");
		return;
	}
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

enum deliver_status deliver_message(const struct yubin_config *config, struct dir *dir, int fd,
                                    const char *const *recipients, size_t count,
                                    struct deliver_result *results)
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
	enum deliver_status worst = DELIVER_OK;
	for (size_t i = 0; i < count; i++) {
		deliver_recipient(&ctx, &results[i]);
		worst = deliver_worst(worst, results[i].status);
	}
	deliver_ctx_free(&ctx);
	return worst;
}

void deliver_results_free(struct deliver_result *results, size_t count)
{
	for (size_t i = 0; i < count; i++)
		xfree(results[i].reason);
}

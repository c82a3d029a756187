#include "dir/dir-private.h"

#include <stdlib.h>
#include <string.h>

#include "lib/address.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

struct resolve_ctx {
	struct dir *dir;
	const char *origin; /* the address being resolved, for logs */
	char **accounts;
	size_t accounts_count;
	char **external;
	size_t external_count;
	char **expanded; /* aliases already expanded: cuts loops */
	size_t expanded_count;
	/* The aliases from the origin down to the current one, to tell a loop
	 * (worth a warning) from an alias reached twice by two routes. */
	const char *path[DIR_RESOLVE_MAX_DEPTH + 1];
};

static bool strings_contain(char *const *strings, size_t count, const char *s)
{
	for (size_t i = 0; i < count; i++) {
		if (strcmp(strings[i], s) == 0)
			return true;
	}
	return false;
}

static bool path_contains(const struct resolve_ctx *ctx, int depth, const char *alias)
{
	for (int i = 0; i < depth; i++) {
		if (strcmp(ctx->path[i], alias) == 0)
			return true;
	}
	return false;
}

static void push_unique(char ***strings, size_t *count, const char *s)
{
	if (!strings_contain(*strings, *count, s))
		dir_strings_push(strings, count, s);
}

static int resolve_address(struct resolve_ctx *ctx, const char *address, int depth,
                           const char **error_r);

static int resolve_alias(struct resolve_ctx *ctx, const char *alias, char **targets, size_t count,
                         int depth, const char **error_r)
{
	if (strings_contain(ctx->expanded, ctx->expanded_count, alias)) {
		if (path_contains(ctx, depth, alias))
			log_warn("dir resolve address=%s alias=%s problem=loop", ctx->origin,
			         alias);
		return 0;
	}
	dir_strings_push(&ctx->expanded, &ctx->expanded_count, alias);
	ctx->path[depth] = alias;
	for (size_t i = 0; i < count; i++) {
		if (resolve_address(ctx, targets[i], depth + 1, error_r) < 0)
			return -1;
	}
	return 0;
}

/* Local targets must be an account or an alias; anything else in a hosted
 * domain is a stale entry, skipped so that the rest still receive. */
static int resolve_local(struct resolve_ctx *ctx, const char *address, int depth,
                         const char **error_r)
{
	int ret = dir_is_account(ctx->dir, address, error_r);
	if (ret != 0) {
		if (ret > 0)
			push_unique(&ctx->accounts, &ctx->accounts_count, address);
		return ret < 0 ? -1 : 0;
	}
	char **targets = NULL;
	size_t count = 0;
	ret = dir_alias_targets(ctx->dir, address, &targets, &count, error_r);
	if (ret > 0)
		ret = resolve_alias(ctx, address, targets, count, depth, error_r);
	else if (ret == 0)
		log_warn("dir resolve address=%s target=%s problem=no_such_account_or_alias",
		         ctx->origin, address);
	dir_strings_free(&targets, count);
	return ret < 0 ? -1 : 0;
}

static int resolve_address(struct resolve_ctx *ctx, const char *address, int depth,
                           const char **error_r)
{
	if (depth > DIR_RESOLVE_MAX_DEPTH) {
		log_warn("dir resolve address=%s target=%s problem=too_deep max_depth=%d",
		         ctx->origin, address, DIR_RESOLVE_MAX_DEPTH);
		return 0;
	}
	int64_t id;
	int hosted = dir_domain_id(ctx->dir, address_domain(address), &id, error_r);
	if (hosted < 0)
		return -1;
	if (hosted == 0) {
		push_unique(&ctx->external, &ctx->external_count, address);
		return 0;
	}
	return resolve_local(ctx, address, depth, error_r);
}

static void resolve_ctx_free(struct resolve_ctx *ctx)
{
	dir_strings_free(&ctx->accounts, ctx->accounts_count);
	dir_strings_free(&ctx->external, ctx->external_count);
	dir_strings_free(&ctx->expanded, ctx->expanded_count);
}

/* Whether the address itself is an account or alias (1), neither (0). */
static int resolve_known(struct dir *dir, const char *address, const char **error_r)
{
	int ret = dir_is_account(dir, address, error_r);
	if (ret == 0)
		ret = dir_is_alias(dir, address, error_r);
	return ret;
}

/* The whole expansion reads one snapshot of the directory. */
static int resolve_in_transaction(struct resolve_ctx *ctx, const char *address,
                                  const char **error_r)
{
	if (dir_begin(ctx->dir, false, error_r) < 0)
		return -1;
	int ret = resolve_known(ctx->dir, address, error_r);
	if (ret > 0 && resolve_address(ctx, address, 0, error_r) < 0)
		ret = -1;
	dir_rollback(ctx->dir);
	return ret;
}

int dir_resolve(struct dir *dir, const char *address, char ***accounts_r, size_t *accounts_count_r,
                char ***external_r, size_t *external_count_r, const char **error_r)
{
	*accounts_r = *external_r = NULL;
	*accounts_count_r = *external_count_r = 0;
	const char *why;
	char *normalized = address_normalize(address, &why);
	if (normalized == NULL)
		return 0;
	struct resolve_ctx ctx = {.dir = dir, .origin = normalized};
	int ret = resolve_in_transaction(&ctx, normalized, error_r);
	if (ret > 0) {
		*accounts_r = ctx.accounts;
		*accounts_count_r = ctx.accounts_count;
		*external_r = ctx.external;
		*external_count_r = ctx.external_count;
		ctx.accounts = ctx.external = NULL;
		ctx.accounts_count = ctx.external_count = 0;
	}
	resolve_ctx_free(&ctx);
	free(normalized);
	return ret;
}

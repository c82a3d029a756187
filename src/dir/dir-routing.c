/* Routing settings per account (dir.h): one row in `routing`, absent for
 * an account that receives normally. The forwarding targets are kept one
 * per line in forward_to; the caller validated them. */
#include "dir/dir-private.h"

#include <stdlib.h>
#include <string.h>

#include "lib/address.h"
#include "lib/xmalloc.h"

/* Indexed by enum dir_routing_mode: the text in the mode column. */
static const char *const dir_routing_modes[] = {
        [DIR_ROUTING_NORMAL] = "normal",
        [DIR_ROUTING_FORWARD] = "forward",
        [DIR_ROUTING_CLOSED] = "closed",
};

#define DIR_ROUTING_MODE_COUNT (sizeof(dir_routing_modes) / sizeof(dir_routing_modes[0]))

static void dir_routing_defaults(struct dir_routing *r)
{
	memset(r, 0, sizeof(*r));
	r->mode = DIR_ROUTING_NORMAL;
	r->close_reason = xstrdup("");
	r->vacation_subject = xstrdup("");
	r->vacation_body = xstrdup("");
	r->vacation_days = 7;
}

static const char *column_text(sqlite3_stmt *stmt, int col)
{
	const unsigned char *text = sqlite3_column_text(stmt, col);
	return text != NULL ? (const char *)text : "";
}

static enum dir_routing_mode dir_routing_mode_parse(const char *text)
{
	for (size_t i = 0; i < DIR_ROUTING_MODE_COUNT; i++) {
		if (strcmp(dir_routing_modes[i], text) == 0)
			return (enum dir_routing_mode)i;
	}
	return DIR_ROUTING_NORMAL;
}

static void dir_routing_split(struct dir_routing *r, const char *text)
{
	while (*text != '\0') {
		size_t len = strcspn(text, "\n");
		if (len > 0) {
			char *target = xstrndup(text, len);
			dir_strings_push(&r->forward_to, &r->forward_count, target);
			free(target);
		}
		text += len;
		text += *text == '\n';
	}
}

static void dir_routing_from_row(struct dir_routing *r, sqlite3_stmt *stmt)
{
	r->mode = dir_routing_mode_parse(column_text(stmt, 0));
	dir_routing_split(r, column_text(stmt, 1));
	r->keep_copy = sqlite3_column_int(stmt, 2) != 0;
	free(r->close_reason);
	r->close_reason = xstrdup(column_text(stmt, 3));
	r->vacation_enabled = sqlite3_column_int(stmt, 4) != 0;
	free(r->vacation_subject);
	r->vacation_subject = xstrdup(column_text(stmt, 5));
	free(r->vacation_body);
	r->vacation_body = xstrdup(column_text(stmt, 6));
	int64_t days = sqlite3_column_int64(stmt, 7);
	r->vacation_days = days > 0 && days <= UINT32_MAX ? (uint32_t)days : 7;
}

int dir_routing_get(struct dir *dir, const char *address, struct dir_routing *routing_r,
                    const char **error_r)
{
	dir_routing_defaults(routing_r);
	sqlite3_stmt *stmt = dir_stmt(dir,
	                              "SELECT mode, forward_to, keep_copy, close_reason, "
	                              "vacation_enabled, vacation_subject, vacation_body, "
	                              "vacation_days FROM routing WHERE address = ?",
	                              error_r);
	if (stmt == NULL)
		return -1;
	if (dir_bind_text(stmt, 1, address) < 0)
		return dir_db_fail(dir, "reading routing settings", error_r);
	int rc = sqlite3_step(stmt), ret = 0;
	if (rc == SQLITE_ROW)
		dir_routing_from_row(routing_r, stmt);
	else if (rc != SQLITE_DONE)
		ret = dir_db_fail(dir, "reading routing settings", error_r);
	sqlite3_reset(stmt);
	return ret;
}

/* The targets joined by line ends; NULL when one holds a line end or the
 * mode is out of range (a caller's bug, refused rather than stored). */
static char *dir_routing_join(const struct dir_routing *r)
{
	size_t total = 1;
	for (size_t i = 0; i < r->forward_count; i++) {
		if (strpbrk(r->forward_to[i], "\r\n") != NULL || r->forward_to[i][0] == '\0')
			return NULL;
		total += strlen(r->forward_to[i]) + 1;
	}
	char *text = xmalloc(total);
	size_t len = 0;
	for (size_t i = 0; i < r->forward_count; i++) {
		size_t n = strlen(r->forward_to[i]);
		memcpy(text + len, r->forward_to[i], n);
		len += n;
		text[len++] = '\n';
	}
	text[len] = '\0';
	return text;
}

static int dir_routing_bind(sqlite3_stmt *stmt, const char *address, const struct dir_routing *r,
                            const char *targets)
{
	const char *empty = "";
	if (dir_bind_text(stmt, 1, address) < 0 ||
	    dir_bind_text(stmt, 2, dir_routing_modes[r->mode]) < 0 ||
	    dir_bind_text(stmt, 3, targets) < 0 || dir_bind_int(stmt, 4, r->keep_copy) < 0 ||
	    dir_bind_text(stmt, 5, r->close_reason != NULL ? r->close_reason : empty) < 0 ||
	    dir_bind_int(stmt, 6, r->vacation_enabled) < 0 ||
	    dir_bind_text(stmt, 7, r->vacation_subject != NULL ? r->vacation_subject : empty) < 0 ||
	    dir_bind_text(stmt, 8, r->vacation_body != NULL ? r->vacation_body : empty) < 0 ||
	    dir_bind_int(stmt, 9, r->vacation_days) < 0)
		return -1;
	return 0;
}

static int dir_routing_write(struct dir *dir, const char *address, const struct dir_routing *r,
                             const char *targets, const char **error_r)
{
	int ret = dir_is_account(dir, address, error_r);
	if (ret <= 0)
		return ret < 0 ? -1 : dir_fail(dir, error_r, "there is no account %s", address);
	sqlite3_stmt *stmt = dir_stmt(dir,
	                              "INSERT OR REPLACE INTO routing (address, mode, forward_to, "
	                              "keep_copy, close_reason, vacation_enabled, "
	                              "vacation_subject, vacation_body, vacation_days) "
	                              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
	                              error_r);
	if (stmt == NULL)
		return -1;
	if (dir_routing_bind(stmt, address, r, targets) < 0)
		return dir_db_fail(dir, "storing routing settings", error_r);
	return dir_exec_stmt(dir, stmt, "storing routing settings", error_r);
}

int dir_routing_set(struct dir *dir, const char *address, const struct dir_routing *routing,
                    const char **error_r)
{
	const char *why;
	if ((size_t)routing->mode >= DIR_ROUTING_MODE_COUNT)
		return dir_fail(dir, error_r, "invalid routing mode");
	char *normalized = address_normalize(address, &why);
	if (normalized == NULL)
		return dir_fail(dir, error_r, "invalid address: %s", why);
	char *targets = dir_routing_join(routing);
	int ret = -1;
	if (targets == NULL)
		dir_fail(dir, error_r, "a forwarding target is empty or holds a line break");
	else if (dir_begin(dir, true, error_r) == 0)
		ret = dir_routing_write(dir, normalized, routing, targets, error_r) < 0
		              ? dir_abort(dir)
		              : dir_commit(dir, error_r);
	free(targets);
	free(normalized);
	return ret;
}

void dir_routing_free(struct dir_routing *routing)
{
	dir_strings_free(&routing->forward_to, routing->forward_count);
	routing->forward_count = 0;
	xfree(routing->close_reason);
	xfree(routing->vacation_subject);
	xfree(routing->vacation_body);
}

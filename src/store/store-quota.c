/* Quota: bytes and messages over every mailbox of the account. */
#include "store/store-private.h"

void store_set_quota(struct store *store, uint64_t bytes, uint64_t messages)
{
	store->quota_bytes = bytes;
	store->quota_messages = messages;
}

int store_quota_usage(struct store *store, uint64_t *bytes_r, uint64_t *messages_r,
                      const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(
	        store->db, "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM messages", error_r);
	if (stmt == NULL)
		return -1;
	int ret = sqlite3_step(stmt);
	if (ret == SQLITE_ROW) {
		*bytes_r = (uint64_t)sqlite3_column_int64(stmt, 0);
		*messages_r = (uint64_t)sqlite3_column_int64(stmt, 1);
	} else {
		*error_r = store_db_error(store->db, "read");
	}
	store_db_finish(stmt);
	return ret == SQLITE_ROW ? 0 : -1;
}

/* 1 when a message of size bytes would exceed the quota, 0 when it fits,
 * -1 on error. Called under the write lock, so concurrent saves cannot
 * both squeeze into the last free bytes. */
int store_quota_check(struct store *store, uint64_t size, const char **error_r)
{
	if (store->quota_bytes == 0 && store->quota_messages == 0)
		return 0;
	uint64_t bytes, messages;
	if (store_quota_usage(store, &bytes, &messages, error_r) < 0)
		return -1;
	if (store->quota_bytes != 0 &&
	    (size > store->quota_bytes || bytes > store->quota_bytes - size)) {
		*error_r = "mailbox full: quota (bytes) exceeded";
		return 1;
	}
	if (store->quota_messages != 0 && messages >= store->quota_messages) {
		*error_r = "mailbox full: quota (messages) exceeded";
		return 1;
	}
	return 0;
}

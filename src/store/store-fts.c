/* The full-text index: texts per message content (EMAILID) in an FTS5
 * table with the trigram tokenizer (schema 4, docs/store.md "Full-text
 * index"). A term of three characters or more is a phrase of its
 * trigrams, which with a case-sensitive tokenizer matches exactly where
 * the term is a substring; shorter terms scan the stored texts. */
#include "store/store-private.h"

#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"

/* Mailbox id of a client name, no sync (the caller's view is recent). */
static int store_fts_mailbox(struct store *store, const char *mailbox, int64_t *id_r,
                             const char **error_r)
{
	struct store_mailbox mbox;
	enum store_error err;
	if (store_mailbox_lookup(store, mailbox, false, &mbox, &err, error_r) < 0)
		return -1;
	*id_r = mbox.id;
	store_mailbox_clear(&mbox);
	return 0;
}

/* Runs a statement with one text parameter to completion. */
static int store_fts_exec1(sqlite3 *db, const char *sql, const char *arg, const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(db, sql, error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, arg, -1, SQLITE_STATIC);
	int ret = store_db_run(db, stmt, error_r);
	store_db_finish(stmt);
	return ret;
}

/* 1 with the message's EMAILID, 0 when no such message. */
static int store_fts_emailid(sqlite3 *db, int64_t mailbox_id, uint32_t uid, char **emailid_r,
                             const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(
	        db, "SELECT emailid FROM messages WHERE mailbox_id = ? AND uid = ?", error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, mailbox_id);
	sqlite3_bind_int64(stmt, 2, uid);
	int ret = store_db_step_row(db, stmt, error_r);
	if (ret == 1)
		*emailid_r = xstrdup((const char *)sqlite3_column_text(stmt, 0));
	store_db_finish(stmt);
	return ret;
}

static int store_fts_insert(sqlite3 *db, const char *emailid, const struct store_fts_text *t,
                            const char **error_r)
{
	sqlite3_stmt *doc = store_db_prepare(
	        db, "INSERT INTO fts_docs (emailid, header) VALUES (?, ?)", error_r);
	if (doc == NULL)
		return -1;
	sqlite3_bind_text(doc, 1, emailid, -1, SQLITE_STATIC);
	sqlite3_bind_int(doc, 2, t->header ? 1 : 0);
	int ret = store_db_run(db, doc, error_r);
	store_db_finish(doc);
	if (ret < 0)
		return -1;
	sqlite3_stmt *text =
	        store_db_prepare(db, "INSERT INTO fts_text (rowid, text) VALUES (?, ?)", error_r);
	if (text == NULL)
		return -1;
	sqlite3_bind_int64(text, 1, sqlite3_last_insert_rowid(db));
	sqlite3_bind_text(text, 2, t->data, (int)t->len, SQLITE_STATIC);
	ret = store_db_run(db, text, error_r);
	store_db_finish(text);
	return ret;
}

static int store_fts_replace(sqlite3 *db, const char *emailid, unsigned int version,
                             const struct store_fts_text *texts, size_t count, const char **error_r)
{
	if (store_fts_exec1(db,
	                    "DELETE FROM fts_text WHERE rowid IN"
	                    " (SELECT id FROM fts_docs WHERE emailid = ?)",
	                    emailid, error_r) < 0 ||
	    store_fts_exec1(db, "DELETE FROM fts_docs WHERE emailid = ?", emailid, error_r) < 0)
		return -1;
	for (size_t i = 0; i < count; i++) {
		/* an empty text matches nothing a non-empty term could */
		if (texts[i].len > 0 && texts[i].len <= INT32_MAX &&
		    store_fts_insert(db, emailid, &texts[i], error_r) < 0)
			return -1;
	}
	sqlite3_stmt *stmt = store_db_prepare(
	        db, "INSERT OR REPLACE INTO fts_msgs (emailid, version) VALUES (?, ?)", error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, emailid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, version);
	int ret = store_db_run(db, stmt, error_r);
	store_db_finish(stmt);
	return ret;
}

int store_fts_put(struct store *store, const char *mailbox, uint32_t uid, unsigned int version,
                  const struct store_fts_text *texts, size_t count, const char **error_r)
{
	int64_t id;
	char *emailid = NULL;
	bool own = sqlite3_get_autocommit(store->db) != 0;
	if (store_fts_mailbox(store, mailbox, &id, error_r) < 0)
		return -1;
	if (own && store_db_begin(store->db, error_r) < 0)
		return -1;
	int ret = store_fts_emailid(store->db, id, uid, &emailid, error_r);
	if (ret == 1)
		ret = store_fts_replace(store->db, emailid, version, texts, count, error_r);
	free(emailid);
	if (ret < 0) {
		if (own)
			store_db_rollback(store->db);
		return -1;
	}
	return own ? store_db_commit(store->db, error_r) : 0;
}

/* Collects the first column of every row as a UID. */
static int store_fts_uids(sqlite3 *db, sqlite3_stmt *stmt, uint32_t **uids_r, size_t *count_r,
                          const char **error_r)
{
	uint32_t *uids = NULL;
	size_t count = 0, cap = 0;
	int ret;
	while ((ret = store_db_step_row(db, stmt, error_r)) == 1) {
		if (count == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			uids = xreallocarray(uids, cap, sizeof(*uids));
		}
		uids[count++] = (uint32_t)sqlite3_column_int64(stmt, 0);
	}
	store_db_finish(stmt);
	if (ret < 0) {
		free(uids);
		return -1;
	}
	*uids_r = uids;
	*count_r = count;
	return 0;
}

int store_fts_missing(struct store *store, const char *mailbox, unsigned int version,
                      uint32_t **uids_r, size_t *count_r, const char **error_r)
{
	int64_t id;
	if (store_fts_mailbox(store, mailbox, &id, error_r) < 0)
		return -1;
	sqlite3_stmt *stmt = store_db_prepare(
	        store->db,
	        "SELECT m.uid FROM messages m LEFT JOIN fts_msgs f ON f.emailid = m.emailid"
	        " WHERE m.mailbox_id = ? AND (f.version IS NULL OR f.version <> ?) ORDER BY m.uid",
	        error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_int64(stmt, 2, version);
	return store_fts_uids(store->db, stmt, uids_r, count_r, error_r);
}

/* Characters of s when it is valid UTF-8 (shortest forms, no
 * surrogates), else -1: only then does the tokenizer see what we see. */
static long store_fts_chars(const unsigned char *s, size_t len)
{
	long chars = 0;
	for (size_t i = 0; i < len; chars++) {
		unsigned char c = s[i];
		size_t n = c < 0x80                 ? 1
		           : c >= 0xc2 && c <= 0xdf ? 2
		           : c >= 0xe0 && c <= 0xef ? 3
		           : c >= 0xf0 && c <= 0xf4 ? 4
		                                    : 0;
		if (n == 0 || i + n > len)
			return -1;
		for (size_t k = 1; k < n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return -1;
		}
		if ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] >= 0xa0) ||
		    (c == 0xf0 && s[i + 1] < 0x90) || (c == 0xf4 && s[i + 1] >= 0x90))
			return -1;
		i += n;
	}
	return chars;
}

/* An FTS5 phrase: the term in double quotes, '"' doubled. */
static char *store_fts_phrase(const char *term)
{
	size_t len = strlen(term), n = 0;
	char *out = xmalloc(2 * len + 3);
	out[n++] = '"';
	for (const char *p = term; *p != '\0'; p++) {
		if (*p == '"')
			out[n++] = '"';
		out[n++] = *p;
	}
	out[n++] = '"';
	out[n] = '\0';
	return out;
}

int store_fts_search(struct store *store, const char *mailbox, const char *term, bool with_header,
                     uint32_t **uids_r, size_t *count_r, const char **error_r)
{
	static const char sql_match[] =
	        "SELECT DISTINCT m.uid FROM fts_text JOIN fts_docs d ON d.id = fts_text.rowid"
	        " JOIN messages m ON m.emailid = d.emailid WHERE fts_text MATCH ?1"
	        " AND m.mailbox_id = ?2 AND (?3 OR d.header = 0) ORDER BY m.uid";
	static const char sql_scan[] =
	        "SELECT DISTINCT m.uid FROM messages m JOIN fts_docs d ON d.emailid = m.emailid"
	        " JOIN fts_text t ON t.rowid = d.id WHERE m.mailbox_id = ?2"
	        " AND (?3 OR d.header = 0) AND instr(CAST(t.text AS BLOB), ?1) > 0 ORDER BY m.uid";
	int64_t id;
	size_t len = strlen(term);
	if (store_fts_mailbox(store, mailbox, &id, error_r) < 0)
		return -1;
	bool indexed = store_fts_chars((const unsigned char *)term, len) >= 3;
	sqlite3_stmt *stmt = store_db_prepare(store->db, indexed ? sql_match : sql_scan, error_r);
	if (stmt == NULL)
		return -1;
	if (indexed)
		sqlite3_bind_text(stmt, 1, store_fts_phrase(term), -1, free);
	else
		sqlite3_bind_blob(stmt, 1, term, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, id);
	sqlite3_bind_int(stmt, 3, with_header ? 1 : 0);
	return store_fts_uids(store->db, stmt, uids_r, count_r, error_r);
}

int store_fts_begin(struct store *store, const char **error_r)
{
	return store_db_begin(store->db, error_r);
}

int store_fts_commit(struct store *store, const char **error_r)
{
	return store_db_commit(store->db, error_r);
}

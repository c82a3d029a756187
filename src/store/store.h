/* The mail store of one account: a Maildir++ folder tree (the truth for
 * message bytes) plus a per-account SQLite index (index.db, WAL) holding
 * mailboxes (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ) and messages (UID, file,
 * size, internal date, flags, keywords, MODSEQ). Protocol code reaches mail
 * only through this header.
 *
 * Mailbox names are UTF-8 with '/' as the hierarchy separator ("INBOX",
 * "Sent", "Archive/2024"); the store maps them onto Maildir++ folders
 * (".Sent", ".Archive.2024") and refuses any name that could leave the
 * account (empty components, "." or "..", control characters).
 *
 * Durability: store_save_finish() returns only after the message file and
 * its directory entry are fsync'd and the index has the message; a crash at
 * any point loses nothing acknowledged and leaves no partial message
 * visible. See docs/store.md for the file name format and recovery rules. */
#ifndef YUBIN_STORE_H
#define YUBIN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct store;
struct store_save;

enum store_error {
	STORE_OK = 0,
	STORE_ERR_TEMP,        /* I/O error, disk full, lock timeout */
	STORE_ERR_QUOTA,       /* would exceed the account's quota */
	STORE_ERR_NOT_FOUND,   /* no such mailbox or message */
	STORE_ERR_EXISTS,      /* mailbox already exists */
	STORE_ERR_INVALID,     /* bad mailbox name or argument */
	STORE_ERR_CANNOT,      /* not allowed on this mailbox (DELETE INBOX) */
	STORE_ERR_HAS_CHILDREN, /* DELETE of a mailbox that has children */
	STORE_ERR_LIMIT,       /* too many keywords in the mailbox */
};

/* RFC 8474 object ids: a letter and 24 lowercase hex digits, NUL-ended. */
#define STORE_OBJECTID_SIZE 32

/* System flags (IMAP \Seen ...), stored in the index and mirrored into the
 * Maildir file name (S R F T D). */
enum store_flag {
	STORE_FLAG_SEEN = 1 << 0,
	STORE_FLAG_ANSWERED = 1 << 1,
	STORE_FLAG_FLAGGED = 1 << 2,
	STORE_FLAG_DELETED = 1 << 3,
	STORE_FLAG_DRAFT = 1 << 4,
};

/* The special folders every account is created with (RFC 6154 use). */
#define STORE_SPECIAL_FOLDERS { "Sent", "Drafts", "Trash", "Junk", "Archive" }

/* <data_dir>/mail/<domain>/<local>; caller frees. NULL when the address
 * cannot name a folder (no '@', an empty part, a part starting with '.',
 * a '/' or a control byte). */
char *store_account_root(const char *data_dir, const char *address);
/* Creates the Maildir++ tree with INBOX and the special folders and the
 * index. Idempotent: an existing account is left as it is. */
int store_account_create(const char *root, const char **error_r);
/* Removes an account's whole tree (used by `user del`). */
int store_account_remove(const char *root, const char **error_r);

/* Opens an account's store. Brings the index in step with the Maildir
 * when the folders changed behind its back (new files get UIDs, vanished
 * files are removed). */
int store_open(const char *root, struct store **store_r, const char **error_r);
void store_close(struct store **store);
/* 0 = unlimited. Checked by store_save_finish(). */
void store_set_quota(struct store *store, uint64_t bytes, uint64_t messages);
int store_quota_usage(struct store *store, uint64_t *bytes_r,
		      uint64_t *messages_r, const char **error_r);

/* Mailboxes */
struct store_status {
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint32_t messages;
	uint32_t unseen;
	uint64_t size;
};
int store_mailbox_create(struct store *store, const char *name,
			 enum store_error *err_r, const char **error_r);
/* Only UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ (the rest 0), after the same
 * sync, without counting the messages: every change to a mailbox (new,
 * expunged, flags) raises HIGHESTMODSEQ, so an unchanged value means an
 * unchanged mailbox. */
int store_mailbox_state(struct store *store, const char *name, struct store_status *status_r,
			enum store_error *err_r, const char **error_r);
int store_mailbox_status(struct store *store, const char *name,
			 struct store_status *status_r, enum store_error *err_r,
			 const char **error_r);
/* Every mailbox name, sorted ("INBOX" first). */
int store_mailbox_list(struct store *store, char ***names_r, size_t *count_r,
		       const char **error_r);
void store_names_free(char ***names, size_t count);

/* Saving a message: begin, write its bytes (stored exactly as given), then
 * finish (durable, indexed, UID assigned) or abort (nothing left behind). */
struct store_save *store_save_begin(struct store *store, const char *mailbox,
				    enum store_error *err_r, const char **error_r);
int store_save_write(struct store_save *save, const void *data, size_t len);
void store_save_set_flags(struct store_save *save, unsigned int flags);
void store_save_set_internal_date(struct store_save *save, time_t when);
int store_save_finish(struct store_save **save, uint32_t *uid_r,
		      enum store_error *err_r, const char **error_r);
void store_save_abort(struct store_save **save);

/* Reading: a snapshot of a mailbox's messages, ascending UID. */
struct store_msg {
	uint32_t uid;
	uint64_t size;         /* bytes as stored */
	uint64_t vsize;        /* bytes with every LF as CRLF (IMAP RFC822.SIZE) */
	bool eol_missing;      /* the last byte is not LF: POP3 appends CRLF, and its
	                        * sizes count those 2 octets */
	time_t internal_date;
	time_t save_date;
	unsigned int flags;    /* enum store_flag */
	uint64_t modseq;
	char *keywords;        /* space-separated, "" if none */
	char *uidl;            /* stable unique id for POP3 UIDL (<= 70 chars) */
	char emailid[STORE_OBJECTID_SIZE]; /* RFC 8474 EMAILID ("E" + 24 hex);
	                        * a COPY or MOVE keeps it. THREADID is NIL. */
};
int store_msg_list(struct store *store, const char *mailbox,
		   struct store_msg **msgs_r, size_t *count_r,
		   enum store_error *err_r, const char **error_r);
void store_msg_list_free(struct store_msg **msgs, size_t count);
/* Opens the message file read-only (following renames by other sessions).
 * Returns the fd, or -1 with err_r NOT_FOUND when it was expunged. */
int store_msg_open(struct store *store, const char *mailbox, uint32_t uid,
		   enum store_error *err_r, const char **error_r);

/* Changes flags of the given UIDs: mode +1 adds, -1 removes, 0 replaces.
 * Each changed message gets a new MODSEQ. */
int store_flags_update(struct store *store, const char *mailbox,
		       const uint32_t *uids, size_t count, int mode,
		       unsigned int flags, const char **error_r);
/* Removes the given messages (all or none from the index's view; files are
 * unlinked first, so an expunged message never comes back). */
int store_expunge(struct store *store, const char *mailbox,
		  const uint32_t *uids, size_t count, const char **error_r);

/* Exclusive POP3 access to an account (RFC 1939: one session per maildrop):
 * returns 1 and a lock fd to close later, or 0 when another session holds it. */
int store_pop3_lock(struct store *store, int *lock_fd_r, const char **error_r);

/* Rebuilds a lost or damaged index from the Maildir. UIDs are kept where the
 * file names tell them; where they cannot be known, that mailbox's
 * UIDVALIDITY changes. A UID is never reused for other content. */
struct store_rebuild_report {
	size_t mailboxes;
	size_t messages;
	size_t uidvalidity_changed;   /* mailboxes renumbered */
};
int store_rebuild(const char *root, struct store_rebuild_report *report_r,
		  const char **error_r);

/* ------------------------------------------------------------------
 * IMAP support (issue 3). Mailbox names below are client names as for
 * store_mailbox_create (validated, "INBOX" case-insensitive). Every
 * function returns 0 on success (or 1/0 where said), -1 on error with
 * *error_r (see "Errors" in docs/store.md: valid until the next failing
 * store call) and, where it takes one, *err_r saying what kind.
 * ------------------------------------------------------------------ */

/* Keywords (IMAP user flags): atoms (RFC 9051 atom chars, no '\'), at most
 * STORE_KEYWORD_MAX_LEN bytes; a mailbox knows at most STORE_KEYWORDS_MAX
 * distinct ones (then STORE_ERR_LIMIT). Matched case-insensitively and
 * stored with the spelling the mailbox first saw. Index-only: Maildir
 * keyword letters are not used. */
#define STORE_KEYWORD_MAX_LEN 100
#define STORE_KEYWORDS_MAX 100

/* Deletes a mailbox: its messages, folder and index rows. Refuses INBOX
 * (STORE_ERR_CANNOT) and a mailbox with children (STORE_ERR_HAS_CHILDREN);
 * STORE_ERR_NOT_FOUND when it does not exist. Crash-safe: once started it
 * is completed by the next store_open. Subscriptions are kept (RFC 9051
 * 6.3.9). A mailbox created later under the same name has a new
 * UIDVALIDITY and a new MAILBOXID. */
int store_mailbox_delete(struct store *store, const char *name, enum store_error *err_r,
			 const char **error_r);
/* Renames a mailbox and all its children (MAILBOXID, UIDVALIDITY, UIDs and
 * subscriptions move with them). Renaming INBOX creates `to` and moves
 * every INBOX message into it (like store_move), leaving INBOX empty; its
 * children stay (RFC 9051 6.3.6). Refuses an existing target or a target
 * child that exists (STORE_ERR_EXISTS), a target inside the source
 * (STORE_ERR_INVALID). Crash-safe: once started it is completed by the
 * next store_open. */
int store_mailbox_rename(struct store *store, const char *from, const char *to,
			 enum store_error *err_r, const char **error_r);
/* Adds (subscribe true) or removes a name from the subscription list. The
 * name need not exist (RFC 9051 6.3.9); it must be valid. Idempotent. */
int store_mailbox_subscribe(struct store *store, const char *name, bool subscribe,
			    enum store_error *err_r, const char **error_r);
/* Subscribed names, sorted ("INBOX" first); free with store_names_free. */
int store_mailbox_list_subscribed(struct store *store, char ***names_r, size_t *count_r,
				  const char **error_r);

struct store_mailbox_info {
	char mailboxid[STORE_OBJECTID_SIZE]; /* RFC 8474 MAILBOXID ("M" + 24 hex) */
	bool subscribed;
	/* The expunge log is complete for changes after this MODSEQ: VANISHED
	 * since a MODSEQ >= this is exact (see store_vanished_since). */
	uint64_t vanished_min_modseq;
};
/* No sync: cheap, for LIST/STATUS. */
int store_mailbox_info(struct store *store, const char *name, struct store_mailbox_info *info_r,
		       enum store_error *err_r, const char **error_r);
/* Every keyword the mailbox has seen (for FLAGS and PERMANENTFLAGS), in
 * the order first seen; free with store_names_free. */
int store_mailbox_keywords(struct store *store, const char *name, char ***keywords_r,
			   size_t *count_r, enum store_error *err_r, const char **error_r);

/* One message. Fills msg_r (free with store_msg_clear); 0, or -1 with
 * STORE_ERR_NOT_FOUND when no such UID. No sync. */
int store_msg_get(struct store *store, const char *mailbox, uint32_t uid, struct store_msg *msg_r,
		  enum store_error *err_r, const char **error_r);
void store_msg_clear(struct store_msg *msg);

/* The cheap listing: UID, flags, keywords and MODSEQ of every message
 * whose MODSEQ is > changedsince (0 = all), ascending UID. For SELECT,
 * FETCH CHANGEDSINCE, SEARCH MODSEQ and the CONDSTORE part of QRESYNC.
 * Syncs the mailbox first. */
struct store_msg_flags {
	uint32_t uid;
	unsigned int flags;    /* enum store_flag */
	uint64_t modseq;
	const char *keywords;  /* space-separated, "" if none; owned by the array */
};
int store_msg_flags_list(struct store *store, const char *mailbox, uint64_t changedsince,
			 struct store_msg_flags **msgs_r, size_t *count_r, enum store_error *err_r,
			 const char **error_r);
void store_msg_flags_free(struct store_msg_flags **msgs, size_t count);

/* Inclusive UID ranges, ascending and coalesced. */
struct store_uid_range {
	uint32_t first, last;
};
/* UIDs expunged after modseq (RFC 7162 3.2.5.1, VANISHED (EARLIER)). When
 * modseq < vanished_min_modseq (the log does not reach back that far, e.g.
 * after an index rebuild) it returns every UID below UIDNEXT that does not
 * exist now (a superset, which RFC 7162 allows); *exact_r says which.
 * Free *ranges_r with free(). */
int store_vanished_since(struct store *store, const char *mailbox, uint64_t modseq,
			 struct store_uid_range **ranges_r, size_t *count_r, bool *exact_r,
			 enum store_error *err_r, const char **error_r);
/* Both at once, from one snapshot: changed messages (MODSEQ > modseq) and
 * vanished UIDs as store_vanished_since. */
int store_changes_since(struct store *store, const char *mailbox, uint64_t modseq,
			struct store_msg_flags **changed_r, size_t *changed_count_r,
			struct store_uid_range **vanished_r, size_t *vanished_count_r,
			enum store_error *err_r, const char **error_r);

/* What an IMAP session needs to catch up from modseq, from one snapshot:
 * the whole rows of the messages with MODSEQ > modseq (changed or new,
 * ascending UID), the UIDs expunged since (as store_vanished_since, with
 * *exact_r), and the mailbox's HIGHESTMODSEQ at that moment. */
int store_msg_list_since(struct store *store, const char *mailbox, uint64_t modseq,
			 struct store_msg **changed_r, size_t *changed_count_r,
			 struct store_uid_range **vanished_r, size_t *vanished_count_r,
			 bool *exact_r, uint64_t *highestmodseq_r, enum store_error *err_r,
			 const char **error_r);

/* A flag and keyword change (IMAP STORE). mode +1 adds, -1 removes, 0
 * replaces; it applies to system flags when change_flags and to keywords
 * when change_keywords (so STORE FLAGS (\Seen foo) sets both). With
 * conditional set, a message whose MODSEQ is > unchangedsince is left
 * alone and reported in *modified_r (RFC 7162 3.1.3 MODIFIED;
 * UNCHANGEDSINCE 0 is conditional with 0: every message fails). Each
 * message that actually changes gets the same new MODSEQ; UIDs that do
 * not exist are skipped. Keywords are validated before anything changes
 * (STORE_ERR_INVALID, STORE_ERR_LIMIT). One transaction; the Maildir
 * names follow the flags as for store_flags_update. */
struct store_change {
	int mode;
	bool change_flags;
	unsigned int flags;
	bool change_keywords;
	const char *const *keywords;
	size_t keyword_count;
	bool conditional;
	uint64_t unchangedsince;
};
/* modified_r may be NULL unless conditional; free() *modified_r. */
int store_msgs_change(struct store *store, const char *mailbox, const uint32_t *uids, size_t count,
		      const struct store_change *change, uint32_t **modified_r,
		      size_t *modified_count_r, enum store_error *err_r, const char **error_r);
/* Shorthands for store_msgs_change. */
int store_keywords_update(struct store *store, const char *mailbox, const uint32_t *uids,
			  size_t count, int mode, const char *const *keywords, size_t keyword_count,
			  enum store_error *err_r, const char **error_r);
int store_flags_update_unchanged_since(struct store *store, const char *mailbox,
				       const uint32_t *uids, size_t count, int mode,
				       unsigned int flags, uint64_t unchangedsince,
				       uint32_t **failed_r, size_t *failed_count_r,
				       const char **error_r);

/* COPY and MOVE of any number of messages, atomic (all or none, also
 * across a crash or SIGKILL at any moment: see "Copy and move" in
 * docs/store.md). uids may be in any order and may name UIDs that do not
 * exist (skipped). *dst_uids_r (free()) has count entries: the new UID of
 * uids[i] in dst, or 0 when uids[i] does not exist. New UIDs are given in
 * ascending order of the source UIDs (RFC 4315 COPYUID pairs them that
 * way). Flags, keywords, internal date, EMAILID and the cache blob go
 * along; the save date is now. Moving into the same mailbox gives new
 * UIDs. COPY checks the quota (STORE_ERR_QUOTA). */
int store_copy(struct store *store, const char *src, const uint32_t *uids, size_t count,
	       const char *dst, uint32_t **dst_uids_r, enum store_error *err_r,
	       const char **error_r);
int store_move(struct store *store, const char *src, const uint32_t *uids, size_t count,
	       const char *dst, uint32_t **dst_uids_r, enum store_error *err_r,
	       const char **error_r);

/* An opaque per-message blob (the IMAP server keeps its parsed MIME
 * structure there). get: 1 and a malloc'd copy in *data_r (free()), 0
 * when none is stored, -1 on error. set replaces it; setting it for a
 * UID that does not exist is not an error (the message was expunged). The
 * blob follows COPY and MOVE and goes with the message. */
int store_msg_cache_get(struct store *store, const char *mailbox, uint32_t uid, void **data_r,
			size_t *size_r, const char **error_r);
/* The blobs of UIDs first..last in one query, ascending: cb gets each
 * (data valid during the call only). For FETCH of many messages. */
typedef void store_msg_cache_cb(void *context, uint32_t uid, const void *data, size_t size);
int store_msg_cache_get_range(struct store *store, const char *mailbox, uint32_t first,
			      uint32_t last, store_msg_cache_cb *cb, void *context,
			      const char **error_r);
int store_msg_cache_set(struct store *store, const char *mailbox, uint32_t uid, const void *data,
			size_t size, const char **error_r);

/* ------------------------------------------------------------------
 * Full-text index (docs/store.md "Full-text index"): texts of a message
 * (decoded header text, body texts), stored as the caller gives them and
 * kept per message content (EMAILID), so COPY and MOVE carry them along
 * and they go with the last message that has them. The store matches
 * exact substrings (bytes); case folding and decoding belong to the
 * caller (src/fts). Errors as in the IMAP section above.
 * ------------------------------------------------------------------ */

struct store_fts_text {
	bool header; /* header text (TEXT matches it, BODY does not) */
	const char *data; /* UTF-8 */
	size_t len;
};
/* Replaces the texts of message uid (version: the caller's text format,
 * see store_fts_missing). A UID that does not exist is not an error. */
int store_fts_put(struct store *store, const char *mailbox, uint32_t uid, unsigned int version,
		  const struct store_fts_text *texts, size_t count, const char **error_r);
/* UIDs of the mailbox, ascending, whose texts are missing or of another
 * version; free() *uids_r. */
int store_fts_missing(struct store *store, const char *mailbox, unsigned int version,
		      uint32_t **uids_r, size_t *count_r, const char **error_r);
/* UIDs, ascending, of indexed messages with a text containing term
 * (header texts only when with_header). Answered from the trigram index
 * when term is valid UTF-8 of at least 3 characters, else by a scan of
 * the stored texts (never the message files). free() *uids_r. */
int store_fts_search(struct store *store, const char *mailbox, const char *term,
		     bool with_header, uint32_t **uids_r, size_t *count_r, const char **error_r);
/* Groups many store_fts_put calls into one transaction (catching up). */
int store_fts_begin(struct store *store, const char **error_r);
int store_fts_commit(struct store *store, const char **error_r);

/* ------------------------------------------------------------------
 * APPEND in one step and MULTIAPPEND (RFC 3502), and the special-use
 * attributes CREATE may give a mailbox (RFC 6154 CREATE-SPECIAL-USE).
 * ------------------------------------------------------------------ */

/* Keywords the message is saved with, validated as store_msgs_change does
 * (-1 when one is not valid; nothing is set then). They are registered in
 * the mailbox and written with the message row in the commit of
 * store_save_finish(_all); a keyword that would be the mailbox's
 * (STORE_KEYWORDS_MAX + 1)th makes the finish fail with STORE_ERR_LIMIT. */
int store_save_set_keywords(struct store_save *save, const char *const *keywords, size_t count);
/* Finishes saves of one store (any of its mailboxes) in one transaction:
 * all are kept or none is (quota checked for the batch as a whole, I/O,
 * keyword limit). uids_r[i] is the UID of saves[i]. Every saves[i] is
 * consumed and set to NULL, on success and on failure. A crash during the
 * commit may leave the messages already renamed to be adopted by the next
 * store_open, as for a single save. store_save_finish is this with one. */
int store_save_finish_all(struct store_save **saves, size_t count, uint32_t *uids_r,
			  enum store_error *err_r, const char **error_r);

/* Special-use attributes the store keeps for a mailbox: a space-separated
 * list of RFC 6154 attributes ("\Sent"), each '\' and at most 32
 * letters, at most STORE_SPECIAL_USE_MAX bytes in all (else
 * STORE_ERR_INVALID). Kept in a small file in the mailbox's folder, so it
 * moves with a RENAME and goes with a DELETE. "" removes it. Which
 * attributes are allowed is the caller's choice; the default folders of
 * STORE_SPECIAL_FOLDERS have none stored unless set. */
#define STORE_SPECIAL_USE_MAX 200
int store_mailbox_set_special_use(struct store *store, const char *name, const char *attrs,
				  enum store_error *err_r, const char **error_r);
/* 1 with the list in *attrs_r (caller frees), 0 when none is stored, -1
 * on error (STORE_ERR_NOT_FOUND when the mailbox does not exist). */
int store_mailbox_get_special_use(struct store *store, const char *name, char **attrs_r,
				  enum store_error *err_r, const char **error_r);

/* ------------------------------------------------------------------
 * The account's delivery memory (store-memory.c): what delivery must do
 * at most once per period (kind "vacation", "duplicate", "notice"; key
 * any string). Kept in index.db; an entry is pruned once its period is
 * over.
 * ------------------------------------------------------------------ */

/* 1 when (kind, key) was recorded less than seconds before now, 0 when
 * not, -1 on error. */
int store_memory_seen(struct store *store, const char *kind, const char *key, uint64_t seconds,
		      time_t now, const char **error_r);
/* Records (kind, key) at now, kept for seconds (replacing an older one). */
int store_memory_record(struct store *store, const char *kind, const char *key,
			uint64_t seconds, time_t now, const char **error_r);

#endif

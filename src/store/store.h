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
};

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

#endif

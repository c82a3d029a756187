/* The IMAP server's insides, shared by its files: the session, the command
 * table, the selected mailbox view, FETCH and SEARCH. */
#ifndef YUBIN_IMAP_PRIVATE_H
#define YUBIN_IMAP_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "imap/imap-parser.h"
#include "imap/imap-seqset.h"
#include "imap/imap.h"
#include "lib/buf.h"
#include "store/store.h"

struct conn;
struct dir;
struct mime_part;
struct notify_watch;
struct sasl;

/* Bytes read from the connection at a time; what the parser has not
 * consumed waits here (pipelined commands). */
#define IMAP_INBUF_SIZE (16 * 1024)
/* Limits before login are tight: a stranger gets little memory. */
#define IMAP_PRELOGIN_LINE 8192
#define IMAP_PRELOGIN_LITERAL 8192
#define IMAP_PRELOGIN_DEPTH 8
#define IMAP_PRELOGIN_ARGS 32
#define IMAP_MAX_DEPTH 32
#define IMAP_MAX_ARGS 10000
/* Message files are read in chunks of this size. */
#define IMAP_READ_CHUNK (64 * 1024)
/* Parsed MIME trees kept per session (a second FETCH does not re-parse). */
#define IMAP_PART_CACHE 32
/* Messages whose structure blobs one FETCH reads ahead in one query. */
#define IMAP_PREFETCH_WINDOW 256

/* The states are bits so that a command can name several. */
enum imap_state {
	IMAP_STATE_NOAUTH = 1 << 0,
	IMAP_STATE_AUTH = 1 << 1,
	IMAP_STATE_SELECTED = 1 << 2,
	IMAP_STATE_LOGOUT = 1 << 3,
};

/* struct imap_cmd_def flags */
#define IMAP_CMD_UID 0x01        /* also as "UID <name>" */
#define IMAP_CMD_SYNC 0x02       /* report mailbox changes before the tagged reply */
#define IMAP_CMD_NO_EXPUNGE 0x04 /* (non-UID) FETCH, STORE, SEARCH: RFC 9051 7.5.1 */

struct imap_session;

struct imap_cmd_def {
	const char *name;
	void (*handler)(struct imap_session *sess, const struct imap_arg *args, unsigned int count);
	unsigned int states; /* enum imap_state bits */
	unsigned int flags;
};

/* The selected mailbox as this session sees it: message sequence number
 * n is msgs[n - 1]. Changes by others reach it only through
 * imap_mailbox_sync(), at the points RFC 9051 allows. */
struct imap_mailbox {
	char *name; /* the store's UTF-8 name */
	bool readonly;
	uint32_t uidvalidity;
	uint32_t uidnext;
	/* HIGHESTMODSEQ the view is known to be in step with; 0 forces the
	 * next sync to compare every message. */
	uint64_t synced_modseq;
	struct store_msg *msgs;
	size_t count;
	char **keywords; /* the mailbox's keywords as last announced (FLAGS) */
	size_t keyword_count;
};

/* Cache blobs read ahead for a FETCH of many messages: one index query per
 * window instead of one per message (imap_parts_prefetch). */
struct imap_blob_batch {
	char *mailbox;
	uint32_t uidvalidity;
	uint32_t first, last; /* the UID range read: a UID inside without a blob has none */
	uint32_t *uids;       /* ascending */
	void **data;
	size_t *size;
	size_t count, alloc;
};

struct imap_part_cache_entry {
	uint32_t uidvalidity;
	uint32_t uid;
	char *mailbox;
	struct mime_part *root;
	uint64_t used; /* LRU clock */
};

/* APPEND in progress: each message literal streams into its own store
 * save (with its flags and keywords); all are committed together when the
 * command ends (MULTIAPPEND, RFC 3502: all or none). */
struct imap_append {
	char *mailbox;
	struct store_save **saves; /* one per literal announced so far */
	size_t count;
	uint64_t size; /* bytes of every literal */
	bool failed;   /* a write failed: the command fails at its end */
};

struct imap_fetch;

struct imap_session {
	struct conn *conn;
	enum imap_state state;

	/* Lifetime (as in pop3): on_close only marks the session closed while
	 * a callback runs; the outermost leave frees it. */
	unsigned int depth;
	bool closing, closed;
	bool input_paused;
	bool tls_starting;
	bool in_input; /* the input loop is running */
	unsigned int bad_commands;

	struct imap_parser *parser;
	char inbuf[IMAP_INBUF_SIZE];
	size_t in_pos, in_len;

	/* The command running now; tag is NULL between commands. */
	char *tag;
	const struct imap_cmd_def *cmd;
	bool uid;                 /* the UID variant */
	bool cmd_ignored_literal; /* a literal of this command was refused */

	/* Not authenticated */
	struct sasl *sasl;
	char *sasl_mech;
	char *delayed_reply; /* sent when the failure delay ends */

	/* Authenticated */
	char *address;
	struct store *store;
	bool rev2; /* ENABLE IMAP4rev2 */
	bool utf8; /* ENABLE UTF8=ACCEPT */
	bool condstore; /* CONDSTORE enabled (ENABLE, or a CONDSTORE-enabling command) */
	bool qresync;   /* ENABLE QRESYNC: VANISHED replaces EXPUNGE */
	/* SEARCHRES (RFC 5182): the UIDs of the last SEARCH ... RETURN (SAVE),
	 * ascending; "$" in a sequence set stands for them. */
	uint32_t *searchres;
	size_t searchres_count;
	struct imap_mailbox *mbox;
	struct imap_append *append;
	bool idling;                     /* IDLE waits for DONE */
	struct notify_watch *idle_watch; /* while idling */
	/* Woken by notify, waiting for its turn to sync (cmd-idle.c) */
	bool idle_queued;
	struct imap_session *idle_prev, *idle_next;
	struct imap_part_cache_entry cache[IMAP_PART_CACHE];
	struct imap_blob_batch blobs;
	uint64_t cache_clock;

	/* A long reply (FETCH): step() writes while the output is below the
	 * high watermark and returns true when it finished (and replied). */
	bool (*job)(struct imap_session *sess);
	struct imap_fetch *fetch;

	uint64_t fetch_count, append_count, expunge_count;
	/* QUOTA: the account's limits as last read from the directory
	 * (0 = unlimited), also handed to the store (cmd-quota.c). */
	uint64_t quota_bytes, quota_messages;
};

/* imap-session.c */
const struct imap_cmd_def *imap_cmd_find(const char *name);
struct dir *imap_session_dir(struct imap_session *sess, const char **error_r);
void imap_session_close(struct imap_session *sess);
void imap_session_pause(struct imap_session *sess);
void imap_session_resume(struct imap_session *sess);
void imap_session_enter(struct imap_session *sess);
void imap_session_leave(struct imap_session *sess);
/* Starts sess->job: a first step now; input waits until it is done. */
void imap_session_run_job(struct imap_session *sess);
/* Parser limits for the session's state (tighter before login). */
void imap_session_set_limits(struct imap_session *sess);
/* Counts a bad command; closes the session after too many. */
void imap_session_bad_command(struct imap_session *sess);

/* imap-response.c */
void imap_send(struct imap_session *sess, const void *data, size_t len);
/* "* <text>\r\n" */
void imap_untagged(struct imap_session *sess, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* Ends the running command: reports mailbox changes when the command
 * allows it, then "<tag> <text>\r\n". */
void imap_done(struct imap_session *sess, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* "<tag> BAD <text>" and counts a bad command. */
void imap_bad(struct imap_session *sess, const char *text);
/* "<tag> NO [SERVERBUG] ..." with the session id; logs what for the operator. */
void imap_internal_error(struct imap_session *sess, const char *what, const char *error);
/* The NO for a store error (mailbox missing, exists, quota ...). */
void imap_store_error(struct imap_session *sess, enum store_error err, const char *what,
                      const char *error);
/* The CAPABILITY list for the session's state, without "* CAPABILITY ". */
void imap_capability_string(struct imap_session *sess, struct buf *out);
/* Writes s as an IMAP astring/string for a response. */
void imap_append_astring(struct imap_session *sess, struct buf *out, const char *s);
/* The session user or "-" (logs). */
const char *imap_user(const struct imap_session *sess);

/* imap-mailbox.c: names and the selected view */
/* A mailbox name as the client sent it (mUTF-7, or UTF-8 after ENABLE
 * UTF8=ACCEPT) to the store's UTF-8 form, INBOX folded; NULL with a
 * client text (static) when it cannot be a name. Caller frees. */
char *imap_mailbox_from_client(struct imap_session *sess, const char *name, const char **error_r);
/* The store's name as the client sees it (mUTF-7 or UTF-8); caller frees. */
char *imap_mailbox_to_client(struct imap_session *sess, const char *name);
void imap_mailbox_free(struct imap_mailbox **mbox);
/* Reports what changed since the view was taken (EXISTS, FETCH FLAGS and,
 * when allowed, EXPUNGE or with QRESYNC VANISHED: imap-condstore.h) and
 * takes the new view. */
void imap_mailbox_sync(struct imap_session *sess, bool allow_expunge);
/* The first index of the view whose UID is >= uid (count when none). */
size_t imap_mailbox_lower_bound(const struct imap_mailbox *mbox, uint32_t uid);
/* Index of uid in the view, or -1. */
ssize_t imap_mailbox_find_uid(const struct imap_mailbox *mbox, uint32_t uid);
/* Resolves a sequence set argument (message numbers, or UIDs when
 * sess->uid) to the indexes of the view, ascending. Returns -1 after
 * answering BAD. */
int imap_mailbox_seqset(struct imap_session *sess, const struct imap_arg *arg, size_t **idx_r,
                        size_t *count_r);
/* "(\Seen \Deleted $Junk)": system flags, then the space-separated
 * keywords (may be NULL). */
void imap_flags_write(struct buf *out, unsigned int flags, const char *keywords);
/* A keyword the store can keep: an atom without '\', not too long. */
bool imap_keyword_valid(const char *name);
/* Whether the space-separated list holds keyword (ASCII case ignored). */
bool imap_keywords_contain(const char *list, const char *keyword);
/* Sends FLAGS and PERMANENTFLAGS for the view's keyword list. */
void imap_mailbox_flags_send(struct imap_session *sess);
/* Reloads the mailbox's keywords; when new ones appeared, tells the
 * client with FLAGS and PERMANENTFLAGS (RFC 9051 7.3.2). */
void imap_mailbox_keywords_sync(struct imap_session *sess);
/* A system flag name to its bit; 0 when unknown. */
unsigned int imap_flag_parse(const char *name);
/* Sorts one flag of a client's flag list (STORE, APPEND): a system flag is
 * added to *flags (returns 1), a keyword is appended to keywords[*count]
 * (the caller sized the array to the list; returns 0), \Recent belongs to
 * the server and is skipped (0); -1 when the name is invalid. */
int imap_flag_classify(const char *name, unsigned int *flags, const char **keywords,
		       size_t *count);
/* A message's MIME tree from the cache or parsed now; NULL after an
 * answer (the message vanished or cannot be read). */
const struct mime_part *imap_message_parts(struct imap_session *sess, const struct store_msg *msg,
                                           enum store_error *err_r, const char **error_r);
void imap_part_cache_clear(struct imap_session *sess);
/* The header lines the index keeps for a message (mime_cached_fields),
 * from a tree already at hand or straight from a prefetched blob without
 * building the tree; appended to out. 1 when found, 0 when not (then the
 * caller reads the file). */
int imap_message_cached_header(struct imap_session *sess, const struct store_msg *msg,
                               struct buf *out);
/* Reads the index's structure blobs of view messages idx[0..count)
 * (ascending) in one query, for imap_message_parts to take. */
void imap_parts_prefetch(struct imap_session *sess, const size_t *idx, size_t count);

/* Command handlers (cmd-*.c) */
#define IMAP_HANDLER(name) \
	void name(struct imap_session *sess, const struct imap_arg *args, unsigned int count)
IMAP_HANDLER(imap_cmd_capability);
IMAP_HANDLER(imap_cmd_noop);
IMAP_HANDLER(imap_cmd_logout);
IMAP_HANDLER(imap_cmd_id);
IMAP_HANDLER(imap_cmd_enable);
IMAP_HANDLER(imap_cmd_namespace);
IMAP_HANDLER(imap_cmd_starttls);
IMAP_HANDLER(imap_cmd_login);
IMAP_HANDLER(imap_cmd_authenticate);
IMAP_HANDLER(imap_cmd_list);
IMAP_HANDLER(imap_cmd_create);
IMAP_HANDLER(imap_cmd_status);
IMAP_HANDLER(imap_cmd_select);
IMAP_HANDLER(imap_cmd_examine);
IMAP_HANDLER(imap_cmd_close);
IMAP_HANDLER(imap_cmd_unselect);
IMAP_HANDLER(imap_cmd_fetch);
IMAP_HANDLER(imap_cmd_store);
IMAP_HANDLER(imap_cmd_expunge);
IMAP_HANDLER(imap_cmd_append);
IMAP_HANDLER(imap_cmd_search);
IMAP_HANDLER(imap_cmd_sort);   /* cmd-sort.c, SORT (RFC 5256) */
IMAP_HANDLER(imap_cmd_thread); /* cmd-sort.c, THREAD (RFC 5256) */
IMAP_HANDLER(imap_cmd_delete);
IMAP_HANDLER(imap_cmd_rename);
IMAP_HANDLER(imap_cmd_subscribe);
IMAP_HANDLER(imap_cmd_unsubscribe);
IMAP_HANDLER(imap_cmd_lsub);
IMAP_HANDLER(imap_cmd_copy);
IMAP_HANDLER(imap_cmd_move);
IMAP_HANDLER(imap_cmd_idle);
IMAP_HANDLER(imap_cmd_getquotaroot); /* cmd-quota.c, QUOTA (RFC 9208) */
IMAP_HANDLER(imap_cmd_getquota);
IMAP_HANDLER(imap_cmd_setquota);
IMAP_HANDLER(imap_cmd_compress);

/* cmd-idle.c: the raw line that ends IDLE ("DONE", else BAD) */
void imap_idle_line(struct imap_session *sess, const char *line, size_t len);
/* Leaves IDLE without answering (parse error, close). */
void imap_idle_stop(struct imap_session *sess);

/* cmd-auth.c: a raw line while an AUTHENTICATE exchange waits */
void imap_auth_continue(struct imap_session *sess, const char *line, size_t len);
void imap_auth_abort(struct imap_session *sess);

/* cmd-append.c: the literal of an APPEND */
/* Decides on the literal announced for the command so far; returns -1
 * when it was refused (after answering). */
int imap_append_literal(struct imap_session *sess, const struct imap_command *cmd,
                        const struct imap_literal_info *lit);
void imap_append_data(struct imap_session *sess, const void *data, size_t len);
void imap_append_free(struct imap_session *sess);

/* cmd-list.c: a LIST pattern ('*', '%') against a store name */
bool imap_list_match(const char *pattern, const char *name);
/* cmd-list.c: the RFC 6154 attributes of a mailbox: those CREATE (USE
 * (...)) stored, else the default of the special folders; NULL when none.
 * Caller frees. */
char *imap_list_special_use(struct imap_session *sess, const char *name);
/* cmd-list.c: CREATE's parameter list (RFC 4466), USE (...) of RFC 6154
 * CREATE-SPECIAL-USE: 0 with the attributes (or "") in *use_r (caller
 * frees); -1 after answering BAD or NO [USEATTR]. */
int imap_create_params(struct imap_session *sess, const struct imap_arg *arg, char **use_r);
/* Gives the mailbox just created the attributes use (NULL or "": none);
 * when that fails the mailbox is removed again and -1 returned after
 * answering. */
int imap_create_use(struct imap_session *sess, const char *name, const char *use);

/* cmd-quota.c: reads the account's quota from the directory into the
 * session and the store (login, APPEND); -1 when it cannot (logged). */
int imap_quota_load(struct imap_session *sess);

/* cmd-status.c: STATUS items, also for LIST RETURN (STATUS ...) */
int imap_status_parse_items(const struct imap_arg *arg, unsigned int *items_r);
/* "* STATUS name (...)" for the store name; -1 with the store's error. */
int imap_status_send(struct imap_session *sess, const char *name, unsigned int items,
                     enum store_error *err_r, const char **error_r);

/* cmd-select.c */
void imap_select_close(struct imap_session *sess);

/* imap-fetch.c */
void imap_fetch_free(struct imap_session *sess);

/* Helpers shared by FETCH and SEARCH (imap-fetch.c) */
/* "17-Jul-1996 02:44:25 +0000" */
void imap_date_time_write(struct buf *out, time_t t);
/* Reads len bytes at offset into out (bounded by out's maximum). */
int imap_read_range(int fd, uint64_t offset, uint64_t len, struct buf *out, const char **error_r);

/* The transformation BODY[] applies while streaming: every LF not preceded
 * by CR becomes CRLF. Fed any split of the input it gives the same output
 * (prev_cr: the byte before the first one fed is CR). */
struct imap_crlf {
	bool last_cr;
	bool mask_nul; /* NUL becomes 0x80: a string literal cannot hold NUL
	                * (RFC 9051 4.3); only BINARY may send it (literal8) */
};
void imap_crlf_init(struct imap_crlf *c, bool prev_cr, bool mask_nul);
/* Converts in into out (room for 2 * len bytes); returns the bytes written. */
size_t imap_crlf_chunk(struct imap_crlf *c, const char *in, size_t len, char *out);

/* imap-search.c */
struct imap_search;
/* Parses search keys (after RETURN and CHARSET). NULL after BAD/NO. */
struct imap_search *imap_search_parse(struct imap_session *sess, const struct imap_arg *args,
                                      unsigned int count);
/* Resolves "*" in the keys against the view; call before matching. */
void imap_search_prepare(struct imap_session *sess, struct imap_search *search);
/* Whether message idx of the view matches; -1 on a storage error. */
int imap_search_match(struct imap_session *sess, struct imap_search *search, size_t idx);
void imap_search_free(struct imap_search **search);
/* As imap_search_parse, with the search strings in charset (NULL: UTF-8);
 * answers NO [BADCHARSET] (*no_r true) for a charset it cannot use. */
struct imap_search *imap_search_parse_charset(struct imap_session *sess,
                                              const struct imap_arg *args, unsigned int count,
                                              const char *charset, bool *no_r);
/* The parsed keys hold MODSEQ (RFC 7162 3.1.5). */
bool imap_search_has_modseq(const struct imap_search *search);
/* A message's MODSEQ as of this search (for the MODSEQ in its result). */
uint64_t imap_search_msg_modseq(const struct imap_search *search, const struct store_msg *msg);
/* Adds ascending numbers to set, normalizing once. */
void imap_seqset_add_sorted(struct imap_seqset *set, const uint32_t *nums, size_t count);
/* BODY/TEXT through the full-text index (imap_search_prepare uses it):
 * for forcing the scan instead (tests comparing both ways). */
void imap_search_set_scan(struct imap_search *search, bool scan);
/* Adds the saved SEARCHRES result to set, as message numbers of the view
 * or (uid) UIDs; expunged messages are not in the view and drop out. */
void imap_searchres_add(struct imap_session *sess, struct imap_seqset *set, bool uid);
/* Indexes newly saved messages for BODY/TEXT search; best effort (logged). */
void imap_search_index(struct imap_session *sess, const char *mailbox, const uint32_t *uids,
                       size_t count);
/* RFC 3501 date "1-Feb-1994" to the time of that day's 00:00 UTC. */
int imap_date_parse(const char *str, time_t *t_r);
/* A date of RFC 5322 (the Date: field) to 00:00 UTC of its day. */
int imap_rfc5322_date(const char *value, time_t *day_r);

#endif

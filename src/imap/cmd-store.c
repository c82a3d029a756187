/* STORE and UID STORE (RFC 9051 6.4.6): system flags and keywords in one
 * store transaction (store_msgs_change). FLAGS replaces both; +FLAGS and
 * -FLAGS touch only the kinds the list names. (UNCHANGEDSINCE n) makes it
 * conditional (RFC 7162 3.1.3). */
#include "imap/imap-condstore.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/xmalloc.h"

struct imap_store_req {
	int mode; /* +1, -1, 0 */
	bool silent;
	bool conditional; /* (UNCHANGEDSINCE n), RFC 7162 3.1.3 */
	uint64_t unchangedsince;
	unsigned int flags;
	bool has_flags;
	const char **keywords; /* point into the command's arguments */
	size_t keyword_count;
};

static int imap_store_item(struct imap_store_req *req, const char *item)
{
	req->mode = 0;
	if (*item == '+' || *item == '-')
		req->mode = *item++ == '+' ? 1 : -1;
	if (strncasecmp(item, "FLAGS", 5) != 0)
		return -1;
	item += 5;
	if (*item == '\0')
		return 0;
	if (strcasecmp(item, ".SILENT") != 0)
		return -1;
	req->silent = true;
	return 0;
}

/* One flag: a system flag sets a bit, a keyword joins the list, \Recent
 * is the server's and ignored. */
static int imap_store_flag(struct imap_store_req *req, const struct imap_arg *arg)
{
	const char *name;
	if (!imap_arg_get_flag(arg, false, &name))
		return -1;
	int ret = imap_flag_classify(name, &req->flags, req->keywords, &req->keyword_count);
	if (ret == 1)
		req->has_flags = true;
	return ret < 0 ? -1 : 0;
}

static int imap_store_flags(struct imap_store_req *req, const struct imap_arg *args,
                            unsigned int count)
{
	const struct imap_arg *list = args;
	unsigned int n = count;
	if (count == 1 && args[0].type == IMAP_ARG_LIST && !imap_arg_get_list(&args[0], &list, &n))
		return -1;
	req->keywords = xcalloc(n + 1, sizeof(req->keywords[0]));
	for (unsigned int i = 0; i < n; i++) {
		if (imap_store_flag(req, &list[i]) < 0)
			return -1;
	}
	return 0;
}

/* The view takes the store's result: keywords keep the spelling the
 * mailbox first saw, which only the store knows. */
static void imap_store_refresh(struct imap_session *sess, struct store_msg *msg)
{
	struct store_msg cur;
	enum store_error err;
	const char *error;
	if (store_msg_get(sess->store, sess->mbox->name, msg->uid, &cur, &err, &error) < 0)
		return; /* expunged meanwhile: the next sync reports it */
	msg->flags = cur.flags;
	msg->modseq = cur.modseq;
	char *tmp = msg->keywords;
	msg->keywords = cur.keywords;
	cur.keywords = tmp;
	store_msg_clear(&cur);
}

/* (UNCHANGEDSINCE n): the only store modifier there is. */
static int imap_store_modifiers(struct imap_store_req *req, const struct imap_arg *arg)
{
	const struct imap_arg *list;
	unsigned int n;
	if (!imap_arg_get_list(arg, &list, &n) || n != 2 ||
	    !imap_arg_atom_equals(&list[0], "UNCHANGEDSINCE") ||
	    !imap_modseq_parse(&list[1], true, &req->unchangedsince))
		return -1;
	req->conditional = true;
	return 0;
}

/* The tagged OK, with [MODIFIED set] for the messages the UNCHANGEDSINCE
 * test left alone (modified[] ascending): UIDs for UID STORE, message
 * numbers otherwise. */
static void imap_store_done(struct imap_session *sess, const uint32_t *modified, size_t n)
{
	if (n == 0) {
		imap_done(sess, "OK Store completed");
		return;
	}
	struct imap_seqset set;
	struct buf text = BUF_INIT(0);
	imap_seqset_init(&set);
	for (size_t i = 0; i < n; i++) {
		ssize_t idx = imap_mailbox_find_uid(sess->mbox, modified[i]);
		uint32_t num = sess->uid ? modified[i] : (uint32_t)(idx + 1);
		if (sess->uid || idx >= 0)
			imap_condstore_set_push(&set, num, num);
	}
	imap_seqset_format(&set, &text);
	imap_done(sess, "OK [MODIFIED %s] Conditional STORE failed", buf_str(&text));
	buf_free(&text);
	imap_seqset_free(&set);
}

static int imap_store_change(struct imap_session *sess, const struct imap_store_req *req,
                             const size_t *idx, size_t n, uint32_t **modified_r,
                             size_t *modified_count_r)
{
	struct store_change change = {
	        .mode = req->mode,
	        .change_flags = req->mode == 0 || req->has_flags,
	        .flags = req->flags,
	        .change_keywords = req->mode == 0 || req->keyword_count > 0,
	        .keywords = (const char *const *)req->keywords,
	        .keyword_count = req->keyword_count,
	        .conditional = req->conditional,
	        .unchangedsince = req->unchangedsince,
	};
	enum store_error err = STORE_OK;
	const char *error;
	uint32_t *uids = xcalloc(n + 1, sizeof(uint32_t));
	for (size_t i = 0; i < n; i++)
		uids[i] = sess->mbox->msgs[idx[i]].uid;
	int ret = store_msgs_change(sess->store, sess->mbox->name, uids, n, &change, modified_r,
	                            modified_count_r, &err, &error);
	free(uids);
	if (ret == 0)
		return 0;
	if (err == STORE_ERR_INVALID)
		imap_bad(sess, "Invalid keyword");
	else if (err == STORE_ERR_LIMIT)
		imap_done(sess, "NO [LIMIT] Too many keywords in this mailbox");
	else
		imap_internal_error(sess, "store_msgs_change", error);
	return -1;
}

static int imap_store_uid_cmp(const void *a, const void *b)
{
	uint32_t ua = *(const uint32_t *)a, ub = *(const uint32_t *)b;
	return ua < ub ? -1 : ua > ub;
}

static bool imap_store_was_modified(const uint32_t *modified, size_t n, uint32_t uid)
{
	return n > 0 && bsearch(&uid, modified, n, sizeof(uint32_t), imap_store_uid_cmp) != NULL;
}

/* Each message that passed gets its FETCH: with .SILENT only when
 * CONDSTORE is on and its MODSEQ moved, then without FLAGS (RFC 7162
 * 3.1.3: the client must learn the new mod-sequence). */
static void imap_store_report(struct imap_session *sess, const struct imap_store_req *req,
                              const size_t *idx, size_t n, const uint32_t *modified,
                              size_t modified_count)
{
	for (size_t i = 0; i < n; i++) {
		struct store_msg *msg = &sess->mbox->msgs[idx[i]];
		if (imap_store_was_modified(modified, modified_count, msg->uid))
			continue;
		uint64_t before = msg->modseq;
		imap_store_refresh(sess, msg);
		if (!req->silent)
			imap_flags_fetch_send(sess, idx[i], true);
		else if (sess->condstore && msg->modseq != before)
			imap_flags_fetch_send(sess, idx[i], false);
	}
}

static void imap_store_run(struct imap_session *sess, const struct imap_store_req *req,
                           const size_t *idx, size_t n)
{
	uint32_t *modified = NULL;
	size_t modified_count = 0;
	if (n > 0 && imap_store_change(sess, req, idx, n, &modified, &modified_count) < 0)
		return;
	if (modified_count > 1)
		qsort(modified, modified_count, sizeof(uint32_t), imap_store_uid_cmp);
	if (req->keyword_count > 0)
		imap_mailbox_keywords_sync(sess);
	imap_store_report(sess, req, idx, n, modified, modified_count);
	imap_store_done(sess, modified, modified_count);
	free(modified);
}

/* STORE set [(UNCHANGEDSINCE n)] item flags */
static int imap_store_parse(struct imap_session *sess, struct imap_store_req *req,
                            const struct imap_arg *args, unsigned int count)
{
	const char *item;
	unsigned int i = 1;
	if (count >= 4 && args[1].type == IMAP_ARG_LIST) {
		if (imap_store_modifiers(req, &args[1]) < 0)
			return -1;
		imap_condstore_enable(sess);
		i = 2;
	}
	if (count < i + 2 || !imap_arg_get_atom(&args[i], &item) ||
	    imap_store_item(req, item) < 0 ||
	    imap_store_flags(req, &args[i + 1], count - i - 1) < 0)
		return -1;
	return 0;
}

IMAP_HANDLER(imap_cmd_store)
{
	struct imap_store_req req = {0};
	size_t *idx = NULL, n = 0;
	if (count < 3 || imap_store_parse(sess, &req, args, count) < 0)
		imap_bad(sess, "Invalid STORE arguments");
	else if (sess->mbox->readonly)
		imap_done(sess, "NO [READ-ONLY] Mailbox is read-only");
	else if (imap_mailbox_seqset(sess, &args[0], &idx, &n) == 0)
		imap_store_run(sess, &req, idx, n);
	free(idx);
	free(req.keywords);
}

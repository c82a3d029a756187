/* STORE and UID STORE (RFC 9051 6.4.6): system flags and keywords in one
 * store transaction (store_msgs_change). FLAGS replaces both; +FLAGS and
 * -FLAGS touch only the kinds the list names. */
#include "imap/imap-private.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/xmalloc.h"

struct imap_store_req {
	int mode; /* +1, -1, 0 */
	bool silent;
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

static void imap_store_report(struct imap_session *sess, size_t idx)
{
	const struct store_msg *msg = &sess->mbox->msgs[idx];
	struct buf line = BUF_INIT(0);
	buf_printf(&line, "%zu FETCH (", idx + 1);
	if (sess->uid)
		buf_printf(&line, "UID %" PRIu32 " ", msg->uid);
	buf_append_str(&line, "FLAGS ");
	imap_flags_write(&line, msg->flags, msg->keywords);
	buf_append_char(&line, ')');
	imap_untagged(sess, "%s", buf_str(&line));
	buf_free(&line);
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

static int imap_store_change(struct imap_session *sess, const struct imap_store_req *req,
                             const size_t *idx, size_t n)
{
	struct store_change change = {
	        .mode = req->mode,
	        .change_flags = req->mode == 0 || req->has_flags,
	        .flags = req->flags,
	        .change_keywords = req->mode == 0 || req->keyword_count > 0,
	        .keywords = (const char *const *)req->keywords,
	        .keyword_count = req->keyword_count,
	};
	enum store_error err = STORE_OK;
	const char *error;
	uint32_t *uids = xcalloc(n + 1, sizeof(uint32_t));
	for (size_t i = 0; i < n; i++)
		uids[i] = sess->mbox->msgs[idx[i]].uid;
	int ret = store_msgs_change(sess->store, sess->mbox->name, uids, n, &change, NULL, NULL,
	                            &err, &error);
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

static void imap_store_run(struct imap_session *sess, const struct imap_store_req *req,
                           const size_t *idx, size_t n)
{
	if (n > 0 && imap_store_change(sess, req, idx, n) < 0)
		return;
	if (req->keyword_count > 0)
		imap_mailbox_keywords_sync(sess);
	for (size_t i = 0; i < n; i++) {
		imap_store_refresh(sess, &sess->mbox->msgs[idx[i]]);
		if (!req->silent)
			imap_store_report(sess, idx[i]);
	}
	imap_done(sess, "OK Store completed");
}

IMAP_HANDLER(imap_cmd_store)
{
	struct imap_store_req req = {0};
	const char *item;
	size_t *idx = NULL, n = 0;
	if (count < 3 || !imap_arg_get_atom(&args[1], &item) || imap_store_item(&req, item) < 0 ||
	    imap_store_flags(&req, &args[2], count - 2) < 0)
		imap_bad(sess, "Invalid STORE arguments");
	else if (sess->mbox->readonly)
		imap_done(sess, "NO [READ-ONLY] Mailbox is read-only");
	else if (imap_mailbox_seqset(sess, &args[0], &idx, &n) == 0)
		imap_store_run(sess, &req, idx, n);
	free(idx);
	free(req.keywords);
}

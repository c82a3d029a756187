/* STORE and UID STORE (RFC 9051 6.4.6): system flags. Keywords are not
 * stored yet (PERMANENTFLAGS has no \*), so a keyword in the list is
 * ignored as RFC 9051 2.3.2 lets a server do for flags it cannot keep. */
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

/* One flag: a system flag sets a bit, \Recent and keywords are ignored. */
static int imap_store_flag(struct imap_store_req *req, const struct imap_arg *arg)
{
	const char *name;
	if (!imap_arg_get_flag(arg, false, &name))
		return -1;
	if (name[0] != '\\' || strcasecmp(name, "\\Recent") == 0)
		return 0;
	unsigned int flag = imap_flag_parse(name);
	if (flag == 0)
		return -1;
	req->flags |= flag;
	return 0;
}

static int imap_store_flags(struct imap_store_req *req, const struct imap_arg *args,
                            unsigned int count)
{
	const struct imap_arg *list = args;
	unsigned int n = count;
	if (count == 1 && args[0].type == IMAP_ARG_LIST && !imap_arg_get_list(&args[0], &list, &n))
		return -1;
	for (unsigned int i = 0; i < n; i++) {
		if (imap_store_flag(req, &list[i]) < 0)
			return -1;
	}
	return 0;
}

static unsigned int imap_store_apply(const struct imap_store_req *req, unsigned int flags)
{
	if (req->mode > 0)
		return flags | req->flags;
	if (req->mode < 0)
		return flags & ~req->flags;
	return req->flags;
}

static void imap_store_report(struct imap_session *sess, size_t idx)
{
	const struct store_msg *msg = &sess->mbox->msgs[idx];
	struct buf line = BUF_INIT(0);
	buf_printf(&line, "%zu FETCH (", idx + 1);
	if (sess->uid)
		buf_printf(&line, "UID %" PRIu32 " ", msg->uid);
	buf_append_str(&line, "FLAGS ");
	imap_flags_write(&line, msg->flags);
	buf_append_char(&line, ')');
	imap_untagged(sess, "%s", buf_str(&line));
	buf_free(&line);
}

static void imap_store_run(struct imap_session *sess, const struct imap_store_req *req,
                           const size_t *idx, size_t n)
{
	const char *error;
	uint32_t *uids = xcalloc(n + 1, sizeof(uint32_t));
	for (size_t i = 0; i < n; i++)
		uids[i] = sess->mbox->msgs[idx[i]].uid;
	int ret = n == 0 ? 0
	                 : store_flags_update(sess->store, sess->mbox->name, uids, n, req->mode,
	                                      req->flags, &error);
	free(uids);
	if (ret < 0) {
		imap_internal_error(sess, "store_flags_update", error);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct store_msg *msg = &sess->mbox->msgs[idx[i]];
		msg->flags = imap_store_apply(req, msg->flags);
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
	    imap_store_flags(&req, &args[2], count - 2) < 0) {
		imap_bad(sess, "Invalid STORE arguments");
		return;
	}
	if (sess->mbox->readonly) {
		imap_done(sess, "NO [READ-ONLY] Mailbox is read-only");
		return;
	}
	if (imap_mailbox_seqset(sess, &args[0], &idx, &n) < 0)
		return;
	imap_store_run(sess, &req, idx, n);
	free(idx);
}

/* SEARCH and UID SEARCH (RFC 9051 6.4.4) with RFC 4731 ESEARCH results
 * (RETURN (MIN MAX COUNT ALL)), RFC 5182 SAVE, and the MODSEQ of RFC 7162
 * 3.1.5 in the result when the keys used MODSEQ; after ENABLE IMAP4rev2
 * every result is an ESEARCH response. CHARSET: see imap-search.c. */
#include "imap/imap-private.h"
#include "imap/imap-condstore.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/xmalloc.h"

enum imap_search_return {
	IMAP_RETURN_MIN = 1 << 0,
	IMAP_RETURN_MAX = 1 << 1,
	IMAP_RETURN_COUNT = 1 << 2,
	IMAP_RETURN_ALL = 1 << 3,
	IMAP_RETURN_SAVE = 1 << 4,
};

static const struct {
	const char *name;
	unsigned int bit;
} imap_search_returns[] = {
        {"MIN", IMAP_RETURN_MIN}, {"MAX", IMAP_RETURN_MAX},   {"COUNT", IMAP_RETURN_COUNT},
        {"ALL", IMAP_RETURN_ALL}, {"SAVE", IMAP_RETURN_SAVE},
};

/* What the command asked for besides its keys. */
struct imap_search_opts {
	unsigned int ret;
	bool esearch;
	const char *charset;
	unsigned int skip; /* arguments before the keys */
};

/* The matched messages, ascending: their index in the view. */
struct imap_search_result {
	size_t *idx;
	size_t count;
};

static int imap_search_return(const struct imap_arg *arg, unsigned int *ret_r)
{
	const struct imap_arg *list;
	unsigned int n;
	if (!imap_arg_get_list(arg, &list, &n))
		return -1;
	for (unsigned int i = 0; i < n; i++) {
		unsigned int bit = 0;
		for (size_t k = 0; k < sizeof(imap_search_returns) / sizeof(imap_search_returns[0]);
		     k++) {
			if (imap_arg_atom_equals(&list[i], imap_search_returns[k].name))
				bit = imap_search_returns[k].bit;
		}
		if (bit == 0)
			return -1;
		*ret_r |= bit;
	}
	/* RFC 4731 3.1: RETURN () means ALL */
	if (*ret_r == 0)
		*ret_r = IMAP_RETURN_ALL;
	return 0;
}

static uint32_t imap_search_num(struct imap_session *sess, size_t idx)
{
	return sess->uid ? sess->mbox->msgs[idx].uid : (uint32_t)(idx + 1);
}

/* RFC 7162 3.1.5 and RFC 4731 3.2: the highest MODSEQ of the messages
 * returned; with only MIN and/or MAX, of those. 0 when none. */
static uint64_t imap_search_result_modseq(struct imap_session *sess,
                                          const struct imap_search *search,
                                          const struct imap_search_result *res, unsigned int ret)
{
	uint64_t max = 0;
	bool all = (ret & (IMAP_RETURN_ALL | IMAP_RETURN_COUNT)) != 0 || ret == IMAP_RETURN_SAVE;
	for (size_t i = 0; i < res->count; i++) {
		bool returned = all || ((ret & IMAP_RETURN_MIN) != 0 && i == 0) ||
		                ((ret & IMAP_RETURN_MAX) != 0 && i == res->count - 1);
		uint64_t m = imap_search_msg_modseq(search, &sess->mbox->msgs[res->idx[i]]);
		if (returned && m > max)
			max = m;
	}
	return max;
}

static void imap_search_esearch(struct imap_session *sess, unsigned int ret,
                                const struct imap_search_result *res, uint64_t modseq)
{
	size_t n = res->count;
	struct buf line = BUF_INIT(0);
	buf_append_str(&line, "ESEARCH (TAG ");
	imap_write_quoted(&line, sess->tag, strlen(sess->tag));
	buf_append_char(&line, ')');
	if (sess->uid)
		buf_append_str(&line, " UID");
	if ((ret & IMAP_RETURN_MIN) != 0 && n > 0)
		buf_printf(&line, " MIN %" PRIu32, imap_search_num(sess, res->idx[0]));
	if ((ret & IMAP_RETURN_MAX) != 0 && n > 0)
		buf_printf(&line, " MAX %" PRIu32, imap_search_num(sess, res->idx[n - 1]));
	if ((ret & IMAP_RETURN_COUNT) != 0)
		buf_printf(&line, " COUNT %zu", n);
	if ((ret & IMAP_RETURN_ALL) != 0 && n > 0) {
		uint32_t *nums = xcalloc(n, sizeof(uint32_t));
		struct imap_seqset set;
		for (size_t i = 0; i < n; i++)
			nums[i] = imap_search_num(sess, res->idx[i]);
		imap_seqset_init(&set);
		imap_seqset_add_sorted(&set, nums, n);
		buf_append_str(&line, " ALL ");
		imap_seqset_format(&set, &line);
		imap_seqset_free(&set);
		free(nums);
	}
	if (modseq > 0)
		buf_printf(&line, " MODSEQ %" PRIu64, modseq);
	imap_untagged(sess, "%s", buf_str(&line));
	buf_free(&line);
}

static void imap_search_plain(struct imap_session *sess, const struct imap_search_result *res,
                              uint64_t modseq)
{
	struct buf line = BUF_INIT(0);
	buf_append_str(&line, "SEARCH");
	for (size_t i = 0; i < res->count; i++)
		buf_printf(&line, " %" PRIu32, imap_search_num(sess, res->idx[i]));
	if (modseq > 0)
		buf_printf(&line, " (MODSEQ %" PRIu64 ")", modseq);
	imap_untagged(sess, "%s", buf_str(&line));
	buf_free(&line);
}

/* RFC 5182 2.1: SAVE keeps the whole result, or only what MIN/MAX return
 * when they are the only other options. Kept as UIDs. */
static void imap_search_save(struct imap_session *sess, unsigned int ret,
                             const struct imap_search_result *res)
{
	const struct imap_mailbox *mbox = sess->mbox;
	bool minmax = (ret & (IMAP_RETURN_MIN | IMAP_RETURN_MAX)) != 0 &&
	              (ret & (IMAP_RETURN_ALL | IMAP_RETURN_COUNT)) == 0;
	free(sess->searchres);
	sess->searchres = xcalloc(res->count + 1, sizeof(uint32_t));
	sess->searchres_count = 0;
	for (size_t i = 0; i < res->count; i++) {
		bool keep = !minmax || ((ret & IMAP_RETURN_MIN) != 0 && i == 0) ||
		            ((ret & IMAP_RETURN_MAX) != 0 && i == res->count - 1);
		if (keep)
			sess->searchres[sess->searchres_count++] = mbox->msgs[res->idx[i]].uid;
	}
}

static void imap_search_run(struct imap_session *sess, struct imap_search *search,
                            const struct imap_search_opts *o)
{
	struct imap_mailbox *mbox = sess->mbox;
	struct imap_search_result res = {xcalloc(mbox->count + 1, sizeof(size_t)), 0};
	imap_search_prepare(sess, search);
	for (size_t i = 0; i < mbox->count; i++) {
		if (imap_search_match(sess, search, i) > 0)
			res.idx[res.count++] = i;
	}
	uint64_t modseq = 0;
	if (imap_search_has_modseq(search)) {
		imap_condstore_enable(sess); /* RFC 7162 3.1: a CONDSTORE-enabling command */
		modseq = imap_search_result_modseq(sess, search, &res, o->ret);
	}
	if ((o->ret & IMAP_RETURN_SAVE) != 0)
		imap_search_save(sess, o->ret, &res);
	/* RFC 5182 2.1: SAVE alone returns no ESEARCH */
	if (o->ret != IMAP_RETURN_SAVE && o->esearch)
		imap_search_esearch(sess, o->ret, &res, modseq);
	else if (o->ret != IMAP_RETURN_SAVE)
		imap_search_plain(sess, &res, modseq);
	free(res.idx);
}

/* [RETURN (...)] [CHARSET name]; -1 when they are malformed. */
static int imap_search_options(struct imap_session *sess, const struct imap_arg *args,
                               unsigned int count, struct imap_search_opts *o)
{
	unsigned int i = 0;
	memset(o, 0, sizeof(*o));
	o->esearch = sess->rev2;
	if (count >= 2 && imap_arg_atom_equals(&args[0], "RETURN")) {
		if (imap_search_return(&args[1], &o->ret) < 0)
			return -1;
		o->esearch = true;
		i = 2;
	}
	if (o->ret == 0)
		o->ret = IMAP_RETURN_ALL;
	if (count >= i + 2 && imap_arg_atom_equals(&args[i], "CHARSET")) {
		if (!imap_arg_get_astring(&args[i + 1], &o->charset))
			return -1;
		i += 2;
	}
	o->skip = i;
	return 0;
}

IMAP_HANDLER(imap_cmd_search)
{
	struct imap_search_opts o;
	bool no;
	if (imap_search_options(sess, args, count, &o) < 0) {
		imap_bad(sess, "Invalid SEARCH options");
		return;
	}
	struct imap_search *search =
	        imap_search_parse_charset(sess, args + o.skip, count - o.skip, o.charset, &no);
	if (search == NULL) {
		/* RFC 5182 2.1: a NO empties the saved result, a BAD keeps it */
		if (no && (o.ret & IMAP_RETURN_SAVE) != 0)
			sess->searchres_count = 0;
		return;
	}
	imap_search_run(sess, search, &o);
	imap_search_free(&search);
	imap_done(sess, "OK Search completed");
}

/* SEARCH and UID SEARCH (RFC 9051 6.4.4) with RFC 4731 ESEARCH results
 * (RETURN (MIN MAX COUNT ALL)); after ENABLE IMAP4rev2 every result is an
 * ESEARCH response. CHARSET: UTF-8 and US-ASCII. */
#include "imap/imap-private.h"

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
};

static const struct {
	const char *name;
	unsigned int bit;
} imap_search_returns[] = {
        {"MIN", IMAP_RETURN_MIN},
        {"MAX", IMAP_RETURN_MAX},
        {"COUNT", IMAP_RETURN_COUNT},
        {"ALL", IMAP_RETURN_ALL},
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

static void imap_search_esearch(struct imap_session *sess, unsigned int ret, const uint32_t *nums,
                                size_t n)
{
	struct buf line = BUF_INIT(0);
	buf_append_str(&line, "ESEARCH (TAG ");
	imap_write_quoted(&line, sess->tag, strlen(sess->tag));
	buf_append_char(&line, ')');
	if (sess->uid)
		buf_append_str(&line, " UID");
	if ((ret & IMAP_RETURN_MIN) != 0 && n > 0)
		buf_printf(&line, " MIN %" PRIu32, nums[0]);
	if ((ret & IMAP_RETURN_MAX) != 0 && n > 0)
		buf_printf(&line, " MAX %" PRIu32, nums[n - 1]);
	if ((ret & IMAP_RETURN_COUNT) != 0)
		buf_printf(&line, " COUNT %zu", n);
	if ((ret & IMAP_RETURN_ALL) != 0 && n > 0) {
		struct imap_seqset set;
		imap_seqset_init(&set);
		for (size_t i = 0; i < n; i++)
			imap_seqset_add_range(&set, nums[i], nums[i]);
		buf_append_str(&line, " ALL ");
		imap_seqset_format(&set, &line);
		imap_seqset_free(&set);
	}
	imap_untagged(sess, "%s", buf_str(&line));
	buf_free(&line);
}

static void imap_search_plain(struct imap_session *sess, const uint32_t *nums, size_t n)
{
	struct buf line = BUF_INIT(0);
	buf_append_str(&line, "SEARCH");
	for (size_t i = 0; i < n; i++)
		buf_printf(&line, " %" PRIu32, nums[i]);
	imap_untagged(sess, "%s", buf_str(&line));
	buf_free(&line);
}

static int imap_search_run(struct imap_session *sess, struct imap_search *search, unsigned int ret,
                           bool esearch)
{
	struct imap_mailbox *mbox = sess->mbox;
	uint32_t *nums = xcalloc(mbox->count + 1, sizeof(uint32_t));
	size_t n = 0;
	imap_search_prepare(sess, search);
	for (size_t i = 0; i < mbox->count; i++) {
		int match = imap_search_match(sess, search, i);
		if (match > 0)
			nums[n++] = sess->uid ? mbox->msgs[i].uid : (uint32_t)(i + 1);
	}
	if (esearch)
		imap_search_esearch(sess, ret, nums, n);
	else
		imap_search_plain(sess, nums, n);
	free(nums);
	return 0;
}

/* [RETURN (...)] [CHARSET name]: how many arguments they take. */
static int imap_search_options(struct imap_session *sess, const struct imap_arg *args,
                               unsigned int count, unsigned int *ret_r, bool *esearch_r)
{
	unsigned int i = 0;
	const char *charset;
	*ret_r = 0;
	*esearch_r = sess->rev2;
	if (count >= 2 && imap_arg_atom_equals(&args[0], "RETURN")) {
		if (imap_search_return(&args[1], ret_r) < 0)
			return -1;
		*esearch_r = true;
		i = 2;
	}
	if (*ret_r == 0)
		*ret_r = IMAP_RETURN_ALL;
	if (count >= i + 2 && imap_arg_atom_equals(&args[i], "CHARSET")) {
		if (!imap_arg_get_astring(&args[i + 1], &charset))
			return -1;
		if (strcasecmp(charset, "UTF-8") != 0 && strcasecmp(charset, "US-ASCII") != 0)
			return -2;
		i += 2;
	}
	return (int)i;
}

IMAP_HANDLER(imap_cmd_search)
{
	unsigned int ret;
	bool esearch;
	int skip = imap_search_options(sess, args, count, &ret, &esearch);
	if (skip == -2) {
		imap_done(sess, "NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
		return;
	}
	if (skip < 0) {
		imap_bad(sess, "Invalid SEARCH options");
		return;
	}
	struct imap_search *search =
	        imap_search_parse(sess, args + skip, count - (unsigned int)skip);
	if (search == NULL)
		return;
	imap_search_run(sess, search, ret, esearch);
	imap_search_free(&search);
	imap_done(sess, "OK Search completed");
}

/* SORT, UID SORT, THREAD and UID THREAD (RFC 5256, with RFC 5957's
 * DISPLAYFROM and DISPLAYTO). The search keys after the charset go
 * through the SEARCH engine; the matching messages' keys are read once
 * (their header only) and sorted or threaded in imap-sort.c and
 * imap-thread.c. */
#include "imap/imap-sort.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap-private.h"
#include "lib/xmalloc.h"

static const struct {
	const char *name;
	enum imap_thread_algorithm algorithm;
} imap_thread_algorithms[] = {
        {"ORDEREDSUBJECT", IMAP_THREAD_ORDEREDSUBJECT},
        {"REFERENCES", IMAP_THREAD_REFERENCES},
};

static int imap_sort_criteria(struct imap_session *sess, const struct imap_arg *arg,
                              struct imap_sort_criterion *crit)
{
	const struct imap_arg *list;
	const char *names[IMAP_SORT_MAX_KEYS * 2], *error = "Invalid sort criteria";
	unsigned int n;
	if (!imap_arg_get_list(arg, &list, &n) || n > IMAP_SORT_MAX_KEYS * 2) {
		imap_bad(sess, error);
		return -1;
	}
	for (unsigned int i = 0; i < n; i++) {
		if (!imap_arg_get_atom(&list[i], &names[i])) {
			imap_bad(sess, error);
			return -1;
		}
	}
	if (imap_sort_parse_criteria(names, n, true, crit, &error) < 0) {
		imap_bad(sess, error);
		return -1;
	}
	return 0;
}

/* The messages that match, in sequence order, with the keys needed. */
static struct imap_sort_msg *imap_sort_collect(struct imap_session *sess,
                                               struct imap_search *search, unsigned int needs,
                                               size_t *count_r)
{
	struct imap_mailbox *mbox = sess->mbox;
	struct imap_sort_msg *msgs = xcalloc(mbox->count + 1, sizeof(*msgs));
	size_t n = 0;
	imap_search_prepare(sess, search);
	for (size_t i = 0; i < mbox->count; i++) {
		if (imap_search_match(sess, search, i) > 0)
			imap_sort_msg_load(sess, i, needs, &msgs[n++]);
	}
	*count_r = n;
	return msgs;
}

static void imap_sort_msgs_free(struct imap_sort_msg *msgs, size_t count)
{
	for (size_t i = 0; i < count; i++)
		imap_sort_msg_clear(&msgs[i]);
	free(msgs);
}

/* Parses "<charset> <search keys>" (the charset is required, RFC 5256 3,
 * and means what it means to SEARCH); NULL when the command was answered. */
static struct imap_search *imap_sort_search(struct imap_session *sess, const struct imap_arg *args,
                                            unsigned int count)
{
	const char *charset;
	bool no;
	if (count < 2 || !imap_arg_get_astring(&args[0], &charset)) {
		imap_bad(sess, "Missing charset or search keys");
		return NULL;
	}
	return imap_search_parse_charset(sess, args + 1, count - 1, charset, &no);
}

IMAP_HANDLER(imap_cmd_sort)
{
	struct imap_sort_criterion crit[IMAP_SORT_MAX_KEYS + 1];
	if (count < 1) {
		imap_bad(sess, "Missing sort criteria");
		return;
	}
	if (imap_sort_criteria(sess, &args[0], crit) < 0)
		return;
	struct imap_search *search = imap_sort_search(sess, args + 1, count - 1);
	if (search == NULL)
		return;
	size_t n;
	struct imap_sort_msg *msgs = imap_sort_collect(sess, search, imap_sort_needs(crit), &n);
	imap_search_free(&search);
	struct imap_sort_msg **order = xcalloc(n + 1, sizeof(*order));
	for (size_t i = 0; i < n; i++)
		order[i] = &msgs[i];
	imap_sort_msgs(order, n, crit);
	struct buf line = BUF_INIT(0);
	buf_append_str(&line, "SORT");
	for (size_t i = 0; i < n; i++)
		buf_printf(&line, " %" PRIu32, sess->uid ? order[i]->uid : order[i]->seq);
	imap_untagged(sess, "%s", buf_str(&line));
	buf_free(&line);
	free(order);
	imap_sort_msgs_free(msgs, n);
	imap_done(sess, "OK Sort completed");
}

static int imap_thread_algorithm(const struct imap_arg *arg, enum imap_thread_algorithm *alg_r)
{
	const char *name;
	if (!imap_arg_get_atom(arg, &name))
		return -1;
	for (size_t i = 0; i < sizeof(imap_thread_algorithms) / sizeof(imap_thread_algorithms[0]);
	     i++) {
		if (strcasecmp(name, imap_thread_algorithms[i].name) == 0) {
			*alg_r = imap_thread_algorithms[i].algorithm;
			return 0;
		}
	}
	return -1;
}

IMAP_HANDLER(imap_cmd_thread)
{
	enum imap_thread_algorithm alg;
	if (count < 1 || imap_thread_algorithm(&args[0], &alg) < 0) {
		imap_bad(sess, "Unknown threading algorithm");
		return;
	}
	struct imap_search *search = imap_sort_search(sess, args + 1, count - 1);
	if (search == NULL)
		return;
	unsigned int needs = IMAP_SORT_NEED_SUBJECT | IMAP_SORT_NEED_DATE;
	if (alg == IMAP_THREAD_REFERENCES)
		needs |= IMAP_SORT_NEED_REFS;
	size_t n;
	struct imap_sort_msg *msgs = imap_sort_collect(sess, search, needs, &n);
	imap_search_free(&search);
	struct buf line = BUF_INIT(0);
	buf_append_str(&line, n > 0 ? "THREAD " : "THREAD");
	imap_thread_build(msgs, n, alg, sess->uid, &line);
	imap_untagged(sess, "%s", buf_str(&line));
	buf_free(&line);
	imap_sort_msgs_free(msgs, n);
	imap_done(sess, "OK Thread completed");
}

/* Saving with keywords in one step, all-or-nothing batches of saves
 * (IMAP MULTIAPPEND) and the special-use attributes a mailbox keeps. */
#include "store/store.h"
#include "store/store-private.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "test.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *tmp_root;
static int account_seq;

static struct store *open_account(char **root_r)
{
	const char *error = NULL;
	struct store *store = NULL;
	char *root = xasprintf("%s/mail/example.test/user%d", tmp_root, ++account_seq);
	CHECK_INT(store_account_create(root, &error), 0);
	CHECK_INT(store_open(root, &store, &error), 0);
	*root_r = root;
	return store;
}

static struct store_save *begin(struct store *store, const char *mailbox, const char *data)
{
	enum store_error err;
	const char *error;
	struct store_save *s = store_save_begin(store, mailbox, &err, &error);
	CHECK(s != NULL);
	if (s != NULL)
		CHECK_INT(store_save_write(s, data, strlen(data)), 0);
	return s;
}

static const char *keywords_of(struct store *store, const char *mailbox, uint32_t uid,
                               char *out, size_t size)
{
	struct store_msg msg;
	enum store_error err;
	const char *error;
	out[0] = '\0';
	if (store_msg_get(store, mailbox, uid, &msg, &err, &error) == 0) {
		snprintf(out, size, "%s", msg.keywords);
		store_msg_clear(&msg);
	}
	return out;
}

/* Files in new/ and cur/ of a folder: a failed batch leaves none. */
static size_t files_in(const char *root, const char *folder)
{
	size_t n = 0;
	const char *subs[] = {"new", "cur", "tmp"};
	for (size_t i = 0; i < 3; i++) {
		char *path = xasprintf("%s%s%s/%s", root, folder[0] != '\0' ? "/" : "", folder,
		                       subs[i]);
		DIR *d = opendir(path);
		free(path);
		if (d == NULL)
			continue;
		for (struct dirent *de; (de = readdir(d)) != NULL;)
			n += de->d_name[0] != '.';
		closedir(d);
	}
	return n;
}

static void test_save_keywords(void)
{
	char *root;
	struct store *store = open_account(&root);
	enum store_error err;
	const char *error;
	char kw[256];
	uint32_t uid = 0;
	static const struct {
		const char *set[3];
		size_t count;
		const char *want;
	} cases[] = {
	        {{"$Junk", "project"}, 2, "$Junk project"},
	        {{"PROJECT", "$junk", "Project"}, 3, "project $Junk"}, /* first spelling kept */
	        {{"new1"}, 1, "new1"},
	        {{NULL}, 0, ""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct store_save *s = begin(store, "INBOX", "Subject: k\r\n\r\nbody\r\n");
		CHECK_INT(store_save_set_keywords(s, cases[i].set, cases[i].count), 0);
		CHECK_INT(store_save_finish(&s, &uid, &err, &error), 0);
		CHECK_STR(keywords_of(store, "INBOX", uid, kw, sizeof(kw)), cases[i].want);
	}
	/* invalid keywords are refused when set */
	static const char *const bad[] = {"a b", "\\Seen", "", "x(y"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct store_save *s = begin(store, "INBOX", "x\r\n");
		CHECK_INT(store_save_set_keywords(s, &bad[i], 1), -1);
		store_save_abort(&s);
	}
	/* the mailbox's 101st keyword fails the save: nothing is kept */
	char **names = xcalloc(STORE_KEYWORDS_MAX + 1, sizeof(char *));
	size_t known = 3; /* $Junk project new1 */
	for (size_t i = 0; known + i < STORE_KEYWORDS_MAX; i++)
		names[i] = xasprintf("k%zu", i);
	size_t n = STORE_KEYWORDS_MAX - known;
	struct store_save *s = begin(store, "INBOX", "x\r\n");
	CHECK_INT(store_save_set_keywords(s, (const char *const *)names, n), 0);
	CHECK_INT(store_save_finish(&s, &uid, &err, &error), 0);
	struct store_status before;
	store_mailbox_status(store, "INBOX", &before, &err, &error);
	const char *over[] = {"project", "one-too-many"};
	s = begin(store, "INBOX", "x\r\n");
	CHECK_INT(store_save_set_keywords(s, over, 2), 0);
	CHECK_INT(store_save_finish(&s, &uid, &err, &error), -1);
	CHECK_INT(err, STORE_ERR_LIMIT);
	CHECK(s == NULL);
	struct store_status after;
	store_mailbox_status(store, "INBOX", &after, &err, &error);
	CHECK_INT(after.messages, before.messages);
	CHECK_INT(after.uidnext, before.uidnext);
	CHECK_INT(files_in(root, ""), before.messages);
	store_names_free(&names, n);
	store_close(&store);
	free(root);
}

static void test_finish_all(void)
{
	char *root;
	struct store *store = open_account(&root);
	enum store_error err;
	const char *error;
	struct store_save *saves[3];
	uint32_t uids[3] = {0};
	CHECK_INT(store_mailbox_create(store, "Work", &err, &error), 0);
	for (size_t i = 0; i < 3; i++)
		saves[i] = begin(store, "Work", "Subject: batch\r\n\r\nhello\r\n");
	CHECK_INT(store_save_finish_all(saves, 3, uids, &err, &error), 0);
	CHECK_INT(uids[0], 1);
	CHECK_INT(uids[1], 2);
	CHECK_INT(uids[2], 3);
	CHECK(saves[0] == NULL && saves[2] == NULL);

	/* over quota as a batch: each would fit alone, together they do not */
	uint64_t bytes, messages;
	CHECK_INT(store_quota_usage(store, &bytes, &messages, &error), 0);
	store_set_quota(store, 0, messages + 2);
	for (size_t i = 0; i < 3; i++)
		saves[i] = begin(store, "Work", "Subject: batch\r\n\r\nhello\r\n");
	CHECK_INT(store_save_finish_all(saves, 3, uids, &err, &error), -1);
	CHECK_INT(err, STORE_ERR_QUOTA);
	CHECK(saves[0] == NULL && saves[1] == NULL && saves[2] == NULL);
	struct store_status st;
	store_mailbox_status(store, "Work", &st, &err, &error);
	CHECK_INT(st.messages, 3);
	CHECK_INT(st.uidnext, 4);
	CHECK_INT(files_in(root, ".Work"), 3);
	/* two still fit */
	for (size_t i = 0; i < 2; i++)
		saves[i] = begin(store, i == 0 ? "Work" : "INBOX", "x\r\n");
	CHECK_INT(store_save_finish_all(saves, 2, uids, &err, &error), 0);
	CHECK_INT(uids[0], 4);
	CHECK_INT(uids[1], 1);
	store_close(&store);
	free(root);
}

static void test_special_use(void)
{
	char *root;
	struct store *store = open_account(&root);
	enum store_error err;
	const char *error;
	char *attrs = NULL;
	CHECK_INT(store_mailbox_create(store, "Outbox", &err, &error), 0);
	CHECK_INT(store_mailbox_get_special_use(store, "Outbox", &attrs, &err, &error), 0);
	CHECK_INT(store_mailbox_set_special_use(store, "Outbox", "\\Sent", &err, &error), 0);
	CHECK_INT(store_mailbox_get_special_use(store, "Outbox", &attrs, &err, &error), 1);
	CHECK_STR(attrs, "\\Sent");
	xfree(attrs);
	/* it moves with a rename and its children are not touched */
	CHECK_INT(store_mailbox_create(store, "Outbox/Old", &err, &error), 0);
	CHECK_INT(store_mailbox_rename(store, "Outbox", "Sent Items", &err, &error), 0);
	CHECK_INT(store_mailbox_get_special_use(store, "Sent Items", &attrs, &err, &error), 1);
	CHECK_STR(attrs, "\\Sent");
	xfree(attrs);
	CHECK_INT(store_mailbox_get_special_use(store, "Sent Items/Old", &attrs, &err, &error), 0);
	/* and survives a reopen */
	store_close(&store);
	CHECK_INT(store_open(root, &store, &error), 0);
	CHECK_INT(store_mailbox_get_special_use(store, "Sent Items", &attrs, &err, &error), 1);
	xfree(attrs);
	/* a delete takes it along: a new mailbox of that name has none */
	CHECK_INT(store_mailbox_delete(store, "Sent Items/Old", &err, &error), 0);
	CHECK_INT(store_mailbox_delete(store, "Sent Items", &err, &error), 0);
	CHECK_INT(store_mailbox_create(store, "Sent Items", &err, &error), 0);
	CHECK_INT(store_mailbox_get_special_use(store, "Sent Items", &attrs, &err, &error), 0);
	/* removal, validation, missing mailbox */
	CHECK_INT(store_mailbox_set_special_use(store, "Sent Items", "\\Junk \\Archive", &err,
	                                        &error),
	          0);
	CHECK_INT(store_mailbox_set_special_use(store, "Sent Items", "", &err, &error), 0);
	CHECK_INT(store_mailbox_get_special_use(store, "Sent Items", &attrs, &err, &error), 0);
	static const char *const bad[] = {"Sent", "\\", "\\Se nt", "\\Sent ", "\\Sent/x",
	                                  "\\Sent\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_INT(store_mailbox_set_special_use(store, "Sent Items", bad[i], &err, &error),
		          -1);
		CHECK_INT(err, STORE_ERR_INVALID);
	}
	CHECK_INT(store_mailbox_set_special_use(store, "Nope", "\\Sent", &err, &error), -1);
	CHECK_INT(err, STORE_ERR_NOT_FOUND);
	CHECK_INT(store_mailbox_get_special_use(store, "Nope", &attrs, &err, &error), -1);
	CHECK_INT(err, STORE_ERR_NOT_FOUND);
	store_close(&store);
	free(root);
}

int main(void)
{
	char tmpl[] = "/tmp/test-store-save-XXXXXX";
	tmp_root = mkdtemp(tmpl);
	if (tmp_root == NULL) {
		perror("mkdtemp");
		return 1;
	}
	const char *log_error;
	log_open("stderr", LOG_LEVEL_ERROR, "test-store-save", &log_error);
	test_save_keywords();
	test_finish_all();
	test_special_use();
	const char *error;
	store_remove_tree(tmp_root, &error);
	return test_report();
}

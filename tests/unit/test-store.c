#include "store/store.h"
#include "store/store-private.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "test.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *tmp_root;
static int account_seq;

/* A fresh account under the test's temp folder. */
static char *new_account(void)
{
	const char *error = NULL;
	char *root = xasprintf("%s/mail/example.test/user%d", tmp_root, ++account_seq);
	CHECK_INT(store_account_create(root, &error), 0);
	if (error != NULL)
		fprintf(stderr, "account create: %s\n", error);
	return root;
}

static struct store *open_store(const char *root)
{
	struct store *store = NULL;
	const char *error = NULL;
	CHECK_INT(store_open(root, &store, &error), 0);
	if (store == NULL)
		fprintf(stderr, "store_open: %s\n", error);
	return store;
}

/* Saves data in chunks of chunk bytes (to cross CR|LF boundaries). */
static uint32_t save_msg(struct store *store, const char *mailbox, const char *data, size_t chunk,
                         unsigned int flags, enum store_error *err_r)
{
	enum store_error err;
	const char *error;
	uint32_t uid = 0;
	struct store_save *save = store_save_begin(store, mailbox, &err, &error);
	if (save == NULL) {
		*err_r = err;
		return 0;
	}
	size_t len = strlen(data);
	for (size_t off = 0; off < len; off += chunk)
		CHECK_INT(store_save_write(save, data + off, len - off < chunk ? len - off : chunk),
		          0);
	store_save_set_flags(save, flags);
	if (store_save_finish(&save, &uid, &err, &error) < 0) {
		*err_r = err;
		return 0;
	}
	CHECK(save == NULL);
	*err_r = STORE_OK;
	return uid;
}

static uint32_t save_simple(struct store *store, const char *data)
{
	enum store_error err;
	uint32_t uid = save_msg(store, "INBOX", data, 1 << 20, 0, &err);
	CHECK_INT(err, STORE_OK);
	return uid;
}

static char *read_msg(struct store *store, const char *mailbox, uint32_t uid)
{
	enum store_error err;
	const char *error;
	int fd = store_msg_open(store, mailbox, uid, &err, &error);
	if (fd < 0)
		return NULL;
	char *data = xmalloc(65536);
	ssize_t n = read(fd, data, 65535);
	close(fd);
	data[n < 0 ? 0 : n] = '\0';
	return data;
}

static size_t count_files(const char *dir)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	if (d == NULL)
		return 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* The name of the only file in dir, or NULL. */
static char *only_file(const char *dir)
{
	DIR *d = opendir(dir);
	char *name = NULL;
	struct dirent *de;
	while (d != NULL && (de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.') {
			free(name);
			name = xstrdup(de->d_name);
		}
	}
	if (d != NULL)
		closedir(d);
	return name;
}

static void write_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK_INT(write(fd, data, strlen(data)), (long long)strlen(data));
	close(fd);
}

static void test_names(void)
{
	static const struct {
		const char *name;
		const char *folder; /* NULL = refused */
	} cases[] = {
	        {"INBOX", ""},
	        {"inbox", ""},
	        {"Sent", ".Sent"},
	        {"Archive/2024", ".Archive.2024"},
	        {"INBOX/x", ".INBOX.x"},
	        {"inBox/x", ".INBOX.x"},
	        {"a.b", ".a%2Eb"},
	        {"100%", ".100%25"},
	        {"日本語", ".日本語"},
	        {"../x", NULL},
	        {"a//b", NULL},
	        {".", NULL},
	        {"..", NULL},
	        {"x\n", NULL},
	        {"", NULL},
	        {"/a", NULL},
	        {"a/", NULL},
	        {"a\x7f", NULL},
	        {"a/../b", NULL},
	        {"yubin-pop3/lock", NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *canon = NULL;
		const char *error;
		int ret = store_name_normalize(cases[i].name, &canon, &error);
		CHECK_INT(ret, cases[i].folder != NULL ? 0 : -1);
		if (ret < 0)
			continue;
		char *folder = store_name_to_folder(canon);
		CHECK_STR(folder, cases[i].folder);
		char *back = NULL;
		CHECK_INT(store_folder_to_name(folder, &back), 0);
		CHECK_STR(back, canon);
		free(back);
		free(folder);
		free(canon);
	}
	char long_name[300];
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	char *canon = NULL;
	const char *error;
	CHECK_INT(store_name_normalize(long_name, &canon, &error), -1);
	static const char *const bad_folders[] = {".a..b", ".a%2Fb", ".inbox", ".a%zz", "."};
	for (size_t i = 0; i < sizeof(bad_folders) / sizeof(bad_folders[0]); i++) {
		char *name = NULL;
		CHECK_INT(store_folder_to_name(bad_folders[i], &name), -1);
		free(name);
	}
}

static void test_fname(void)
{
	static const struct {
		const char *rel;
		int ret;
		const char *base;
		uint32_t uid;
		unsigned int flags;
	} cases[] = {
	        {"new/1.M2P3Q4R5.h,S=10,W=12,U=7,M=9", 0, "1.M2P3Q4R5.h", 7, 0},
	        {"cur/1.x.h,S=10,W=12,U=8,M=9:2,FS", 0, "1.x.h", 8,
	         STORE_FLAG_FLAGGED | STORE_FLAG_SEEN},
	        {"cur/1234.abc.host:2,DRT", 0, "1234.abc.host", 0,
	         STORE_FLAG_DRAFT | STORE_FLAG_ANSWERED | STORE_FLAG_DELETED},
	        {"cur/.hidden", -1, NULL, 0, 0},
	        {"tmp/x", -1, NULL, 0, 0},
	        {"new/,S=1", -1, NULL, 0, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct store_fname fn;
		CHECK_INT(store_fname_parse(cases[i].rel, &fn), cases[i].ret);
		if (cases[i].ret == 0) {
			CHECK_STR(fn.base, cases[i].base);
			CHECK_INT(fn.uid, cases[i].uid);
			CHECK_INT(fn.flags, cases[i].flags);
		}
		store_fname_free(&fn);
	}
	char *rel = store_fname_build("b", true, 5, 6, 7, 8,
	                              STORE_FLAG_SEEN | STORE_FLAG_DRAFT | STORE_FLAG_ANSWERED);
	CHECK_STR(rel, "cur/b,S=5,W=6,U=7,M=8:2,DRS");
	free(rel);
	char *base = store_new_base();
	CHECK(strlen(base) <= 70);
	CHECK(strchr(base, ',') == NULL && strchr(base, ':') == NULL && strchr(base, '/') == NULL);
	free(base);
}

static void test_account(void)
{
	char *root = new_account();
	const char *error;
	CHECK_INT(store_account_create(root, &error), 0); /* idempotent */
	struct store *store = open_store(root);
	char **names;
	size_t count;
	CHECK_INT(store_mailbox_list(store, &names, &count, &error), 0);
	CHECK_INT(count, 6);
	if (count == 6) {
		CHECK_STR(names[0], "INBOX");
		CHECK_STR(names[1], "Archive");
		CHECK_STR(names[5], "Trash");
	}
	store_names_free(&names, count);
	char *path = xasprintf("%s/.Sent/cur", root);
	struct stat st;
	CHECK_INT(stat(path, &st), 0);
	free(path);

	enum store_error err;
	CHECK_INT(store_mailbox_create(store, "Archive/2024", &err, &error), 0);
	CHECK_INT(store_mailbox_create(store, "archive/2024", &err, &error), 0);
	CHECK_INT(store_mailbox_create(store, "Archive/2024", &err, &error), -1);
	CHECK_INT(err, STORE_ERR_EXISTS);
	CHECK_INT(store_mailbox_create(store, "inbox", &err, &error), -1);
	CHECK_INT(err, STORE_ERR_EXISTS);
	static const char *const bad[] = {"../x", "a//b", ".", "x\n", "", "..", "a/./b"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_INT(store_mailbox_create(store, bad[i], &err, &error), -1);
		CHECK_INT(err, STORE_ERR_INVALID);
		CHECK(store_save_begin(store, bad[i], &err, &error) == NULL);
		CHECK_INT(err, STORE_ERR_INVALID);
	}
	CHECK(store_save_begin(store, "Nope", &err, &error) == NULL);
	CHECK_INT(err, STORE_ERR_NOT_FOUND);

	/* UIDVALIDITY strictly increases for each new mailbox */
	struct store_status a, b;
	CHECK_INT(store_mailbox_status(store, "Archive/2024", &a, &err, &error), 0);
	CHECK_INT(store_mailbox_status(store, "archive/2024", &b, &err, &error), 0);
	CHECK(b.uidvalidity > a.uidvalidity);
	CHECK_INT(a.uidnext, 1);

	int fd1 = -1, fd2 = -1;
	CHECK_INT(store_pop3_lock(store, &fd1, &error), 1);
	CHECK_INT(store_pop3_lock(store, &fd2, &error), 0);
	close(fd1);
	CHECK_INT(store_pop3_lock(store, &fd2, &error), 1);
	close(fd2);
	store_close(&store);
	CHECK(store == NULL);

	CHECK_INT(store_account_remove(root, &error), 0);
	CHECK(access(root, F_OK) < 0);
	CHECK_INT(store_account_remove(root, &error), -1);
	free(root);
}

static void test_roundtrip(void)
{
	static const struct {
		const char *data;
		size_t chunk;
		uint64_t vsize;
		bool eol_missing;
	} msgs[] = {
	        {"Subject: lf\n\nline one\nline two\n", 1 << 20, 35, false},
	        {"Subject: crlf\r\n\r\nbody\r\n", 1 << 20, 23, false},
	        {"Subject: split\r\n\r\nbody\r\n", 1, 24, false},
	        {"A\r\nB\nC\rD", 2, 9, true},
	        {"", 1, 0, false},
	};
	char *root = new_account();
	struct store *store = open_store(root);
	uint32_t prev = 0;
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		enum store_error err;
		uint32_t uid = save_msg(store, "INBOX", msgs[i].data, msgs[i].chunk, 0, &err);
		CHECK_INT(err, STORE_OK);
		CHECK(uid > prev);
		prev = uid;
	}
	struct store_msg *list;
	size_t count;
	enum store_error err;
	const char *error;
	CHECK_INT(store_msg_list(store, "INBOX", &list, &count, &err, &error), 0);
	CHECK_INT(count, sizeof(msgs) / sizeof(msgs[0]));
	for (size_t i = 0; i < count; i++) {
		CHECK_INT(list[i].uid, i + 1);
		CHECK_INT(list[i].size, strlen(msgs[i].data));
		CHECK_INT(list[i].vsize, msgs[i].vsize);
		CHECK_INT(list[i].eol_missing, msgs[i].eol_missing);
		CHECK_INT(list[i].flags, 0);
		CHECK(list[i].modseq > 0);
		CHECK_STR(list[i].keywords, "");
		CHECK(strlen(list[i].uidl) > 0 && strlen(list[i].uidl) <= 70);
		if (i > 0)
			CHECK(strcmp(list[i].uidl, list[i - 1].uidl) != 0);
		char *data = read_msg(store, "INBOX", list[i].uid);
		CHECK_STR(data, msgs[i].data);
		free(data);
	}
	store_msg_list_free(&list, count);
	CHECK(list == NULL);
	struct store_status st;
	CHECK_INT(store_mailbox_status(store, "INBOX", &st, &err, &error), 0);
	CHECK_INT(st.messages, 5);
	CHECK_INT(st.unseen, 5);
	CHECK_INT(st.uidnext, 6);
	uint64_t bytes, n;
	CHECK_INT(store_quota_usage(store, &bytes, &n, &error), 0);
	CHECK_INT(n, 5);
	CHECK_INT(store_msg_open(store, "INBOX", 99, &err, &error), -1);
	CHECK_INT(err, STORE_ERR_NOT_FOUND);
	/* abort leaves nothing */
	struct store_save *save = store_save_begin(store, "INBOX", &err, &error);
	store_save_write(save, "x", 1);
	store_save_abort(&save);
	CHECK(save == NULL);
	char *tmp = xasprintf("%s/tmp", root);
	CHECK_INT(count_files(tmp), 0);
	free(tmp);
	store_close(&store);
	free(root);
}

static void test_flags(void)
{
	char *root = new_account();
	struct store *store = open_store(root);
	enum store_error err;
	const char *error;
	uint32_t uid =
	        save_msg(store, "Sent", "hello\n", 100, STORE_FLAG_SEEN | STORE_FLAG_FLAGGED, &err);
	CHECK_INT(uid, 1);
	char *cur = xasprintf("%s/.Sent/cur", root);
	char *name = only_file(cur);
	CHECK(name != NULL && strstr(name, ",U=1,") != NULL);
	CHECK(name != NULL && strlen(name) > 5 && strcmp(name + strlen(name) - 5, ":2,FS") == 0);
	free(name);

	uint32_t u2 = save_simple(store, "plain\n");
	struct store_status before;
	CHECK_INT(store_mailbox_status(store, "INBOX", &before, &err, &error), 0);
	CHECK_INT(store_flags_update(store, "INBOX", &u2, 1, 1,
	                             STORE_FLAG_ANSWERED | STORE_FLAG_SEEN, &error),
	          0);
	char *inbox_cur = xasprintf("%s/cur", root);
	name = only_file(inbox_cur);
	CHECK(name != NULL && strstr(name, ":2,RS") != NULL);
	free(name);
	CHECK_INT(store_flags_update(store, "INBOX", &u2, 1, -1, STORE_FLAG_SEEN, &error), 0);
	name = only_file(inbox_cur);
	CHECK(name != NULL && strlen(name) > 4 && strcmp(name + strlen(name) - 4, ":2,R") == 0);
	free(name);
	CHECK_INT(store_flags_update(store, "INBOX", &u2, 1, 0, STORE_FLAG_DELETED, &error), 0);
	/* unchanged flags: no new MODSEQ */
	struct store_status mid, after;
	CHECK_INT(store_mailbox_status(store, "INBOX", &mid, &err, &error), 0);
	CHECK_INT(store_flags_update(store, "INBOX", &u2, 1, 1, STORE_FLAG_DELETED, &error), 0);
	CHECK_INT(store_mailbox_status(store, "INBOX", &after, &err, &error), 0);
	CHECK(mid.highestmodseq > before.highestmodseq);
	CHECK_INT(after.highestmodseq, mid.highestmodseq);
	store_close(&store);

	/* flags come back from a fresh open */
	store = open_store(root);
	struct store_msg *list;
	size_t count;
	CHECK_INT(store_msg_list(store, "INBOX", &list, &count, &err, &error), 0);
	CHECK_INT(count, 1);
	if (count == 1) {
		CHECK_INT(list[0].flags, STORE_FLAG_DELETED);
		CHECK_INT(list[0].modseq, after.highestmodseq);
	}
	store_msg_list_free(&list, count);
	char *data = read_msg(store, "INBOX", u2);
	CHECK_STR(data, "plain\n");
	free(data);
	store_close(&store);
	free(inbox_cur);
	free(cur);
	free(root);
}

static void test_expunge(void)
{
	char *root = new_account();
	struct store *store = open_store(root);
	const char *error;
	enum store_error err;
	uint32_t uids[3];
	for (size_t i = 0; i < 3; i++)
		uids[i] = save_simple(store, "msg\n");
	struct store_status before, after;
	CHECK_INT(store_mailbox_status(store, "INBOX", &before, &err, &error), 0);
	uint32_t gone[2] = {uids[0], uids[2]};
	CHECK_INT(store_expunge(store, "INBOX", gone, 2, &error), 0);
	CHECK_INT(store_mailbox_status(store, "INBOX", &after, &err, &error), 0);
	CHECK_INT(after.messages, 1);
	CHECK(after.highestmodseq > before.highestmodseq);
	CHECK_INT(after.uidnext, 4);
	char *newdir = xasprintf("%s/new", root);
	CHECK_INT(count_files(newdir), 1);
	CHECK_INT(store_msg_open(store, "INBOX", uids[2], &err, &error), -1);
	CHECK_INT(err, STORE_ERR_NOT_FOUND);
	struct store_state state;
	CHECK_INT(store_state_read(root, &state), 0);
	CHECK_INT(state.uidnext, 4);
	CHECK_INT(state.uidvalidity, before.uidvalidity);
	CHECK(state.highestmodseq >= after.highestmodseq);
	/* the next UID is never an expunged one */
	CHECK_INT(save_simple(store, "next\n"), 4);
	store_close(&store);
	free(newdir);
	free(root);
}

static void test_external_changes(void)
{
	char *root = new_account();
	struct store *store = open_store(root);
	const char *error;
	enum store_error err;
	uint32_t u1 = save_simple(store, "one\n");
	save_simple(store, "two\n");
	store_close(&store);

	/* another MDA drops a file; a file vanishes; a save died in tmp/ */
	char *path = xasprintf("%s/new/1700000000.foreign.host", root);
	write_file(path, "From: x\n\nforeign\n");
	free(path);
	path = xasprintf("%s/tmp/1700000000.dead.host", root);
	write_file(path, "partial");
	free(path);
	char *newdir = xasprintf("%s/new", root);
	DIR *d = opendir(newdir);
	struct dirent *de;
	while (d != NULL && (de = readdir(d)) != NULL) {
		if (strstr(de->d_name, ",U=1,") != NULL) {
			char *p = xasprintf("%s/%s", newdir, de->d_name);
			unlink(p);
			free(p);
		}
	}
	if (d != NULL)
		closedir(d);

	store = open_store(root);
	struct store_msg *list;
	size_t count;
	CHECK_INT(store_msg_list(store, "INBOX", &list, &count, &err, &error), 0);
	CHECK_INT(count, 2);
	if (count == 2) {
		CHECK_INT(list[0].uid, 2);
		CHECK_INT(list[1].uid, 3);
		CHECK_INT(list[1].size, 17);
		CHECK_INT(list[1].vsize, 20);
		CHECK_STR(list[1].uidl, "1700000000.foreign.host");
	}
	store_msg_list_free(&list, count);
	char *data = read_msg(store, "INBOX", 3);
	CHECK_STR(data, "From: x\n\nforeign\n");
	free(data);
	CHECK_INT(store_msg_open(store, "INBOX", u1, &err, &error), -1);

	/* a MUA moves a file to cur/ with flags while the store is open */
	path = xasprintf("%s/cur", root);
	char *name = only_file(newdir);
	free(name);
	d = opendir(newdir);
	while (d != NULL && (de = readdir(d)) != NULL) {
		if (strstr(de->d_name, ",U=3,") != NULL) {
			char *from = xasprintf("%s/%s", newdir, de->d_name);
			char *to = xasprintf("%s/%s:2,S", path, de->d_name);
			CHECK_INT(rename(from, to), 0);
			free(from);
			free(to);
		}
	}
	if (d != NULL)
		closedir(d);
	free(path);
	CHECK_INT(store_msg_list(store, "INBOX", &list, &count, &err, &error), 0);
	CHECK_INT(count, 2);
	if (count == 2)
		CHECK_INT(list[1].flags, STORE_FLAG_SEEN);
	store_msg_list_free(&list, count);
	data = read_msg(store, "INBOX", 3);
	CHECK_STR(data, "From: x\n\nforeign\n");
	free(data);
	store_close(&store);
	free(newdir);
	free(root);
}

static void test_old_tmp(void)
{
	char *root = new_account();
	char *path = xasprintf("%s/tmp/old.file", root);
	write_file(path, "x");
	struct timespec times[2] = {{.tv_sec = time(NULL) - 40 * 3600},
	                            {.tv_sec = time(NULL) - 40 * 3600}};
	CHECK_INT(utimensat(AT_FDCWD, path, times, 0), 0);
	struct store *store = open_store(root);
	CHECK(access(path, F_OK) < 0);
	store_close(&store);
	free(path);
	free(root);
}

/* A crash after the rename into new/ and before the index commit. */
static void test_crash_adopt(void)
{
	char *root = new_account();
	struct store *store = open_store(root);
	save_simple(store, "first\n");
	store_close(&store);
	char *path = xasprintf("%s/new/1700000001.M1P1Q1R00000000.host,S=7,W=8,U=2,M=3", root);
	write_file(path, "second\n");
	free(path);
	store = open_store(root);
	const char *error;
	enum store_error err;
	char *data = read_msg(store, "INBOX", 2);
	CHECK_STR(data, "second\n");
	free(data);
	struct store_status st;
	CHECK_INT(store_mailbox_status(store, "INBOX", &st, &err, &error), 0);
	CHECK_INT(st.uidnext, 3);
	CHECK_INT(save_simple(store, "third\n"), 3);
	store_close(&store);
	free(root);
}

static void remove_index(const char *root)
{
	static const char *const files[] = {"index.db", "index.db-wal", "index.db-shm"};
	for (size_t i = 0; i < 3; i++) {
		char *path = xasprintf("%s/%s", root, files[i]);
		unlink(path);
		free(path);
	}
}

static void test_rebuild_keep(void)
{
	char *root = new_account();
	struct store *store = open_store(root);
	const char *error;
	enum store_error err;
	uint32_t uids[4];
	for (size_t i = 0; i < 4; i++)
		uids[i] = save_simple(store, i == 2 ? "keep, no newline" : "keep\n");
	CHECK_INT(store_flags_update(store, "INBOX", &uids[1], 1, 1, STORE_FLAG_SEEN, &error), 0);
	CHECK_INT(store_expunge(store, "INBOX", &uids[3], 1, &error), 0);
	CHECK(save_msg(store, "Drafts", "draft\n", 3, STORE_FLAG_DRAFT, &err) == 1);
	struct store_status before, after;
	CHECK_INT(store_mailbox_status(store, "INBOX", &before, &err, &error), 0);
	store_close(&store);

	struct store_rebuild_report report;
	CHECK_INT(store_rebuild(root, &report, &error), 0);
	CHECK_INT(report.mailboxes, 6);
	CHECK_INT(report.messages, 4);
	CHECK_INT(report.uidvalidity_changed, 0);
	store = open_store(root);
	CHECK_INT(store_mailbox_status(store, "INBOX", &after, &err, &error), 0);
	CHECK_INT(after.uidvalidity, before.uidvalidity);
	CHECK_INT(after.messages, 3);
	CHECK(after.uidnext >= before.uidnext);
	CHECK(after.highestmodseq > before.highestmodseq);
	struct store_msg *list;
	size_t count;
	CHECK_INT(store_msg_list(store, "INBOX", &list, &count, &err, &error), 0);
	CHECK_INT(count, 3);
	if (count == 3) {
		CHECK_INT(list[1].uid, uids[1]);
		CHECK_INT(list[1].flags, STORE_FLAG_SEEN);
		CHECK_INT(list[2].uid, uids[2]);
		CHECK(list[2].eol_missing);   /* read back from the file */
		CHECK(!list[1].eol_missing);
	}
	store_msg_list_free(&list, count);
	/* the expunged UID 4 is not handed out again */
	CHECK_INT(save_simple(store, "after\n"), 5);
	store_close(&store);

	/* open without an index rebuilds by itself */
	remove_index(root);
	store = open_store(root);
	CHECK_INT(store_mailbox_status(store, "INBOX", &after, &err, &error), 0);
	CHECK_INT(after.uidvalidity, before.uidvalidity);
	CHECK_INT(after.messages, 4);
	CHECK_INT(after.uidnext, 6);
	CHECK_INT(store_mailbox_status(store, "Drafts", &after, &err, &error), 0);
	CHECK_INT(after.messages, 1);
	store_close(&store);
	free(root);
}

static void test_rebuild_foreign(void)
{
	char *root = new_account();
	struct store *store = open_store(root);
	const char *error;
	enum store_error err;
	uint32_t uids[3];
	for (size_t i = 0; i < 3; i++)
		uids[i] = save_simple(store, "m\n");
	CHECK_INT(store_expunge(store, "INBOX", &uids[2], 1, &error), 0);
	struct store_status before, after;
	CHECK_INT(store_mailbox_status(store, "INBOX", &before, &err, &error), 0);
	store_close(&store);
	char *path = xasprintf("%s/cur/1600000000.foreign.host:2,S", root);
	write_file(path, "foreign\n");
	free(path);
	remove_index(root);

	struct store_rebuild_report report;
	CHECK_INT(store_rebuild(root, &report, &error), 0);
	CHECK_INT(report.uidvalidity_changed, 1);
	CHECK_INT(report.messages, 3);
	store = open_store(root);
	CHECK_INT(store_mailbox_status(store, "INBOX", &after, &err, &error), 0);
	CHECK(after.uidvalidity > before.uidvalidity);
	CHECK_INT(after.messages, 3);
	CHECK_INT(after.uidnext, 4);
	CHECK(after.highestmodseq >= before.highestmodseq);
	struct store_msg *list;
	size_t count;
	CHECK_INT(store_msg_list(store, "INBOX", &list, &count, &err, &error), 0);
	CHECK_INT(count, 3);
	if (count == 3) {
		/* renumbered from 1 in (date, base) order */
		CHECK_INT(list[0].uid, 1);
		CHECK_INT(list[2].uid, 3);
	}
	bool seen = false;
	for (size_t i = 0; i < count; i++)
		seen = seen || list[i].flags == STORE_FLAG_SEEN;
	CHECK(seen);
	store_msg_list_free(&list, count);
	store_close(&store);

	/* every file now carries its new UID: a second rebuild keeps them */
	CHECK_INT(store_rebuild(root, &report, &error), 0);
	CHECK_INT(report.uidvalidity_changed, 0);
	store = open_store(root);
	struct store_status again;
	CHECK_INT(store_mailbox_status(store, "INBOX", &again, &err, &error), 0);
	CHECK_INT(again.uidvalidity, after.uidvalidity);
	CHECK(again.highestmodseq > after.highestmodseq);
	store_close(&store);
	free(root);
}

static void copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(in >= 0 && out >= 0);
	char buf[65536];
	ssize_t n;
	while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		CHECK_INT(write(out, buf, (size_t)n), n);
	close(in);
	close(out);
}

/* The index lost its last commits (power loss with synchronous=NORMAL):
 * the state file written before the expunge keeps UIDNEXT from going back. */
static void test_index_rollback(void)
{
	char *root = new_account();
	struct store *store = open_store(root);
	const char *error;
	for (size_t i = 0; i < 3; i++)
		save_simple(store, "old\n");
	store_close(&store);
	char *index = xasprintf("%s/index.db", root);
	char *backup = xasprintf("%s/index.backup", root);
	copy_file(index, backup);
	store = open_store(root);
	uint32_t uid = save_simple(store, "gone\n");
	CHECK_INT(uid, 4);
	CHECK_INT(store_expunge(store, "INBOX", &uid, 1, &error), 0);
	store_close(&store);
	remove_index(root);
	CHECK_INT(rename(backup, index), 0);
	store = open_store(root);
	CHECK_INT(save_simple(store, "new\n"), 5);
	store_close(&store);

	/* an account whose index vanished is rebuilt, not started afresh */
	enum store_error err;
	struct store_status before, after;
	store = open_store(root);
	CHECK_INT(store_mailbox_status(store, "Sent", &before, &err, &error), 0);
	store_close(&store);
	remove_index(root);
	CHECK_INT(store_account_create(root, &error), 0);
	store = open_store(root);
	CHECK_INT(store_mailbox_status(store, "INBOX", &after, &err, &error), 0);
	CHECK_INT(after.uidnext, 6);
	CHECK_INT(after.messages, 4);
	CHECK_INT(store_mailbox_status(store, "Sent", &after, &err, &error), 0);
	CHECK_INT(after.uidvalidity, before.uidvalidity);
	store_close(&store);
	free(index);
	free(backup);
	free(root);
}

static void test_quota(void)
{
	char *root = new_account();
	struct store *store = open_store(root);
	enum store_error err;
	const char *error;
	store_set_quota(store, 10, 0);
	CHECK_INT(save_msg(store, "INBOX", "12345678", 100, 0, &err), 1);
	CHECK_INT(save_msg(store, "INBOX", "123", 100, 0, &err), 0);
	CHECK_INT(err, STORE_ERR_QUOTA);
	CHECK_INT(save_msg(store, "Sent", "12", 100, 0, &err), 1); /* fits exactly */
	store_set_quota(store, 0, 2);
	CHECK_INT(save_msg(store, "INBOX", "x", 100, 0, &err), 0);
	CHECK_INT(err, STORE_ERR_QUOTA);
	store_set_quota(store, 0, 0);
	CHECK_INT(save_msg(store, "INBOX", "x", 100, 0, &err), 2);
	uint64_t bytes, n;
	CHECK_INT(store_quota_usage(store, &bytes, &n, &error), 0);
	CHECK_INT(bytes, 11);
	CHECK_INT(n, 3);
	char *dirs[] = {xasprintf("%s/tmp", root), xasprintf("%s/new", root),
	                xasprintf("%s/cur", root)};
	CHECK_INT(count_files(dirs[0]), 0);
	CHECK_INT(count_files(dirs[1]), 2);
	CHECK_INT(count_files(dirs[2]), 0);
	for (size_t i = 0; i < 3; i++)
		free(dirs[i]);
	store_close(&store);
	free(root);
}

static int child_saves(const char *root, int count)
{
	struct store *store = NULL;
	const char *error;
	if (store_open(root, &store, &error) < 0)
		return 1;
	int failed = 0;
	for (int i = 0; i < count; i++) {
		enum store_error err;
		char body[64];
		snprintf(body, sizeof(body), "pid %ld msg %d\n", (long)getpid(), i);
		if (save_msg(store, "INBOX", body, 7, 0, &err) == 0)
			failed++;
	}
	store_close(&store);
	return failed == 0 ? 0 : 1;
}

static void test_concurrent(void)
{
	char *root = new_account();
	pid_t pids[2];
	for (size_t i = 0; i < 2; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			_exit(child_saves(root, 200));
	}
	for (size_t i = 0; i < 2; i++) {
		int status = -1;
		CHECK_INT(waitpid(pids[i], &status, 0), pids[i]);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	struct store *store = open_store(root);
	struct store_msg *list;
	size_t count;
	enum store_error err;
	const char *error;
	CHECK_INT(store_msg_list(store, "INBOX", &list, &count, &err, &error), 0);
	CHECK_INT(count, 400);
	bool distinct = true;
	for (size_t i = 1; i < count; i++)
		distinct = distinct && list[i].uid > list[i - 1].uid;
	CHECK(distinct);
	size_t readable = 0;
	for (size_t i = 0; i < count; i++) {
		char *data = read_msg(store, "INBOX", list[i].uid);
		readable += data != NULL && strncmp(data, "pid ", 4) == 0;
		free(data);
	}
	CHECK_INT(readable, 400);
	store_msg_list_free(&list, count);
	char *newdir = xasprintf("%s/new", root);
	CHECK_INT(count_files(newdir), 400);
	free(newdir);
	store_close(&store);
	free(root);
}

static void test_account_root(void)
{
	char *root = store_account_root("/data", "alice@example.test");
	CHECK_STR(root, "/data/mail/example.test/alice");
	free(root);
	static const char *const bad[] = {
	        "noat", "../x@example.test", "a@..", "a/b@x", "a@x/y", "@x", "a@"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(store_account_root("/data", bad[i]) == NULL);
	struct store *store = NULL;
	const char *error;
	struct store_rebuild_report report;
	CHECK_INT(store_open(NULL, &store, &error), -1);
	CHECK_INT(store_account_create(NULL, &error), -1);
	CHECK_INT(store_account_remove(NULL, &error), -1);
	CHECK_INT(store_rebuild(NULL, &report, &error), -1);
}

int main(void)
{
	char tmpl[] = "/tmp/test-store-XXXXXX";
	tmp_root = mkdtemp(tmpl);
	if (tmp_root == NULL) {
		perror("mkdtemp");
		return 1;
	}
	const char *log_error;
	log_open("stderr", LOG_LEVEL_WARN, "test-store", &log_error);
	test_names();
	test_fname();
	test_account_root();
	test_account();
	test_roundtrip();
	test_flags();
	test_expunge();
	test_external_changes();
	test_old_tmp();
	test_crash_adopt();
	test_rebuild_keep();
	test_rebuild_foreign();
	test_index_rollback();
	test_quota();
	test_concurrent();
	const char *error;
	store_remove_tree(tmp_root, &error);
	return test_report();
}

/* The store's IMAP support: mailbox delete/rename/subscriptions, atomic
 * COPY/MOVE (also when killed mid-way), CONDSTORE/QRESYNC queries,
 * keywords, object ids, the cache blob and the schema migration. */
#include "store/store.h"
#include "store/store-private.h"
#include "lib/log.h"
#include "lib/strnum.h"
#include "lib/xmalloc.h"
#include "test.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *tmp_root;
static int account_seq;

static char *new_account(void)
{
	const char *error = NULL;
	char *root = xasprintf("%s/mail/example.test/user%d", tmp_root, ++account_seq);
	CHECK_INT(store_account_create(root, &error), 0);
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

static uint32_t save(struct store *store, const char *mailbox, const char *data, unsigned int flags)
{
	enum store_error err;
	const char *error;
	uint32_t uid = 0;
	struct store_save *s = store_save_begin(store, mailbox, &err, &error);
	CHECK(s != NULL);
	if (s == NULL)
		return 0;
	CHECK_INT(store_save_write(s, data, strlen(data)), 0);
	store_save_set_flags(s, flags);
	store_save_set_internal_date(s, 1000000000);
	CHECK_INT(store_save_finish(&s, &uid, &err, &error), 0);
	return uid;
}

static void create(struct store *store, const char *name)
{
	enum store_error err;
	const char *error;
	CHECK_INT(store_mailbox_create(store, name, &err, &error), 0);
}

static struct store_status status(struct store *store, const char *name, enum store_error *err)
{
	struct store_status st = {0};
	const char *error;
	store_mailbox_status(store, name, &st, err, &error);
	return st;
}

static uint32_t count_of(struct store *store, const char *name)
{
	enum store_error err;
	return status(store, name, &err).messages;
}

static void mailboxid(struct store *store, const char *name, char *out)
{
	struct store_mailbox_info info;
	enum store_error err;
	const char *error;
	out[0] = '\0';
	if (store_mailbox_info(store, name, &info, &err, &error) == 0)
		memcpy(out, info.mailboxid, STORE_OBJECTID_SIZE);
}

static bool names_has(char **names, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++) {
		if (strcmp(names[i], name) == 0)
			return true;
	}
	return false;
}

static bool mailbox_exists(struct store *store, const char *name)
{
	char **names;
	size_t count;
	const char *error;
	if (store_mailbox_list(store, &names, &count, &error) < 0)
		return false;
	bool found = names_has(names, count, name);
	store_names_free(&names, count);
	return found;
}

static char *folder_of(const char *root, const char *name)
{
	return store_folder_path(root, name);
}

static bool path_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static void test_delete(void)
{
	char *root = new_account();
	struct store *store = open_store(root);
	enum store_error err;
	const char *error;
	create(store, "A");
	create(store, "A/B");
	save(store, "A/B", "Subject: x\n\nx\n", 0);
	struct {
		const char *name;
		int ret;
		enum store_error err;
	} cases[] = {
	        {"INBOX", -1, STORE_ERR_CANNOT},   {"inbox", -1, STORE_ERR_CANNOT},
	        {"A", -1, STORE_ERR_HAS_CHILDREN}, {"Nope", -1, STORE_ERR_NOT_FOUND},
	        {"../x", -1, STORE_ERR_INVALID},   {"A/B", 0, STORE_OK},
	        {"A/B", -1, STORE_ERR_NOT_FOUND},  {"A", 0, STORE_OK},
	};
	char id_before[STORE_OBJECTID_SIZE], id_after[STORE_OBJECTID_SIZE];
	mailboxid(store, "A/B", id_before);
	uint32_t uv_before = status(store, "A/B", &err).uidvalidity;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err = STORE_OK;
		CHECK_INT(store_mailbox_delete(store, cases[i].name, &err, &error), cases[i].ret);
		CHECK_INT(err, cases[i].err);
	}
	char *dir = folder_of(root, "A/B");
	CHECK(!path_exists(dir));
	CHECK(!mailbox_exists(store, "A"));
	create(store, "A/B");
	mailboxid(store, "A/B", id_after);
	CHECK(strcmp(id_before, id_after) != 0);
	CHECK(status(store, "A/B", &err).uidvalidity > uv_before);
	CHECK_INT(count_of(store, "A/B"), 0);
	free(dir);
	store_close(&store);
	free(root);
}

static void test_rename(void)
{
	char *root = new_account();
	struct store *store = open_store(root);
	enum store_error err;
	const char *error;
	create(store, "A");
	create(store, "A/B");
	create(store, "INBOX/Kid");
	save(store, "A", "Subject: a\n\na\n", 0);
	save(store, "A/B", "Subject: b\n\nb\n", 0);
	save(store, "INBOX", "Subject: i1\n\ni1\n", STORE_FLAG_SEEN);
	save(store, "INBOX", "Subject: i2\n\ni2\n", 0);
	CHECK_INT(store_mailbox_subscribe(store, "A/B", true, &err, &error), 0);
	char id_a[STORE_OBJECTID_SIZE], id_x[STORE_OBJECTID_SIZE];
	mailboxid(store, "A", id_a);
	uint32_t uv = status(store, "A", &err).uidvalidity;
	CHECK_INT(store_mailbox_rename(store, "A", "Sent", &err, &error), -1);
	CHECK_INT(err, STORE_ERR_EXISTS);
	CHECK_INT(store_mailbox_rename(store, "A", "A/C", &err, &error), -1);
	CHECK_INT(err, STORE_ERR_INVALID);
	CHECK_INT(store_mailbox_rename(store, "Nope", "Q", &err, &error), -1);
	CHECK_INT(err, STORE_ERR_NOT_FOUND);
	CHECK_INT(store_mailbox_rename(store, "A", "X/Y", &err, &error), 0);
	CHECK(!mailbox_exists(store, "A") && !mailbox_exists(store, "A/B"));
	CHECK(mailbox_exists(store, "X/Y") && mailbox_exists(store, "X/Y/B"));
	CHECK_INT(count_of(store, "X/Y"), 1);
	CHECK_INT(count_of(store, "X/Y/B"), 1);
	mailboxid(store, "X/Y", id_x);
	CHECK_STR(id_x, id_a);
	CHECK_INT(status(store, "X/Y", &err).uidvalidity, uv);
	char **subs;
	size_t nsubs;
	CHECK_INT(store_mailbox_list_subscribed(store, &subs, &nsubs, &error), 0);
	CHECK(names_has(subs, nsubs, "X/Y/B") && !names_has(subs, nsubs, "A/B"));
	store_names_free(&subs, nsubs);
	/* RFC 9051 6.3.6: INBOX's messages move, INBOX and its children stay */
	CHECK_INT(store_mailbox_rename(store, "inbox", "Old", &err, &error), 0);
	CHECK_INT(count_of(store, "INBOX"), 0);
	CHECK_INT(count_of(store, "Old"), 2);
	CHECK(mailbox_exists(store, "INBOX/Kid") && mailbox_exists(store, "INBOX"));
	store_close(&store);
	/* the folders on disk agree: a reopen (sync) finds the same */
	store = open_store(root);
	CHECK_INT(count_of(store, "X/Y/B"), 1);
	CHECK_INT(count_of(store, "Old"), 2);
	store_close(&store);
	free(root);
}

static void test_subscriptions(void)
{
	char *root = new_account();
	struct store *store = open_store(root);
	enum store_error err;
	const char *error;
	char **names;
	size_t count;
	CHECK_INT(store_mailbox_subscribe(store, "Not/There", true, &err, &error), 0);
	CHECK_INT(store_mailbox_subscribe(store, "Not/There", true, &err, &error), 0);
	CHECK_INT(store_mailbox_subscribe(store, "Sent", false, &err, &error), 0);
	CHECK_INT(store_mailbox_subscribe(store, "a//b", true, &err, &error), -1);
	CHECK_INT(err, STORE_ERR_INVALID);
	CHECK_INT(store_mailbox_list_subscribed(store, &names, &count, &error), 0);
	CHECK(count > 0 && strcmp(names[0], "INBOX") == 0);
	CHECK(names_has(names, count, "Not/There"));
	CHECK(!names_has(names, count, "Sent"));
	CHECK(names_has(names, count, "Trash"));
	store_names_free(&names, count);
	struct store_mailbox_info info;
	CHECK_INT(store_mailbox_info(store, "Trash", &info, &err, &error), 0);
	CHECK(info.subscribed);
	CHECK_INT(store_mailbox_info(store, "Sent", &info, &err, &error), 0);
	CHECK(!info.subscribed);
	/* DELETE keeps the subscription (RFC 9051 6.3.9) */
	CHECK_INT(store_mailbox_delete(store, "Trash", &err, &error), 0);
	CHECK_INT(store_mailbox_list_subscribed(store, &names, &count, &error), 0);
	CHECK(names_has(names, count, "Trash"));
	store_names_free(&names, count);
	store_close(&store);
	free(root);
}

static void test_copy_move(void)
{
	char *root = new_account();
	struct store *store = open_store(root);
	enum store_error err;
	const char *error;
	uint32_t u1 = save(store, "INBOX", "Subject: 1\n\none\n", STORE_FLAG_SEEN);
	uint32_t u2 = save(store, "INBOX", "Subject: 2\n\ntwo\n", 0);
	uint32_t u3 = save(store, "INBOX", "Subject: 3\n\nthree\n", STORE_FLAG_FLAGGED);
	const char *kw[] = {"$Important"};
	CHECK_INT(store_keywords_update(store, "INBOX", &u3, 1, 1, kw, 1, &err, &error), 0);
	CHECK_INT(store_msg_cache_set(store, "INBOX", u3, "blob3", 5, &error), 0);
	struct store_msg m3;
	CHECK_INT(store_msg_get(store, "INBOX", u3, &m3, &err, &error), 0);
	uint32_t in[] = {u3, u1, 999, u3};
	uint32_t *map = NULL;
	uint32_t next = status(store, "Archive", &err).uidnext;
	uint64_t hms = status(store, "Archive", &err).highestmodseq;
	CHECK_INT(store_copy(store, "INBOX", in, 4, "Archive", &map, &err, &error), 0);
	/* new UIDs in ascending order of the source UIDs */
	CHECK_INT(map[0], next + 1);
	CHECK_INT(map[1], next);
	CHECK_INT(map[2], 0);
	CHECK_INT(map[3], next + 1);
	CHECK_INT(count_of(store, "Archive"), 2);
	CHECK_INT(count_of(store, "INBOX"), 3);
	CHECK_INT(status(store, "Archive", &err).uidnext, next + 2);
	CHECK(status(store, "Archive", &err).highestmodseq > hms);
	struct store_msg c3;
	CHECK_INT(store_msg_get(store, "Archive", map[0], &c3, &err, &error), 0);
	CHECK_INT(c3.flags, STORE_FLAG_FLAGGED);
	CHECK_STR(c3.keywords, "$Important");
	CHECK_STR(c3.emailid, m3.emailid);
	CHECK_INT(c3.internal_date, 1000000000);
	CHECK(strcmp(c3.uidl, m3.uidl) != 0);
	void *blob;
	size_t size;
	CHECK_INT(store_msg_cache_get(store, "Archive", map[0], &blob, &size, &error), 1);
	CHECK(size == 5 && memcmp(blob, "blob3", 5) == 0);
	free(blob);
	char **kws;
	size_t nkw;
	CHECK_INT(store_mailbox_keywords(store, "Archive", &kws, &nkw, &err, &error), 0);
	CHECK(nkw == 1 && strcmp(kws[0], "$Important") == 0);
	store_names_free(&kws, nkw);
	store_msg_clear(&c3);
	free(map);
	/* MOVE: gone from INBOX, vanished there, same EMAILID in Trash */
	uint64_t before = status(store, "INBOX", &err).highestmodseq;
	CHECK_INT(store_move(store, "INBOX", &u3, 1, "Trash", &map, &err, &error), 0);
	CHECK_INT(count_of(store, "INBOX"), 2);
	CHECK_INT(store_msg_get(store, "INBOX", u3, &c3, &err, &error), -1);
	CHECK_INT(err, STORE_ERR_NOT_FOUND);
	CHECK_INT(store_msg_get(store, "Trash", map[0], &c3, &err, &error), 0);
	CHECK_STR(c3.emailid, m3.emailid);
	CHECK_INT(c3.flags, STORE_FLAG_FLAGGED);
	store_msg_clear(&c3);
	struct store_uid_range *v;
	size_t nv;
	bool exact;
	CHECK_INT(store_vanished_since(store, "INBOX", before, &v, &nv, &exact, &err, &error), 0);
	CHECK(exact && nv == 1 && v[0].first == u3 && v[0].last == u3);
	free(v);
	CHECK(status(store, "INBOX", &err).highestmodseq > before);
	free(map);
	/* into the same mailbox: new UIDs */
	CHECK_INT(store_move(store, "INBOX", &u2, 1, "INBOX", &map, &err, &error), 0);
	CHECK(map[0] > u2);
	CHECK_INT(count_of(store, "INBOX"), 2);
	free(map);
	/* nothing to do, unknown mailbox */
	CHECK_INT(store_copy(store, "INBOX", NULL, 0, "Trash", &map, &err, &error), 0);
	free(map);
	CHECK_INT(store_copy(store, "INBOX", &u1, 1, "Nope", &map, &err, &error), -1);
	CHECK_INT(err, STORE_ERR_NOT_FOUND);
	/* COPY honours the quota */
	store_set_quota(store, 0, 4);
	CHECK_INT(store_copy(store, "INBOX", &u1, 1, "Trash", &map, &err, &error), -1);
	CHECK_INT(err, STORE_ERR_QUOTA);
	CHECK_INT(store_move(store, "INBOX", &u1, 1, "Trash", &map, &err, &error), 0);
	free(map);
	store_msg_clear(&m3);
	store_close(&store);
	free(root);
}

/* ---- large and crash-safe moves ---- */

/* Writes n message files straight into cur/ (as another MDA would), so
 * that a big mailbox is built in seconds; the next open adopts them. */
static void make_files(const char *dir, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char data[64];
		int len = snprintf(data, sizeof(data), "Subject: %zu\n\nbody %zu\n", i, i);
		char *path = xasprintf("%s/cur/%zu.M1P1Q%zu.bulk,S=%d,W=%d:2,S", dir, i + 1, i, len,
		                       len + 3);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
		if (fd >= 0) {
			CHECK_INT(write(fd, data, (size_t)len), len);
			close(fd);
		}
		free(path);
	}
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* File names in cur/ and new/, sorted; inodes appended to *inos. */
static char **disk_names(const char *dir, size_t *count_r, ino_t **inos, size_t *ninos)
{
	char **names = NULL;
	size_t count = 0;
	const char *subs[] = {"cur", "new"};
	for (size_t s = 0; s < 2; s++) {
		char *path = xasprintf("%s/%s", dir, subs[s]);
		DIR *d = opendir(path);
		struct dirent *de;
		while (d != NULL && (de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			names = xreallocarray(names, count + 1, sizeof(*names));
			names[count++] = xasprintf("%s/%s", subs[s], de->d_name);
			if (inos != NULL) {
				*inos = xreallocarray(*inos, *ninos + 1, sizeof(**inos));
				(*inos)[(*ninos)++] = de->d_ino;
			}
		}
		if (d != NULL)
			closedir(d);
		free(path);
	}
	if (count > 1)
		qsort(names, count, sizeof(*names), str_cmp);
	*count_r = count;
	return names;
}

static char **index_names(struct store *store, const char *mailbox, size_t *count_r)
{
	sqlite3_stmt *stmt;
	char **names = NULL;
	size_t count = 0;
	sqlite3_prepare_v2(store->db,
	                   "SELECT filename FROM messages WHERE mailbox_id ="
	                   " (SELECT id FROM mailboxes WHERE name = ?) ORDER BY filename",
	                   -1, &stmt, NULL);
	sqlite3_bind_text(stmt, 1, mailbox, -1, SQLITE_STATIC);
	while (sqlite3_step(stmt) == SQLITE_ROW) {
		names = xreallocarray(names, count + 1, sizeof(*names));
		names[count++] = xstrdup((const char *)sqlite3_column_text(stmt, 0));
	}
	sqlite3_finalize(stmt);
	if (count > 1)
		qsort(names, count, sizeof(*names), str_cmp);
	*count_r = count;
	return names;
}

static void free_names(char **names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

/* The Maildir and the index name exactly the same files; returns how many. */
static size_t agree(struct store *store, const char *root, const char *mailbox, ino_t **inos,
                    size_t *ninos)
{
	char *dir = folder_of(root, mailbox);
	size_t nd, ni;
	char **d = disk_names(dir, &nd, inos, ninos);
	char **x = index_names(store, mailbox, &ni);
	bool same = nd == ni;
	for (size_t i = 0; same && i < nd; i++)
		same = strcmp(d[i], x[i]) == 0;
	CHECK(same);
	if (!same)
		fprintf(stderr, "%s: %zu files on disk, %zu in the index\n", mailbox, nd, ni);
	char *tmp = xasprintf("%s/tmp", dir);
	DIR *t = opendir(tmp);
	size_t left = 0;
	struct dirent *de;
	while (t != NULL && (de = readdir(t)) != NULL)
		left += de->d_name[0] != '.';
	if (t != NULL)
		closedir(t);
	CHECK_INT(left, 0);
	free(tmp);
	free(dir);
	free_names(d, nd);
	free_names(x, ni);
	return nd;
}

static int ino_cmp(const void *a, const void *b)
{
	ino_t ia = *(const ino_t *)a, ib = *(const ino_t *)b;
	return ia < ib ? -1 : ia > ib;
}

/* Every original inode is in exactly one of the two folders, once. */
static void check_exactly_once(struct store *store, const char *root, const char *a, const char *b,
                               ino_t *orig, size_t norig)
{
	ino_t *inos = NULL;
	size_t ninos = 0;
	size_t na = agree(store, root, a, &inos, &ninos);
	size_t nb = agree(store, root, b, &inos, &ninos);
	CHECK_INT(na + nb, norig);
	CHECK_INT(count_of(store, a) + count_of(store, b), norig);
	if (ninos > 1)
		qsort(inos, ninos, sizeof(*inos), ino_cmp);
	bool same = ninos == norig;
	for (size_t i = 0; same && i < ninos; i++)
		same = inos[i] == orig[i];
	CHECK(same);
	free(inos);
}

static uint32_t *all_uids(struct store *store, const char *mailbox, size_t *count_r)
{
	struct store_msg_flags *msgs;
	size_t count;
	enum store_error err;
	const char *error;
	*count_r = 0;
	if (store_msg_flags_list(store, mailbox, 0, &msgs, &count, &err, &error) < 0)
		return NULL;
	uint32_t *uids = xcalloc(count + 1, sizeof(*uids));
	for (size_t i = 0; i < count; i++)
		uids[i] = msgs[i].uid;
	store_msg_flags_free(&msgs, count);
	*count_r = count;
	return uids;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int move_all(struct store *store, const char *from, const char *to)
{
	size_t count;
	uint32_t *uids = all_uids(store, from, &count);
	uint32_t *map = NULL;
	enum store_error err;
	const char *error = NULL;
	int ret = store_move(store, from, uids, count, to, &map, &err, &error);
	if (ret < 0)
		fprintf(stderr, "move: %s\n", error);
	free(uids);
	free(map);
	return ret;
}

#if defined(__SANITIZE_ADDRESS__)
#define TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_SANITIZED 1
#endif
#endif

/* YUBIN_TEST_BIG overrides; sanitizer builds default to less. */
static size_t scale(size_t full, size_t sanitized)
{
	const char *env = getenv("YUBIN_TEST_BIG");
	uint32_t n;
	if (env != NULL && str_to_uint32(env, &n) == 0 && n > 0)
		return n < full ? n : full;
#ifdef TEST_SANITIZED
	return sanitized;
#else
	(void)sanitized;
	return full;
#endif
}

static ino_t *inodes_of(const char *root, const char *mailbox, size_t *count_r)
{
	char *dir = folder_of(root, mailbox);
	ino_t *inos = NULL;
	size_t n = 0, nn;
	char **names = disk_names(dir, &nn, &inos, &n);
	free_names(names, nn);
	free(dir);
	if (n > 1)
		qsort(inos, n, sizeof(*inos), ino_cmp);
	*count_r = n;
	return inos;
}

static void test_big_move(void)
{
	size_t n = scale(100000, 10000);
	char *root = new_account();
	char *dir = folder_of(root, "Archive");
	make_files(dir, n);
	double t0 = now_s();
	struct store *store = open_store(root);
	CHECK_INT(count_of(store, "Archive"), n);
	size_t norig;
	ino_t *orig = inodes_of(root, "Archive", &norig);
	double t1 = now_s();
	CHECK_INT(move_all(store, "Archive", "Trash"), 0);
	double t2 = now_s();
	printf("big move: %zu messages adopted in %.2f s, moved in %.2f s\n", n, t1 - t0, t2 - t1);
	CHECK_INT(count_of(store, "Archive"), 0);
	CHECK_INT(count_of(store, "Trash"), n);
	check_exactly_once(store, root, "Archive", "Trash", orig, norig);
	/* no duplicates: every EMAILID and UID once */
	struct store_msg *msgs;
	size_t count;
	enum store_error err;
	const char *error;
	CHECK_INT(store_msg_list(store, "Trash", &msgs, &count, &err, &error), 0);
	char **ids = xcalloc(count + 1, sizeof(*ids));
	for (size_t i = 0; i < count; i++)
		ids[i] = msgs[i].emailid;
	qsort(ids, count, sizeof(*ids), str_cmp);
	size_t dups = 0;
	for (size_t i = 1; i < count; i++)
		dups += strcmp(ids[i], ids[i - 1]) == 0;
	CHECK_INT(dups, 0);
	free(ids);
	store_msg_list_free(&msgs, count);
	store_close(&store);
	free(orig);
	free(dir);
	free(root);
}

/* A child moves every message of from to to; it is killed after delay_us. */
static void crash_round(const char *root, const char *from, const char *to, long delay_us,
                        ino_t *orig, size_t norig)
{
	pid_t pid = fork();
	if (pid == 0) {
		struct store *store = NULL;
		const char *error;
		if (store_open(root, &store, &error) < 0)
			_exit(2);
		int ret = move_all(store, from, to);
		store_close(&store);
		_exit(ret == 0 ? 0 : 1);
	}
	usleep((useconds_t)delay_us);
	kill(pid, SIGKILL);
	int st;
	waitpid(pid, &st, 0);
	/* recovery happens here, before anything else looks */
	struct store *store = open_store(root);
	if (store == NULL)
		return;
	check_exactly_once(store, root, from, to, orig, norig);
	CHECK_INT(move_all(store, from, to), 0);
	CHECK_INT(count_of(store, from), 0);
	CHECK_INT(count_of(store, to), norig);
	check_exactly_once(store, root, from, to, orig, norig);
	printf("crash round: killed after %ld ms (%s), then completed\n", delay_us / 1000,
	       WIFSIGNALED(st) ? "mid-way" : "already done");
	store_close(&store);
}

static void test_crash_move(void)
{
	size_t n = scale(20000, 5000);
	char *root = new_account();
	char *dir = folder_of(root, "Archive");
	make_files(dir, n);
	struct store *store = open_store(root);
	CHECK_INT(count_of(store, "Archive"), n);
	store_close(&store);
	size_t norig;
	ino_t *orig = inodes_of(root, "Archive", &norig);
	long delays[] = {5000, 50000, 200000, 1000000, 0, 0, 0};
	srand((unsigned int)time(NULL));
	for (size_t i = 0; i < sizeof(delays) / sizeof(delays[0]); i++) {
		long d = delays[i] != 0 ? delays[i] : 1000 + rand() % 800000;
		bool forward = i % 2 == 0;
		crash_round(root, forward ? "Archive" : "Junk", forward ? "Junk" : "Archive", d,
		            orig, norig);
	}
	free(orig);
	free(dir);
	free(root);
}

/* ---- CONDSTORE / QRESYNC ---- */

static bool has_uid(const struct store_msg_flags *m, size_t n, uint32_t uid)
{
	for (size_t i = 0; i < n; i++) {
		if (m[i].uid == uid)
			return true;
	}
	return false;
}

static void test_changes(void)
{
	char *root = new_account();
	struct store *store = open_store(root);
	enum store_error err;
	const char *error;
	uint32_t u[6];
	for (size_t i = 0; i < 6; i++)
		u[i] = save(store, "INBOX", "Subject: c\n\nc\n", 0);
	uint64_t m0 = status(store, "INBOX", &err).highestmodseq;
	CHECK_INT(store_flags_update(store, "INBOX", &u[0], 1, 1, STORE_FLAG_SEEN, &error), 0);
	const char *kw[] = {"work"};
	CHECK_INT(store_keywords_update(store, "INBOX", &u[1], 1, 1, kw, 1, &err, &error), 0);
	CHECK_INT(store_expunge(store, "INBOX", &u[2], 1, &error), 0);
	uint32_t *map;
	CHECK_INT(store_move(store, "INBOX", &u[3], 1, "Trash", &map, &err, &error), 0);
	free(map);
	uint64_t m1 = status(store, "INBOX", &err).highestmodseq;
	CHECK(m1 >= m0 + 4);
	struct store_msg_flags *ch;
	size_t nch;
	struct store_uid_range *v;
	size_t nv;
	CHECK_INT(store_changes_since(store, "INBOX", m0, &ch, &nch, &v, &nv, &err, &error), 0);
	CHECK_INT(nch, 2);
	CHECK(has_uid(ch, nch, u[0]) && has_uid(ch, nch, u[1]));
	for (size_t i = 0; i < nch; i++) {
		CHECK(ch[i].modseq > m0 && ch[i].modseq <= m1);
		if (ch[i].uid == u[1])
			CHECK_STR(ch[i].keywords, "work");
		if (ch[i].uid == u[0])
			CHECK_INT(ch[i].flags, STORE_FLAG_SEEN);
	}
	CHECK_INT(nv, 1);
	CHECK(nv == 1 && v[0].first == u[2] && v[0].last == u[3]);
	store_msg_flags_free(&ch, nch);
	free(v);
	/* nothing since the newest */
	CHECK_INT(store_changes_since(store, "INBOX", m1, &ch, &nch, &v, &nv, &err, &error), 0);
	CHECK_INT(nch + nv, 0);
	store_msg_flags_free(&ch, nch);
	free(v);
	/* all since 0; the log is exact from the mailbox's start */
	bool exact = false;
	CHECK_INT(store_vanished_since(store, "INBOX", 1, &v, &nv, &exact, &err, &error), 0);
	CHECK(exact && nv == 1);
	free(v);
	CHECK_INT(store_msg_flags_list(store, "INBOX", 0, &ch, &nch, &err, &error), 0);
	CHECK_INT(nch, 4);
	store_msg_flags_free(&ch, nch);
	/* across a rebuild: HIGHESTMODSEQ does not go back, VANISHED falls back to
	 * the gaps below UIDNEXT */
	store_close(&store);
	struct store_rebuild_report rep;
	CHECK_INT(store_rebuild(root, &rep, &error), 0);
	store = open_store(root);
	CHECK(status(store, "INBOX", &err).highestmodseq > m1);
	CHECK_INT(store_vanished_since(store, "INBOX", m0, &v, &nv, &exact, &err, &error), 0);
	CHECK(!exact && nv == 1 && v[0].first == u[2] && v[0].last == u[3]);
	free(v);
	store_close(&store);
	free(root);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Own changes are recorded with the folder's new mtime (no listing after
 * them), yet a file another program drops in afterwards, or before an own
 * change, is still found. */
static void test_own_changes_and_foreign_files(void)
{
	char *root = new_account();
	struct store *store = open_store(root);
	enum store_error err;
	const char *error;
	uint32_t a = save(store, "INBOX", "Subject: a\n\na\n", 0);
	sleep_ms(150);
	CHECK_INT(store_flags_update(store, "INBOX", &a, 1, 1, STORE_FLAG_SEEN, &error), 0);
	CHECK_INT(count_of(store, "INBOX"), 1);
	/* a later tick: another program's file appears */
	sleep_ms(50);
	make_files(root, 1);
	CHECK_INT(count_of(store, "INBOX"), 2);
	/* another program's file, then an own change before any sync */
	sleep_ms(50);
	char *path = xasprintf("%s/cur/77.M2P2Q2.other:2,", root);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0 && write(fd, "Subject: o\n\no\n", 15) == 15);
	if (fd >= 0)
		close(fd);
	free(path);
	sleep_ms(50);
	CHECK_INT(store_flags_update(store, "INBOX", &a, 1, 1, STORE_FLAG_FLAGGED, &error), 0);
	CHECK_INT(count_of(store, "INBOX"), 3);
	(void)err;
	store_close(&store);
	free(root);
}

/* What an IMAP session reads to catch up: whole rows of what changed or
 * arrived since a MODSEQ, and what vanished, from one snapshot. */
static void test_list_since(void)
{
	char *root = new_account();
	struct store *store = open_store(root);
	enum store_error err;
	const char *error;
	uint32_t a = save(store, "INBOX", "Subject: a\n\na\n", 0);
	uint32_t b = save(store, "INBOX", "Subject: b\n\nb\n", 0);
	uint32_t c = save(store, "INBOX", "Subject: c\n\nc\n", 0);
	uint64_t m0 = status(store, "INBOX", &err).highestmodseq;
	CHECK_INT(store_flags_update(store, "INBOX", &a, 1, 1, STORE_FLAG_SEEN, &error), 0);
	CHECK_INT(store_expunge(store, "INBOX", &b, 1, &error), 0);
	uint32_t d = save(store, "INBOX", "Subject: d\n\nd\n", STORE_FLAG_FLAGGED);
	struct store_msg *rows;
	struct store_uid_range *v;
	size_t nrows, nv;
	bool exact = false;
	uint64_t highest = 0;
	CHECK_INT(store_msg_list_since(store, "INBOX", m0, &rows, &nrows, &v, &nv, &exact,
	                               &highest, &err, &error),
	          0);
	CHECK(exact && highest == status(store, "INBOX", &err).highestmodseq);
	CHECK(nrows == 2 && rows[0].uid == a && rows[1].uid == d);
	CHECK(nrows == 2 && rows[0].flags == STORE_FLAG_SEEN &&
	      rows[1].flags == STORE_FLAG_FLAGGED && rows[1].size > 0 && rows[1].emailid[0] == 'E');
	CHECK(nv == 1 && v[0].first == b && v[0].last == b);
	store_msg_list_free(&rows, nrows);
	free(v);
	CHECK_INT(store_msg_list_since(store, "INBOX", highest, &rows, &nrows, &v, &nv, &exact,
	                               &highest, &err, &error),
	          0);
	CHECK_INT(nrows + nv, 0);
	CHECK(c > b);
	store_msg_list_free(&rows, nrows);
	free(v);
	store_close(&store);
	free(root);
}

static void test_unchangedsince(void)
{
	char *root = new_account();
	struct store *store = open_store(root);
	enum store_error err;
	const char *error;
	uint32_t a = save(store, "INBOX", "Subject: a\n\na\n", 0);
	uint32_t b = save(store, "INBOX", "Subject: b\n\nb\n", 0);
	struct store_msg ma;
	CHECK_INT(store_msg_get(store, "INBOX", a, &ma, &err, &error), 0);
	/* b changes after a's MODSEQ */
	CHECK_INT(store_flags_update(store, "INBOX", &b, 1, 1, STORE_FLAG_ANSWERED, &error), 0);
	uint32_t both[] = {a, b};
	uint32_t *failed;
	size_t nfailed;
	CHECK_INT(store_flags_update_unchanged_since(store, "INBOX", both, 2, 1, STORE_FLAG_FLAGGED,
	                                             ma.modseq, &failed, &nfailed, &error),
	          0);
	CHECK(nfailed == 1 && failed[0] == b);
	free(failed);
	struct store_msg x;
	CHECK_INT(store_msg_get(store, "INBOX", a, &x, &err, &error), 0);
	CHECK_INT(x.flags, STORE_FLAG_FLAGGED);
	CHECK(x.modseq > ma.modseq);
	store_msg_clear(&x);
	CHECK_INT(store_msg_get(store, "INBOX", b, &x, &err, &error), 0);
	CHECK_INT(x.flags, STORE_FLAG_ANSWERED);
	store_msg_clear(&x);
	/* UNCHANGEDSINCE 0 fails every message */
	CHECK_INT(store_flags_update_unchanged_since(store, "INBOX", both, 2, 0, 0, 0, &failed,
	                                             &nfailed, &error),
	          0);
	CHECK_INT(nfailed, 2);
	free(failed);
	store_msg_clear(&ma);
	store_close(&store);
	free(root);
}

static void test_keywords(void)
{
	char *root = new_account();
	struct store *store = open_store(root);
	enum store_error err;
	const char *error;
	uint32_t u = save(store, "INBOX", "Subject: k\n\nk\n", 0);
	struct {
		const char *kw;
		int mode;
		int ret;
		enum store_error err;
		const char *want;
	} cases[] = {
	        {"$Important", 1, 0, STORE_OK, "$Important"},
	        {"foo", 1, 0, STORE_OK, "$Important foo"},
	        {"FOO", 1, 0, STORE_OK, "$Important foo"},
	        {"$important", -1, 0, STORE_OK, "foo"},
	        {"unknown", -1, 0, STORE_OK, "foo"},
	        {"bar", 0, 0, STORE_OK, "bar"},
	        {"a b", 1, -1, STORE_ERR_INVALID, "bar"},
	        {"\\Seen", 1, -1, STORE_ERR_INVALID, "bar"},
	        {"(x", 1, -1, STORE_ERR_INVALID, "bar"},
	        {"", 1, -1, STORE_ERR_INVALID, "bar"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *kw[] = {cases[i].kw};
		err = STORE_OK;
		CHECK_INT(store_keywords_update(store, "INBOX", &u, 1, cases[i].mode, kw, 1, &err,
		                                &error),
		          cases[i].ret);
		CHECK_INT(err, cases[i].err);
		struct store_msg m;
		CHECK_INT(store_msg_get(store, "INBOX", u, &m, &err, &error), 0);
		CHECK_STR(m.keywords, cases[i].want);
		store_msg_clear(&m);
	}
	char **names;
	size_t count;
	CHECK_INT(store_mailbox_keywords(store, "INBOX", &names, &count, &err, &error), 0);
	CHECK_INT(count, 3);
	CHECK(count == 3 && strcmp(names[1], "foo") == 0);
	store_names_free(&names, count);
	/* flags and keywords at once, one MODSEQ */
	struct store_change change = {
	        .mode = 0, .change_flags = true, .flags = STORE_FLAG_SEEN, .change_keywords = true};
	CHECK_INT(store_msgs_change(store, "INBOX", &u, 1, &change, NULL, NULL, &err, &error), 0);
	struct store_msg m;
	CHECK_INT(store_msg_get(store, "INBOX", u, &m, &err, &error), 0);
	CHECK_STR(m.keywords, "");
	CHECK_INT(m.flags, STORE_FLAG_SEEN);
	store_msg_clear(&m);
	/* the limit of distinct keywords per mailbox */
	int ret = 0;
	for (int i = 0; i < STORE_KEYWORDS_MAX + 5 && ret == 0; i++) {
		char kwbuf[16];
		snprintf(kwbuf, sizeof(kwbuf), "k%d", i);
		const char *kw[] = {kwbuf};
		ret = store_keywords_update(store, "INBOX", &u, 1, 1, kw, 1, &err, &error);
	}
	CHECK_INT(ret, -1);
	CHECK_INT(err, STORE_ERR_LIMIT);
	store_close(&store);
	free(root);
}

static void test_objectid_cache(void)
{
	char *root = new_account();
	struct store *store = open_store(root);
	enum store_error err;
	const char *error;
	uint32_t a = save(store, "INBOX", "Subject: a\n\na\n", 0);
	uint32_t b = save(store, "INBOX", "Subject: b\n\nb\n", 0);
	struct store_msg ma, mb;
	CHECK_INT(store_msg_get(store, "INBOX", a, &ma, &err, &error), 0);
	CHECK_INT(store_msg_get(store, "INBOX", b, &mb, &err, &error), 0);
	CHECK(strlen(ma.emailid) == 25 && ma.emailid[0] == 'E');
	CHECK(strcmp(ma.emailid, mb.emailid) != 0);
	char ida[STORE_OBJECTID_SIZE], idb[STORE_OBJECTID_SIZE];
	mailboxid(store, "INBOX", ida);
	mailboxid(store, "Sent", idb);
	CHECK(strlen(ida) == 25 && ida[0] == 'M' && strcmp(ida, idb) != 0);
	/* stable across a reopen */
	store_close(&store);
	store = open_store(root);
	mailboxid(store, "Sent", ida);
	CHECK_STR(ida, idb);
	struct store_msg again;
	CHECK_INT(store_msg_get(store, "INBOX", a, &again, &err, &error), 0);
	CHECK_STR(again.emailid, ma.emailid);
	store_msg_clear(&again);
	/* cache */
	void *blob = NULL;
	size_t size = 0;
	CHECK_INT(store_msg_cache_get(store, "INBOX", a, &blob, &size, &error), 0);
	CHECK_INT(store_msg_cache_set(store, "INBOX", a, "\0\1binary", 8, &error), 0);
	CHECK_INT(store_msg_cache_set(store, "INBOX", a, "\0\1bin2ry", 8, &error), 0);
	CHECK_INT(store_msg_cache_get(store, "INBOX", a, &blob, &size, &error), 1);
	CHECK(size == 8 && memcmp(blob, "\0\1bin2ry", 8) == 0);
	free(blob);
	CHECK_INT(store_msg_cache_set(store, "INBOX", 9999, "x", 1, &error), 0);
	CHECK_INT(store_msg_cache_get(store, "INBOX", 9999, &blob, &size, &error), 0);
	CHECK_INT(store_expunge(store, "INBOX", &a, 1, &error), 0);
	CHECK_INT(store_msg_cache_get(store, "INBOX", a, &blob, &size, &error), 0);
	store_msg_clear(&ma);
	store_msg_clear(&mb);
	store_close(&store);
	free(root);
}

/* An index of schema version 2, made from a current one by SQL. */
static void downgrade(const char *root)
{
	char *path = xasprintf("%s/index.db", root);
	sqlite3 *db;
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_INT(sqlite3_exec(db,
	                       "DROP TRIGGER messages_fts_gone; DROP TABLE fts_text;"
	                       "DROP TABLE fts_docs; DROP TABLE fts_msgs; DROP INDEX messages_emailid;"
	                       "DROP INDEX messages_modseq;"
	                       "DROP TRIGGER messages_expunged; DROP TABLE subscriptions;"
	                       "DROP TABLE expunged; DROP TABLE mailbox_keywords;"
	                       "DROP TABLE msg_cache; DROP TABLE journal; DROP TABLE journal_msgs;"
	                       "ALTER TABLE mailboxes DROP COLUMN mailboxid;"
	                       "ALTER TABLE mailboxes DROP COLUMN vanished_min_modseq;"
	                       "ALTER TABLE messages DROP COLUMN emailid;"
	                       "UPDATE mailboxes SET subscribed = 0 WHERE name = 'Junk';"
	                       "PRAGMA user_version = 2;",
	                       NULL, NULL, NULL),
	          SQLITE_OK);
	sqlite3_close(db);
	free(path);
}

static void test_migration(void)
{
	char *root = new_account();
	struct store *store = open_store(root);
	enum store_error err;
	const char *error;
	uint32_t a = save(store, "INBOX", "Subject: a\n\na\n", STORE_FLAG_SEEN);
	uint64_t hms = status(store, "INBOX", &err).highestmodseq;
	store_close(&store);
	downgrade(root);
	store = open_store(root);
	if (store == NULL)
		return;
	struct store_msg m;
	CHECK_INT(store_msg_get(store, "INBOX", a, &m, &err, &error), 0);
	CHECK_INT(m.flags, STORE_FLAG_SEEN);
	CHECK(strlen(m.emailid) == 25);
	store_msg_clear(&m);
	CHECK_INT(status(store, "INBOX", &err).highestmodseq, hms);
	struct store_mailbox_info info;
	CHECK_INT(store_mailbox_info(store, "Junk", &info, &err, &error), 0);
	CHECK(!info.subscribed && info.mailboxid[0] == 'M');
	CHECK_INT(info.vanished_min_modseq, 1);
	CHECK_INT(store_mailbox_info(store, "INBOX", &info, &err, &error), 0);
	CHECK(info.subscribed);
	CHECK_INT(info.vanished_min_modseq, hms);
	/* expunges from before the migration are unknown: not exact */
	struct store_uid_range *v;
	size_t nv;
	bool exact = true;
	CHECK_INT(store_vanished_since(store, "INBOX", 1, &v, &nv, &exact, &err, &error), 0);
	CHECK(!exact);
	free(v);
	sqlite3_stmt *stmt;
	sqlite3_prepare_v2(store->db, "PRAGMA user_version", -1, &stmt, NULL);
	CHECK(sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_int(stmt, 0) == STORE_SCHEMA_VERSION);
	sqlite3_finalize(stmt);
	store_close(&store);
	free(root);
}

/* A delete and a rename interrupted after their journal commit are
 * finished by the next open. */
static void test_journal_roll_forward(void)
{
	char *root = new_account();
	struct store *store = open_store(root);
	enum store_error err;
	const char *error;
	create(store, "Gone");
	create(store, "Old");
	create(store, "Old/Kid");
	save(store, "Gone", "Subject: g\n\ng\n", 0);
	save(store, "Old/Kid", "Subject: k\n\nk\n", 0);
	struct store_mailbox gone;
	CHECK_INT(store_mailbox_get(store, "Gone", &gone, &error), 1);
	int64_t id;
	CHECK_INT(store_journal_add(store, STORE_JOURNAL_DELETE, gone.id, 0, "Gone", NULL, &id,
	                            &error),
	          0);
	CHECK_INT(store_journal_add(store, STORE_JOURNAL_RENAME, 0, 0, "Old", "New", &id, &error),
	          0);
	/* half done: one folder already renamed */
	char *from = folder_of(root, "Old/Kid");
	char *to = folder_of(root, "New/Kid");
	CHECK_INT(rename(from, to), 0);
	store_close(&store);
	store = open_store(root);
	CHECK(!mailbox_exists(store, "Gone") && !path_exists(gone.dir));
	CHECK(mailbox_exists(store, "New") && mailbox_exists(store, "New/Kid"));
	CHECK(!mailbox_exists(store, "Old"));
	CHECK_INT(count_of(store, "New/Kid"), 1);
	status(store, "Gone", &err);
	CHECK_INT(err, STORE_ERR_NOT_FOUND);
	store_mailbox_clear(&gone);
	free(from);
	free(to);
	store_close(&store);
	free(root);
}

int main(void)
{
	char tmpl[] = "/tmp/test-store-imap-XXXXXX";
	tmp_root = mkdtemp(tmpl);
	if (tmp_root == NULL) {
		perror("mkdtemp");
		return 1;
	}
	const char *log_error;
	log_open("stderr", LOG_LEVEL_ERROR, "test-store-imap", &log_error);
	test_delete();
	test_rename();
	test_subscriptions();
	test_copy_move();
	test_changes();
	test_unchangedsince();
	test_list_since();
	test_own_changes_and_foreign_files();
	test_keywords();
	test_objectid_cache();
	test_migration();
	test_journal_roll_forward();
	test_big_move();
	test_crash_move();
	const char *error;
	store_remove_tree(tmp_root, &error);
	return test_report();
}

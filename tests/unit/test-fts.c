/* The full-text index (src/fts, store_fts_*): folding, indexing and
 * searching (trigram phrases, short terms, quotes, invalid UTF-8), texts
 * following COPY and leaving with the last copy, version changes, and
 * (issue 3 item 6) over the whole shared corpus: the index answers
 * exactly as the scan of the files does, for BODY and TEXT and for whole
 * SEARCH commands with header keys. */
#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fts/fts.h"
#include "imap/imap-private.h"
#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "mime/mime.h"
#include "store/store-private.h"
#include "store/store.h"
#include "corpus.h"
#include "test.h"


static char *tmp_root;
static int account_seq;

static struct store *new_store(void)
{
	const char *error = NULL;
	struct store *store = NULL;
	char *root = xasprintf("%s/mail/example.test/user%d", tmp_root, ++account_seq);
	CHECK_INT(store_account_create(root, &error), 0);
	CHECK_INT(store_open(root, &store, &error), 0);
	free(root);
	return store;
}

static uint32_t save(struct store *store, const char *mailbox, const char *data, size_t len)
{
	enum store_error err;
	const char *error;
	uint32_t uid = 0;
	struct store_save *s = store_save_begin(store, mailbox, &err, &error);
	CHECK(s != NULL);
	if (s == NULL)
		return 0;
	CHECK_INT(store_save_write(s, data, len), 0);
	CHECK_INT(store_save_finish(&s, &uid, &err, &error), 0);
	return uid;
}

/* "1,3" of a UID list. */
static char *uid_list(const uint32_t *uids, size_t count)
{
	struct buf b = BUF_INIT(0);
	for (size_t i = 0; i < count; i++)
		buf_printf(&b, "%s%u", i > 0 ? "," : "", uids[i]);
	return buf_steal(&b);
}

static char *search(struct store *store, const char *mailbox, const char *term, bool text)
{
	uint32_t *uids = NULL;
	size_t count = 0;
	const char *error;
	CHECK_INT(fts_search(store, mailbox, term, text, &uids, &count, &error), 0);
	char *list = uid_list(uids, count);
	free(uids);
	return list;
}

static void test_fold(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	        {"Hello World", "hello world"},
	        {"ÄBC", "Äbc"},
	        {"研究室X", "研究室x"},
	        {"[Z@]", "[z@]"},
	        {"", ""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = xstrdup(cases[i].in);
		fts_fold(s, strlen(s));
		CHECK_STR(s, cases[i].want);
		free(s);
	}
	char nul[] = {'A', '\0', 'b'};
	fts_fold(nul, 3);
	CHECK(memcmp(nul, "a b", 3) == 0);
}

static const char msg_plain[] = "Subject: Hello World\nFrom: Alice <alice@example.test>\n\n"
                                "The Quick brown fox says \"hi\" to a\"b.\n";
static const char msg_jis[] = "Subject: =?ISO-2022-JP?B?GyRCOCY1Zjw8GyhC?=\nMIME-Version: 1.0\n"
                              "Content-Type: text/plain; charset=ISO-2022-JP\n\n"
                              "\x1b$B8&5f<<\x1b(B meeting\n";
static const char msg_sjis[] = "Subject: sjis\nMIME-Version: 1.0\n"
                               "Content-Type: text/plain; charset=Shift_JIS\n"
                               "Content-Transfer-Encoding: 8bit\n\n"
                               "\x8c\xa4\x8b\x86\x8e\xba\n";
static const char msg_html[] = "Subject: html\nMIME-Version: 1.0\n"
                               "Content-Type: multipart/alternative; boundary=b\n\n--b\n"
                               "Content-Type: text/html; charset=EUC-JP\n\n"
                               "<p>\xb8\xa6\xb5\xe6\xbc\xbc</p><b>bold</b>\n--b\n"
                               "Content-Type: application/octet-stream\n"
                               "Content-Transfer-Encoding: base64\n\nc2VjcmV0\n--b--\n";

static void test_index_and_search(void)
{
	struct store *store = new_store();
	const char *error;
	enum store_error err;
	uint32_t *uids;
	size_t count;
	save(store, "INBOX", msg_plain, strlen(msg_plain));
	save(store, "INBOX", msg_jis, strlen(msg_jis));
	save(store, "INBOX", msg_sjis, strlen(msg_sjis));
	save(store, "INBOX", msg_html, strlen(msg_html));
	CHECK_INT(store_fts_missing(store, "INBOX", FTS_VERSION, &uids, &count, &error), 0);
	CHECK_INT(count, 4);
	free(uids);
	CHECK_INT(fts_index_missing(store, "INBOX", &error), 0);
	CHECK_INT(store_fts_missing(store, "INBOX", FTS_VERSION, &uids, &count, &error), 0);
	CHECK_INT(count, 0);
	free(uids);
	/* a new format version makes every message missing again */
	CHECK_INT(store_fts_missing(store, "INBOX", FTS_VERSION + 1, &uids, &count, &error), 0);
	CHECK_INT(count, 4);
	free(uids);
	static const struct {
		const char *term;
		bool text;
		const char *want;
	} cases[] = {
	        {"quick brown", false, "1"},
	        {"hello", true, "1"},
	        {"hello", false, ""},       /* header only: not BODY */
	        {"研究室", false, "2,3,4"}, /* ISO-2022-JP, Shift_JIS, EUC-JP in HTML */
	        {"研究室", true, "2,3,4"},
	        {"研", false, "2,3,4"}, /* one character: scan of the stored text */
	        {"研究", false, "2,3,4"},
	        {"究室 meeting", false, "2"},
	        {"qu", false, "1"},
	        {"a\"b", false, "1"}, /* a quote inside the FTS5 phrase */
	        {"\"hi\"", false, "1"},
	        {"\xe7", false, "2,3,4"}, /* invalid UTF-8: byte scan */
	        {"bold", false, "4"},
	        {"<b>", false, ""},   /* tags are not text */
	        {"secret", true, ""}, /* nor attachments */
	        {"alice@example", true, "1"},
	        {"subject: sjis", true, "3"},
	        {"nothing here", true, ""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = search(store, "INBOX", cases[i].term, cases[i].text);
		if (strcmp(got, cases[i].want) != 0)
			fprintf(stderr, "term \"%s\" text=%d\n", cases[i].term, cases[i].text);
		CHECK_STR(got, cases[i].want);
		free(got);
	}
	/* COPY takes the texts along (same EMAILID): nothing to index */
	uint32_t src[] = {1, 2};
	uint32_t *dst;
	CHECK_INT(store_copy(store, "INBOX", src, 2, "Archive", &dst, &err, &error), 0);
	CHECK_INT(store_fts_missing(store, "Archive", FTS_VERSION, &uids, &count, &error), 0);
	CHECK_INT(count, 0);
	free(uids);
	char *got = search(store, "Archive", "研究室", false);
	CHECK_STR(got, "2");
	free(got);
	/* the texts stay while a copy is left, and go with the last one */
	CHECK_INT(store_expunge(store, "INBOX", src, 2, &error), 0);
	got = search(store, "INBOX", "quick", false);
	CHECK_STR(got, "");
	free(got);
	got = search(store, "Archive", "quick", false);
	CHECK_STR(got, "1");
	free(got);
	CHECK_INT(store_expunge(store, "Archive", dst, 2, &error), 0);
	free(dst);
	sqlite3_stmt *stmt;
	sqlite3_prepare_v2(
	        store->db,
	        "SELECT (SELECT count(*) FROM fts_docs), (SELECT count(*) FROM fts_msgs),"
	        " (SELECT count(*) FROM fts_text)",
	        -1, &stmt, NULL);
	CHECK(sqlite3_step(stmt) == SQLITE_ROW);
	CHECK_INT(sqlite3_column_int(stmt, 1), 2);
	CHECK_INT(sqlite3_column_int(stmt, 0), sqlite3_column_int(stmt, 2));
	sqlite3_finalize(stmt);
	store_close(&store);
}

/* ---- the corpus: index against scan ---- */

struct corpus_texts {
	struct store_fts_text *texts;
	size_t count, cap;
};

static void collect_cb(void *context, bool header, const char *text, size_t len)
{
	struct corpus_texts *c = context;
	if (c->count == c->cap) {
		c->cap = c->cap == 0 ? 4 : c->cap * 2;
		c->texts = xreallocarray(c->texts, c->cap, sizeof(*c->texts));
	}
	char *copy = xmalloc(len + 1);
	memcpy(copy, text, len + 1);
	c->texts[c->count++] = (struct store_fts_text){header, copy, len};
}

/* A file in new/, as another MDA delivers: the store adopts it at its
 * next sync, without an fsync per message (the corpus is large). */
static void drop(const char *root, const char *data, size_t len, unsigned int *n)
{
	char *path = xasprintf("%s/new/corpus.%u.test", root, (*n)++);
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL && fwrite(data, 1, len, f) == len);
	if (f != NULL)
		fclose(f);
	free(path);
}

struct corpus_load {
	const char *root;
	unsigned int n;
};

/* Every message of the corpus into INBOX (empty ones left out). */
static void corpus_load_message(void *context, const char *name, const char *data, size_t len)
{
	struct corpus_load *load = context;
	(void)name;
	if (len > 0)
		drop(load->root, data, len, &load->n);
}

/* Each message's texts, read the scan's way. */
static struct corpus_texts *corpus_read(struct store *store, const struct store_msg *msgs,
                                        size_t count)
{
	struct corpus_texts *all = xcalloc(count, sizeof(*all));
	for (size_t i = 0; i < count; i++) {
		enum store_error err;
		const char *error;
		int fd = store_msg_open(store, "INBOX", msgs[i].uid, &err, &error);
		CHECK(fd >= 0);
		if (fd < 0)
			continue;
		struct buf b = BUF_INIT(0);
		CHECK_INT(imap_read_range(fd, 0, msgs[i].size, &b, &error), 0);
		struct mime_part *root = mime_parse(b.data, b.len, NULL);
		CHECK_INT(fts_message_texts(fd, root, collect_cb, &all[i], &error), 0);
		mime_part_free(&root);
		buf_free(&b);
		close(fd);
	}
	return all;
}

static const char *const corpus_terms[] = {
        "the",      "mime",      "content",    "http://",  "=?",      "boundary",
        "hello",    "thank you", "encode",     "subject:", "from:",   "x-",
        "a",        "e",         "0",          "of",       "<",       "\"",
        "%",        "テスト",    "エンコード", "日本語",   "研究室",  "本文",
        "メール",   "の",        "は",         "です",     "日本",    "я",
        "тест",     "ü",         "é",          "ß",        "zzzzqqq", "\xef\xbf\xbd",
        "\xe3\x81", "ab",        "on",         "  ",       "\n\n",    "charset",
};

static size_t scan_term(const struct corpus_texts *all, const struct store_msg *msgs, size_t count,
                        const char *term, bool with_header, uint32_t *out)
{
	size_t n = 0, len = strlen(term);
	for (size_t i = 0; i < count; i++) {
		for (size_t k = 0; k < all[i].count; k++) {
			const struct store_fts_text *t = &all[i].texts[k];
			if ((with_header || !t->header) &&
			    memmem(t->data, t->len, term, len) != NULL) {
				out[n++] = msgs[i].uid;
				break;
			}
		}
	}
	return n;
}

static void compare_terms(struct store *store, const struct corpus_texts *all,
                          const struct store_msg *msgs, size_t count)
{
	uint32_t *want = xcalloc(count + 1, sizeof(uint32_t));
	unsigned int nonempty = 0, compared = 0;
	for (size_t i = 0; i < sizeof(corpus_terms) / sizeof(corpus_terms[0]); i++) {
		for (int text = 0; text < 2; text++) {
			char *term = xstrdup(corpus_terms[i]);
			fts_fold(term, strlen(term));
			size_t n = scan_term(all, msgs, count, term, text != 0, want);
			char *w = uid_list(want, n);
			char *got = search(store, "INBOX", term, text != 0);
			if (strcmp(got, w) != 0)
				fprintf(stderr, "corpus: term \"%s\" text=%d differs\n", term,
				        text);
			CHECK(strcmp(got, w) == 0);
			nonempty += n > 0;
			compared++;
			free(w);
			free(got);
			free(term);
		}
	}
	printf("corpus: %u term searches equal to the scan, %u with matches\n", compared, nonempty);
	CHECK(nonempty >= compared * 3 / 4);
	free(want);
}

/* ---- whole SEARCH commands, index against scan (imap-search.c) ---- */

struct search_case {
	const char *args[8];
};

static const struct search_case search_cases[] = {
        {{"TEXT", "テスト"}},
        {{"BODY", "encode"}},
        {{"SUBJECT", "テスト"}},
        {{"FROM", "example"}},
        {{"HEADER", "Content-Type", "html"}},
        {{"OR", "TEXT", "研究室", "SUBJECT", "mime"}},
        {{"NOT", "BODY", "the"}},
        {{"BODY", "a", "TEXT", "エンコード"}},
        {{"OR", "BODY", "日本", "NOT", "TEXT", "x"}},
        {{"TO", "jp", "BODY", "の"}},
};

static int run_search(struct imap_session *sess, const struct search_case *c, bool scan,
                      uint32_t *out)
{
	struct imap_arg args[8];
	unsigned int n = 0;
	for (; n < 8 && c->args[n] != NULL; n++) {
		bool atom = n == 0 || strcmp(c->args[n], "OR") == 0 ||
		            strcmp(c->args[n], "NOT") == 0 || strcmp(c->args[n], "TEXT") == 0 ||
		            strcmp(c->args[n], "BODY") == 0 || strcmp(c->args[n], "SUBJECT") == 0;
		args[n] = (struct imap_arg){atom ? IMAP_ARG_ATOM : IMAP_ARG_STRING,
		                            0,
		                            (char *)c->args[n],
		                            strlen(c->args[n]),
		                            0,
		                            NULL,
		                            NULL};
	}
	struct imap_search *s = imap_search_parse(sess, args, n);
	CHECK(s != NULL);
	if (s == NULL)
		return 0;
	imap_search_set_scan(s, scan);
	imap_search_prepare(sess, s);
	int count = 0;
	for (size_t i = 0; i < sess->mbox->count; i++) {
		if (imap_search_match(sess, s, i) > 0)
			out[count++] = sess->mbox->msgs[i].uid;
	}
	imap_search_free(&s);
	return count;
}

static void compare_searches(struct store *store, struct store_msg *msgs, size_t count)
{
	struct imap_mailbox mbox = {.name = "INBOX", .msgs = msgs, .count = count};
	struct imap_session *sess = xcalloc(1, sizeof(*sess));
	sess->store = store;
	sess->mbox = &mbox;
	sess->uid = true;
	uint32_t *a = xcalloc(count + 1, sizeof(uint32_t)),
	         *b = xcalloc(count + 1, sizeof(uint32_t));
	for (size_t i = 0; i < sizeof(search_cases) / sizeof(search_cases[0]); i++) {
		int na = run_search(sess, &search_cases[i], false, a);
		int nb = run_search(sess, &search_cases[i], true, b);
		if (na != nb || memcmp(a, b, (size_t)na * sizeof(uint32_t)) != 0)
			fprintf(stderr, "SEARCH %s %s ...: index %d, scan %d\n",
			        search_cases[i].args[0], search_cases[i].args[1], na, nb);
		CHECK(na == nb && memcmp(a, b, (size_t)na * sizeof(uint32_t)) == 0);
		CHECK(nb > 0);
	}
	imap_part_cache_clear(sess);
	free(a);
	free(b);
	free(sess);
}

static void test_corpus(void)
{
	struct store *store = new_store();
	struct corpus_load load = {store->root, 0};
	struct corpus_count files;
	if (corpus_each_message(corpus_load_message, &load, &files) < 0) {
		store_close(&store);
		return;
	}
	unsigned int n = load.n;
	CHECK(n > 1500);
	const char *error;
	enum store_error err;
	struct store_msg *msgs;
	size_t count;
	CHECK_INT(store_msg_list(store, "INBOX", &msgs, &count, &err, &error), 0);
	CHECK_INT(count, n);
	clock_t t0 = clock();
	CHECK_INT(fts_index_missing(store, "INBOX", &error), 0);
	printf("corpus: %u messages indexed in %.2f s CPU\n", n,
	       (double)(clock() - t0) / CLOCKS_PER_SEC);
	struct corpus_texts *all = corpus_read(store, msgs, count);
	compare_terms(store, all, msgs, count);
	compare_searches(store, msgs, count);
	for (size_t i = 0; i < count; i++) {
		for (size_t k = 0; k < all[i].count; k++)
			free((char *)all[i].texts[k].data);
		free(all[i].texts);
	}
	free(all);
	store_msg_list_free(&msgs, count);
	store_close(&store);
}

int main(void)
{
	char tmpl[] = "/tmp/yubin-test-fts-XXXXXX";
	const char *error;
	tmp_root = mkdtemp(tmpl);
	if (tmp_root == NULL) {
		perror("mkdtemp");
		return 1;
	}
	/* the trigram tokenizer needs FTS5 in the SQLite we run on */
	CHECK(sqlite3_compileoption_used("ENABLE_FTS5"));
	test_fold();
	test_index_and_search();
	test_corpus();
	store_remove_tree(tmp_root, &error);
	return test_report();
}

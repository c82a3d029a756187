/* Full-text search: message texts from src/mime, kept in the store's
 * FTS5 index (store_fts_*), and the scan over the files that the index
 * must agree with. Indexing is best effort for its callers (delivery,
 * APPEND): what is missing is caught up when a mailbox is searched. */
#include "fts/fts.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/fdio.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "mime/mime.h"
#include "store/store.h"

/* Headers beyond this are malformed or hostile: not worth caching. */
#define FTS_CACHED_HEADER_READ_MAX (1024 * 1024)

/* Messages indexed per transaction while catching up: the write lock is
 * held for a bounded time, deliveries wait at most that long. */
#define FTS_BATCH 100

void fts_fold(char *text, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (text[i] >= 'A' && text[i] <= 'Z')
			text[i] = (char)(text[i] - 'A' + 'a');
		else if (text[i] == '\0')
			text[i] = ' ';
	}
}

struct fts_texts_ctx {
	fts_text_callback *callback;
	void *context;
	struct buf text;
};

static void fts_texts_cb(void *context, const struct mime_part *part, bool header, const char *text,
                         size_t len, bool part_end)
{
	struct fts_texts_ctx *ctx = context;
	(void)buf_append(&ctx->text, text, len);
	if (!part_end)
		return;
	if (ctx->text.len > 0)
		fts_fold(ctx->text.data, ctx->text.len);
	ctx->callback(ctx->context, header, buf_str(&ctx->text), ctx->text.len);
	buf_reset(&ctx->text);
}

/* Feeds the whole file to fn in chunks. */
static int fts_read_all(int fd, fd_chunk_fn *fn, void *obj, const char **error_r)
{
	if (fd_read_all(fd, fn, obj) == 0)
		return 0;
	*error_r = "reading the message failed";
	return -1;
}

static int fts_feed_text(void *obj, const void *data, size_t len)
{
	mime_text_feed(obj, data, len);
	return 0;
}

static int fts_feed_parser(void *obj, const void *data, size_t len)
{
	mime_parser_feed(obj, data, len);
	return 0;
}

int fts_message_texts(int fd, const struct mime_part *root, fts_text_callback *callback,
                      void *context, const char **error_r)
{
	struct fts_texts_ctx ctx = {callback, context, BUF_INIT(FTS_TEXT_MAX)};
	struct mime_text *text = mime_text_create(root, fts_texts_cb, &ctx);
	int ret = fts_read_all(fd, fts_feed_text, text, error_r);
	mime_text_finish(&text);
	buf_free(&ctx.text);
	return ret;
}

struct fts_contains_ctx {
	const char *term;
	size_t term_len;
	bool with_header;
	bool found;
};

static void fts_contains_cb(void *context, bool header, const char *text, size_t len)
{
	struct fts_contains_ctx *ctx = context;
	if (ctx->found || (header && !ctx->with_header))
		return;
	if (memmem(text, len, ctx->term, ctx->term_len) != NULL)
		ctx->found = true;
}

int fts_message_contains(int fd, const struct mime_part *root, const char *term, bool with_header,
                         bool *found_r, const char **error_r)
{
	struct fts_contains_ctx ctx = {term, strlen(term), with_header, false};
	int ret = fts_message_texts(fd, root, fts_contains_cb, &ctx, error_r);
	*found_r = ctx.found;
	return ret;
}

/* ---- indexing ---- */

struct fts_collect {
	struct store_fts_text *texts;
	size_t count, cap;
};

static void fts_collect_cb(void *context, bool header, const char *text, size_t len)
{
	struct fts_collect *c = context;
	if (c->count == c->cap) {
		c->cap = c->cap == 0 ? 4 : c->cap * 2;
		c->texts = xreallocarray(c->texts, c->cap, sizeof(*c->texts));
	}
	char *copy = xmalloc(len + 1);
	memcpy(copy, text, len + 1);
	c->texts[c->count++] = (struct store_fts_text){header, copy, len};
}

static void fts_collect_free(struct fts_collect *c)
{
	for (size_t i = 0; i < c->count; i++)
		free((char *)c->texts[i].data);
	free(c->texts);
}

/* The root header's cached fields (mime_cached_fields) go with the tree. A
 * header too large or unreadable is simply not cached: readers fall back
 * to the file. */
static void fts_cache_header(int fd, struct mime_part *root)
{
	if (root->header_size == 0 || root->header_size > FTS_CACHED_HEADER_READ_MAX)
		return;
	char *header = xmalloc((size_t)root->header_size);
	size_t got = 0;
	while (got < root->header_size) {
		ssize_t n = pread(fd, header + got, (size_t)root->header_size - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got == root->header_size)
		mime_part_cache_header(root, header, got);
	free(header);
}

/* The parsed tree goes into the store's cache too, so that the first
 * FETCH BODYSTRUCTURE does not read the file again. */
static int fts_cache_structure(struct store *store, const char *mailbox, uint32_t uid, int fd,
                               struct mime_part *root, const char **error_r)
{
	struct buf blob = BUF_INIT(0);
	int ret = 0;
	if (root != NULL)
		fts_cache_header(fd, root);
	if (root != NULL && mime_part_serialize(root, &blob) == 0)
		ret = store_msg_cache_set(store, mailbox, uid, blob.data, blob.len, error_r);
	buf_free(&blob);
	return ret;
}

int fts_index_message(struct store *store, const char *mailbox, uint32_t uid, const char **error_r)
{
	enum store_error err;
	int fd = store_msg_open(store, mailbox, uid, &err, error_r);
	if (fd < 0)
		return err == STORE_ERR_NOT_FOUND ? 0 : -1; /* expunged meanwhile */
	struct mime_parser *parser = mime_parser_create(NULL);
	struct fts_collect c = {NULL, 0, 0};
	int ret = fts_read_all(fd, fts_feed_parser, parser, error_r);
	struct mime_part *root = mime_parser_finish(&parser);
	if (ret == 0)
		ret = fts_message_texts(fd, root, fts_collect_cb, &c, error_r);
	if (ret == 0)
		ret = fts_cache_structure(store, mailbox, uid, fd, root, error_r);
	close(fd);
	mime_part_free(&root);
	if (ret == 0)
		ret = store_fts_put(store, mailbox, uid, FTS_VERSION, c.texts, c.count, error_r);
	fts_collect_free(&c);
	return ret;
}

static uint64_t fts_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One transaction of up to FTS_BATCH messages. */
static int fts_index_batch(struct store *store, const char *mailbox, const uint32_t *uids,
                           size_t count, const char **error_r)
{
	const char *error;
	if (store_fts_begin(store, error_r) < 0)
		return -1;
	for (size_t i = 0; i < count; i++) {
		if (fts_index_message(store, mailbox, uids[i], &error) < 0)
			log_warn("fts event=index_failed mailbox=\"%s\" uid=%" PRIu32
			         " error=\"%s\"",
			         mailbox, uids[i], error);
	}
	return store_fts_commit(store, error_r);
}

int fts_index_missing(struct store *store, const char *mailbox, const char **error_r)
{
	uint32_t *uids;
	size_t count;
	if (store_fts_missing(store, mailbox, FTS_VERSION, &uids, &count, error_r) < 0)
		return -1;
	uint64_t start = fts_now_ms();
	int ret = 0;
	for (size_t i = 0; i < count && ret == 0; i += FTS_BATCH) {
		size_t n = count - i < FTS_BATCH ? count - i : FTS_BATCH;
		ret = fts_index_batch(store, mailbox, uids + i, n, error_r);
	}
	if (count > 0)
		log_info("fts event=caught_up mailbox=\"%s\" messages=%zu ms=%" PRIu64, mailbox,
		         count, fts_now_ms() - start);
	free(uids);
	return ret;
}

int fts_search(struct store *store, const char *mailbox, const char *term, bool with_header,
               uint32_t **uids_r, size_t *count_r, const char **error_r)
{
	return store_fts_search(store, mailbox, term, with_header, uids_r, count_r, error_r);
}

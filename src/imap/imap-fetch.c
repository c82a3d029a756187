/* The FETCH reply: for each message a list of pieces built from the items,
 * written while the output stays below the high watermark and continued
 * from on_drain. Literal sizes are announced before the bytes, so they are
 * computed exactly (the MIME tree's vsize for BODY[], a counting pass for
 * BINARY[]); a file that changed under us is padded or cut to what was
 * announced, so the client's parser never loses step. */
#include "imap/imap-fetch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/conn.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

static const char *const imap_months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void imap_date_time_write(struct buf *out, time_t t)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	buf_printf(out, "%2d-%s-%04d %02d:%02d:%02d +0000", tm.tm_mday, imap_months[tm.tm_mon],
	           tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void imap_crlf_init(struct imap_crlf *c, bool prev_cr, bool mask_nul)
{
	c->last_cr = prev_cr;
	c->mask_nul = mask_nul;
}

size_t imap_crlf_chunk(struct imap_crlf *c, const char *in, size_t len, char *out)
{
	size_t n = 0;
	bool cr = c->last_cr;
	for (size_t i = 0; i < len; i++) {
		if (in[i] == '\n' && !cr)
			out[n++] = '\r';
		out[n++] = in[i] == '\0' && c->mask_nul ? (char)0x80 : in[i];
		cr = in[i] == '\r';
	}
	c->last_cr = cr;
	return n;
}

static ssize_t imap_pread(int fd, void *data, size_t len, uint64_t offset)
{
	ssize_t n;
	do {
		n = pread(fd, data, len, (off_t)offset);
	} while (n < 0 && errno == EINTR);
	return n;
}

int imap_read_range(int fd, uint64_t offset, uint64_t len, struct buf *out, const char **error_r)
{
	char chunk[8192];
	while (len > 0) {
		ssize_t n = imap_pread(fd, chunk, len < sizeof(chunk) ? (size_t)len : sizeof(chunk),
		                       offset);
		if (n < 0) {
			*error_r = strerror(errno);
			return -1;
		}
		if (n == 0)
			break;
		if (buf_append(out, chunk, (size_t)n) < 0) {
			*error_r = "too large";
			return -1;
		}
		offset += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

/* ---- building a message's pieces ---- */

static struct imap_fetch_piece *imap_piece_cur(struct imap_fetch *f)
{
	return &f->pieces[f->piece_count - 1];
}

static struct imap_fetch_piece *imap_piece_new(struct imap_fetch *f)
{
	f->pieces = xreallocarray(f->pieces, f->piece_count + 1, sizeof(f->pieces[0]));
	struct imap_fetch_piece *p = &f->pieces[f->piece_count++];
	memset(p, 0, sizeof(*p));
	buf_init(&p->text, 0);
	return p;
}

/* The announced length of a window of total bytes. */
static uint64_t imap_window(const struct imap_fetch_item *item, uint64_t total, uint64_t *skip_r)
{
	*skip_r = item->has_partial ? item->partial_offset : 0;
	if (*skip_r >= total)
		return 0;
	uint64_t left = total - *skip_r;
	return item->has_partial && item->partial_length < left ? item->partial_length : left;
}

/* Ends the current piece with a streamed range; later items go to a new one. */
static void imap_piece_stream(struct imap_fetch *f, enum imap_piece_mode mode, uint64_t offset,
                              uint64_t size, uint64_t skip, uint64_t length)
{
	struct imap_fetch_piece *p = imap_piece_cur(f);
	p->mode = mode;
	p->offset = offset;
	p->size = size;
	p->skip = skip;
	p->length = length;
	if ((mode == IMAP_PIECE_CRLF || mode == IMAP_PIECE_TEXT) && offset > 0) {
		char c = 0;
		p->prev_cr = imap_pread(f->fd, &c, 1, offset - 1) == 1 && c == '\r';
	}
	imap_piece_new(f);
}

static void imap_literal_mem(struct buf *out, const struct imap_fetch_item *item, const char *data,
                             size_t len)
{
	uint64_t skip, n = imap_window(item, len, &skip);
	buf_printf(out, "{%" PRIu64 "}\r\n", n);
	buf_append(out, data + skip, (size_t)n);
}

/* HEADER.FIELDS(.NOT): the filtered header is small, built in memory. */
static int imap_fetch_filtered(struct imap_fetch *f, const struct imap_fetch_item *item,
                               const struct mime_section_range *range)
{
	struct buf raw = BUF_INIT(0), filtered = BUF_INIT(0);
	const char *error;
	const struct mime_part *part = range->part;
	if (item->cached_fields && part->cached_header != NULL) {
		buf_append(&raw, part->cached_header, part->cached_header_len);
	} else if (imap_read_range(f->fd, range->offset, range->size, &raw, &error) < 0) {
		buf_free(&raw);
		return -1;
	}
	mime_header_filter(buf_str(&raw), raw.len, item->section.fields, item->section.field_count,
	                   item->section.kind == MIME_SECTION_HEADER_FIELDS_NOT, &filtered);
	char *conv = xmalloc(2 * filtered.len + 1);
	struct imap_crlf crlf;
	imap_crlf_init(&crlf, false, true);
	size_t n = imap_crlf_chunk(&crlf, buf_str(&filtered), filtered.len, conv);
	imap_literal_mem(&imap_piece_cur(f)->text, item, conv, n);
	free(conv);
	buf_free(&raw);
	buf_free(&filtered);
	return 0;
}

static int imap_fetch_section(struct imap_fetch *f, const struct imap_fetch_item *item,
                              const struct store_msg *msg, const struct mime_part *root)
{
	struct mime_section_range range;
	const char *error;
	struct buf *text = &imap_piece_cur(f)->text;
	buf_printf(text, "%s ", item->name);
	if (root == NULL) {
		/* BODY[] / RFC822 need no tree: the store knows the sizes */
		memset(&range, 0, sizeof(range));
		range.size = msg->size;
		range.vsize = msg->vsize;
	} else if (mime_section_resolve(root, &item->section, &range, &error) < 0) {
		buf_append_str(text, "NIL");
		return 0;
	}
	if (range.filter)
		return imap_fetch_filtered(f, item, &range);
	uint64_t skip, n = imap_window(item, range.vsize, &skip);
	buf_printf(text, "{%" PRIu64 "}\r\n", n);
	if (n > 0)
		imap_piece_stream(f, IMAP_PIECE_TEXT, range.offset, range.size, skip, n);
	return 0;
}

/* BINARY: the part's content, CTE-decoded. Identity encodings go out as
 * stored. Returns -1 for an unknown encoding (RFC 3516 UNKNOWN-CTE). */
static int imap_binary_range(const struct mime_part *root, const struct imap_fetch_item *item,
                             struct mime_section_range *range, enum mime_cte *cte_r)
{
	const char *error;
	*cte_r = MIME_CTE_7BIT;
	if (mime_section_resolve(root, &item->section, range, &error) < 0)
		return 0;
	const struct mime_part *part = range->part;
	if (item->section.path_len == 0 ||
	    (part->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE)))
		return 0;
	*cte_r = mime_cte_parse(part->encoding);
	return *cte_r == MIME_CTE_UNKNOWN ? -1 : 0;
}

/* How BINARY sends a part: base64 and quoted-printable decoded, "binary"
 * as stored, 7bit and 8bit (and whole messages) as BODY[] does. */
static enum imap_piece_mode imap_binary_mode(enum mime_cte cte)
{
	if (cte == MIME_CTE_BASE64 || cte == MIME_CTE_QP)
		return IMAP_PIECE_DECODE;
	return cte == MIME_CTE_BINARY ? IMAP_PIECE_RAW : IMAP_PIECE_CRLF;
}

/* The size of the content as BINARY sends it, and whether it holds NUL
 * (then it goes out as literal8). */
static void imap_binary_count(struct imap_fetch *f, const struct mime_section_range *range,
                              enum mime_cte cte, uint64_t *size_r, bool *nul_r)
{
	enum imap_piece_mode mode = imap_binary_mode(cte);
	struct mime_decoder *dec = mode == IMAP_PIECE_DECODE ? mime_decoder_create(cte) : NULL;
	struct buf out = BUF_INIT(0);
	struct imap_crlf crlf;
	char c = 0;
	imap_crlf_init(&crlf,
	               range->offset > 0 && imap_pread(f->fd, &c, 1, range->offset - 1) == 1 &&
	                       c == '\r',
	               false);
	char *conv = xmalloc(2 * IMAP_READ_CHUNK);
	*size_r = 0;
	*nul_r = false;
	for (uint64_t pos = 0; pos < range->size;) {
		uint64_t want =
		        range->size - pos < IMAP_READ_CHUNK ? range->size - pos : IMAP_READ_CHUNK;
		ssize_t n = imap_pread(f->fd, f->in, (size_t)want, range->offset + pos);
		if (n <= 0)
			break;
		pos += (uint64_t)n;
		if (dec != NULL)
			mime_decoder_feed(dec, f->in, (size_t)n, &out);
		else if (mode == IMAP_PIECE_CRLF)
			buf_append(&out, conv, imap_crlf_chunk(&crlf, f->in, (size_t)n, conv));
		else
			buf_append(&out, f->in, (size_t)n);
		*size_r += out.len;
		*nul_r = *nul_r || (out.len > 0 && memchr(out.data, '\0', out.len) != NULL);
		buf_reset(&out);
	}
	if (dec != NULL) {
		mime_decoder_finish(dec, &out);
		*size_r += out.len;
		*nul_r = *nul_r || (out.len > 0 && memchr(out.data, '\0', out.len) != NULL);
	}
	mime_decoder_destroy(&dec);
	buf_free(&out);
	free(conv);
}

static int imap_fetch_binary(struct imap_fetch *f, const struct imap_fetch_item *item,
                             const struct mime_part *root)
{
	struct mime_section_range range;
	enum mime_cte cte;
	uint64_t total, skip;
	bool nul;
	struct buf *text = &imap_piece_cur(f)->text;
	if (imap_binary_range(root, item, &range, &cte) < 0)
		return -1;
	if (range.part == NULL) {
		buf_printf(text, "%s NIL", item->name);
		return 0;
	}
	imap_binary_count(f, &range, cte, &total, &nul);
	if (item->kind == IMAP_FETCH_BINARY_SIZE) {
		buf_printf(text, "%s %" PRIu64, item->name, total);
		return 0;
	}
	uint64_t n = imap_window(item, total, &skip);
	buf_printf(text, "%s %s{%" PRIu64 "}\r\n", item->name, nul ? "~" : "", n);
	if (n > 0) {
		imap_piece_cur(f)->cte = cte;
		imap_piece_stream(f, imap_binary_mode(cte), range.offset, range.size, skip, n);
	}
	return 0;
}

static void imap_fetch_simple(struct imap_session *sess, struct buf *text,
                              const struct imap_fetch_item *item, const struct store_msg *msg,
                              const struct mime_part *root)
{
	switch (item->kind) {
	case IMAP_FETCH_FLAGS:
		buf_append_str(text, "FLAGS ");
		imap_flags_write(text, msg->flags, msg->keywords);
		break;
	case IMAP_FETCH_UID:
		buf_printf(text, "UID %" PRIu32, msg->uid);
		break;
	case IMAP_FETCH_INTERNALDATE:
		buf_append_str(text, "INTERNALDATE \"");
		imap_date_time_write(text, msg->internal_date);
		buf_append_char(text, '"');
		break;
	case IMAP_FETCH_RFC822_SIZE:
		buf_printf(text, "RFC822.SIZE %" PRIu64, msg->vsize);
		break;
	case IMAP_FETCH_EMAILID:
		buf_printf(text, "EMAILID (%s)", msg->emailid);
		break;
	case IMAP_FETCH_THREADID:
		buf_append_str(text, "THREADID NIL");
		break;
	case IMAP_FETCH_SAVEDATE:
		buf_append_str(text, "SAVEDATE \"");
		imap_date_time_write(text, msg->save_date);
		buf_append_char(text, '"');
		break;
	case IMAP_FETCH_MODSEQ:
		buf_printf(text, "MODSEQ (%" PRIu64 ")", msg->modseq);
		break;
	case IMAP_FETCH_ENVELOPE:
		buf_append_str(text, "ENVELOPE ");
		mime_write_envelope(text, root->envelope);
		break;
	default:
		buf_append_str(text, item->kind == IMAP_FETCH_BODY ? "BODY " : "BODYSTRUCTURE ");
		mime_write_bodystructure(text, root, item->kind == IMAP_FETCH_BODYSTRUCTURE);
		break;
	}
}

/* Returns -1 on an unknown transfer encoding (BINARY). */
static int imap_fetch_item_add(struct imap_session *sess, struct imap_fetch *f,
                               const struct imap_fetch_item *item, const struct store_msg *msg,
                               const struct mime_part *root)
{
	switch (item->kind) {
	case IMAP_FETCH_SECTION:
		return imap_fetch_section(f, item, msg, root);
	case IMAP_FETCH_BINARY:
	case IMAP_FETCH_BINARY_SIZE:
		return imap_fetch_binary(f, item, root);
	default:
		imap_fetch_simple(sess, &imap_piece_cur(f)->text, item, msg, root);
		return 0;
	}
}

/* With CONDSTORE the view takes the new MODSEQ the store gave. */
static void imap_fetch_seen_modseq(struct imap_session *sess, struct store_msg *msg)
{
	struct store_msg cur;
	enum store_error err;
	const char *error;
	if (!sess->condstore ||
	    store_msg_get(sess->store, sess->mbox->name, msg->uid, &cur, &err, &error) < 0)
		return;
	msg->modseq = cur.modseq;
	store_msg_clear(&cur);
}

/* A body fetch without PEEK sets \Seen (RFC 9051 6.4.5); the new flags
 * are then part of the reply. Returns true when it did. */
static bool imap_fetch_set_seen(struct imap_session *sess, struct imap_fetch *f,
                                struct store_msg *msg)
{
	const char *error;
	if (!f->sets_seen || sess->mbox->readonly || (msg->flags & STORE_FLAG_SEEN) != 0)
		return false;
	if (store_flags_update(sess->store, sess->mbox->name, &msg->uid, 1, 1, STORE_FLAG_SEEN,
	                       &error) < 0) {
		log_warn("imap session=%s user=%s event=error what=set_seen error=\"%s\"",
		         conn_id(sess->conn), imap_user(sess), error);
		return false;
	}
	msg->flags |= STORE_FLAG_SEEN;
	imap_fetch_seen_modseq(sess, msg);
	return true;
}

/* What a reply that set \Seen adds: FLAGS, and with CONDSTORE UID and
 * MODSEQ (RFC 7162 3.1), unless the items asked for them. */
static void imap_fetch_seen_items(struct imap_session *sess, const struct imap_fetch *f,
                                  const struct store_msg *msg, struct buf *text)
{
	if (!f->has_flags) {
		buf_append_str(text, " FLAGS ");
		imap_flags_write(text, msg->flags, msg->keywords);
	}
	if (sess->condstore && !f->has_uid)
		buf_printf(text, " UID %" PRIu32, msg->uid);
	if (sess->condstore && !f->has_modseq)
		buf_printf(text, " MODSEQ (%" PRIu64 ")", msg->modseq);
}

/* Opens what the items need. 1: go on, 0: the message is gone, -1: error
 * (logged). */
static int imap_fetch_open(struct imap_session *sess, struct imap_fetch *f,
                           const struct store_msg *msg, const struct mime_part **root_r)
{
	enum store_error err = STORE_OK;
	const char *error = NULL;
	*root_r = NULL;
	if (f->need_parts)
		*root_r = imap_message_parts(sess, msg, &err, &error);
	if (f->need_parts && *root_r == NULL)
		goto fail;
	bool need_file = f->need_file || (f->need_cached_header && (*root_r)->cached_header == NULL);
	if (need_file)
		f->fd = store_msg_open(sess->store, sess->mbox->name, msg->uid, &err, &error);
	if (need_file && f->fd < 0)
		goto fail;
	return 1;
fail:
	if (err == STORE_ERR_NOT_FOUND)
		return 0;
	log_error("imap session=%s user=%s event=error what=fetch_open uid=%" PRIu32
	          " error=\"%s\"",
	          conn_id(sess->conn), imap_user(sess), msg->uid, error != NULL ? error : "-");
	return -1;
}

static void imap_fetch_message_end(struct imap_fetch *f)
{
	for (unsigned int i = 0; i < f->piece_count; i++)
		buf_free(&f->pieces[i].text);
	xfree(f->pieces);
	f->piece_count = f->piece_next = 0;
	f->piece_text_sent = false;
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

/* 1: pieces ready, 0: message skipped, -1: error, -2: unknown CTE */
static int imap_fetch_build(struct imap_session *sess, struct imap_fetch *f, size_t idx)
{
	struct store_msg *msg = &sess->mbox->msgs[idx];
	const struct mime_part *root;
	int ret = imap_fetch_open(sess, f, msg, &root);
	if (ret <= 0)
		return ret;
	bool seen_set = imap_fetch_set_seen(sess, f, msg);
	imap_piece_new(f);
	buf_printf(&imap_piece_cur(f)->text, "* %zu FETCH (", idx + 1);
	for (unsigned int i = 0; i < f->item_count; i++) {
		if (i > 0)
			buf_append_char(&imap_piece_cur(f)->text, ' ');
		if (imap_fetch_item_add(sess, f, &f->items[i], msg, root) < 0) {
			imap_fetch_message_end(f);
			return -2;
		}
	}
	if (seen_set)
		imap_fetch_seen_items(sess, f, msg, &imap_piece_cur(f)->text);
	buf_append_str(&imap_piece_cur(f)->text, ")\r\n");
	sess->fetch_count++;
	return 1;
}

/* ---- streaming ---- */

/* Writes the part of converted output that falls into the window. */
static void imap_fetch_emit(struct imap_session *sess, struct imap_fetch *f,
                            const struct imap_fetch_piece *p, const char *data, size_t len)
{
	uint64_t start = f->out_pos, end = f->out_pos + len;
	uint64_t lo = start > p->skip ? start : p->skip;
	uint64_t wend = p->skip + p->length;
	uint64_t hi = end < wend ? end : wend;
	f->out_pos = end;
	if (lo >= hi)
		return;
	imap_send(sess, data + (lo - start), (size_t)(hi - lo));
	f->sent += hi - lo;
}

static void imap_fetch_piece_begin(struct imap_session *sess, struct imap_fetch *f,
                                   const struct imap_fetch_piece *p)
{
	imap_send(sess, p->text.data, p->text.len);
	f->piece_text_sent = true;
	f->raw_pos = f->out_pos = f->sent = 0;
	imap_crlf_init(&f->crlf, p->prev_cr, p->mode == IMAP_PIECE_TEXT);
	mime_decoder_destroy(&f->decoder);
	if (p->mode == IMAP_PIECE_DECODE)
		f->decoder = mime_decoder_create(p->cte);
}

static void imap_fetch_convert(struct imap_session *sess, struct imap_fetch *f,
                               const struct imap_fetch_piece *p, size_t n)
{
	buf_reset(&f->out);
	if (p->mode == IMAP_PIECE_CRLF || p->mode == IMAP_PIECE_TEXT) {
		char *conv = xmalloc(2 * n + 1);
		size_t m = imap_crlf_chunk(&f->crlf, f->in, n, conv);
		imap_fetch_emit(sess, f, p, conv, m);
		free(conv);
		return;
	}
	if (p->mode == IMAP_PIECE_DECODE) {
		mime_decoder_feed(f->decoder, f->in, n, &f->out);
		imap_fetch_emit(sess, f, p, f->out.data, f->out.len);
		return;
	}
	imap_fetch_emit(sess, f, p, f->in, n);
}

/* The announced size is a promise: pad what a changed file no longer has. */
static void imap_fetch_piece_end(struct imap_session *sess, struct imap_fetch *f,
                                 const struct imap_fetch_piece *p)
{
	if (f->decoder != NULL) {
		buf_reset(&f->out);
		mime_decoder_finish(f->decoder, &f->out);
		imap_fetch_emit(sess, f, p, f->out.data, f->out.len);
		mime_decoder_destroy(&f->decoder);
	}
	if (f->sent < p->length) {
		log_warn("imap session=%s user=%s event=fetch_short missing=%" PRIu64,
		         conn_id(sess->conn), imap_user(sess), p->length - f->sent);
		char spaces[256];
		memset(spaces, ' ', sizeof(spaces));
		while (f->sent < p->length) {
			uint64_t n = p->length - f->sent < sizeof(spaces) ? p->length - f->sent
			                                                  : sizeof(spaces);
			imap_send(sess, spaces, (size_t)n);
			f->sent += n;
		}
	}
	f->piece_next++;
	f->piece_text_sent = false;
}

/* One step of the current piece; true when the message is complete. */
static bool imap_fetch_piece_step(struct imap_session *sess, struct imap_fetch *f)
{
	const struct imap_fetch_piece *p = &f->pieces[f->piece_next];
	if (!f->piece_text_sent) {
		imap_fetch_piece_begin(sess, f, p);
		if (p->mode == IMAP_PIECE_NONE) {
			f->piece_next++;
			f->piece_text_sent = false;
			return f->piece_next == f->piece_count;
		}
	}
	if (f->raw_pos < p->size && f->sent < p->length) {
		uint64_t want = p->size - f->raw_pos < IMAP_READ_CHUNK ? p->size - f->raw_pos
		                                                       : IMAP_READ_CHUNK;
		ssize_t n = imap_pread(f->fd, f->in, (size_t)want, p->offset + f->raw_pos);
		if (n > 0) {
			f->raw_pos += (uint64_t)n;
			imap_fetch_convert(sess, f, p, (size_t)n);
			return false;
		}
	}
	imap_fetch_piece_end(sess, f, p);
	return f->piece_next == f->piece_count;
}

static void imap_fetch_finish(struct imap_session *sess, int ret)
{
	unsigned int vanished = sess->fetch->vanished;
	imap_fetch_free(sess);
	if (ret == -1)
		imap_internal_error(sess, "fetch", "message unreadable");
	else if (ret == -2)
		imap_done(sess, "NO [UNKNOWN-CTE] Unknown Content-Transfer-Encoding");
	else if (vanished > 0 && !sess->uid)
		imap_done(sess, "NO [EXPUNGEISSUED] Some messages were expunged meanwhile");
	else
		imap_done(sess, "OK Fetch completed");
}

static bool imap_fetch_step(struct imap_session *sess)
{
	while (conn_output_size(sess->conn) < CONN_OUTPUT_HIGH_WATER) {
		struct imap_fetch *f = sess->fetch;
		if (f == NULL || sess->closed)
			return true;
		if (f->piece_count > 0) {
			if (imap_fetch_piece_step(sess, f))
				imap_fetch_message_end(f);
			continue;
		}
		if (f->next == f->idx_count) {
			imap_fetch_finish(sess, 0);
			return true;
		}
		if (f->need_parts && f->next % IMAP_PREFETCH_WINDOW == 0) {
			size_t left = f->idx_count - f->next;
			imap_parts_prefetch(sess, f->idx + f->next,
			                    left < IMAP_PREFETCH_WINDOW ? left : IMAP_PREFETCH_WINDOW);
		}
		int ret = imap_fetch_build(sess, f, f->idx[f->next++]);
		if (ret == 0)
			f->vanished++;
		if (ret < 0) {
			imap_fetch_finish(sess, ret);
			return true;
		}
	}
	return false;
}

void imap_fetch_start(struct imap_session *sess, struct imap_fetch *fetch)
{
	fetch->fd = -1;
	fetch->in = xmalloc(IMAP_READ_CHUNK);
	buf_init(&fetch->out, 0);
	sess->fetch = fetch;
	sess->job = imap_fetch_step;
	imap_session_run_job(sess);
}

void imap_fetch_items_free(struct imap_fetch *f)
{
	for (unsigned int i = 0; i < f->item_count; i++) {
		mime_section_free(&f->items[i].section);
		free(f->items[i].name);
	}
	xfree(f->items);
	f->item_count = 0;
}

void imap_fetch_free(struct imap_session *sess)
{
	struct imap_fetch *f = sess->fetch;
	if (f == NULL)
		return;
	imap_fetch_message_end(f);
	mime_decoder_destroy(&f->decoder);
	imap_fetch_items_free(f);
	free(f->idx);
	free(f->in);
	buf_free(&f->out);
	free(f);
	sess->fetch = NULL;
}

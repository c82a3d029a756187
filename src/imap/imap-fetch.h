/* FETCH inside the IMAP server: the parsed items (cmd-fetch.c) and the
 * streaming reply (imap-fetch.c). Each message's reply is a list of
 * pieces: bytes in memory, then optionally a byte range of the message
 * file that is converted while it streams (LF -> CRLF for BODY[], CTE
 * decoding for BINARY[]), so memory does not grow with message size. */
#ifndef YUBIN_IMAP_FETCH_H
#define YUBIN_IMAP_FETCH_H

#include "imap/imap-private.h"
#include "mime/mime.h"

enum imap_fetch_kind {
	IMAP_FETCH_FLAGS,
	IMAP_FETCH_UID,
	IMAP_FETCH_INTERNALDATE,
	IMAP_FETCH_RFC822_SIZE,
	IMAP_FETCH_EMAILID,  /* RFC 8474 */
	IMAP_FETCH_THREADID, /* RFC 8474: always NIL */
	IMAP_FETCH_SAVEDATE, /* RFC 8514 */
	IMAP_FETCH_MODSEQ,   /* RFC 7162 */
	/* the kinds below need the MIME tree (see imap_fetch_needs) */
	IMAP_FETCH_ENVELOPE,
	IMAP_FETCH_BODYSTRUCTURE,
	IMAP_FETCH_BODY,        /* BODY without a section: the non-extended structure */
	IMAP_FETCH_SECTION,     /* BODY[...], RFC822, RFC822.HEADER, RFC822.TEXT */
	IMAP_FETCH_BINARY,      /* BINARY[...] */
	IMAP_FETCH_BINARY_SIZE, /* BINARY.SIZE[...] */
};

struct imap_fetch_item {
	enum imap_fetch_kind kind;
	bool peek;  /* does not set \Seen */
	char *name; /* the name the response gives ("BODY[1]<0>") */
	struct mime_section section;
	bool has_partial;
	uint64_t partial_offset, partial_length;
	/* HEADER.FIELDS of the message's own header, of fields the index
	 * keeps (mime_cached_fields): answered without the file when the
	 * tree carries them */
	bool cached_fields;
};

enum imap_piece_mode {
	IMAP_PIECE_NONE,   /* only the text */
	IMAP_PIECE_TEXT,   /* a file range, LF -> CRLF, NUL -> 0x80 (BODY[]) */
	IMAP_PIECE_CRLF,   /* a file range, LF -> CRLF (BINARY) */
	IMAP_PIECE_RAW,    /* a file range as it is */
	IMAP_PIECE_DECODE, /* a file range, CTE-decoded */
};

struct imap_fetch_piece {
	struct buf text; /* written first */
	enum imap_piece_mode mode;
	uint64_t offset, size; /* the file range */
	bool prev_cr;          /* the byte before the range is CR */
	enum mime_cte cte;
	uint64_t skip, length; /* the output window (partial); length = announced size */
};

struct imap_fetch {
	struct imap_fetch_item *items;
	unsigned int item_count;
	bool need_parts; /* some item needs the MIME tree */
	bool need_file;  /* some item reads the message */
	bool need_cached_header; /* items that read the file only without cached lines */
	bool sets_seen;  /* a non-PEEK body item */
	bool has_flags;  /* FLAGS requested */
	bool has_uid;    /* UID requested (or UID FETCH) */
	bool has_modseq; /* MODSEQ requested (or CHANGEDSINCE) */

	size_t *idx; /* messages (indexes of the view), ascending */
	size_t idx_count, next;
	unsigned int vanished; /* messages gone meanwhile */

	/* the message being written */
	int fd;
	struct imap_fetch_piece *pieces;
	unsigned int piece_count, piece_next;
	bool piece_text_sent;
	uint64_t raw_pos; /* bytes of the range read */
	uint64_t out_pos; /* converted bytes produced */
	uint64_t sent;    /* bytes of the window written */
	struct imap_crlf crlf;
	struct mime_decoder *decoder;
	char *in;
	struct buf out;
};

/* imap-fetch.c */
void imap_fetch_start(struct imap_session *sess, struct imap_fetch *fetch);
void imap_fetch_items_free(struct imap_fetch *fetch);

#endif

/* Shared between the files of src/mime/; not for other modules. */
#ifndef YUBIN_MIME_PRIVATE_H
#define YUBIN_MIME_PRIVATE_H

#include "mime/mime.h"

/* Longest string value kept from a header (a parameter, a name...). */
#define MIME_MAX_VALUE 65536
/* Parameters kept per header field. */
#define MIME_MAX_PARAMS 128

/* ---- RFC 822 / RFC 2045 lexer (mime-lex.c) ---- */

enum mime_tok_type {
	MIME_TOK_END,
	MIME_TOK_ATOM,
	MIME_TOK_QUOTED,
	MIME_TOK_COMMENT,
	MIME_TOK_DLITERAL,
	MIME_TOK_SPECIAL,
};

struct mime_lex {
	const char *p, *end;
	bool tspecials; /* RFC 2045 token syntax: "/", "?", "=" are specials too */
};

struct mime_token {
	enum mime_tok_type type;
	char special;
	bool space_before; /* whitespace or a comment preceded it */
	struct buf value;  /* the token's text, quoted-pairs resolved */
};

void mime_lex_init(struct mime_lex *lex, const char *s, size_t len, bool tspecials);
/* Comments are returned only when keep_comments; otherwise skipped. */
void mime_lex_next(struct mime_lex *lex, struct mime_token *tok, bool keep_comments);
void mime_token_init(struct mime_token *tok);
void mime_token_free(struct mime_token *tok);

/* ---- header blocks (mime-header.c) ---- */

struct mime_header_iter {
	const char *p, *end;
};

/* Next field of a raw header block: name (trimmed) and the raw value
 * (after the colon, continuation lines included). Lines without a colon
 * are skipped. Returns false at the end. */
bool mime_header_next(struct mime_header_iter *iter, const char **name_r, size_t *name_len_r,
		      const char **value_r, size_t *value_len_r);
/* Value with CR and LF removed and leading/trailing whitespace trimmed. */
char *mime_unfold(const char *value, size_t len);
/* Appends s without its CR and LF bytes. */
void mime_append_unfolded(struct buf *out, const char *s, size_t len);
/* Fills the Content-* fields (and the envelope when want_envelope). */
void mime_part_parse_header(struct mime_part *part, const char *header, size_t len,
			    bool want_envelope);
void mime_params_free(struct mime_param *params, unsigned int count);

/* ---- parameters (mime-param.c) ---- */

/* Parses "; a=b; c*0=..." after a value, joining RFC 2231 continuations. */
void mime_params_parse(struct mime_lex *lex, struct mime_param **params_r,
		       unsigned int *count_r);

/* ---- charsets (mime-charset.c) ---- */

void mime_utf8_append_cp(struct buf *out, uint32_t cp);
int mime_utf8_append_replacement(struct buf *out);
/* Appends data, replacing every invalid UTF-8 sequence with U+FFFD. */
int mime_utf8_append_sanitized(struct buf *out, const void *data, size_t len);

/* ---- IMAP strings (mime-imap.c) ---- */

int mime_imap_append_string_len(struct buf *out, const char *s, size_t len);

/* ---- parts (mime-part.c) ---- */

struct mime_part *mime_part_new(struct mime_part *parent);
void mime_envelope_free(struct mime_envelope **env);

#endif

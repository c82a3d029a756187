/* RFC 5322 / MIME: a streaming structure parser that never holds the whole
 * message, the part tree it builds (with a validated serialized form for the
 * index), IMAP ENVELOPE / BODY / BODYSTRUCTURE output, section addressing,
 * transfer decoding, header decoding to UTF-8 (RFC 2047, RFC 2231, raw 8-bit
 * guessed) and charset conversion through iconv. Everything here parses
 * hostile input: malformed mail never fails, it yields the structure a real
 * client would be shown (Dovecot's behaviour, see docs/mime.md). */
#ifndef YUBIN_MIME_H
#define YUBIN_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

/* ---- limits ---------------------------------------------------------- */

struct mime_limits {
	unsigned int max_depth;  /* nesting of multipart and message parts */
	unsigned int max_parts;  /* parts in the whole tree */
	size_t max_header_size;  /* header bytes of one part kept for parsing */
	size_t max_line_length;  /* longer header lines end the header */
};

/* depth 100, 10,000 parts, 256 KiB of header, 64 KiB header lines */
extern const struct mime_limits mime_default_limits;

/* ---- the part tree ----------------------------------------------------- */

struct mime_param {
	char *name;  /* as found; RFC 2231 continuations joined ("name*" when extended) */
	char *value; /* unquoted; for "name*": charset'language'%XX-encoded */
};

enum mime_envelope_field {
	MIME_ENV_DATE,
	MIME_ENV_SUBJECT,
	MIME_ENV_FROM,
	MIME_ENV_SENDER,
	MIME_ENV_REPLY_TO,
	MIME_ENV_TO,
	MIME_ENV_CC,
	MIME_ENV_BCC,
	MIME_ENV_IN_REPLY_TO,
	MIME_ENV_MESSAGE_ID,
	MIME_ENV_COUNT
};

/* The raw header values of the fields ENVELOPE shows (leading blanks and
 * the final line end removed, folding kept); NULL when the field is
 * absent. As in Dovecot, a repeated address field adds its addresses and
 * a repeated string field replaces the earlier value. */
struct mime_envelope {
	char *fields[MIME_ENV_COUNT];
};

enum mime_part_flags {
	/* multipart/<any> with a boundary parameter: children are its parts */
	MIME_PART_MULTIPART = 0x01,
	/* message/rfc822 or message/global: one child, the embedded message */
	MIME_PART_MESSAGE = 0x02,
	/* the header was cut by max_header_size or max_line_length */
	MIME_PART_HEADER_TRUNCATED = 0x04,
};

/* A node of the tree. Sizes are bytes as stored; "vsize" counts each bare
 * LF as CRLF (what IMAP sends); lines count LF bytes. The header includes
 * the blank line that ends it. For a multipart the body runs from its
 * header's end to the end of its epilogue; a child's body ends before the
 * line end that precedes the next boundary line (RFC 2046 5.1.1). */
struct mime_part {
	struct mime_part *parent, *children, *next;
	uint64_t header_offset, header_size, header_vsize, header_lines;
	uint64_t body_offset, body_size, body_vsize, body_lines;
	unsigned int flags;
	char *type, *subtype; /* as found; NULL when there is no Content-Type */
	struct mime_param *params;
	unsigned int param_count;
	char *encoding, *id, *description, *md5, *location, *language;
	char *disposition;
	struct mime_param *disp_params;
	unsigned int disp_param_count;
	/* the root and every embedded message (child of a MESSAGE part) */
	struct mime_envelope *envelope;
	/* Root only, when the tree carries it (mime_part_cache_header): the
	 * lines of the root header's fields named in mime_cached_fields, exact
	 * bytes in their order, ending with the blank line; NULL otherwise. */
	char *cached_header;
	size_t cached_header_len;
};

void mime_part_free(struct mime_part **root);
unsigned int mime_part_count(const struct mime_part *root);
/* Value of parameter name (case-insensitive), raw; NULL when absent. */
const char *mime_param_get(const struct mime_param *params, unsigned int count,
			   const char *name);
/* The parameter's value decoded to UTF-8: RFC 2231 "name*" with its charset,
 * else the plain value with RFC 2047 words and 8-bit bytes decoded. NULL
 * when absent; otherwise a malloc'd string. */
char *mime_param_get_utf8(const struct mime_param *params, unsigned int count,
			  const char *name);
/* True for text/<any>, and for a part without Content-Type (RFC 2045 5.2). */
bool mime_part_is_text(const struct mime_part *part);

/* ---- streaming parser ---------------------------------------------------- */

struct mime_parser;

/* limits NULL = mime_default_limits. */
struct mime_parser *mime_parser_create(const struct mime_limits *limits);
/* Feeds the next bytes of the message, in chunks of any size. */
void mime_parser_feed(struct mime_parser *parser, const void *data, size_t len);
/* Ends the message and returns its tree (never NULL; caller frees it with
 * mime_part_free); frees the parser and sets *parser to NULL. */
struct mime_part *mime_parser_finish(struct mime_parser **parser);
/* Frees an unfinished parser; accepts NULL. */
void mime_parser_destroy(struct mime_parser **parser);
/* Whole message at once. */
struct mime_part *mime_parse(const void *data, size_t len, const struct mime_limits *limits);

/* ---- serialization (for the index cache) ------------------------------- */

/* The header fields the index keeps with the tree, so that what mail
 * clients list (HEADER.FIELDS of these) and SEARCH FROM/SUBJECT/... need no
 * message file. NULL-terminated. */
extern char *const mime_cached_fields[];
/* True when name (case-insensitive) is one of mime_cached_fields; the
 * second: when every name is. */
bool mime_field_cached(const char *name);
bool mime_fields_cached(char *const *fields, unsigned int count);
/* Sets root->cached_header from the root's whole header block (header_size
 * bytes at offset 0); left NULL when the filtered lines exceed 64 KiB. */
void mime_part_cache_header(struct mime_part *root, const char *header, size_t len);

/* Appends a compact, versioned binary form of the tree. -1 when out is full. */
int mime_part_serialize(const struct mime_part *root, struct buf *out);
/* The cached header lines of a serialized tree without building the tree:
 * 0 with a pointer into data (not NUL-terminated), -1 when the blob has
 * none or is not one of ours. The lines are checked against the tree only
 * by mime_part_deserialize. */
int mime_blob_cached_header(const void *data, size_t len, const char **header_r,
                            size_t *header_len_r);
/* Validates everything (offsets, sizes, nesting, counts, strings); returns
 * NULL with *error_r (a static string) on any inconsistency. */
struct mime_part *mime_part_deserialize(const void *data, size_t len, const char **error_r);

/* ---- IMAP output ---------------------------------------------------------- */

/* Appends an IMAP string: NIL for NULL, a quoted string, or a literal
 * {n}\r\n... for CR, LF, NUL, 8-bit bytes or more than 1000 bytes. */
int mime_imap_append_nstring(struct buf *out, const char *s);
/* ENVELOPE's parenthesised list, RFC 3501 7.4.2 (env NULL = all NIL). */
int mime_write_envelope(struct buf *out, const struct mime_envelope *env);
/* BODY (extended = false) or BODYSTRUCTURE (extended = true) of a part,
 * without the outer parentheses of a non-multipart at top level added by
 * the caller: the output is the "body" production, "(...)" included. */
int mime_write_bodystructure(struct buf *out, const struct mime_part *part, bool extended);

/* ---- addresses --------------------------------------------------------- */

/* One element of an address list. An address has mailbox and host set
 * (either may be "" when missing); a group start has mailbox = group name
 * and host NULL; a group end has every field NULL (RFC 3501's form). */
struct mime_address {
	struct mime_address *next;
	char *name;    /* display name, unquoted, raw (not RFC 2047 decoded) */
	char *route;   /* obsolete source route "@a,@b", or NULL */
	char *mailbox; /* local part, unquoted */
	char *host;
	bool invalid;  /* a syntax error was repaired */
};

/* Parses a header value (RFC 5322 plus obsolete forms). Never fails: bad
 * input yields best-effort entries marked invalid. At most max entries. */
struct mime_address *mime_address_parse(const char *value, size_t len, unsigned int max);
void mime_address_free(struct mime_address **list);

/* ---- header decoding --------------------------------------------------- */

/* An unfolded header value decoded to valid UTF-8: RFC 2047 encoded-words
 * (adjacent ones joined), raw 8-bit guessed (UTF-8, ISO-2022-JP, CP932,
 * EUC-JP) or replaced by U+FFFD. Returns a malloc'd string. */
char *mime_header_decode(const char *value, size_t len);
/* Every field of a header block as "Name: decoded value\n" (for search). */
int mime_header_text(const char *header, size_t len, struct buf *out);
/* Bytes of a message's header block, its blank line included; len when
 * the message has no blank line (it is all header). */
size_t mime_header_size(const char *data, size_t len);
/* Finds the first field "name" in a header block; returns its raw value
 * (continuations included, CR/LF removed) malloc'd, or NULL. */
char *mime_header_get(const char *header, size_t len, const char *name);

/* ---- charsets ------------------------------------------------------------ */

/* The converter used for a MIME charset name ("x-sjis" -> "CP932"): a
 * static string, or charset itself when iconv knows the name as it is;
 * NULL when no converter exists (then invalid UTF-8 becomes U+FFFD). */
const char *mime_charset_canonical(const char *charset);
bool mime_charset_is_utf8(const char *charset);
/* Converts to UTF-8; invalid input becomes U+FFFD and conversion goes on.
 * Returns -1 only when out's maximum is reached. */
int mime_charset_to_utf8(const char *charset, const void *data, size_t len, struct buf *out);
/* Raw bytes of unknown charset: UTF-8 kept, else a guess, else U+FFFD. */
int mime_charset_guess_to_utf8(const void *data, size_t len, struct buf *out);
bool mime_utf8_is_valid(const void *data, size_t len);

/* Streaming conversion (for bodies): keeps partial sequences between feeds. */
struct mime_charset_conv;
struct mime_charset_conv *mime_charset_conv_create(const char *charset);
int mime_charset_conv_feed(struct mime_charset_conv *conv, const void *data, size_t len,
			   struct buf *out);
int mime_charset_conv_finish(struct mime_charset_conv *conv, struct buf *out);
void mime_charset_conv_destroy(struct mime_charset_conv **conv);

/* ---- Content-Transfer-Encoding ------------------------------------------ */

enum mime_cte {
	MIME_CTE_7BIT,
	MIME_CTE_8BIT,
	MIME_CTE_BINARY,
	MIME_CTE_BASE64,
	MIME_CTE_QP,
	MIME_CTE_UNKNOWN, /* BINARY[] answers UNKNOWN-CTE (RFC 3516) */
};

/* NULL (absent) is 7bit. */
enum mime_cte mime_cte_parse(const char *encoding);

struct mime_decoder;
struct mime_decoder *mime_decoder_create(enum mime_cte cte);
/* Appends the decoded bytes; base64 skips garbage and line breaks, QP keeps
 * bad escapes as they are. -1 only when out's maximum is reached. */
int mime_decoder_feed(struct mime_decoder *dec, const void *data, size_t len, struct buf *out);
int mime_decoder_finish(struct mime_decoder *dec, struct buf *out);
void mime_decoder_destroy(struct mime_decoder **dec);
/* Decoded size of a whole encoded input (streams it through a decoder). */
uint64_t mime_decoded_size(enum mime_cte cte, const void *data, size_t len);

/* ---- section addressing (RFC 3501 6.4.5, RFC 3516) --------------------- */

enum mime_section_kind {
	MIME_SECTION_ALL,         /* BODY[] or BODY[1.2] */
	MIME_SECTION_HEADER,      /* HEADER */
	MIME_SECTION_HEADER_FIELDS,
	MIME_SECTION_HEADER_FIELDS_NOT,
	MIME_SECTION_TEXT,
	MIME_SECTION_MIME,
};

#define MIME_SECTION_MAX_PATH 128 /* above the default max_depth (100), so any part we parse can be named */

struct mime_section {
	unsigned int path[MIME_SECTION_MAX_PATH];
	unsigned int path_len;
	enum mime_section_kind kind;
	char **fields; /* HEADER.FIELDS names, as given */
	unsigned int field_count;
};

/* Parses the text between [ and ] ("1.2.HEADER.FIELDS (A B)"). */
int mime_section_parse(const char *spec, struct mime_section *section_r, const char **error_r);
void mime_section_free(struct mime_section *section);

struct mime_section_range {
	const struct mime_part *part; /* the addressed part */
	uint64_t offset, size;        /* bytes of the message */
	uint64_t vsize;               /* size with bare LFs counted as CRLF */
	/* HEADER.FIELDS(.NOT): filter the header range with mime_header_filter */
	bool filter;
};

/* Resolves to a byte range of the message. A part number past the end is an
 * error (*error_r static); RFC 3501's rule that part 1 of a non-multipart is
 * its body is applied. */
int mime_section_resolve(const struct mime_part *root, const struct mime_section *section,
			 struct mime_section_range *range_r, const char **error_r);
/* The fields of a header block named (not = false) or not named (not =
 * true), exact original bytes, followed by the blank line. */
int mime_header_filter(const char *header, size_t len, char *const *fields,
		       unsigned int count, bool not, struct buf *out);

/* ---- text extraction for search ------------------------------------------- */

/* Called with UTF-8 text: for the root and every embedded message its
 * decoded header ("Name: value\n" lines, header = true), for each text part
 * (and each multipart without parts) its body CTE-decoded, charset-
 * converted, HTML tags crudely stripped. part_end is true on the last call
 * for a header or a body (possibly with len 0). */
typedef void mime_text_callback(void *context, const struct mime_part *part, bool header,
				const char *text, size_t len, bool part_end);

struct mime_text;
/* Feed the same message bytes again; the tree says where the text is. */
struct mime_text *mime_text_create(const struct mime_part *root, mime_text_callback *callback,
				   void *context);
void mime_text_feed(struct mime_text *text, const void *data, size_t len);
void mime_text_finish(struct mime_text **text);

#endif

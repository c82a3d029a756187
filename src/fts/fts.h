/* Full-text search over an account's mail: the searchable text of a
 * message (decoded with src/mime), the index of it kept in the store
 * (store_fts_*), and the scan that gives the same answers by reading the
 * files (the reference, and the way when the index cannot be used).
 *
 * Search text: for the root and every embedded message its header as
 * "Name: decoded value\n" lines (RFC 2047 decoded), for every text part
 * its body decoded from its transfer encoding and charset to UTF-8 (HTML
 * tags dropped), one text per header or part. Texts and terms are folded
 * with fts_fold (ASCII case only); a term matches a message when it is a
 * substring of one of its texts. See docs/imap.md "SEARCH". */
#ifndef YUBIN_FTS_H
#define YUBIN_FTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mime_part;
struct store;

/* The format of the texts in the index: a change to extraction or folding
 * bumps it, and messages indexed before are indexed again when searched. */
#define FTS_VERSION 1
/* Bytes of one text kept (longer ones are cut: index and scan alike). */
#define FTS_TEXT_MAX (64 * 1024 * 1024)

/* ASCII letters to lower case and NUL to space, in place. */
void fts_fold(char *text, size_t len);

/* Called once per text of the message, folded, NUL-terminated. */
typedef void fts_text_callback(void *context, bool header, const char *text, size_t len);
/* Reads the message in fd (its parsed tree root) and gives its texts. */
int fts_message_texts(int fd, const struct mime_part *root, fts_text_callback *callback,
                      void *context, const char **error_r);
/* Whether the folded term is in a text of the message (header texts only
 * when with_header): the scan. */
int fts_message_contains(int fd, const struct mime_part *root, const char *term, bool with_header,
                         bool *found_r, const char **error_r);

/* Indexes one message (after delivery or APPEND). */
int fts_index_message(struct store *store, const char *mailbox, uint32_t uid, const char **error_r);
/* Indexes every message of the mailbox the index lacks (mail from before
 * the index, a rebuilt index, an older FTS_VERSION). A message that cannot
 * be read is logged and skipped. */
int fts_index_missing(struct store *store, const char *mailbox, const char **error_r);
/* UIDs (ascending, free()) of the mailbox's indexed messages that contain
 * the folded term; header texts count when with_header (TEXT), not for
 * BODY. Call fts_index_missing first. */
int fts_search(struct store *store, const char *mailbox, const char *term, bool with_header,
               uint32_t **uids_r, size_t *count_r, const char **error_r);

#endif

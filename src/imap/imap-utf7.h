/* IMAP's modified UTF-7 for mailbox names (RFC 3501 section 5.1.3) and a
 * strict UTF-8 check. Conversions are strict both ways so that every
 * mailbox name has exactly one encoded form. */
#ifndef YUBIN_IMAP_UTF7_H
#define YUBIN_IMAP_UTF7_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

/* Appends the modified UTF-7 form of the UTF-8 string src to dest.
 * Returns -1 on invalid UTF-8 (overlong forms, surrogates, > U+10FFFF,
 * NUL) or when dest's maximum is hit. */
int imap_utf8_to_utf7(const char *src, struct buf *dest);
/* Appends the UTF-8 form of the modified UTF-7 string src to dest.
 * Returns -1 on anything a correct encoder would not produce: bytes
 * outside printable ASCII, an unterminated or empty shift, non-zero
 * padding bits, printable ASCII or NUL encoded in base64, unpaired
 * surrogates, two shifts in a row; or when dest's maximum is hit. */
int imap_utf7_to_utf8(const char *src, struct buf *dest);
/* Valid modified UTF-7 (as imap_utf7_to_utf8 checks it). */
bool imap_utf7_is_valid(const char *src);
/* Well-formed UTF-8 without NUL (RFC 3629: no overlongs, no surrogates). */
bool imap_utf8_is_valid(const void *data, size_t len);

#endif

/* RFC 4648 base64, as SASL uses it. */
#ifndef YUBIN_BASE64_H
#define YUBIN_BASE64_H

#include <stddef.h>

#include "lib/buf.h"

/* The 6-bit value of one base64 alphabet character, or -1. */
int base64_value(unsigned char c);

int base64_encode(const void *data, size_t len, struct buf *out);
/* Strict: rejects characters outside the alphabet, bad padding and
 * whitespace. Returns -1 on bad input or when out's maximum is reached. */
int base64_decode(const char *text, size_t len, struct buf *out);

#endif

/* The IMAP server (RFC 9051 IMAP4rev2, RFC 3501 IMAP4rev1): one protocol
 * on the connection layer, listed in `yubin serve`'s protocol table. See
 * docs/imap.md. */
#ifndef YUBIN_IMAP_H
#define YUBIN_IMAP_H

#include "lib/conn.h"

extern const struct protocol imap_protocol;

#endif

/* ManageSieve server (RFC 5804): users upload, check, list, activate and
 * remove their Sieve scripts over port 4190 (STARTTLS, SASL through auth). */
#ifndef YUBIN_MANAGESIEVE_H
#define YUBIN_MANAGESIEVE_H

#include "lib/conn.h"

extern const struct protocol managesieve_protocol;

#endif

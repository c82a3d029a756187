/* Mail addresses as yubin stores them: "local@domain", both parts lower
 * case. The local part of a hosted account is restricted to a safe set so
 * that it can name a folder: letters, digits, '.', '_', '-' (not first or
 * last, no "..") and at most 64 bytes; domains are LDH labels. */
#ifndef YUBIN_ADDRESS_H
#define YUBIN_ADDRESS_H

#include <stdbool.h>

/* Lower-cases and validates an account or alias address. Returns a new
 * string, or NULL with *error_r saying what is wrong. */
char *address_normalize(const char *address, const char **error_r);
/* Lower-cases and validates a domain name. */
char *domain_normalize(const char *domain, const char **error_r);
/* The domain part of a normalized address (points into it). */
const char *address_domain(const char *address);

#endif

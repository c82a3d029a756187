/* What the files of the deliver module share. deliver.c resolves
 * recipients and stores; deliver-sieve.c runs the routing and user scripts
 * and carries out their actions; deliver-routing.c turns an account's
 * routing settings (forwarding, closed account) into the system script;
 * deliver-srs.c rewrites envelope senders of forwarded mail (SRS);
 * deliver-virus.c scans messages. */
#ifndef YUBIN_DELIVER_PRIVATE_H
#define YUBIN_DELIVER_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dir;
struct dir_account;
struct yubin_config;

/* deliver-routing.c: the Sieve source (malloc'd, NUL-terminated) of the
 * system script for the account's routing settings, run before the user's
 * own script; NULL when the account receives normally. */
char *deliver_routing_script(const struct yubin_config *config, struct dir *dir,
                             const struct dir_account *account);

/* deliver-srs.c: the envelope sender to use when the account forwards mail
 * that came from env_from: an SRS address in the forwarding domain (SRS0,
 * or SRS1 when env_from is already SRS), or a copy of env_from when SRS is
 * off; "" stays "" (a bounce is never forwarded with a sender). malloc'd. */
char *deliver_srs_forward(const struct yubin_config *config, const char *env_from,
                          const char *forwarder_domain);
/* The original sender encoded in an SRS address of ours (hash and
 * timestamp checked): 1 with a malloc'd address, 0 when address is not a
 * valid SRS address of ours. */
int deliver_srs_reverse(const struct yubin_config *config, const char *address,
                        char **original_r);

#endif

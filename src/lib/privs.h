/* Dropping root: the master does it after opening the listeners; every CLI
 * command that touches the data folder does it at once, so that no file
 * there is ever owned by root (the workers could not write it). */
#ifndef YUBIN_PRIVS_H
#define YUBIN_PRIVS_H

#include <stdbool.h>
#include <sys/types.h>

struct yubin_config;

/* uid/gid of server.user (and server.group when set). */
int privs_lookup(const struct yubin_config *config, uid_t *uid_r, gid_t *gid_r,
		 const char **error_r);
/* When running as root: switch to server.user for good (refusing when it is
 * unset or root) and verify root cannot be regained. When not root: nothing
 * (a warning if server.user names someone else). */
int privs_drop(const struct yubin_config *config, const char **error_r);

#endif

#include "lib/privs.h"

#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/log.h"

int privs_lookup(const struct yubin_config *config, uid_t *uid_r,
		      gid_t *gid_r, const char **error_r)
{
	const struct passwd *pw = getpwnam(config->server.user);
	if (pw == NULL) {
		*error_r = "server.user does not exist";
		return -1;
	}
	*uid_r = pw->pw_uid;
	*gid_r = pw->pw_gid;
	const char *group = config->server.group;
	if (group != NULL && group[0] != '\0') {
		const struct group *gr = getgrnam(group);
		if (gr == NULL) {
			*error_r = "server.group does not exist";
			return -1;
		}
		*gid_r = gr->gr_gid;
	}
	return 0;
}

/* The log file was opened as root: let the new user reopen it (SIGHUP). */
static void chown_log_file(const struct yubin_config *config, uid_t uid, gid_t gid)
{
	const char *target = config->log.target;
	if (target == NULL || strcmp(target, "stderr") == 0 ||
	    strcmp(target, "syslog") == 0)
		return;
	if (chown(target, uid, gid) < 0)
		log_warn("log: cannot chown %s: %m", target);
}

int privs_drop(const struct yubin_config *config,
			   const char **error_r)
{
	const char *user = config->server.user;
	bool have_user = user != NULL && user[0] != '\0';
	uid_t uid;
	gid_t gid;
	if (geteuid() != 0) {
		const struct passwd *pw = have_user ? getpwnam(user) : NULL;
		if (have_user && (pw == NULL || pw->pw_uid != geteuid()))
			log_warn("not started as root: staying uid=%ld, server.user=%s ignored",
				 (long)geteuid(), user);
		return 0;
	}
	if (!have_user) {
		*error_r = "refusing to run as root: set server.user";
		return -1;
	}
	if (privs_lookup(config, &uid, &gid, error_r) < 0)
		return -1;
	if (uid == 0) {
		*error_r = "refusing to run as root: server.user is root";
		return -1;
	}
	chown_log_file(config, uid, gid);
	if (initgroups(user, gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
		*error_r = "cannot switch to server.user";
		return -1;
	}
	if (setuid(0) == 0 || seteuid(0) == 0 || geteuid() != uid || getuid() != uid) {
		*error_r = "root privileges could be regained after dropping them";
		return -1;
	}
	log_info("running as user=%s uid=%ld gid=%ld", user, (long)uid, (long)gid);
	return 0;
}

#include "auth/auth.h"

#include <stdlib.h>
#include <string.h>

#include "dir/dir.h"
#include "lib/address.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

/* Room for the escaped user name in the log line: long names are cut. */
#define AUTH_LOG_USER_MAX 96
#define AUTH_LOG_ERROR_MAX 256

/* A hash of a password nobody knows, made once per process with the same
 * algorithm and cost as new account hashes: verifying against it makes an
 * unknown user cost as much as a known one. */
static char *dummy_hash;

static void auth_dummy_verify(const char *password)
{
	if (dummy_hash == NULL) {
		dummy_hash = auth_hash_password("yubin: no such account");
		if (dummy_hash == NULL) {
			log_error("auth cannot make the dummy password hash: crypt failed");
			return;
		}
	}
	(void)auth_verify_hash(password, dummy_hash);
}

static const struct {
	const char *name;
	enum log_level level;
} auth_result_log[] = {
        [AUTH_OK] = {"ok", LOG_LEVEL_INFO},
        [AUTH_FAILED] = {"failed", LOG_LEVEL_WARN},
        [AUTH_DISABLED] = {"disabled", LOG_LEVEL_INFO},
        [AUTH_TEMPFAIL] = {"tempfail", LOG_LEVEL_ERROR},
};

static const char *str_or_dash(const char *s)
{
	return s != NULL && s[0] != '\0' ? s : "-";
}

/* The user name is client bytes: escaped, cut and quoted so that it
 * cannot forge other fields. The password is never logged. */
static void auth_log(const struct auth_request *req, const char *user, enum auth_result result,
                     const char *error)
{
	char user_esc[AUTH_LOG_USER_MAX], error_esc[AUTH_LOG_ERROR_MAX];
	log_escape(user, strlen(user), user_esc, sizeof(user_esc));
	log_escape(error != NULL ? error : "", error != NULL ? strlen(error) : 0, error_esc,
	           sizeof(error_esc));
	log_msg(auth_result_log[result].level,
	        "auth session=%s protocol=%s ip=%s mech=%s user=\"%s\" result=%s%s%s%s",
	        str_or_dash(req->session_id), str_or_dash(req->protocol),
	        str_or_dash(req->remote_ip), str_or_dash(req->mechanism), user_esc,
	        auth_result_log[result].name, error != NULL ? " error=\"" : "", error_esc,
	        error != NULL ? "\"" : "");
}

static enum auth_result auth_check_account(struct dir *dir, const char *address,
                                           const char *password, char **address_r,
                                           const char **error_r)
{
	struct dir_account *acc = NULL;
	int ret = dir_account_lookup(dir, address, &acc, error_r);
	if (ret < 0)
		return AUTH_TEMPFAIL;
	if (ret == 0) {
		auth_dummy_verify(password);
		return AUTH_FAILED;
	}
	enum auth_result result = AUTH_FAILED;
	if (auth_verify_hash(password, acc->password_hash)) {
		result = acc->enabled ? AUTH_OK : AUTH_DISABLED;
		if (result == AUTH_OK)
			*address_r = xstrdup(acc->address);
	}
	dir_account_free(&acc);
	return result;
}

enum auth_result auth_password(struct dir *dir, const struct auth_request *req, const char *user,
                               const char *password, char **address_r)
{
	const char *error = NULL;
	enum auth_result result;
	*address_r = NULL;
	char *address = address_normalize(user, &error);
	if (address == NULL) {
		/* Not even an address: same work and answer as a wrong password. */
		auth_dummy_verify(password);
		error = NULL;
		result = AUTH_FAILED;
	} else {
		result = auth_check_account(dir, address, password, address_r, &error);
		free(address);
	}
	auth_log(req, user, result, result == AUTH_TEMPFAIL ? error : NULL);
	return result;
}

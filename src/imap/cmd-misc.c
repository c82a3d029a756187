/* The commands valid in any state or without a mailbox: CAPABILITY, NOOP
 * (and CHECK), LOGOUT, ID (RFC 2971), ENABLE (RFC 5161), NAMESPACE
 * (RFC 2342). */
#include "imap/imap-private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/conn.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

IMAP_HANDLER(imap_cmd_capability)
{
	if (count != 0) {
		imap_bad(sess, "CAPABILITY takes no arguments");
		return;
	}
	struct buf caps = BUF_INIT(0);
	imap_capability_string(sess, &caps);
	imap_untagged(sess, "CAPABILITY %s", buf_str(&caps));
	buf_free(&caps);
	imap_done(sess, "OK Capability completed");
}

IMAP_HANDLER(imap_cmd_noop)
{
	if (count != 0) {
		imap_bad(sess, "No arguments expected");
		return;
	}
	imap_done(sess, "OK %s completed", sess->cmd->name);
}

IMAP_HANDLER(imap_cmd_logout)
{
	if (count != 0) {
		imap_bad(sess, "LOGOUT takes no arguments");
		return;
	}
	imap_untagged(sess, "BYE Logging out");
	imap_done(sess, "OK Logout completed");
	sess->state = IMAP_STATE_LOGOUT;
	imap_session_close(sess);
}

/* Logs the client's name and version, escaped. */
static void imap_id_log(struct imap_session *sess, const struct imap_arg *list, unsigned int n)
{
	char name[64] = "-", version[64] = "-";
	for (unsigned int i = 0; i + 1 < n; i += 2) {
		const char *key, *value;
		if (!imap_arg_get_string(&list[i], &key) ||
		    !imap_arg_get_nstring(&list[i + 1], &value) || value == NULL)
			continue;
		if (strcasecmp(key, "name") == 0)
			log_escape(value, strlen(value), name, sizeof(name));
		else if (strcasecmp(key, "version") == 0)
			log_escape(value, strlen(value), version, sizeof(version));
	}
	log_info("imap session=%s user=%s event=id name=\"%s\" version=\"%s\"", conn_id(sess->conn),
	         imap_user(sess), name, version);
}

IMAP_HANDLER(imap_cmd_id)
{
	const struct imap_arg *list = NULL;
	unsigned int n = 0;
	if (count != 1 ||
	    (args[0].type != IMAP_ARG_NIL && !imap_arg_get_list(&args[0], &list, &n)) ||
	    n % 2 != 0 || n > 60) {
		imap_bad(sess, "ID takes NIL or a list of field/value pairs");
		return;
	}
	if (n > 0)
		imap_id_log(sess, list, n);
	imap_untagged(sess, "ID (\"name\" \"yubin\" \"vendor\" \"yubin\")");
	imap_done(sess, "OK ID completed");
}

static bool imap_enable_one(struct imap_session *sess, const char *name, struct buf *enabled)
{
	bool *flag = NULL;
	if (strcasecmp(name, "IMAP4rev2") == 0)
		flag = &sess->rev2;
	else if (strcasecmp(name, "UTF8=ACCEPT") == 0)
		flag = &sess->utf8;
	if (flag == NULL || *flag)
		return false;
	*flag = true;
	buf_append_char(enabled, ' ');
	buf_append_str(enabled, strcasecmp(name, "IMAP4rev2") == 0 ? "IMAP4rev2" : "UTF8=ACCEPT");
	return true;
}

IMAP_HANDLER(imap_cmd_enable)
{
	struct buf enabled = BUF_INIT(0);
	if (count == 0) {
		imap_bad(sess, "ENABLE needs capability names");
		return;
	}
	for (unsigned int i = 0; i < count; i++) {
		const char *name;
		if (!imap_arg_get_atom(&args[i], &name)) {
			buf_free(&enabled);
			imap_bad(sess, "ENABLE takes capability names");
			return;
		}
		imap_enable_one(sess, name, &enabled);
	}
	imap_session_set_limits(sess);
	imap_untagged(sess, "ENABLED%s", buf_str(&enabled));
	buf_free(&enabled);
	imap_done(sess, "OK Enabled");
}

IMAP_HANDLER(imap_cmd_namespace)
{
	if (count != 0) {
		imap_bad(sess, "NAMESPACE takes no arguments");
		return;
	}
	imap_untagged(sess, "NAMESPACE ((\"\" \"/\")) NIL NIL");
	imap_done(sess, "OK Namespace completed");
}

/* The commands valid in any state or without a mailbox: CAPABILITY, NOOP
 * (and CHECK), LOGOUT, ID (RFC 2971), ENABLE (RFC 5161), NAMESPACE
 * (RFC 2342). ENABLE knows IMAP4rev2, UTF8=ACCEPT, CONDSTORE and QRESYNC. */
#include "imap/imap-condstore.h"

#include <stddef.h>
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

/* What ENABLE knows (RFC 5161), each a session flag. */
static const struct {
	const char *name;
	size_t offset;
} imap_enable_caps[] = {
        {"IMAP4rev2", offsetof(struct imap_session, rev2)},
        {"UTF8=ACCEPT", offsetof(struct imap_session, utf8)},
        {"CONDSTORE", offsetof(struct imap_session, condstore)},
        {"QRESYNC", offsetof(struct imap_session, qresync)},
};

/* Lists a capability in ENABLED only when this command turned it on. */
static bool imap_enable_one(struct imap_session *sess, const char *name, struct buf *enabled)
{
	for (size_t i = 0; i < sizeof(imap_enable_caps) / sizeof(imap_enable_caps[0]); i++) {
		bool *flag = (bool *)((char *)sess + imap_enable_caps[i].offset);
		if (strcasecmp(name, imap_enable_caps[i].name) != 0 || *flag)
			continue;
		/* QRESYNC implies CONDSTORE (RFC 7162 3.2.3) */
		if (flag == &sess->condstore || flag == &sess->qresync)
			imap_condstore_enable(sess);
		*flag = true;
		buf_append_char(enabled, ' ');
		buf_append_str(enabled, imap_enable_caps[i].name);
		return true;
	}
	return false;
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

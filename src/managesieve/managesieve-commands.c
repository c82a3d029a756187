/* After login: the script commands of RFC 5804 2.5-2.12 and
 * UNAUTHENTICATE (2.14.1), on the account's sieve storage. Scripts are
 * compiled before they are stored; a script that does not compile is
 * never stored. */
#include "managesieve/managesieve-private.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config.h"
#include "lib/conn.h"
#include "lib/log.h"
#include "lib/strnum.h"
#include "lib/xmalloc.h"
#include "sieve/sieve.h"

/* A script name argument: a string (not an atom) that names a valid
 * script. Replies and returns false otherwise. */
static bool script_name_arg(struct managesieve_session *sess, const struct managesieve_arg *arg)
{
	if (arg->type == MANAGESIEVE_ARG_ATOM) {
		managesieve_reply(sess, "NO", NULL, "A script name must be a quoted string");
		managesieve_session_bad_command(sess);
		return false;
	}
	if (strlen(arg->str) != arg->len || !sieve_storage_name_valid(arg->str)) {
		managesieve_reply(sess, "NO", NULL,
				  "Invalid script name: 1-128 characters, no '/', no control "
				  "characters, not starting with '.'");
		return false;
	}
	return true;
}

static bool script_source_arg(struct managesieve_session *sess,
			      const struct managesieve_arg *arg)
{
	if (arg->type != MANAGESIEVE_ARG_ATOM)
		return true;
	managesieve_reply(sess, "NO", NULL, "A script must be a string or a literal");
	managesieve_session_bad_command(sess);
	return false;
}

static struct sieve_limits managesieve_sieve_limits(struct managesieve_session *sess)
{
	const struct yubin_config *config = conn_config(sess->conn);
	struct sieve_limits limits = sieve_default_limits;
	limits.max_script_size = config->sieve.max_script_size;
	limits.max_actions = config->sieve.max_actions;
	limits.max_redirects = config->sieve.max_redirects;
	return limits;
}

/* Compiles source: true when it is valid; else replies NO with where
 * and what (RFC 5804 2.6: the line of the first error). */
static bool script_compiles(struct managesieve_session *sess, const char *name,
			    const struct managesieve_arg *source)
{
	struct sieve_limits limits = managesieve_sieve_limits(sess);
	struct sieve_error err = { 0 };
	struct sieve_script *script = sieve_compile(name, source->str, source->len, &limits, &err);
	if (script != NULL) {
		sieve_script_free(&script);
		return true;
	}
	char *text = err.line > 0 ? xasprintf("line %u: column %u: %s", err.line, err.column,
					      err.message) :
				    xstrdup(err.message);
	managesieve_reply(sess, "NO", NULL, text);
	free(text);
	return false;
}

/* NO (QUOTA/...) for the reason the storage gave. */
static void reply_quota(struct managesieve_session *sess, const char *reason)
{
	managesieve_reply(sess, "NO", reason == sieve_storage_error_maxscripts ? "QUOTA/MAXSCRIPTS" :
									   "QUOTA/MAXSIZE",
			  reason);
}

void managesieve_cmd_havespace(struct managesieve_session *sess,
			       const struct managesieve_arg *args, unsigned int count)
{
	const struct yubin_config *config = conn_config(sess->conn);
	const char *error;
	uint64_t size;

	if (!script_name_arg(sess, &args[0]))
		return;
	if (args[1].type != MANAGESIEVE_ARG_ATOM || str_to_uint64(args[1].str, &size) < 0 ||
	    size > UINT32_MAX) {
		managesieve_reply(sess, "NO", NULL, "The size must be a number");
		managesieve_session_bad_command(sess);
		return;
	}
	if (size > config->sieve.max_script_size) {
		managesieve_reply(sess, "NO", "QUOTA/MAXSIZE", "Script too large");
		return;
	}
	int ret = sieve_storage_have_space(sess->storage, args[0].str, size, &error);
	if (ret < 0)
		managesieve_reply_internal_error(sess, "sieve_storage_have_space", error);
	else if (ret == 0)
		reply_quota(sess, error);
	else
		managesieve_reply(sess, "OK", NULL, NULL);
}

static void putscript_store(struct managesieve_session *sess, const char *name,
			    const struct managesieve_arg *source)
{
	const char *error;
	bool quota;
	char esc[256];

	if (sieve_storage_put(sess->storage, name, source->str, source->len, &quota, &error) < 0) {
		if (quota)
			reply_quota(sess, error);
		else
			managesieve_reply_internal_error(sess, "sieve_storage_put", error);
		return;
	}
	sess->puts++;
	log_info("managesieve session=%s user=%s event=putscript name=\"%s\" size=%zu",
		 conn_id(sess->conn), sess->address, log_escape(name, strlen(name), esc, sizeof(esc)),
		 source->len);
	managesieve_reply(sess, "OK", NULL, "Script stored");
}

void managesieve_cmd_putscript(struct managesieve_session *sess,
			       const struct managesieve_arg *args, unsigned int count)
{
	if (!script_name_arg(sess, &args[0]) || !script_source_arg(sess, &args[1]))
		return;
	if (args[1].len > conn_config(sess->conn)->sieve.max_script_size) {
		managesieve_reply(sess, "NO", "QUOTA/MAXSIZE", "Script too large");
		return;
	}
	if (script_compiles(sess, args[0].str, &args[1]))
		putscript_store(sess, args[0].str, &args[1]);
}

void managesieve_cmd_checkscript(struct managesieve_session *sess,
				 const struct managesieve_arg *args, unsigned int count)
{
	if (!script_source_arg(sess, &args[0]))
		return;
	if (script_compiles(sess, "checkscript", &args[0]))
		managesieve_reply(sess, "OK", NULL, "Script is valid");
}

void managesieve_cmd_listscripts(struct managesieve_session *sess,
				 const struct managesieve_arg *args, unsigned int count)
{
	struct sieve_script_info *scripts;
	size_t n;
	const char *error;

	if (sieve_storage_list(sess->storage, &scripts, &n, &error) < 0) {
		managesieve_reply_internal_error(sess, "sieve_storage_list", error);
		return;
	}
	struct buf out = BUF_INIT(0);
	for (size_t i = 0; i < n; i++) {
		managesieve_write_string(&out, scripts[i].name, strlen(scripts[i].name));
		buf_append_str(&out, scripts[i].active ? " ACTIVE\r\n" : "\r\n");
	}
	buf_append_str(&out, "OK \"Listscripts completed\"\r\n");
	managesieve_send(sess, out.data, out.len);
	buf_free(&out);
	sieve_storage_list_free(&scripts, n);
}

static void reply_storage_error(struct managesieve_session *sess, const char *what,
				const char *error)
{
	if (error == sieve_storage_error_nonexistent)
		managesieve_reply(sess, "NO", "NONEXISTENT", error);
	else if (error == sieve_storage_error_exists)
		managesieve_reply(sess, "NO", "ALREADYEXISTS", error);
	else
		managesieve_reply_internal_error(sess, what, error);
}

void managesieve_cmd_setactive(struct managesieve_session *sess,
			       const struct managesieve_arg *args, unsigned int count)
{
	const char *error;
	/* "" deactivates (RFC 5804 2.8) */
	if (args[0].len > 0 && !script_name_arg(sess, &args[0]))
		return;
	if (sieve_storage_activate(sess->storage, args[0].str, &error) < 0) {
		reply_storage_error(sess, "sieve_storage_activate", error);
		return;
	}
	managesieve_reply(sess, "OK", NULL, args[0].len > 0 ? "Script activated" :
							      "Scripts deactivated");
}

void managesieve_cmd_getscript(struct managesieve_session *sess,
			       const struct managesieve_arg *args, unsigned int count)
{
	const char *error;
	char *source;
	size_t len;

	if (!script_name_arg(sess, &args[0]))
		return;
	int ret = sieve_storage_get(sess->storage, args[0].str, &source, &len, &error);
	if (ret <= 0) {
		reply_storage_error(sess, "sieve_storage_get",
				    ret == 0 ? sieve_storage_error_nonexistent : error);
		return;
	}
	/* Always a literal: the script's bytes exactly (RFC 5804 2.9). */
	char header[32];
	snprintf(header, sizeof(header), "{%zu}\r\n", len);
	managesieve_send(sess, header, strlen(header));
	managesieve_send(sess, source, len);
	managesieve_send(sess, "\r\n", 2);
	managesieve_reply(sess, "OK", NULL, "Getscript completed");
	sess->gets++;
	free(source);
}

void managesieve_cmd_deletescript(struct managesieve_session *sess,
				  const struct managesieve_arg *args, unsigned int count)
{
	const char *error;
	bool active;

	if (!script_name_arg(sess, &args[0]))
		return;
	if (sieve_storage_delete(sess->storage, args[0].str, &active, &error) < 0) {
		if (active)
			managesieve_reply(sess, "NO", "ACTIVE", "You may not delete an active script");
		else
			reply_storage_error(sess, "sieve_storage_delete", error);
		return;
	}
	managesieve_reply(sess, "OK", NULL, "Script deleted");
}

void managesieve_cmd_renamescript(struct managesieve_session *sess,
				  const struct managesieve_arg *args, unsigned int count)
{
	const char *error;

	if (!script_name_arg(sess, &args[0]) || !script_name_arg(sess, &args[1]))
		return;
	if (sieve_storage_rename(sess->storage, args[0].str, args[1].str, &error) < 0) {
		reply_storage_error(sess, "sieve_storage_rename", error);
		return;
	}
	managesieve_reply(sess, "OK", NULL, "Script renamed");
}

void managesieve_cmd_unauthenticate(struct managesieve_session *sess,
				    const struct managesieve_arg *args, unsigned int count)
{
	log_info("managesieve session=%s user=%s event=unauthenticate", conn_id(sess->conn),
		 sess->address);
	managesieve_logout_state(sess);
	managesieve_session_set_limits(sess);
	managesieve_reply(sess, "OK", NULL, NULL);
}

/* LIST (RFC 9051 6.3.9) with the selection option SPECIAL-USE and the
 * return options CHILDREN, SPECIAL-USE (RFC 6154) and STATUS (RFC 5819).
 * Every mailbox is listed with \HasChildren or \HasNoChildren, and the
 * special folders with their use. */
#include "imap/imap-private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/xmalloc.h"

static const struct {
	const char *name;
	const char *attr;
} imap_special_use[] = {
        {"Sent", "\\Sent"}, {"Drafts", "\\Drafts"},   {"Trash", "\\Trash"},
        {"Junk", "\\Junk"}, {"Archive", "\\Archive"},
};

struct imap_list_req {
	bool special_only;
	unsigned int status_items;
	char **patterns;
	unsigned int pattern_count;
};

static const char *imap_list_special(const char *name)
{
	for (size_t i = 0; i < sizeof(imap_special_use) / sizeof(imap_special_use[0]); i++) {
		if (strcmp(imap_special_use[i].name, name) == 0)
			return imap_special_use[i].attr;
	}
	return NULL;
}

/* '*' matches anything, '%' anything but the separator. */
bool imap_list_match(const char *pat, const char *name)
{
	for (; *pat != '\0'; pat++, name++) {
		if (*pat == '*' || *pat == '%') {
			for (const char *p = name;; p++) {
				if (imap_list_match(pat + 1, p))
					return true;
				if (*p == '\0' || (*pat == '%' && *p == '/'))
					return false;
			}
		}
		if (*name != *pat)
			return false;
	}
	return *name == '\0';
}

static bool imap_list_matches(const struct imap_list_req *req, const char *name)
{
	for (unsigned int i = 0; i < req->pattern_count; i++) {
		if (imap_list_match(req->patterns[i], name))
			return true;
	}
	return false;
}

static bool imap_list_has_children(char **names, size_t count, const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; i < count; i++) {
		if (strncmp(names[i], name, len) == 0 && names[i][len] == '/')
			return true;
	}
	return false;
}

static bool imap_list_exists(char **names, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++) {
		if (strcmp(names[i], name) == 0)
			return true;
	}
	return false;
}

static void imap_list_line(struct imap_session *sess, const char *name, const char *attrs)
{
	struct buf line = BUF_INIT(0);
	char *client = imap_mailbox_to_client(sess, name);
	buf_printf(&line, "LIST (%s) \"/\" ", attrs);
	imap_append_astring(sess, &line, client);
	imap_untagged(sess, "%s", buf_str(&line));
	free(client);
	buf_free(&line);
}

static void imap_list_one(struct imap_session *sess, const struct imap_list_req *req, char **names,
                          size_t count, const char *name, bool exists)
{
	const char *special = imap_list_special(name);
	if (req->special_only && special == NULL)
		return;
	struct buf attrs = BUF_INIT(0);
	if (!exists)
		buf_append_str(&attrs, sess->rev2 ? "\\NonExistent " : "\\Noselect ");
	buf_append_str(&attrs, imap_list_has_children(names, count, name) ? "\\HasChildren"
	                                                                  : "\\HasNoChildren");
	if (special != NULL)
		buf_printf(&attrs, " %s", special);
	imap_list_line(sess, name, buf_str(&attrs));
	buf_free(&attrs);
	enum store_error err;
	const char *error;
	if (exists && req->status_items != 0)
		imap_status_send(sess, name, req->status_items, &err, &error);
}

/* The parents that do not exist themselves ("a" of "a/b"), listed as
 * \Noselect when a '%' pattern stops at them. */
static void imap_list_parents(struct imap_session *sess, const struct imap_list_req *req,
                              char **names, size_t count)
{
	char **done = xcalloc(count + 1, sizeof(char *));
	size_t ndone = 0;
	for (size_t i = 0; i < count; i++) {
		for (char *slash = strchr(names[i], '/'); slash != NULL;
		     slash = strchr(slash + 1, '/')) {
			char *parent = xstrndup(names[i], (size_t)(slash - names[i]));
			if (imap_list_exists(names, count, parent) ||
			    imap_list_exists(done, ndone, parent) ||
			    !imap_list_matches(req, parent)) {
				free(parent);
				continue;
			}
			imap_list_one(sess, req, names, count, parent, false);
			done = xreallocarray(done, ndone + 2, sizeof(char *));
			done[ndone++] = parent;
		}
	}
	for (size_t i = 0; i < ndone; i++)
		free(done[i]);
	free(done);
}

static void imap_list_run(struct imap_session *sess, const struct imap_list_req *req)
{
	char **names = NULL;
	size_t count = 0;
	const char *error;
	if (store_mailbox_list(sess->store, &names, &count, &error) < 0) {
		imap_internal_error(sess, "store_mailbox_list", error);
		return;
	}
	for (size_t i = 0; i < count; i++) {
		if (imap_list_matches(req, names[i]))
			imap_list_one(sess, req, names, count, names[i], true);
	}
	imap_list_parents(sess, req, names, count);
	store_names_free(&names, count);
	imap_done(sess, "OK List completed");
}

static int imap_list_selection(struct imap_list_req *req, const struct imap_arg *arg)
{
	const struct imap_arg *list;
	unsigned int n;
	if (!imap_arg_get_list(arg, &list, &n))
		return -1;
	for (unsigned int i = 0; i < n; i++) {
		if (imap_arg_atom_equals(&list[i], "SPECIAL-USE"))
			req->special_only = true;
		else if (!imap_arg_atom_equals(&list[i], "REMOTE"))
			return -1;
	}
	return 0;
}

static int imap_list_return(struct imap_list_req *req, const struct imap_arg *args,
                            unsigned int count)
{
	const struct imap_arg *list;
	unsigned int n;
	if (count != 2 || !imap_arg_atom_equals(&args[0], "RETURN") ||
	    !imap_arg_get_list(&args[1], &list, &n))
		return -1;
	for (unsigned int i = 0; i < n; i++) {
		if (imap_arg_atom_equals(&list[i], "STATUS") && i + 1 < n) {
			if (imap_status_parse_items(&list[++i], &req->status_items) < 0)
				return -1;
		} else if (!imap_arg_atom_equals(&list[i], "CHILDREN") &&
		           !imap_arg_atom_equals(&list[i], "SPECIAL-USE")) {
			return -1;
		}
	}
	return 0;
}

/* reference + pattern, as UTF-8 with INBOX folded. */
static int imap_list_add_pattern(struct imap_session *sess, struct imap_list_req *req,
                                 const char *ref, const char *pattern)
{
	const char *error;
	char *joined = xasprintf("%s%s", ref, pattern);
	char *utf8 = imap_mailbox_from_client(sess, joined, &error);
	free(joined);
	if (utf8 == NULL)
		return -1;
	req->patterns = xreallocarray(req->patterns, req->pattern_count + 1, sizeof(char *));
	req->patterns[req->pattern_count++] = utf8;
	return 0;
}

static int imap_list_patterns(struct imap_session *sess, struct imap_list_req *req, const char *ref,
                              const struct imap_arg *arg)
{
	const struct imap_arg *list = arg;
	unsigned int n = 1;
	const char *pattern;
	if (arg->type == IMAP_ARG_LIST && !imap_arg_get_list(arg, &list, &n))
		return -1;
	for (unsigned int i = 0; i < n; i++) {
		if (!imap_arg_get_list_mailbox(&list[i], &pattern) ||
		    imap_list_add_pattern(sess, req, ref, pattern) < 0)
			return -1;
	}
	return 0;
}

static void imap_list_req_free(struct imap_list_req *req)
{
	for (unsigned int i = 0; i < req->pattern_count; i++)
		free(req->patterns[i]);
	free(req->patterns);
}

static int imap_list_parse(struct imap_session *sess, struct imap_list_req *req,
                           const struct imap_arg *args, unsigned int count)
{
	const char *ref;
	unsigned int i = 0;
	if (count > 0 && args[0].type == IMAP_ARG_LIST) {
		if (imap_list_selection(req, &args[0]) < 0)
			return -1;
		i++;
	}
	if (count < i + 2 || !imap_arg_get_astring(&args[i], &ref) ||
	    imap_list_patterns(sess, req, ref, &args[i + 1]) < 0)
		return -1;
	if (count > i + 2 && imap_list_return(req, &args[i + 2], count - i - 2) < 0)
		return -1;
	return 0;
}

IMAP_HANDLER(imap_cmd_list)
{
	struct imap_list_req req = {0};
	if (imap_list_parse(sess, &req, args, count) < 0) {
		imap_list_req_free(&req);
		imap_bad(sess, "Invalid LIST arguments");
		return;
	}
	if (req.pattern_count == 1 && req.patterns[0][0] == '\0' && req.status_items == 0) {
		imap_untagged(sess, "LIST (\\Noselect) \"/\" \"\"");
		imap_done(sess, "OK List completed");
	} else {
		imap_list_run(sess, &req);
	}
	imap_list_req_free(&req);
}

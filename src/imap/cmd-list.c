/* LIST (RFC 9051 6.3.9) with LIST-EXTENDED (RFC 5258): the selection
 * options SUBSCRIBED, REMOTE, RECURSIVEMATCH and SPECIAL-USE (RFC 6154),
 * the return options SUBSCRIBED, CHILDREN, SPECIAL-USE and STATUS (RFC
 * 5819), several patterns in parentheses, \Subscribed, \NonExistent and
 * CHILDINFO. Every mailbox is listed with \HasChildren or \HasNoChildren
 * and its special use, which CREATE (USE (...)) may set (RFC 6154
 * CREATE-SPECIAL-USE, also here). */
#include "imap/imap-private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/xmalloc.h"

/* The default uses of the folders every account is created with. */
static const struct {
	const char *name;
	const char *attr;
} imap_special_use[] = {
        {"Sent", "\\Sent"}, {"Drafts", "\\Drafts"},   {"Trash", "\\Trash"},
        {"Junk", "\\Junk"}, {"Archive", "\\Archive"},
};

/* The uses CREATE can give: real folders. \All and \Flagged would be
 * virtual mailboxes, which the store does not have. */
static const char *const imap_use_attrs[] = {"\\Archive", "\\Drafts", "\\Junk", "\\Sent",
                                             "\\Trash"};

/* Selection options (RFC 5258 3.1, RFC 6154 5.1) */
#define IMAP_LIST_SEL_SUBSCRIBED 0x01
#define IMAP_LIST_SEL_SPECIAL_USE 0x02
#define IMAP_LIST_SEL_BASE (IMAP_LIST_SEL_SUBSCRIBED | IMAP_LIST_SEL_SPECIAL_USE)
#define IMAP_LIST_SEL_RECURSIVE 0x04

struct imap_list_req {
	unsigned int select;
	bool return_subscribed;
	bool extended; /* LIST-EXTENDED syntax: \NonExistent also for rev1 */
	unsigned int status_items;
	char **patterns;
	unsigned int pattern_count;
};

/* One name LIST may show: a mailbox, a subscription or a parent of one. */
struct imap_list_entry {
	char *name;
	bool exists, subscribed;
	char *special; /* its special-use attributes, NULL if none */
	bool selected; /* meets the selection options */
};

struct imap_list_ctx {
	struct imap_list_entry *entries; /* sorted by name */
	size_t count;
};

char *imap_list_special_use(struct imap_session *sess, const char *name)
{
	enum store_error err;
	const char *error;
	char *attrs = NULL;
	if (store_mailbox_get_special_use(sess->store, name, &attrs, &err, &error) > 0)
		return attrs;
	for (size_t i = 0; i < sizeof(imap_special_use) / sizeof(imap_special_use[0]); i++) {
		if (strcmp(imap_special_use[i].name, name) == 0)
			return xstrdup(imap_special_use[i].attr);
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

/* Whether b is a/... */
static bool imap_list_is_child(const char *a, const char *b)
{
	size_t len = strlen(a);
	return strncmp(b, a, len) == 0 && b[len] == '/';
}

/* INBOX and its children first, then by bytes: a name's children still
 * follow it, before any other name. */
static int imap_list_inbox_group(const char *name)
{
	return strcmp(name, "INBOX") == 0 || strncmp(name, "INBOX/", 6) == 0 ? 0 : 1;
}

static int imap_list_entry_cmp(const void *a, const void *b)
{
	const struct imap_list_entry *x = a, *y = b;
	int gx = imap_list_inbox_group(x->name), gy = imap_list_inbox_group(y->name);
	return gx != gy ? gx - gy : strcmp(x->name, y->name);
}

/* Adds name and each of its parents (unsorted; duplicates go later). */
static void imap_list_add(struct imap_list_ctx *ctx, const char *name, bool exists,
                          bool subscribed)
{
	for (const char *slash = strchr(name, '/');; slash = strchr(slash + 1, '/')) {
		size_t len = slash != NULL ? (size_t)(slash - name) : strlen(name);
		ctx->entries = xreallocarray(ctx->entries, ctx->count + 1, sizeof(ctx->entries[0]));
		ctx->entries[ctx->count++] = (struct imap_list_entry){
		        .name = xstrndup(name, len),
		        .exists = slash == NULL && exists,
		        .subscribed = slash == NULL && subscribed,
		};
		if (slash == NULL)
			break;
	}
}

/* Sorts and merges the duplicates (a name may be a mailbox, a
 * subscription and a parent at once). */
static void imap_list_merge(struct imap_list_ctx *ctx)
{
	size_t out = 0;
	qsort(ctx->entries, ctx->count, sizeof(ctx->entries[0]), imap_list_entry_cmp);
	for (size_t i = 0; i < ctx->count; i++) {
		struct imap_list_entry *e = &ctx->entries[i];
		if (out > 0 && strcmp(ctx->entries[out - 1].name, e->name) == 0) {
			ctx->entries[out - 1].exists |= e->exists;
			ctx->entries[out - 1].subscribed |= e->subscribed;
			free(e->name);
			continue;
		}
		ctx->entries[out++] = *e;
	}
	ctx->count = out;
}

static void imap_list_ctx_free(struct imap_list_ctx *ctx)
{
	for (size_t i = 0; i < ctx->count; i++) {
		free(ctx->entries[i].name);
		free(ctx->entries[i].special);
	}
	free(ctx->entries);
}

static bool imap_list_selected(const struct imap_list_req *req, const struct imap_list_entry *e)
{
	if ((req->select & IMAP_LIST_SEL_BASE) == 0)
		return e->exists;
	if ((req->select & IMAP_LIST_SEL_SUBSCRIBED) != 0 && !e->subscribed)
		return false;
	if ((req->select & IMAP_LIST_SEL_SPECIAL_USE) != 0 && (!e->exists || e->special == NULL))
		return false;
	return true;
}

/* Mailboxes, subscriptions when they matter, and their parents. */
static int imap_list_load(struct imap_session *sess, const struct imap_list_req *req,
                          struct imap_list_ctx *ctx)
{
	char **names = NULL;
	size_t count = 0;
	const char *error;
	if (store_mailbox_list(sess->store, &names, &count, &error) < 0) {
		imap_internal_error(sess, "store_mailbox_list", error);
		return -1;
	}
	for (size_t i = 0; i < count; i++)
		imap_list_add(ctx, names[i], true, false);
	store_names_free(&names, count);
	count = 0;
	if (((req->select & IMAP_LIST_SEL_SUBSCRIBED) != 0 || req->return_subscribed) &&
	    store_mailbox_list_subscribed(sess->store, &names, &count, &error) < 0) {
		imap_internal_error(sess, "store_mailbox_list_subscribed", error);
		return -1;
	}
	for (size_t i = 0; i < count; i++)
		imap_list_add(ctx, names[i], false, true);
	store_names_free(&names, count);
	imap_list_merge(ctx);
	for (size_t i = 0; i < ctx->count; i++) {
		struct imap_list_entry *e = &ctx->entries[i];
		if (e->exists)
			e->special = imap_list_special_use(sess, e->name);
		e->selected = imap_list_selected(req, e);
	}
	return 0;
}

/* Children sort right after their parent ("a" < "a/b" < "a0"). */
static void imap_list_children(const struct imap_list_ctx *ctx, size_t idx, bool *exists_r,
                               bool *selected_r)
{
	const char *name = ctx->entries[idx].name;
	*exists_r = *selected_r = false;
	for (size_t i = idx + 1; i < ctx->count && strncmp(ctx->entries[i].name, name,
	                                                   strlen(name)) == 0;
	     i++) {
		if (!imap_list_is_child(name, ctx->entries[i].name))
			continue;
		*exists_r |= ctx->entries[i].exists;
		*selected_r |= ctx->entries[i].selected;
	}
}

static void imap_list_attrs(struct imap_session *sess, const struct imap_list_req *req,
                            const struct imap_list_entry *e, bool has_children, struct buf *out)
{
	if (!e->exists)
		buf_append_str(out, req->extended || sess->rev2 ? "\\NonExistent " : "\\Noselect ");
	buf_append_str(out, has_children ? "\\HasChildren" : "\\HasNoChildren");
	if (e->subscribed &&
	    ((req->select & IMAP_LIST_SEL_SUBSCRIBED) != 0 || req->return_subscribed))
		buf_append_str(out, " \\Subscribed");
	if (e->special != NULL)
		buf_printf(out, " %s", e->special);
}

/* ("CHILDINFO" ("SUBSCRIBED")): the selection options a child met. */
static void imap_list_childinfo(const struct imap_list_req *req, struct buf *out)
{
	buf_append_str(out, " (\"CHILDINFO\" (");
	if ((req->select & IMAP_LIST_SEL_SUBSCRIBED) != 0)
		buf_append_str(out, "\"SUBSCRIBED\"");
	if ((req->select & IMAP_LIST_SEL_SPECIAL_USE) != 0)
		buf_printf(out, "%s\"SPECIAL-USE\"",
		           (req->select & IMAP_LIST_SEL_SUBSCRIBED) != 0 ? " " : "");
	buf_append_str(out, "))");
}

static void imap_list_line(struct imap_session *sess, const struct imap_list_req *req,
                           const struct imap_list_entry *e, bool has_children, bool childinfo)
{
	struct buf line = BUF_INIT(0);
	char *client = imap_mailbox_to_client(sess, e->name);
	buf_append_str(&line, "LIST (");
	imap_list_attrs(sess, req, e, has_children, &line);
	buf_append_str(&line, ") \"/\" ");
	imap_append_astring(sess, &line, client);
	if (childinfo)
		imap_list_childinfo(req, &line);
	imap_untagged(sess, "%s", buf_str(&line));
	free(client);
	buf_free(&line);
	enum store_error err;
	const char *error;
	if (e->exists && req->status_items != 0)
		imap_status_send(sess, e->name, req->status_items, &err, &error);
}

/* RFC 5258 3: without selection options the existing mailboxes and the
 * parents a pattern reaches; with them, the names that meet them, and
 * (RECURSIVEMATCH) those with a descendant that does, with CHILDINFO. */
static void imap_list_one(struct imap_session *sess, const struct imap_list_req *req,
                          const struct imap_list_ctx *ctx, size_t idx)
{
	const struct imap_list_entry *e = &ctx->entries[idx];
	bool child_exists, child_selected;
	if (!imap_list_matches(req, e->name))
		return;
	imap_list_children(ctx, idx, &child_exists, &child_selected);
	bool childinfo = (req->select & IMAP_LIST_SEL_RECURSIVE) != 0 && child_selected;
	if ((req->select & IMAP_LIST_SEL_BASE) == 0) {
		if (!e->exists && !child_exists)
			return; /* a subscription only */
	} else if (!e->selected && !childinfo) {
		return;
	}
	imap_list_line(sess, req, e, child_exists, childinfo);
}

static void imap_list_run(struct imap_session *sess, const struct imap_list_req *req)
{
	struct imap_list_ctx ctx = {0};
	if (imap_list_load(sess, req, &ctx) == 0) {
		for (size_t i = 0; i < ctx.count; i++)
			imap_list_one(sess, req, &ctx, i);
		imap_done(sess, "OK List completed");
	}
	imap_list_ctx_free(&ctx);
}

static const struct {
	const char *name;
	unsigned int bit;
} imap_list_select_opts[] = {
        {"SUBSCRIBED", IMAP_LIST_SEL_SUBSCRIBED},
        {"SPECIAL-USE", IMAP_LIST_SEL_SPECIAL_USE},
        {"RECURSIVEMATCH", IMAP_LIST_SEL_RECURSIVE},
        {"REMOTE", 0}, /* there are no remote mailboxes: accepted, changes nothing */
};

static int imap_list_selection(struct imap_list_req *req, const struct imap_arg *arg)
{
	const struct imap_arg *list;
	unsigned int n;
	if (!imap_arg_get_list(arg, &list, &n))
		return -1;
	for (unsigned int i = 0; i < n; i++) {
		size_t k = 0, nopts = sizeof(imap_list_select_opts) / sizeof(imap_list_select_opts[0]);
		while (k < nopts && !imap_arg_atom_equals(&list[i], imap_list_select_opts[k].name))
			k++;
		if (k == nopts)
			return -1;
		req->select |= imap_list_select_opts[k].bit;
	}
	/* RFC 5258 3.1: RECURSIVEMATCH alone (or with REMOTE) is BAD */
	if ((req->select & IMAP_LIST_SEL_RECURSIVE) != 0 &&
	    (req->select & IMAP_LIST_SEL_BASE) == 0)
		return -1;
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
		} else if (imap_arg_atom_equals(&list[i], "SUBSCRIBED")) {
			req->return_subscribed = true;
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
	if (arg->type == IMAP_ARG_LIST) {
		if (!imap_arg_get_list(arg, &list, &n) || n == 0)
			return -1;
		req->extended = true;
	}
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
		req->extended = true;
		i++;
	}
	if (count < i + 2 || !imap_arg_get_astring(&args[i], &ref) ||
	    imap_list_patterns(sess, req, ref, &args[i + 1]) < 0)
		return -1;
	if (count > i + 2) {
		if (imap_list_return(req, &args[i + 2], count - i - 2) < 0)
			return -1;
		req->extended = true;
	}
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
	if (req.pattern_count == 1 && req.patterns[0][0] == '\0' && req.select == 0 &&
	    req.status_items == 0) {
		imap_untagged(sess, "LIST (\\Noselect) \"/\" \"\"");
		imap_done(sess, "OK List completed");
	} else {
		imap_list_run(sess, &req);
	}
	imap_list_req_free(&req);
}

/* One USE attribute in its canonical spelling, NULL when not supported. */
static const char *imap_use_attr(const char *name)
{
	for (size_t i = 0; i < sizeof(imap_use_attrs) / sizeof(imap_use_attrs[0]); i++) {
		if (strcasecmp(imap_use_attrs[i], name) == 0)
			return imap_use_attrs[i];
	}
	return NULL;
}

/* USE (\Sent ...) into "\Sent ..." (duplicates dropped); -1 after
 * answering. */
static int imap_create_use_list(struct imap_session *sess, const struct imap_arg *arg,
                                struct buf *out)
{
	const struct imap_arg *list;
	unsigned int n;
	const char *name;
	if (!imap_arg_get_list(arg, &list, &n)) {
		imap_bad(sess, "USE needs a list of special-use attributes");
		return -1;
	}
	for (unsigned int i = 0; i < n; i++) {
		if (!imap_arg_get_flag(&list[i], false, &name) || name[0] != '\\') {
			imap_bad(sess, "Invalid special-use attribute");
			return -1;
		}
		const char *attr = imap_use_attr(name);
		if (attr == NULL) {
			imap_done(sess, "NO [USEATTR] Special use not supported");
			return -1;
		}
		if (strstr(buf_str(out), attr) != NULL)
			continue;
		buf_printf(out, "%s%s", out->len > 0 ? " " : "", attr);
	}
	return 0;
}

int imap_create_params(struct imap_session *sess, const struct imap_arg *arg, char **use_r)
{
	const struct imap_arg *list;
	unsigned int n;
	struct buf use = BUF_INIT(0);
	*use_r = NULL;
	if (!imap_arg_get_list(arg, &list, &n)) {
		imap_bad(sess, "Invalid CREATE parameters");
		return -1;
	}
	for (unsigned int i = 0; i < n; i += 2) {
		if (!imap_arg_atom_equals(&list[i], "USE") || i + 1 >= n) {
			buf_free(&use);
			imap_bad(sess, "Unknown CREATE parameter");
			return -1;
		}
		if (imap_create_use_list(sess, &list[i + 1], &use) < 0) {
			buf_free(&use);
			return -1;
		}
	}
	*use_r = buf_steal(&use);
	if (*use_r == NULL)
		*use_r = xstrdup("");
	return 0;
}

int imap_create_use(struct imap_session *sess, const char *name, const char *use)
{
	enum store_error err;
	const char *error;
	if (use == NULL || use[0] == '\0')
		return 0;
	if (store_mailbox_set_special_use(sess->store, name, use, &err, &error) == 0)
		return 0;
	char *saved = xstrdup(error);
	/* RFC 6154 3: a mailbox whose use cannot be set is not created */
	store_mailbox_delete(sess->store, name, &err, &error);
	imap_internal_error(sess, "store_mailbox_set_special_use", saved);
	free(saved);
	return -1;
}

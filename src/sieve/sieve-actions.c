/* Actions (RFC 5228 4, 2.10; RFC 5429 reject/ereject; RFC 5230/6131
 * vacation; RFC 5232 imap4flags; RFC 3894 :copy; RFC 5490 :create) and the
 * result that collects them. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "mime/mime.h"
#include "sieve/sieve-run.h"

#define VACATION_DEFAULT_SECONDS (7 * 86400)
#define VACATION_MIN_DAYS_SECONDS 86400

void sieve_result_init(struct sieve_result *result)
{
	memset(result, 0, sizeof(*result));
	result->implicit_keep = true;
}

static void strv_free(char **v, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(v[i]);
	free(v);
}

static void vacation_free(struct sieve_vacation *vac)
{
	if (vac == NULL)
		return;
	free(vac->subject);
	free(vac->from);
	strv_free(vac->addresses, vac->address_count);
	free(vac->handle);
	free(vac->reason);
	free(vac);
}

void sieve_result_free(struct sieve_result *result)
{
	for (size_t i = 0; i < result->action_count; i++) {
		struct sieve_action *a = &result->actions[i];

		free(a->mailbox);
		strv_free(a->flags, a->flag_count);
		free(a->address);
		free(a->reason);
		vacation_free(a->vacation);
	}
	free(result->actions);
	free(result->edited_header);
	strv_free(result->duplicates, result->duplicate_count);
	free(result->duplicate_seconds);
	free(result->error);
	strv_free(result->keep_flags, result->keep_flag_count);
	memset(result, 0, sizeof(*result));
}

/* ---- flags (RFC 5232) ---- */

static bool strlist_has(const struct sieve_strlist *list, const char *s)
{
	for (size_t i = 0; i < list->count; i++) {
		if (strcasecmp(list->items[i], s) == 0)
			return true;
	}
	return false;
}

void sieve_flags_split(const char *s, struct sieve_strlist *list)
{
	while (s != NULL && *s != '\0') {
		size_t n = strcspn(s, " ");

		if (n > 0) {
			char *flag = xstrndup(s, n);
			if (!strlist_has(list, flag))
				sieve_strlist_add(list, flag, n);
			free(flag);
		}
		s += n;
		s += strspn(s, " ");
	}
}

static char *flags_to_string(const struct sieve_strlist *list)
{
	struct buf b = BUF_INIT(0);

	(void)buf_append_str(&b, "");
	for (size_t i = 0; i < list->count; i++) {
		if (i > 0)
			(void)buf_append_char(&b, ' ');
		(void)buf_append_str(&b, list->items[i]);
	}
	return buf_steal(&b);
}

static void flags_from_list(const struct sieve_strlist *given, struct sieve_strlist *out)
{
	for (size_t i = 0; i < given->count; i++)
		sieve_flags_split(given->items[i], out);
}

static void flags_remove(struct sieve_strlist *cur, const struct sieve_strlist *drop)
{
	size_t j = 0;

	for (size_t i = 0; i < cur->count; i++) {
		if (strlist_has(drop, cur->items[i]))
			free(cur->items[i]);
		else
			cur->items[j++] = cur->items[i];
	}
	cur->count = j;
}

/* setflag/addflag/removeflag [variablename] <list-of-flags> */
int sieve_cmd_flags(struct sieve_run *run, const struct sieve_node *node)
{
	const struct sieve_arg *list_arg = &node->args[node->arg_count - 1];
	const char *var = node->arg_count > 1 ? node->args[0].strings[0].data : NULL;
	struct sieve_strlist given, cur = {NULL, 0}, add = {NULL, 0};

	sieve_strlist_from_arg(run, list_arg, &given);
	flags_from_list(&given, &add);
	if (node->name[0] != 's')
		sieve_flags_split(var != NULL ? sieve_vars_get(run, var) : run->flags, &cur);
	if (node->name[0] == 'r') {
		flags_remove(&cur, &add);
	} else {
		for (size_t i = 0; i < add.count; i++) {
			if (!strlist_has(&cur, add.items[i]))
				sieve_strlist_add(&cur, add.items[i], strlen(add.items[i]));
		}
	}
	char *value = flags_to_string(&cur);
	if (var != NULL) {
		sieve_vars_set(run, var, value);
		free(value);
	} else {
		free(run->flags);
		run->flags = value;
	}
	sieve_strlist_free(&given);
	sieve_strlist_free(&cur);
	sieve_strlist_free(&add);
	return 0;
}

/* The flags a keep/fileinto stores with: :flags, else the internal
 * variable (RFC 5232 5). */
static void action_flags(struct sieve_run *run, const struct sieve_node *node,
                         struct sieve_action *a)
{
	const struct sieve_tag *tag = sieve_node_tag(node, ":flags");
	struct sieve_strlist flags = {NULL, 0};

	if ((run->extensions & SIEVE_EXT_IMAP4FLAGS) == 0 && tag == NULL && run->flags[0] == '\0')
		return;
	if (tag != NULL) {
		struct sieve_strlist given;
		sieve_strlist_from_arg(run, tag->value, &given);
		flags_from_list(&given, &flags);
		sieve_strlist_free(&given);
	} else {
		sieve_flags_split(run->flags, &flags);
	}
	a->flags = flags.items;
	a->flag_count = flags.count;
}

/* ---- adding actions with the RFC 5228 2.10 rules ---- */

static bool is_reject(enum sieve_action_type t)
{
	return t == SIEVE_ACTION_REJECT || t == SIEVE_ACTION_EREJECT;
}

/* RFC 5429 2.1: reject/ereject do not mix with keep, fileinto, redirect
 * or vacation, nor with each other. */
static bool conflicts(enum sieve_action_type a, enum sieve_action_type b)
{
	if (is_reject(a) && is_reject(b))
		return true;
	if (is_reject(b))
		return conflicts(b, a);
	return is_reject(a) && b != SIEVE_ACTION_DISCARD;
}

static const char *const action_names[] = {
        "keep", "fileinto", "redirect", "reject", "ereject", "discard", "vacation",
};

static int action_check(struct sieve_run *run, unsigned int line, enum sieve_action_type type)
{
	struct sieve_result *res = run->result;
	unsigned int redirects = 0;

	for (size_t i = 0; i < res->action_count; i++) {
		if (conflicts(type, res->actions[i].type))
			return sieve_run_error(run, line, "%s cannot be combined with %s",
			                       action_names[type],
			                       action_names[res->actions[i].type]);
		redirects += res->actions[i].type == SIEVE_ACTION_REDIRECT;
	}
	if (type == SIEVE_ACTION_REDIRECT && redirects >= run->limits->max_redirects)
		return sieve_run_error(run, line, "too many redirects (limit %u)",
		                       run->limits->max_redirects);
	if (res->action_count >= run->limits->max_actions)
		return sieve_run_error(run, line, "too many actions (limit %u)",
		                       run->limits->max_actions);
	return 0;
}

static struct sieve_action *action_add(struct sieve_run *run, unsigned int line,
                                       enum sieve_action_type type)
{
	struct sieve_result *res = run->result;

	if (action_check(run, line, type) < 0)
		return NULL;
	res->actions = xreallocarray(res->actions, res->action_count + 1, sizeof(*res->actions));
	struct sieve_action *a = &res->actions[res->action_count++];
	memset(a, 0, sizeof(*a));
	a->type = type;
	a->line = line;
	return a;
}

static struct sieve_action *action_find(struct sieve_run *run, enum sieve_action_type type,
                                        const char *mailbox, const char *address)
{
	for (size_t i = 0; i < run->result->action_count; i++) {
		struct sieve_action *a = &run->result->actions[i];

		if (a->type != type)
			continue;
		if (mailbox != NULL && (a->mailbox == NULL || strcmp(a->mailbox, mailbox) != 0))
			continue;
		if (address != NULL && (a->address == NULL || strcasecmp(a->address, address) != 0))
			continue;
		return a;
	}
	return NULL;
}

/* A repeated keep/fileinto of one mailbox stores once (RFC 5228 2.10.3);
 * its flags are the last ones given (RFC 5232 5). */
static void action_replace_flags(struct sieve_action *old, struct sieve_action *tmp)
{
	strv_free(old->flags, old->flag_count);
	old->flags = tmp->flags;
	old->flag_count = tmp->flag_count;
	old->create = old->create || tmp->create;
}

static int store_action(struct sieve_run *run, const struct sieve_node *node,
                        enum sieve_action_type type, const char *mailbox)
{
	struct sieve_action tmp;

	memset(&tmp, 0, sizeof(tmp));
	tmp.create = sieve_node_tag(node, ":create") != NULL;
	action_flags(run, node, &tmp);
	struct sieve_action *old = action_find(run, type, mailbox, NULL);
	if (old != NULL) {
		action_replace_flags(old, &tmp);
	} else {
		struct sieve_action *a = action_add(run, node->line, type);
		if (a == NULL) {
			strv_free(tmp.flags, tmp.flag_count);
			return -1;
		}
		a->create = tmp.create;
		a->flags = tmp.flags;
		a->flag_count = tmp.flag_count;
		a->mailbox = mailbox != NULL ? xstrdup(mailbox) : NULL;
	}
	if (sieve_node_tag(node, ":copy") == NULL)
		run->result->implicit_keep = false;
	return 0;
}

int sieve_cmd_keep(struct sieve_run *run, const struct sieve_node *node)
{
	return store_action(run, node, SIEVE_ACTION_KEEP, NULL);
}

int sieve_cmd_fileinto(struct sieve_run *run, const struct sieve_node *node)
{
	char *mailbox = sieve_arg_string(run, node->arg_count > 0 ? &node->args[0] : NULL);
	int ret;

	if (mailbox[0] == '\0' || !mime_utf8_is_valid(mailbox, strlen(mailbox)))
		ret = sieve_run_error(run, node->line, "fileinto: invalid mailbox name");
	else if (strcasecmp(mailbox, "INBOX") == 0) /* the same as keep (RFC 5228 2.10.3) */
		ret = store_action(run, node, SIEVE_ACTION_KEEP, NULL);
	else
		ret = store_action(run, node, SIEVE_ACTION_FILEINTO, mailbox);
	free(mailbox);
	return ret;
}

/* One plain address: local@domain, no display name, no spaces. */
static bool redirect_address_valid(const char *s)
{
	struct mime_address *list = mime_address_parse(s, strlen(s), 2);
	bool ok = list != NULL && list->next == NULL && !list->invalid && list->host != NULL &&
	          list->mailbox[0] != '\0' && list->host[0] != '\0' && list->name == NULL &&
	          strchr(s, '<') == NULL;

	mime_address_free(&list);
	return ok;
}

int sieve_cmd_redirect(struct sieve_run *run, const struct sieve_node *node)
{
	char *address = sieve_arg_string(run, node->arg_count > 0 ? &node->args[0] : NULL);
	int ret = 0;

	if (!redirect_address_valid(address)) {
		ret = sieve_run_error(run, node->line, "redirect: invalid address");
	} else if (action_find(run, SIEVE_ACTION_REDIRECT, NULL, address) == NULL) {
		struct sieve_action *a = action_add(run, node->line, SIEVE_ACTION_REDIRECT);
		if (a == NULL)
			ret = -1;
		else
			a->address = xstrdup(address);
	}
	if (ret == 0 && sieve_node_tag(node, ":copy") == NULL)
		run->result->implicit_keep = false;
	free(address);
	return ret;
}

int sieve_cmd_reject(struct sieve_run *run, const struct sieve_node *node)
{
	enum sieve_action_type type =
	        strcmp(node->name, "ereject") == 0 ? SIEVE_ACTION_EREJECT : SIEVE_ACTION_REJECT;
	struct sieve_action *a = action_add(run, node->line, type);

	if (a == NULL)
		return -1;
	a->reason = sieve_arg_string(run, node->arg_count > 0 ? &node->args[0] : NULL);
	run->result->implicit_keep = false;
	return 0;
}

int sieve_cmd_discard(struct sieve_run *run, const struct sieve_node *node)
{
	if (action_find(run, SIEVE_ACTION_DISCARD, NULL, NULL) == NULL &&
	    action_add(run, node->line, SIEVE_ACTION_DISCARD) == NULL)
		return -1;
	run->result->implicit_keep = false;
	return 0;
}

/* ---- vacation ---- */

static char *tag_string(struct sieve_run *run, const struct sieve_node *node, const char *name)
{
	const struct sieve_tag *tag = sieve_node_tag(node, name);

	return tag != NULL ? sieve_arg_string(run, tag->value) : NULL;
}

/* RFC 5230 4.2: without :handle, equal arguments mean the same vacation:
 * a 64-bit FNV-1a of reason, :subject, :from and :mime. */
static char *vacation_handle(const struct sieve_vacation *vac, bool subject_given, bool from_given)
{
	const char *parts[] = {vac->reason, subject_given ? vac->subject : "",
	                       from_given ? vac->from : "", vac->mime ? "mime" : ""};
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		for (const char *p = parts[i]; *p != '\0'; p++)
			h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
		h = (h ^ 0xff) * 0x100000001b3ULL; /* separator */
	}
	return xasprintf("%016llx", (unsigned long long)h);
}

static char *vacation_default_subject(struct sieve_run *run)
{
	size_t len;
	const char *header = sieve_run_header(run, &len);
	char *raw = mime_header_get(header, len, "subject");
	char *decoded = raw != NULL ? mime_header_decode(raw, strlen(raw)) : xstrdup("");
	char *subject = xasprintf("Auto: %s", decoded);

	free(raw);
	free(decoded);
	return subject;
}

static uint64_t vacation_seconds(const struct sieve_node *node)
{
	const struct sieve_tag *days = sieve_node_tag(node, ":days");
	const struct sieve_tag *secs = sieve_node_tag(node, ":seconds");

	/* RFC 6131 2: :seconds 0 means reply every time; :days has a minimum
	 * of one day (RFC 5230 4.1) */
	if (secs != NULL && secs->value != NULL)
		return secs->value->number;
	if (days != NULL && days->value != NULL) {
		uint64_t d = days->value->number;
		if (d > UINT64_MAX / 86400)
			return UINT64_MAX;
		return d * 86400 < VACATION_MIN_DAYS_SECONDS ? VACATION_MIN_DAYS_SECONDS
		                                             : d * 86400;
	}
	return VACATION_DEFAULT_SECONDS;
}

int sieve_cmd_vacation(struct sieve_run *run, const struct sieve_node *node)
{
	if (run->vacation_done)
		return sieve_run_error(run, node->line, "vacation used more than once");
	struct sieve_action *a = action_add(run, node->line, SIEVE_ACTION_VACATION);
	if (a == NULL)
		return -1;
	run->vacation_done = true;
	struct sieve_vacation *vac = xcalloc(1, sizeof(*vac));
	a->vacation = vac;
	vac->seconds = vacation_seconds(node);
	vac->reason = sieve_arg_string(run, node->arg_count > 0 ? &node->args[0] : NULL);
	vac->mime = sieve_node_tag(node, ":mime") != NULL;
	vac->subject = tag_string(run, node, ":subject");
	vac->from = tag_string(run, node, ":from");
	vac->handle = tag_string(run, node, ":handle");
	if (vac->handle == NULL)
		vac->handle = vacation_handle(vac, vac->subject != NULL, vac->from != NULL);
	if (vac->subject == NULL)
		vac->subject = vacation_default_subject(run);

	const struct sieve_tag *addrs = sieve_node_tag(node, ":addresses");
	if (addrs != NULL) {
		struct sieve_strlist list;
		sieve_strlist_from_arg(run, addrs->value, &list);
		vac->addresses = list.items;
		vac->address_count = list.count;
	}
	return 0;
}

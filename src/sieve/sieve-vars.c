/* Variables (RFC 5229): storage, ${...} expansion and the "set" command. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "sieve/sieve-run.h"

static bool var_name_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool var_name_char(unsigned char c)
{
	return var_name_start(c) || (c >= '0' && c <= '9');
}

static char *lower_dup(const char *s, size_t len)
{
	char *out = xstrndup(s, len);

	for (char *p = out; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return out;
}

/* The table a name lives in: "global.x" and names declared `global` are
 * shared with included scripts (RFC 6609 3.5); *name_r without the prefix. */
static struct sieve_var_table *var_table(const struct sieve_run *run, const char **name_r)
{
	const char *name = *name_r;

	if (run->globals == NULL)
		return (struct sieve_var_table *)&run->locals;
	if (strncasecmp(name, "global.", 7) == 0) {
		*name_r = name + 7;
		return run->globals;
	}
	for (size_t i = 0; i < run->global_names.count; i++) {
		if (strcasecmp(run->global_names.items[i], name) == 0)
			return run->globals;
	}
	return (struct sieve_var_table *)&run->locals;
}

const char *sieve_vars_get(const struct sieve_run *run, const char *name)
{
	const struct sieve_var_table *t = var_table(run, &name);

	for (size_t i = 0; i < t->count; i++) {
		if (strcasecmp(t->vars[i].name, name) == 0)
			return t->vars[i].value;
	}
	return NULL;
}

static char *var_truncate(const char *value)
{
	size_t len = strlen(value);

	if (len <= SIEVE_MAX_VAR_SIZE)
		return xstrdup(value);
	/* do not cut a UTF-8 sequence in half */
	len = SIEVE_MAX_VAR_SIZE;
	while (len > 0 && ((unsigned char)value[len] & 0xc0) == 0x80)
		len--;
	return xstrndup(value, len);
}

void sieve_vars_set(struct sieve_run *run, const char *name, const char *value)
{
	struct sieve_var_table *t = var_table(run, &name);

	for (size_t i = 0; i < t->count; i++) {
		if (strcasecmp(t->vars[i].name, name) == 0) {
			free(t->vars[i].value);
			t->vars[i].value = var_truncate(value);
			return;
		}
	}
	if (t->count >= SIEVE_MAX_VARIABLES)
		return;
	t->vars = xreallocarray(t->vars, t->count + 1, sizeof(*t->vars));
	t->vars[t->count].name = lower_dup(name, strlen(name));
	t->vars[t->count].value = var_truncate(value);
	t->count++;
}

void sieve_vars_set_match(struct sieve_run *run, char *const *values, size_t count)
{
	for (size_t i = 0; i < SIEVE_MAX_MATCH_VARS; i++) {
		xfree(run->match_vars[i]);
		if (i < count)
			run->match_vars[i] = var_truncate(values[i]);
	}
}

void sieve_var_table_free(struct sieve_var_table *table)
{
	for (size_t i = 0; i < table->count; i++) {
		free(table->vars[i].name);
		free(table->vars[i].value);
	}
	xfree(table->vars);
	table->count = 0;
}

void sieve_vars_free(struct sieve_run *run)
{
	sieve_var_table_free(&run->locals);
	sieve_strlist_free(&run->global_names);
	for (size_t i = 0; i < SIEVE_MAX_MATCH_VARS; i++)
		xfree(run->match_vars[i]);
}

/* global <names> (RFC 6609 3.5) */
int sieve_cmd_global(struct sieve_run *run, const struct sieve_node *node)
{
	const struct sieve_arg *names = &node->args[0];

	for (size_t i = 0; i < names->count; i++)
		sieve_strlist_add(&run->global_names, names->strings[i].data,
		                  strlen(names->strings[i].data));
	return 0;
}

/* The value of the reference between "${" and "}", or NULL when it is not
 * a variable we expand (then the text stays as it is: namespaces, bad
 * names). */
static const char *var_lookup(const struct sieve_run *run, const char *name, size_t len)
{
	char tmp[128];

	if (len == 0 || len >= sizeof(tmp))
		return NULL;
	if (isdigit((unsigned char)name[0])) {
		size_t n = 0;

		for (size_t i = 0; i < len; i++) {
			if (!isdigit((unsigned char)name[i]))
				return NULL;
			if (n < 1000)
				n = n * 10 + (size_t)(name[i] - '0');
		}
		if (n >= SIEVE_MAX_MATCH_VARS || run->match_vars[n] == NULL)
			return "";
		return run->match_vars[n];
	}
	size_t skip = len > 7 && strncasecmp(name, "global.", 7) == 0 ? 7 : 0;
	if (!var_name_start((unsigned char)name[skip]))
		return NULL;
	for (size_t i = skip + 1; i < len; i++) {
		if (!var_name_char((unsigned char)name[i]))
			return NULL;
	}
	memcpy(tmp, name, len);
	tmp[len] = '\0';
	const char *value = sieve_vars_get(run, tmp);
	return value != NULL ? value : "";
}

char *sieve_vars_expand(struct sieve_run *run, const struct sieve_string *str)
{
	if ((run->extensions & SIEVE_EXT_VARIABLES) == 0 ||
	    memchr(str->data, '$', str->len) == NULL)
		return xstrdup(str->data);

	struct buf out = BUF_INIT(SIEVE_MAX_STRING);
	const char *s = str->data, *end = s + strlen(s);

	while (s < end) {
		const char *close;
		const char *value = NULL;

		if (s[0] == '$' && s + 1 < end && s[1] == '{' &&
		    (close = memchr(s + 2, '}', (size_t)(end - s - 2))) != NULL)
			value = var_lookup(run, s + 2, (size_t)(close - s - 2));
		if (value != NULL) {
			(void)buf_append_str(&out, value);
			s = close + 1;
		} else {
			(void)buf_append_char(&out, *s);
			s++;
		}
	}
	char *result = out.data != NULL ? buf_steal(&out) : xstrdup("");
	buf_free(&out);
	return result;
}

/* Room doubles at 4, 8, 16, ... items, so long lists (a header repeated
 * thousands of times) are not copied on every item. */
static size_t strlist_room(size_t count)
{
	size_t room = 4;

	while (room < count)
		room *= 2;
	return room;
}

void sieve_strlist_push(struct sieve_strlist *list, char *s)
{
	size_t n = list->count;

	if (n == 0 || (n >= 4 && (n & (n - 1)) == 0))
		list->items = xreallocarray(list->items, strlist_room(n + 1), sizeof(*list->items));
	list->items[list->count++] = s;
}

void sieve_strlist_add(struct sieve_strlist *list, const char *s, size_t len)
{
	sieve_strlist_push(list, xstrndup(s, len));
}

void sieve_strlist_from_arg(struct sieve_run *run, const struct sieve_arg *arg,
                            struct sieve_strlist *list_r)
{
	memset(list_r, 0, sizeof(*list_r));
	if (arg == NULL || arg->type == SIEVE_ARG_NUMBER)
		return;
	list_r->items = xcalloc(strlist_room(arg->count), sizeof(*list_r->items));
	for (size_t i = 0; i < arg->count; i++)
		list_r->items[i] = sieve_vars_expand(run, &arg->strings[i]);
	list_r->count = arg->count;
}

void sieve_strlist_free(struct sieve_strlist *list)
{
	for (size_t i = 0; i < list->count; i++)
		free(list->items[i]);
	xfree(list->items);
	list->count = 0;
}

char *sieve_arg_string(struct sieve_run *run, const struct sieve_arg *arg)
{
	if (arg == NULL || arg->type == SIEVE_ARG_NUMBER || arg->count == 0)
		return xstrdup("");
	return sieve_vars_expand(run, &arg->strings[0]);
}

/* ---- set and its modifiers (RFC 5229 4.1) ---- */

static size_t utf8_char_len(const char *s)
{
	unsigned char c = (unsigned char)s[0];
	size_t n = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;

	for (size_t i = 1; i < n; i++) {
		if (s[i] == '\0')
			return i;
	}
	return n;
}

/* ASCII letters only, whatever the process locale (UTF-8 bytes stay). */
static int ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int ascii_upper(int c)
{
	return c >= 'a' && c <= 'z' ? c - 32 : c;
}

static char *mod_case(const char *s, int (*conv)(int), bool first_only)
{
	char *out = xstrdup(s);

	for (char *p = out; *p != '\0'; p++) {
		*p = (char)conv((unsigned char)*p);
		if (first_only)
			break;
	}
	return out;
}

static char *mod_lower(const char *s)
{
	return mod_case(s, ascii_lower, false);
}

static char *mod_upper(const char *s)
{
	return mod_case(s, ascii_upper, false);
}

static char *mod_lowerfirst(const char *s)
{
	return mod_case(s, ascii_lower, true);
}

static char *mod_upperfirst(const char *s)
{
	return mod_case(s, ascii_upper, true);
}

/* :length counts characters, not octets (RFC 5229 4.1) */
static char *mod_length(const char *s)
{
	size_t n = 0;

	while (*s != '\0') {
		s += utf8_char_len(s);
		n++;
	}
	return xasprintf("%zu", n);
}

struct set_modifier {
	const char *tag;
	int precedence;
	char *(*apply)(const char *s);
};

static const struct set_modifier set_modifiers[] = {
        {":lower", 40, mod_lower},
        {":upper", 40, mod_upper},
        {":lowerfirst", 30, mod_lowerfirst},
        {":upperfirst", 30, mod_upperfirst},
        {":quotewildcard", 20, sieve_match_quote_wildcards},
        {":length", 10, mod_length},
};

int sieve_cmd_set(struct sieve_run *run, const struct sieve_node *node)
{
	if (node->arg_count < 2 || node->args[0].count == 0)
		return sieve_run_error(run, node->line, "set needs a name and a value");
	/* the name is a constant (RFC 5229 4): no expansion */
	const char *name = node->args[0].strings[0].data;
	char *value = sieve_arg_string(run, &node->args[1]);

	for (int prec = 40; prec >= 10; prec -= 10) {
		for (size_t i = 0; i < sizeof(set_modifiers) / sizeof(set_modifiers[0]); i++) {
			const struct set_modifier *mod = &set_modifiers[i];

			if (mod->precedence != prec || sieve_node_tag(node, mod->tag) == NULL)
				continue;
			char *next = mod->apply(value);
			free(value);
			value = next;
		}
	}
	sieve_vars_set(run, name, value);
	free(value);
	return 0;
}

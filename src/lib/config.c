/* Parses yubin.conf line by line into struct yubin_config, driven by the
 * settings table (config-table.c). Every error is collected, one line each,
 * "file:line: what is wrong"; the parser never stops at the first. */
#include "lib/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/strnum.h"
#include "lib/xmalloc.h"

#define CONFIG_MAX_LINE 4096
#define CONFIG_MAX_FILE (1024 * 1024)
#define ESC_SIZE 80

/* One section as written in the file. A single section ([server]) has one
 * of these even when the file leaves it out (line 0), to hold defaults. */
struct parse_section {
	const struct config_section_def *def;
	void *base;           /* the struct the table's offsets point into */
	const char *arg;      /* NAME of [listener NAME]; owned by the config */
	unsigned line;        /* of the header; 0 = not in the file */
	unsigned *set_lines;  /* by config_settings index: line that set it */
	bool bad;             /* a value was rejected: skip the cross-checks */
	struct parse_section *next;
};

/* Errors are collected, then written sorted by line, so that the checks
 * made after parsing (required keys, clashes, files) fall into place. */
struct parse_error {
	unsigned line;
	size_t seq;       /* keeps the order of errors on one line */
	char *text;       /* "name:line: what\n" */
};

struct parser {
	struct yubin_config *config;
	const char *name;
	const char *base_dir;
	struct buf *errors;
	unsigned line;
	struct parse_error *error_list;
	size_t error_count, error_alloc;
	struct parse_section *sections;
	struct parse_section **sections_tail;
	struct parse_section *current; /* NULL before any header or after a bad one */
	bool in_section;               /* a header was seen */
	struct config_listener **listeners_tail;
	struct config_certificate **certificates_tail;
};

/* How a value of each type is read; `why` gets a reason more precise than
 * the hint (a bound, the allowed words), or stays empty. */
struct value_type {
	const char *hint;
	int (*parse)(const struct parser *p, const struct config_setting *s,
		     const char *value, void *field, char *why, size_t whysize);
};

static void __attribute__((format(printf, 3, 4)))
parser_error(struct parser *p, unsigned line, const char *fmt, ...)
{
	struct buf msg = BUF_INIT(0);
	struct parse_error *e;
	va_list ap;

	buf_printf(&msg, "%s:%u: ", p->name, line);
	va_start(ap, fmt);
	buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	buf_append_char(&msg, '\n');
	if (p->error_count == p->error_alloc) {
		p->error_alloc = p->error_alloc == 0 ? 16 : p->error_alloc * 2;
		p->error_list = xreallocarray(p->error_list, p->error_alloc,
					      sizeof(*p->error_list));
	}
	e = &p->error_list[p->error_count];
	e->line = line;
	e->seq = p->error_count++;
	e->text = buf_steal(&msg);
}

static int parse_error_cmp(const void *a, const void *b)
{
	const struct parse_error *x = a, *y = b;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Whole lines only: a caller's buffer that fills up gets no half line. */
static void flush_errors(struct parser *p)
{
	if (p->error_count > 0)
		qsort(p->error_list, p->error_count, sizeof(*p->error_list),
		      parse_error_cmp);
	for (size_t i = 0; i < p->error_count; i++) {
		buf_append_str(p->errors, p->error_list[i].text);
		free(p->error_list[i].text);
	}
	free(p->error_list);
	p->error_list = NULL;
}

static const char *esc(const char *s, char *out)
{
	return log_escape(s, strlen(s), out, ESC_SIZE);
}

static const char *section_label(const struct parse_section *sec, char *buf,
				 size_t size)
{
	char arg[ESC_SIZE];
	if (sec->arg == NULL)
		snprintf(buf, size, "[%s]", sec->def->name);
	else
		snprintf(buf, size, "[%s %s]", sec->def->name, esc(sec->arg, arg));
	return buf;
}

/* "pop3.idle_timeout" for a single section, "[listener pop3] port" else. */
static const char *setting_label(const struct parse_section *sec,
				 const struct config_setting *s,
				 char *buf, size_t size)
{
	char label[ESC_SIZE + 32];
	if (sec->arg == NULL)
		snprintf(buf, size, "%s.%s", s->section, s->key);
	else
		snprintf(buf, size, "%s %s",
			 section_label(sec, label, sizeof(label)), s->key);
	return buf;
}

static void *field_of(const struct parse_section *sec,
		      const struct config_setting *s)
{
	return (char *)sec->base + s->offset;
}

static size_t setting_index(const struct config_setting *s)
{
	return (size_t)(s - config_settings);
}

/* ---- values ---- */

static void store_string(void *field, char *value)
{
	char **str = field;
	free(*str);
	*str = value;
}

static int parse_string(const struct parser *p, const struct config_setting *s,
			const char *value, void *field, char *why, size_t whysize)
{
	store_string(field, xstrdup(value));
	return 0;
}

static bool is_word(const struct config_setting *s, const char *value)
{
	for (size_t i = 0; s->words != NULL && s->words[i] != NULL; i++) {
		if (strcmp(s->words[i], value) == 0)
			return true;
	}
	return false;
}

static int parse_path(const struct parser *p, const struct config_setting *s,
		      const char *value, void *field, char *why, size_t whysize)
{
	if (value[0] == '\0') {
		snprintf(why, whysize, "a path must not be empty");
		return -1;
	}
	size_t dir_len = strlen(p->base_dir);
	bool has_slash = dir_len > 0 && p->base_dir[dir_len - 1] == '/';
	if (value[0] == '/' || is_word(s, value))
		store_string(field, xstrdup(value));
	else
		store_string(field, xasprintf("%s%s%s", p->base_dir,
					      has_slash ? "" : "/", value));
	return 0;
}

static int parse_bool(const struct parser *p, const struct config_setting *s,
		      const char *value, void *field, char *why, size_t whysize)
{
	int b;
	if (str_parse_bool(value, &b) < 0)
		return -1;
	*(bool *)field = b != 0;
	return 0;
}

static int check_range(const struct config_setting *s, uint64_t n,
		       char *why, size_t whysize)
{
	uint64_t max = s->max != 0 ? s->max :
		       s->size == sizeof(uint32_t) ? UINT32_MAX : UINT64_MAX;
	char range[96];
	if (n >= s->min && n <= max)
		return 0;
	config_setting_range(s, range, sizeof(range));
	snprintf(why, whysize, "must be %s", range[0] != '\0' ? range : "smaller");
	return -1;
}

static void store_number(const struct config_setting *s, void *field, uint64_t n)
{
	if (s->size == sizeof(uint32_t)) {
		uint32_t n32 = (uint32_t)n;
		memcpy(field, &n32, sizeof(n32));
	} else {
		memcpy(field, &n, sizeof(n));
	}
}

static int parse_uint(const struct parser *p, const struct config_setting *s,
		      const char *value, void *field, char *why, size_t whysize)
{
	uint64_t n;
	if (str_to_uint64(value, &n) < 0 || check_range(s, n, why, whysize) < 0)
		return -1;
	store_number(s, field, n);
	return 0;
}

static int parse_size(const struct parser *p, const struct config_setting *s,
		      const char *value, void *field, char *why, size_t whysize)
{
	uint64_t n;
	if (str_parse_size(value, &n) < 0 || check_range(s, n, why, whysize) < 0)
		return -1;
	store_number(s, field, n);
	return 0;
}

static int parse_duration(const struct parser *p, const struct config_setting *s,
			  const char *value, void *field, char *why, size_t whysize)
{
	uint64_t n;
	if (str_parse_duration(value, &n) < 0 || check_range(s, n, why, whysize) < 0)
		return -1;
	store_number(s, field, n);
	return 0;
}

/* Index of value in s->words (case-insensitive); -1 with `why` listing them. */
static int find_word(const struct config_setting *s, const char *value,
		     char *why, size_t whysize)
{
	size_t len = 0;
	for (size_t i = 0; s->words[i] != NULL; i++) {
		if (strcasecmp(s->words[i], value) == 0)
			return (int)i;
	}
	len += (size_t)snprintf(why, whysize, "one of");
	for (size_t i = 0; s->words[i] != NULL && len < whysize; i++)
		len += (size_t)snprintf(why + len, whysize - len, "%s %s",
					i == 0 ? "" : ",", s->words[i]);
	return -1;
}

static int parse_enum(const struct parser *p, const struct config_setting *s,
		      const char *value, void *field, char *why, size_t whysize)
{
	int i = find_word(s, value, why, whysize);
	if (i < 0)
		return -1;
	store_string(field, xstrdup(s->words[i]));
	return 0;
}

static int parse_enum_id(const struct parser *p, const struct config_setting *s,
			 const char *value, void *field, char *why, size_t whysize)
{
	int i = find_word(s, value, why, whysize);
	if (i < 0)
		return -1;
	/* An enum field: the table's size is checked against int by the tests. */
	memcpy(field, &i, sizeof(i));
	return 0;
}

/* Indexed by enum config_type. */
static const struct value_type value_types[] = {
	[CONFIG_TYPE_STRING] = { "a string", parse_string },
	[CONFIG_TYPE_PATH] = { "a file path", parse_path },
	[CONFIG_TYPE_BOOL] = { "yes or no", parse_bool },
	[CONFIG_TYPE_UINT] = { "a whole number", parse_uint },
	[CONFIG_TYPE_SIZE] = { "a size like 100, 512k, 35M, 1G", parse_size },
	[CONFIG_TYPE_DURATION] = { "a duration like 30s, 10m, 1h, 30d", parse_duration },
	[CONFIG_TYPE_ENUM] = { "one of the listed words", parse_enum },
	[CONFIG_TYPE_ENUM_ID] = { "one of the listed words", parse_enum_id },
};

/* Checks and stores one value; on error fills `why` with the reason. */
static int set_value(const struct parser *p, const struct parse_section *sec,
		     const struct config_setting *s, const char *value,
		     char *why, size_t whysize)
{
	const struct value_type *type = &value_types[s->type];
	const char *error = NULL;

	why[0] = '\0';
	if (s->check != NULL && s->check(value, &error) < 0) {
		snprintf(why, whysize, "%s", error);
		return -1;
	}
	if (type->parse(p, s, value, field_of(sec, s), why, whysize) < 0) {
		if (why[0] == '\0')
			snprintf(why, whysize, "%s", type->hint);
		return -1;
	}
	return 0;
}

static void apply_defaults(const struct parser *p, const struct parse_section *sec)
{
	for (size_t i = 0; i < config_settings_count; i++) {
		const struct config_setting *s = &config_settings[i];
		const char *def = s->def;
		char buf[256], why[256];
		if (strcmp(s->section, sec->def->name) != 0)
			continue;
		if (s->compute_default != NULL)
			def = s->compute_default(buf, sizeof(buf));
		if (def != NULL && set_value(p, sec, s, def, why, sizeof(why)) < 0)
			panic("config: default '%s' of %s.%s: %s", def, s->section,
			      s->key, why);
	}
}

/* ---- sections ---- */

static struct parse_section *section_new(struct parser *p,
					 const struct config_section_def *def,
					 void *base, const char *arg)
{
	struct parse_section *sec = xcalloc(1, sizeof(*sec));
	sec->def = def;
	sec->base = base;
	sec->arg = arg;
	sec->set_lines = xcalloc(config_settings_count, sizeof(*sec->set_lines));
	*p->sections_tail = sec;
	p->sections_tail = &sec->next;
	apply_defaults(p, sec);
	return sec;
}

static const struct config_section_def *find_section_def(const char *name)
{
	for (size_t i = 0; i < config_sections_count; i++) {
		if (strcmp(config_sections[i].name, name) == 0)
			return &config_sections[i];
	}
	return NULL;
}

/* The instance of a single section, or of [name arg] when arg != NULL. */
static struct parse_section *find_section(const struct parser *p,
					  const struct config_section_def *def,
					  const char *arg)
{
	for (struct parse_section *sec = p->sections; sec != NULL; sec = sec->next) {
		if (sec->def == def &&
		    (arg == NULL || strcmp(sec->arg, arg) == 0))
			return sec;
	}
	return NULL;
}

static struct parse_section *listener_new(struct parser *p,
					  const struct config_section_def *def,
					  const char *arg)
{
	struct config_listener *l = xcalloc(1, sizeof(*l));
	l->name = xstrdup(arg);
	*p->listeners_tail = l;
	p->listeners_tail = &l->next;
	return section_new(p, def, l, l->name);
}

static struct parse_section *certificate_new(struct parser *p,
					     const struct config_section_def *def,
					     const char *arg)
{
	struct config_certificate *c = xcalloc(1, sizeof(*c));
	c->hostname = xstrdup(arg);
	*p->certificates_tail = c;
	p->certificates_tail = &c->next;
	return section_new(p, def, c, c->hostname);
}

/* Indexed by enum config_section_kind: how a repeatable section is made. */
static struct parse_section *(*const section_makers[])(
	struct parser *, const struct config_section_def *, const char *) = {
	[CONFIG_SECTION_SINGLE] = NULL,
	[CONFIG_SECTION_LISTENER] = listener_new,
	[CONFIG_SECTION_CERTIFICATE] = certificate_new,
};

static void list_section_names(char *buf, size_t size)
{
	size_t len = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < config_sections_count && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%s",
					i == 0 ? "" : ", ", config_sections[i].name);
}

static void open_single(struct parser *p, const struct config_section_def *def,
			const char *arg)
{
	char e[ESC_SIZE];
	struct parse_section *sec = find_section(p, def, NULL);
	if (arg != NULL) {
		parser_error(p, p->line, "[%s] takes no argument, found '%s'",
			     def->name, esc(arg, e));
		return;
	}
	if (sec->line != 0)
		parser_error(p, p->line, "[%s] given twice (first on line %u)",
			     def->name, sec->line);
	else
		sec->line = p->line;
	p->current = sec;
}

static void open_repeatable(struct parser *p, const struct config_section_def *def,
			    const char *arg)
{
	char e[ESC_SIZE];
	const char *error;
	struct parse_section *old;
	if (arg == NULL) {
		parser_error(p, p->line, "[%s] needs a %s: [%s %s]", def->name,
			     def->arg_name, def->name, def->arg_name);
		return;
	}
	if (def->check_arg(arg, &error) < 0) {
		parser_error(p, p->line, "bad %s '%s' for [%s]: %s",
			     def->arg_name, esc(arg, e), def->name, error);
		return;
	}
	old = find_section(p, def, arg);
	if (old != NULL) {
		parser_error(p, p->line, "[%s %s] given twice (first on line %u)",
			     def->name, arg, old->line);
		return;
	}
	p->current = section_makers[def->kind](p, def, arg);
	p->current->line = p->line;
}

static void open_section(struct parser *p, const char *name, const char *arg)
{
	const struct config_section_def *def = find_section_def(name);
	char e[ESC_SIZE], known[256];

	p->in_section = true;
	p->current = NULL;
	if (def == NULL) {
		list_section_names(known, sizeof(known));
		parser_error(p, p->line, "unknown section [%s] (known: %s)",
			     esc(name, e), known);
	} else if (def->kind == CONFIG_SECTION_SINGLE) {
		open_single(p, def, arg);
	} else {
		open_repeatable(p, def, arg);
	}
}

/* ---- lines ---- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static char *trim(char *s)
{
	size_t len;
	while (is_blank(*s))
		s++;
	len = strlen(s);
	while (len > 0 && is_blank(s[len - 1]))
		s[--len] = '\0';
	return s;
}

/* "[name]" or "[name ARG]", maybe followed by a comment. */
static void parse_header(struct parser *p, char *s)
{
	char *end = strchr(s, ']');
	char *name, *arg, *rest;

	p->in_section = true;
	p->current = NULL;
	if (end == NULL) {
		parser_error(p, p->line, "section header without its closing ']'");
		return;
	}
	rest = trim(end + 1);
	if (*rest != '\0' && *rest != '#') {
		parser_error(p, p->line, "unexpected text after ']'");
		return;
	}
	*end = '\0';
	name = trim(s + 1);
	arg = name + strcspn(name, " \t");
	if (*arg != '\0') {
		*arg = '\0';
		arg = trim(arg + 1);
		if (arg[strcspn(arg, " \t")] != '\0') {
			parser_error(p, p->line, "a section header takes one word after its name");
			return;
		}
	}
	open_section(p, name, *arg != '\0' ? arg : NULL);
}

/* A "double quoted" value, unescaped in place. */
static int parse_quoted(char *s, char **value_r, const char **error_r)
{
	char *r = s + 1, *w = s + 1;
	for (; *r != '"'; r++) {
		if (*r == '\0') {
			*error_r = "a quoted value without its closing '\"'";
			return -1;
		}
		if (*r == '\\' && r[1] != '"' && r[1] != '\\') {
			*error_r = "in a quoted value '\\' may only be followed by '\"' or '\\'";
			return -1;
		}
		if (*r == '\\')
			r++;
		*w++ = *r;
	}
	*w = '\0';
	r = trim(r + 1);
	if (*r != '\0' && *r != '#') {
		*error_r = "unexpected text after the closing '\"'";
		return -1;
	}
	*value_r = s + 1;
	return 0;
}

/* The text after '=': quoted, or up to a '#' that starts it or follows a blank. */
static int parse_value(char *s, char **value_r, const char **error_r)
{
	s = trim(s);
	if (*s == '"')
		return parse_quoted(s, value_r, error_r);
	for (char *c = s; *c != '\0'; c++) {
		if (*c == '#' && (c == s || is_blank(c[-1]))) {
			*c = '\0';
			break;
		}
	}
	*value_r = trim(s);
	return 0;
}

static const struct config_setting *find_setting(const char *section,
						 const char *key)
{
	for (size_t i = 0; i < config_settings_count; i++) {
		const struct config_setting *s = &config_settings[i];
		if (strcmp(s->section, section) == 0 && strcmp(s->key, key) == 0)
			return s;
	}
	return NULL;
}

static void list_keys(const char *section, char *buf, size_t size)
{
	size_t len = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < config_settings_count && len < size; i++) {
		if (strcmp(config_settings[i].section, section) == 0)
			len += (size_t)snprintf(buf + len, size - len, "%s%s",
						len == 0 ? "" : ", ",
						config_settings[i].key);
	}
}

static void unknown_key(struct parser *p, const char *key)
{
	char e[ESC_SIZE], label[ESC_SIZE + 32], known[512];
	list_keys(p->current->def->name, known, sizeof(known));
	parser_error(p, p->line, "unknown key '%s' in %s (known: %s)", esc(key, e),
		     section_label(p->current, label, sizeof(label)), known);
}

static void assign(struct parser *p, const struct config_setting *s, char *text)
{
	struct parse_section *sec = p->current;
	unsigned *set_line = &sec->set_lines[setting_index(s)];
	char e[ESC_SIZE], label[ESC_SIZE + 64], why[256];
	const char *error;
	char *value;

	setting_label(sec, s, label, sizeof(label));
	if (*set_line != 0) {
		parser_error(p, p->line, "%s given twice (first on line %u)",
			     label, *set_line);
		return;
	}
	*set_line = p->line;
	if (parse_value(text, &value, &error) < 0) {
		parser_error(p, p->line, "bad value for %s: %s", label, error);
		sec->bad = true;
	} else if (set_value(p, sec, s, value, why, sizeof(why)) < 0) {
		parser_error(p, p->line, "bad value '%s' for %s: %s",
			     esc(value, e), label, why);
		sec->bad = true;
	}
}

static void parse_assignment(struct parser *p, char *s)
{
	char *eq = strchr(s, '=');
	const struct config_setting *setting;
	char e[ESC_SIZE];
	char *key;

	if (eq == NULL) {
		parser_error(p, p->line, "expected 'key = value', a [section] header or a # comment");
		return;
	}
	*eq = '\0';
	key = trim(s);
	if (*key == '\0') {
		parser_error(p, p->line, "a key is missing before '='");
		return;
	}
	if (!p->in_section) {
		parser_error(p, p->line, "key '%s' outside any section (put it under a [section] header)",
			     esc(key, e));
		return;
	}
	if (p->current == NULL)
		return;   /* its section header was wrong and is reported */
	setting = find_setting(p->current->def->name, key);
	if (setting == NULL)
		unknown_key(p, key);
	else
		assign(p, setting, eq + 1);
}

static void parse_line(struct parser *p, char *line)
{
	char *s = trim(line);
	if (*s == '\0' || *s == '#')
		return;
	if (*s == '[')
		parse_header(p, s);
	else
		parse_assignment(p, s);
}

static void parse_text(struct parser *p, const char *text, size_t len)
{
	char line[CONFIG_MAX_LINE + 1];
	size_t pos = 0;

	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t line_len = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;
		p->line++;
		if (line_len > CONFIG_MAX_LINE) {
			parser_error(p, p->line, "line longer than %d bytes", CONFIG_MAX_LINE);
		} else if (memchr(text + pos, '\0', line_len) != NULL) {
			parser_error(p, p->line, "line contains a NUL byte");
		} else {
			memcpy(line, text + pos, line_len);
			line[line_len] = '\0';
			parse_line(p, line);
		}
		pos += line_len + 1;
	}
}

/* ---- checks after parsing ---- */

static void check_required(struct parser *p)
{
	char label[ESC_SIZE + 32];
	for (struct parse_section *sec = p->sections; sec != NULL; sec = sec->next) {
		for (size_t i = 0; i < config_settings_count; i++) {
			const struct config_setting *s = &config_settings[i];
			if ((s->flags & CONFIG_FLAG_REQUIRED) == 0 ||
			    strcmp(s->section, sec->def->name) != 0 ||
			    sec->set_lines[i] != 0)
				continue;
			parser_error(p, sec->line, "missing required key '%s' in %s",
				     s->key, section_label(sec, label, sizeof(label)));
		}
	}
}

/* A listening address; family 0 = every address ("*", 0.0.0.0, ::). */
struct listen_addr {
	int family;
	unsigned char bytes[16];
};

static void listen_addr_parse(const char *address, struct listen_addr *a)
{
	static const unsigned char any[16];
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, address, a->bytes) == 1)
		a->family = AF_INET;
	else if (inet_pton(AF_INET6, address, a->bytes) == 1)
		a->family = AF_INET6;
	if (memcmp(a->bytes, any, sizeof(any)) == 0)
		a->family = 0;
}

/* Two sockets on one port clash when their addresses overlap: binding the
 * second would fail with EADDRINUSE. */
static bool listeners_clash(const struct config_listener *a,
			    const struct config_listener *b)
{
	struct listen_addr x, y;
	if (a->port != b->port)
		return false;
	listen_addr_parse(a->address, &x);
	listen_addr_parse(b->address, &y);
	return x.family == 0 || y.family == 0 ||
	       (x.family == y.family && memcmp(x.bytes, y.bytes, sizeof(x.bytes)) == 0);
}

static bool listener_checkable(const struct parse_section *sec)
{
	return sec->def->kind == CONFIG_SECTION_LISTENER && !sec->bad &&
	       ((const struct config_listener *)sec->base)->port != 0;
}

static void check_listener_clashes(struct parser *p)
{
	for (struct parse_section *b = p->sections; b != NULL; b = b->next) {
		const struct config_listener *lb = b->base;
		if (!listener_checkable(b))
			continue;
		for (struct parse_section *a = p->sections; a != b; a = a->next) {
			const struct config_listener *la = a->base;
			if (!listener_checkable(a) || !listeners_clash(la, lb))
				continue;
			parser_error(p, b->line, "[listener %s] listens on %s port %u, "
				     "which [listener %s] (line %u) already uses with %s",
				     lb->name, lb->address, lb->port, la->name,
				     a->line, la->address);
			break;
		}
	}
}

/* ---- files (config_load only: config_parse never touches the disk) ---- */

static void check_readable(struct parser *p, const struct parse_section *sec,
			   const struct config_setting *s,
			   const struct parse_section *user)
{
	const char *path = *(char *const *)field_of(sec, s);
	unsigned line = sec->set_lines[setting_index(s)];
	char label[ESC_SIZE + 64], why[160], user_label[ESC_SIZE + 32];
	struct stat st;
	int fd;

	if (path == NULL)
		return;   /* a required key that is missing, reported already */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(why, sizeof(why), "%s", strerror(errno));
	} else {
		if (fstat(fd, &st) < 0)
			snprintf(why, sizeof(why), "%s", strerror(errno));
		else
			snprintf(why, sizeof(why), "%s", S_ISREG(st.st_mode) ? "" :
				 "not a regular file");
		close(fd);
	}
	if (why[0] == '\0')
		return;
	setting_label(sec, s, label, sizeof(label));
	if (line != 0)
		parser_error(p, line, "cannot read %s '%s': %s", label, path, why);
	else
		parser_error(p, user->line, "cannot read %s '%s' (the default; %s "
			     "uses TLS): %s", label, path,
			     section_label(user, user_label, sizeof(user_label)), why);
}

static const struct parse_section *first_tls_listener(const struct parser *p)
{
	for (const struct parse_section *sec = p->sections; sec != NULL; sec = sec->next) {
		if (sec->def->kind == CONFIG_SECTION_LISTENER && !sec->bad &&
		    ((const struct config_listener *)sec->base)->tls != TLS_MODE_NONE)
			return sec;
	}
	return NULL;
}

static void check_files(struct parser *p)
{
	const struct parse_section *user = first_tls_listener(p);
	if (user == NULL)
		return;
	for (const struct parse_section *sec = p->sections; sec != NULL; sec = sec->next) {
		/* A section with a rejected value may hold a default instead of
		 * what was written; its error says enough. */
		if (sec->bad || (strcmp(sec->def->name, "tls") != 0 &&
				 sec->def->kind != CONFIG_SECTION_CERTIFICATE))
			continue;
		for (size_t i = 0; i < config_settings_count; i++) {
			const struct config_setting *s = &config_settings[i];
			if (s->type == CONFIG_TYPE_PATH &&
			    strcmp(s->section, sec->def->name) == 0)
				check_readable(p, sec, s, user);
		}
	}
}

/* ---- the whole ---- */

static void parser_init(struct parser *p, const char *name, const char *base_dir,
			struct buf *errors)
{
	memset(p, 0, sizeof(*p));
	p->config = xcalloc(1, sizeof(*p->config));
	p->config->path = xstrdup(name);
	p->config->base_dir = xstrdup(base_dir != NULL ? base_dir : ".");
	p->name = p->config->path;
	p->base_dir = p->config->base_dir;
	p->errors = errors;
	p->sections_tail = &p->sections;
	p->listeners_tail = &p->config->listeners;
	p->certificates_tail = &p->config->tls.certificates;
	for (size_t i = 0; i < config_sections_count; i++) {
		if (config_sections[i].kind == CONFIG_SECTION_SINGLE)
			section_new(p, &config_sections[i], p->config, NULL);
	}
}

/* Hands over the config when there was no error, frees everything else. */
static int parser_finish(struct parser *p, struct yubin_config **config_r)
{
	struct parse_section *next;
	for (struct parse_section *sec = p->sections; sec != NULL; sec = next) {
		next = sec->next;
		free(sec->set_lines);
		free(sec);
	}
	flush_errors(p);
	if (p->error_count > 0) {
		config_free(&p->config);
		*config_r = NULL;
		return -1;
	}
	*config_r = p->config;
	return 0;
}

static void parse_all(struct parser *p, const char *text, size_t len)
{
	parse_text(p, text, len);
	check_required(p);
	check_listener_clashes(p);
}

int config_parse(const char *text, size_t len, const char *name,
		 const char *base_dir, struct yubin_config **config_r,
		 struct buf *errors)
{
	struct parser p;
	parser_init(&p, name, base_dir, errors);
	parse_all(&p, text, len);
	return parser_finish(&p, config_r);
}

static int read_file(const char *path, struct buf *text, const char **error_r)
{
	char chunk[8192];
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0 || fstat(fd, &st) < 0) {
		*error_r = strerror(errno);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		if (buf_append(text, chunk, (size_t)n) < 0) {
			close(fd);
			*error_r = "larger than 1 MiB";
			return -1;
		}
	}
	*error_r = n < 0 ? strerror(errno) : NULL;
	close(fd);
	return n < 0 ? -1 : 0;
}

static char *absolute_path(const char *path)
{
	char *cwd;
	char *abs;
	if (path[0] == '/')
		return xstrdup(path);
	cwd = getcwd(NULL, 0);
	if (cwd == NULL)
		return xstrdup(path);
	abs = xasprintf("%s/%s", cwd, path);
	free(cwd);
	return abs;
}

int config_load(const char *path, struct yubin_config **config_r,
		struct buf *errors)
{
	struct buf text = BUF_INIT(CONFIG_MAX_FILE);
	char *abs = absolute_path(path);
	char *slash = strrchr(abs, '/');
	char *dir = slash == abs ? xstrdup("/") : xstrndup(abs, (size_t)(slash - abs));
	const char *error;
	struct parser p;
	int ret = -1;

	*config_r = NULL;
	if (read_file(abs, &text, &error) < 0) {
		buf_printf(errors, "%s: cannot read: %s\n", abs, error);
	} else {
		parser_init(&p, abs, dir, errors);
		parse_all(&p, buf_str(&text), text.len);
		check_files(&p);
		ret = parser_finish(&p, config_r);
	}
	buf_free(&text);
	free(abs);
	free(dir);
	return ret;
}

static void free_fields(const char *section, void *base)
{
	for (size_t i = 0; i < config_settings_count; i++) {
		const struct config_setting *s = &config_settings[i];
		if (strcmp(s->section, section) != 0)
			continue;
		if (s->type == CONFIG_TYPE_STRING || s->type == CONFIG_TYPE_PATH ||
		    s->type == CONFIG_TYPE_ENUM)
			free(*(char **)((char *)base + s->offset));
	}
}

void config_free(struct yubin_config **config)
{
	struct yubin_config *c = *config;
	struct config_listener *l, *next_l;
	struct config_certificate *cert, *next_cert;

	if (c == NULL)
		return;
	for (size_t i = 0; i < config_sections_count; i++) {
		if (config_sections[i].kind == CONFIG_SECTION_SINGLE)
			free_fields(config_sections[i].name, c);
	}
	for (l = c->listeners; l != NULL; l = next_l) {
		next_l = l->next;
		free_fields("listener", l);
		free(l->name);
		free(l);
	}
	for (cert = c->tls.certificates; cert != NULL; cert = next_cert) {
		next_cert = cert->next;
		free_fields("certificate", cert);
		free(cert->hostname);
		free(cert);
	}
	free(c->path);
	free(c->base_dir);
	free(c);
	*config = NULL;
}

char *config_data_path(const struct yubin_config *config, const char *relative)
{
	return xasprintf("%s/%s", config->server.data_dir, relative);
}

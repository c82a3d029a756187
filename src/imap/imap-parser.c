/* The IMAP command parser: one handler per state, fed a byte at a time
 * (literal bytes in bulk). Every byte of a command outside streamed
 * literals counts against max_line_length, so memory per command is bounded
 * by it plus max_args argument records. */
#include "imap/imap-parser.h"

#include <string.h>
#include <strings.h>

#include "imap/imap-utf7.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

enum imap_state {
	IMAP_STATE_TAG,
	IMAP_STATE_NAME,
	IMAP_STATE_ARG_NEXT,
	IMAP_STATE_LIST_FIRST,
	IMAP_STATE_ARG_END,
	IMAP_STATE_ATOM,
	IMAP_STATE_QUOTED,
	IMAP_STATE_QUOTED_ESC,
	IMAP_STATE_LITERAL_SIZE,
	IMAP_STATE_LITERAL_PLUS,
	IMAP_STATE_LITERAL_CR,
	IMAP_STATE_LITERAL_LF,
	IMAP_STATE_LITERAL_WAIT,
	IMAP_STATE_LITERAL_DATA,
	IMAP_STATE_SECTION,
	IMAP_STATE_SECTION_LIST_OPEN,
	IMAP_STATE_SECTION_FIELD,
	IMAP_STATE_SECTION_FIELD_ATOM,
	IMAP_STATE_SECTION_FIELD_END,
	IMAP_STATE_SECTION_CLOSE,
	IMAP_STATE_SECTION_AFTER,
	IMAP_STATE_PARTIAL_OFFSET,
	IMAP_STATE_PARTIAL_LENGTH,
	IMAP_STATE_PARTIAL_END,
	IMAP_STATE_EOL,
	IMAP_STATE_SKIP_LINE,
	IMAP_STATE_SKIP_LITERAL,
	IMAP_STATE_RAW_LINE,
	IMAP_STATE_RAW_LF,
	IMAP_STATE_COUNT
};

/* What a state handler did with its byte. */
enum imap_step {
	IMAP_STEP_NEXT,    /* consumed */
	IMAP_STEP_AGAIN,   /* not consumed: run the new state on it */
	IMAP_STEP_DONE,    /* consumed, command complete */
	IMAP_STEP_LITERAL, /* consumed, literal header complete */
	IMAP_STEP_ERROR,   /* consumed, p->error set */
};

/* Recognizes "{n+}" / "{n}" at the end of a line being skipped. */
enum imap_skip_state {
	IMAP_SKIP_NONE,
	IMAP_SKIP_BRACE,
	IMAP_SKIP_DIGITS,
	IMAP_SKIP_PLUS,
	IMAP_SKIP_CLOSE,
	IMAP_SKIP_CR,
};

struct imap_parser {
	struct imap_parser_limits limits;
	unsigned int flags;
	enum imap_state state;
	bool finished;  /* DONE/ERROR/refuse: free the command on next feed */
	bool line_mode; /* next start state is RAW_LINE */
	bool fetch;     /* FETCH / UID FETCH: sections are parsed */

	struct imap_command cmd;
	struct imap_arg_list **stack; /* stack[0] = &cmd.args */
	unsigned int depth;
	unsigned int arg_count;
	size_t line_used;

	struct buf tok;
	bool tok_binary; /* literal8 being read */
	bool in_fields;  /* a string ends up in section->fields */
	struct imap_section *section;
	bool section_binary;
	bool section_size; /* BINARY.SIZE: no partial */

	struct imap_literal_info literal;
	uint64_t literal_left;
	char *literal_field;          /* the in-memory literal being read */
	size_t literal_pos;
	bool literal_streamed;

	enum imap_skip_state skip;
	uint64_t skip_size;
	bool skip_nonsync;

	struct imap_parser_error error;
};

typedef enum imap_step imap_state_fn(struct imap_parser *p, unsigned char c);

/* ---- character classes (RFC 9051 section 9) ---- */

static bool imap_is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* ATOM-CHAR: any CHAR except atom-specials. */
static bool imap_is_atom_char(unsigned char c)
{
	if (c >= 0x80 || imap_is_ctl(c))
		return false;
	return strchr("(){ %*\"\\]", c) == NULL;
}

static bool imap_is_astring_char(unsigned char c)
{
	return imap_is_atom_char(c) || c == ']';
}

static bool imap_is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* ---- errors and state changes ---- */

static enum imap_state imap_parser_start_state(const struct imap_parser *p)
{
	return p->line_mode ? IMAP_STATE_RAW_LINE : IMAP_STATE_TAG;
}

static void imap_parser_skip_line(struct imap_parser *p)
{
	p->state = IMAP_STATE_SKIP_LINE;
	p->skip = IMAP_SKIP_NONE;
}

/* Skips a non-synchronizing literal's bytes, then the rest of its line. */
static void imap_parser_skip_literal(struct imap_parser *p, uint64_t size)
{
	p->literal_left = size;
	p->state = size > 0 ? IMAP_STATE_SKIP_LITERAL : IMAP_STATE_SKIP_LINE;
	p->skip = IMAP_SKIP_NONE;
}

static enum imap_step imap_parser_fail_at(struct imap_parser *p, const char *text, const char *code,
                                          bool skip_line)
{
	p->error.text = text;
	p->error.code = code;
	p->error.skip_line = skip_line;
	/* A bad raw line ends the exchange (AUTHENTICATE, IDLE). */
	p->line_mode = false;
	if (skip_line)
		imap_parser_skip_line(p);
	else
		p->state = imap_parser_start_state(p);
	return IMAP_STEP_ERROR;
}

/* An error in the middle of a line: the rest of it is skipped. */
static enum imap_step imap_parser_fail(struct imap_parser *p, const char *text)
{
	return imap_parser_fail_at(p, text, NULL, true);
}

/* An error right after a literal header's CRLF. */
static enum imap_step imap_parser_fail_literal(struct imap_parser *p, const char *text,
                                               const char *code)
{
	bool nonsync = p->literal.nonsync;
	imap_parser_fail_at(p, text, code, nonsync);
	if (nonsync)
		imap_parser_skip_literal(p, p->literal.size);
	return IMAP_STEP_ERROR;
}

/* ---- building the argument tree ---- */

static struct imap_arg_list *imap_parser_cur_list(struct imap_parser *p)
{
	return p->stack[p->depth];
}

static struct imap_arg *imap_parser_new_arg(struct imap_parser *p, enum imap_arg_type type)
{
	struct imap_arg_list *list = imap_parser_cur_list(p);
	if (p->arg_count >= p->limits.max_args)
		return NULL;
	p->arg_count++;
	if (list->count == list->alloc) {
		list->alloc = list->alloc == 0 ? 4 : list->alloc * 2;
		list->args = xreallocarray(list->args, list->alloc, sizeof(*list->args));
	}
	struct imap_arg *arg = &list->args[list->count++];
	memset(arg, 0, sizeof(*arg));
	arg->type = type;
	return arg;
}

static void imap_arg_list_free(struct imap_arg_list *list);

static void imap_section_free(struct imap_section *section)
{
	if (section == NULL)
		return;
	for (unsigned int i = 0; i < section->field_count; i++)
		free(section->fields[i]);
	free(section->fields);
	free(section->spec);
	free(section);
}

static void imap_arg_free(struct imap_arg *arg)
{
	free(arg->str);
	if (arg->list != NULL) {
		imap_arg_list_free(arg->list);
		free(arg->list);
	}
	imap_section_free(arg->section);
}

static void imap_arg_list_free(struct imap_arg_list *list)
{
	for (unsigned int i = 0; i < list->count; i++)
		imap_arg_free(&list->args[i]);
	xfree(list->args);
	list->count = list->alloc = 0;
}

static void imap_parser_free_command(struct imap_parser *p)
{
	imap_arg_list_free(&p->cmd.args);
	xfree(p->cmd.tag);
	xfree(p->cmd.name);
	xfree(p->cmd.line);
	p->cmd.line_len = 0;
	xfree(p->literal_field);
	p->depth = 0;
	p->arg_count = 0;
	p->line_used = 0;
	p->fetch = false;
	p->in_fields = false;
	p->section = NULL;
	buf_reset(&p->tok);
}

/* ---- tag and command name ---- */

static enum imap_step imap_state_tag(struct imap_parser *p, unsigned char c)
{
	if (c == ' ') {
		if (p->tok.len == 0)
			return imap_parser_fail(p, "Invalid tag");
		p->cmd.tag = xstrndup(p->tok.data, p->tok.len);
		buf_reset(&p->tok);
		p->state = IMAP_STATE_NAME;
		return IMAP_STEP_NEXT;
	}
	if (c == '\n')
		return imap_parser_fail_at(p, "Empty command line", NULL, false);
	if (c == '\r' && p->tok.len == 0)
		return imap_parser_fail(p, "Empty command line");
	if (c == '\r')
		return imap_parser_fail(p, "Missing command name");
	if (!imap_is_astring_char(c) || c == '+')
		return imap_parser_fail(p, "Invalid tag");
	buf_append_char(&p->tok, (char)c);
	return IMAP_STEP_NEXT;
}

static void imap_parser_finish_name(struct imap_parser *p)
{
	char *name = xstrndup(p->tok.data, p->tok.len);
	for (char *s = name; *s != '\0'; s++) {
		if (*s >= 'a' && *s <= 'z')
			*s = (char)(*s - 'a' + 'A');
	}
	p->cmd.name = name;
	p->fetch = strcmp(name, "FETCH") == 0;
	buf_reset(&p->tok);
}

static enum imap_step imap_state_name(struct imap_parser *p, unsigned char c)
{
	if (c == ' ' || c == '\r') {
		if (p->tok.len == 0)
			return imap_parser_fail(p, "Missing command name");
		imap_parser_finish_name(p);
		p->state = c == ' ' ? IMAP_STATE_ARG_NEXT : IMAP_STATE_EOL;
		return IMAP_STEP_NEXT;
	}
	if (c == '\n')
		return imap_parser_fail_at(p, "LF without CR", NULL, false);
	if (!imap_is_atom_char(c))
		return imap_parser_fail(p, "Invalid characters in command name");
	buf_append_char(&p->tok, (char)c);
	return IMAP_STEP_NEXT;
}

/* ---- argument boundaries ---- */

static enum imap_step imap_parser_open_list(struct imap_parser *p)
{
	if (p->depth >= p->limits.max_list_depth)
		return imap_parser_fail(p, "List nested too deeply");
	struct imap_arg *arg = imap_parser_new_arg(p, IMAP_ARG_LIST);
	if (arg == NULL)
		return imap_parser_fail(p, "Too many arguments");
	arg->list = xcalloc(1, sizeof(*arg->list));
	p->stack[++p->depth] = arg->list;
	p->state = IMAP_STATE_LIST_FIRST;
	return IMAP_STEP_NEXT;
}

static void imap_parser_literal_reset(struct imap_parser *p)
{
	memset(&p->literal, 0, sizeof(p->literal));
}

static enum imap_step imap_parser_start_literal(struct imap_parser *p, bool binary)
{
	imap_parser_literal_reset(p);
	buf_reset(&p->tok);
	p->tok_binary = binary;
	p->state = IMAP_STATE_LITERAL_SIZE;
	return IMAP_STEP_NEXT;
}

/* The first byte of an argument. */
static enum imap_step imap_parser_arg_start(struct imap_parser *p, unsigned char c)
{
	buf_reset(&p->tok);
	switch (c) {
	case '(':
		return imap_parser_open_list(p);
	case '"':
		p->state = IMAP_STATE_QUOTED;
		return IMAP_STEP_NEXT;
	case '{':
		return imap_parser_start_literal(p, false);
	case '\r':
	case '\n':
		return imap_parser_fail_at(p, "Missing argument", NULL, c == '\r');
	default:
		p->state = IMAP_STATE_ATOM;
		return IMAP_STEP_AGAIN;
	}
}

static enum imap_step imap_state_arg_next(struct imap_parser *p, unsigned char c)
{
	if (c == ' ')
		return imap_parser_fail(p, "Double space between arguments");
	if (c == ')')
		return imap_parser_fail(p, p->depth > 0 ? "Space before ')'" : "Unexpected ')'");
	if (c == '\r')
		return imap_parser_fail(p, "Trailing space at end of line");
	return imap_parser_arg_start(p, c);
}

static enum imap_step imap_state_list_first(struct imap_parser *p, unsigned char c)
{
	if (c == ')') {
		p->depth--;
		p->state = IMAP_STATE_ARG_END;
		return IMAP_STEP_NEXT;
	}
	if (c == ' ')
		return imap_parser_fail(p, "Space after '('");
	return imap_parser_arg_start(p, c);
}

static enum imap_step imap_state_arg_end(struct imap_parser *p, unsigned char c)
{
	switch (c) {
	case ' ':
		p->state = IMAP_STATE_ARG_NEXT;
		return IMAP_STEP_NEXT;
	case ')':
		if (p->depth == 0)
			return imap_parser_fail(p, "Unexpected ')'");
		p->depth--;
		return IMAP_STEP_NEXT;
	case '\r':
		if (p->depth > 0)
			return imap_parser_fail(p, "Missing ')'");
		p->state = IMAP_STATE_EOL;
		return IMAP_STEP_NEXT;
	case '\n':
		return imap_parser_fail_at(p, "LF without CR", NULL, false);
	default:
		return imap_parser_fail(p, "Missing space between arguments");
	}
}

static enum imap_step imap_state_eol(struct imap_parser *p, unsigned char c)
{
	if (c != '\n')
		return imap_parser_fail(p, "CR without LF");
	p->state = imap_parser_start_state(p);
	return IMAP_STEP_DONE;
}

/* ---- atoms ---- */

static const char *const imap_section_names[] = {
        "BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE",
};

static bool imap_parser_is_section_name(const struct imap_parser *p)
{
	if (!p->fetch)
		return false;
	for (size_t i = 0; i < sizeof(imap_section_names) / sizeof(imap_section_names[0]); i++) {
		if (strcasecmp(buf_str(&p->tok), imap_section_names[i]) == 0)
			return true;
	}
	return false;
}

static unsigned int imap_atom_flags(const char *s)
{
	unsigned int flags = s[0] == '\\' ? IMAP_ARG_FLAG_BACKSLASH : 0;
	if (strpbrk(s, "%*") != NULL)
		flags |= IMAP_ARG_FLAG_WILDCARD;
	if (strchr(s, ']') != NULL)
		flags |= IMAP_ARG_FLAG_RBRACKET;
	return flags;
}

static enum imap_step imap_parser_finish_atom(struct imap_parser *p)
{
	const char *s = buf_str(&p->tok);
	bool nil = strcasecmp(s, "NIL") == 0;
	/* "UID FETCH": the first argument makes this a FETCH. */
	if (p->depth == 0 && p->cmd.args.count == 0 && strcasecmp(s, "FETCH") == 0 &&
	    strcmp(p->cmd.name, "UID") == 0)
		p->fetch = true;
	struct imap_arg *arg = imap_parser_new_arg(p, nil ? IMAP_ARG_NIL : IMAP_ARG_ATOM);
	if (arg == NULL)
		return imap_parser_fail(p, "Too many arguments");
	arg->flags = imap_atom_flags(s);
	arg->len = p->tok.len;
	arg->str = xstrndup(s, p->tok.len);
	buf_reset(&p->tok);
	p->state = IMAP_STATE_ARG_END;
	return IMAP_STEP_AGAIN;
}

static enum imap_step imap_parser_open_section(struct imap_parser *p)
{
	struct imap_arg *arg = imap_parser_new_arg(p, IMAP_ARG_SECTION);
	if (arg == NULL)
		return imap_parser_fail(p, "Too many arguments");
	arg->str = xstrndup(p->tok.data, p->tok.len);
	arg->len = p->tok.len;
	arg->section = xcalloc(1, sizeof(*arg->section));
	p->section = arg->section;
	p->section_binary = strncasecmp(arg->str, "BINARY", 6) == 0;
	p->section_size = strcasecmp(arg->str, "BINARY.SIZE") == 0;
	buf_reset(&p->tok);
	p->state = IMAP_STATE_SECTION;
	return IMAP_STEP_NEXT;
}

static enum imap_step imap_state_atom(struct imap_parser *p, unsigned char c)
{
	if (c == ' ' || c == ')' || c == '\r' || c == '\n')
		return imap_parser_finish_atom(p);
	if (c == '{' && p->tok.len == 1 && p->tok.data[0] == '~')
		return imap_parser_start_literal(p, true);
	if (c == '[' && imap_parser_is_section_name(p))
		return imap_parser_open_section(p);
	/* flag = "\" atom: a backslash only leads. */
	bool flag_start = c == '\\' && p->tok.len == 0;
	if (!imap_is_astring_char(c) && c != '%' && c != '*' && !flag_start)
		return imap_parser_fail(p, "Invalid characters in atom");
	buf_append_char(&p->tok, (char)c);
	return IMAP_STEP_NEXT;
}

/* ---- quoted strings ---- */

/* A quoted string or in-memory literal is complete (its bytes in str). */
static enum imap_step imap_parser_add_string(struct imap_parser *p, enum imap_arg_type type,
                                             char *str, size_t len, unsigned int flags,
                                             uint64_t size)
{
	if (p->in_fields) {
		struct imap_section *sec = p->section;
		sec->fields = xreallocarray(sec->fields, sec->field_count + 1, sizeof(char *));
		sec->fields[sec->field_count++] = str;
		p->state = IMAP_STATE_SECTION_FIELD_END;
		return IMAP_STEP_NEXT;
	}
	struct imap_arg *arg = imap_parser_new_arg(p, type);
	if (arg == NULL) {
		free(str);
		return imap_parser_fail(p, "Too many arguments");
	}
	arg->str = str;
	arg->len = len;
	arg->flags = flags;
	arg->literal_size = size;
	p->state = IMAP_STATE_ARG_END;
	return IMAP_STEP_NEXT;
}

static enum imap_step imap_parser_finish_quoted(struct imap_parser *p)
{
	if ((p->flags & IMAP_PARSER_FLAG_UTF8) != 0 && !imap_utf8_is_valid(p->tok.data, p->tok.len))
		return imap_parser_fail(p, "Invalid UTF-8 in quoted string");
	char *str = xstrndup(buf_str(&p->tok), p->tok.len);
	size_t len = p->tok.len;
	buf_reset(&p->tok);
	return imap_parser_add_string(p, IMAP_ARG_STRING, str, len, 0, 0);
}

static enum imap_step imap_state_quoted(struct imap_parser *p, unsigned char c)
{
	switch (c) {
	case '"':
		return imap_parser_finish_quoted(p);
	case '\\':
		p->state = IMAP_STATE_QUOTED_ESC;
		return IMAP_STEP_NEXT;
	case '\r':
		return imap_parser_fail(p, "Missing '\"'");
	case '\n':
		return imap_parser_fail_at(p, "Missing '\"'", NULL, false);
	case '\0':
		return imap_parser_fail(p, "NUL characters in quoted string");
	default:
		break;
	}
	if (c >= 0x80 && (p->flags & IMAP_PARSER_FLAG_UTF8) == 0)
		return imap_parser_fail(p, "8-bit characters in quoted string");
	buf_append_char(&p->tok, (char)c);
	return IMAP_STEP_NEXT;
}

static enum imap_step imap_state_quoted_esc(struct imap_parser *p, unsigned char c)
{
	if (c != '"' && c != '\\')
		return imap_parser_fail_at(p, "Invalid escape in quoted string", NULL, c != '\n');
	buf_append_char(&p->tok, (char)c);
	p->state = IMAP_STATE_QUOTED;
	return IMAP_STEP_NEXT;
}

/* ---- literals ---- */

static enum imap_step imap_state_literal_size(struct imap_parser *p, unsigned char c)
{
	if (imap_is_digit(c)) {
		uint64_t digit = c - '0';
		if (p->literal.size > (UINT64_MAX - digit) / 10)
			return imap_parser_fail(p, "Invalid literal size");
		p->literal.size = p->literal.size * 10 + digit;
		buf_append_char(&p->tok, (char)c);
		return IMAP_STEP_NEXT;
	}
	if (p->tok.len == 0 || (c != '+' && c != '}'))
		return imap_parser_fail_at(p, "Invalid literal size", NULL, c != '\n');
	p->literal.nonsync = c == '+';
	p->state = c == '+' ? IMAP_STATE_LITERAL_PLUS : IMAP_STATE_LITERAL_CR;
	return IMAP_STEP_NEXT;
}

static enum imap_step imap_state_literal_plus(struct imap_parser *p, unsigned char c)
{
	if (c != '}')
		return imap_parser_fail_at(p, "Invalid literal size", NULL, c != '\n');
	p->state = IMAP_STATE_LITERAL_CR;
	return IMAP_STEP_NEXT;
}

static enum imap_step imap_state_literal_cr(struct imap_parser *p, unsigned char c)
{
	if (c != '\r')
		return imap_parser_fail_at(p, "Missing CRLF after literal size", NULL, c != '\n');
	p->state = IMAP_STATE_LITERAL_LF;
	return IMAP_STEP_NEXT;
}

/* number64 (RFC 9051) is at most 2^63-1. */
#define IMAP_NUMBER64_MAX ((uint64_t)INT64_MAX)

static enum imap_step imap_state_literal_lf(struct imap_parser *p, unsigned char c)
{
	if (c != '\n')
		return imap_parser_fail(p, "Missing CRLF after literal size");
	p->literal.binary = p->tok_binary;
	buf_reset(&p->tok);
	if (p->literal.size > p->limits.max_literal_size || p->literal.size > IMAP_NUMBER64_MAX)
		return imap_parser_fail_literal(p, "Literal too large", "TOOBIG");
	if (p->literal.nonsync && (p->flags & IMAP_PARSER_FLAG_LITERAL_MINUS) != 0 &&
	    p->literal.size > IMAP_LITERAL_MINUS_MAX)
		return imap_parser_fail_literal(
		        p, "Non-synchronizing literal larger than 4096 bytes", "TOOBIG");
	/* Refuse before the client sends the bytes, not after. */
	if (!p->in_fields && p->arg_count >= p->limits.max_args)
		return imap_parser_fail_literal(p, "Too many arguments", NULL);
	p->state = IMAP_STATE_LITERAL_WAIT;
	return IMAP_STEP_LITERAL;
}

static enum imap_step imap_state_literal_wait(struct imap_parser *p, unsigned char c)
{
	panic("imap parser fed before the literal was accepted or refused");
}

/* The literal's bytes are all in (or streamed): continue after it. */
static enum imap_step imap_parser_literal_done(struct imap_parser *p)
{
	unsigned int flags = (p->literal.nonsync ? IMAP_ARG_FLAG_NONSYNC : 0) |
	                     (p->literal.binary ? IMAP_ARG_FLAG_BINARY : 0);
	uint64_t size = p->literal.size;
	char *str = p->literal_field;
	p->literal_field = NULL;
	size_t len = (size_t)size;
	if (p->literal_streamed) {
		flags |= IMAP_ARG_FLAG_STREAMED;
		len = 0;
	}
	p->literal_streamed = false;
	return imap_parser_add_string(p, IMAP_ARG_LITERAL, str, len, flags, size);
}

/* ---- sections: BODY[1.HEADER.FIELDS (A B)]<0.10> ---- */

struct imap_section_text_name {
	const char *name;
	enum imap_section_text text;
	bool needs_part;
};

static const struct imap_section_text_name imap_section_texts[] = {
        {"HEADER", IMAP_SECTION_HEADER, false},
        {"HEADER.FIELDS", IMAP_SECTION_HEADER_FIELDS, false},
        {"HEADER.FIELDS.NOT", IMAP_SECTION_HEADER_FIELDS_NOT, false},
        {"TEXT", IMAP_SECTION_TEXT, false},
        {"MIME", IMAP_SECTION_MIME, true},
};

/* section-part: nz-number *("." nz-number); leaves *pp after it. */
static int imap_section_parse_parts(struct imap_section *sec, const char **pp)
{
	const char *p = *pp;
	while (*p >= '1' && *p <= '9') {
		uint64_t num = 0;
		while (imap_is_digit((unsigned char)*p)) {
			num = num * 10 + (uint64_t)(*p++ - '0');
			if (num > UINT32_MAX)
				return -1;
		}
		if (sec->part_count == IMAP_SECTION_MAX_PARTS)
			return -1;
		sec->parts[sec->part_count++] = (uint32_t)num;
		if (*p != '.')
			break;
		p++;
		if (!imap_is_digit((unsigned char)*p))
			break;
	}
	*pp = p;
	return 0;
}

static int imap_section_parse_spec(struct imap_section *sec, bool binary)
{
	const char *p = sec->spec;
	if (imap_section_parse_parts(sec, &p) < 0)
		return -1;
	if (*p == '\0')
		return p == sec->spec || p[-1] != '.' ? 0 : -1;
	if (binary || (sec->part_count > 0 && p[-1] != '.'))
		return -1;
	for (size_t i = 0; i < sizeof(imap_section_texts) / sizeof(imap_section_texts[0]); i++) {
		const struct imap_section_text_name *t = &imap_section_texts[i];
		if (strcasecmp(p, t->name) == 0) {
			if (t->needs_part && sec->part_count == 0)
				return -1;
			sec->text = t->text;
			return 0;
		}
	}
	return -1;
}

static bool imap_section_has_fields(const struct imap_section *sec)
{
	return sec->text == IMAP_SECTION_HEADER_FIELDS ||
	       sec->text == IMAP_SECTION_HEADER_FIELDS_NOT;
}

static enum imap_step imap_state_section(struct imap_parser *p, unsigned char c)
{
	if (imap_is_digit(c) || c == '.' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) {
		buf_append_char(&p->tok, (char)c);
		return IMAP_STEP_NEXT;
	}
	if (c != ']' && c != ' ')
		return imap_parser_fail_at(p, "Invalid section", NULL, c != '\n');
	p->section->spec = xstrndup(buf_str(&p->tok), p->tok.len);
	buf_reset(&p->tok);
	if (imap_section_parse_spec(p->section, p->section_binary) < 0 ||
	    imap_section_has_fields(p->section) != (c == ' '))
		return imap_parser_fail(p, "Invalid section");
	p->state = c == ' ' ? IMAP_STATE_SECTION_LIST_OPEN : IMAP_STATE_SECTION_AFTER;
	return IMAP_STEP_NEXT;
}

static enum imap_step imap_state_section_list_open(struct imap_parser *p, unsigned char c)
{
	if (c != '(')
		return imap_parser_fail_at(p, "Missing header list in section", NULL, c != '\n');
	p->in_fields = true;
	p->state = IMAP_STATE_SECTION_FIELD;
	return IMAP_STEP_NEXT;
}

/* header-fld-name = astring */
static enum imap_step imap_state_section_field(struct imap_parser *p, unsigned char c)
{
	buf_reset(&p->tok);
	if (c == '"') {
		p->state = IMAP_STATE_QUOTED;
		return IMAP_STEP_NEXT;
	}
	if (c == '{')
		return imap_parser_start_literal(p, false);
	if (!imap_is_astring_char(c))
		return imap_parser_fail_at(p, "Invalid header list in section", NULL, c != '\n');
	p->state = IMAP_STATE_SECTION_FIELD_ATOM;
	return IMAP_STEP_AGAIN;
}

static enum imap_step imap_state_section_field_atom(struct imap_parser *p, unsigned char c)
{
	if (c == ' ' || c == ')') {
		char *str = xstrndup(p->tok.data, p->tok.len);
		size_t len = p->tok.len;
		buf_reset(&p->tok);
		imap_parser_add_string(p, IMAP_ARG_ATOM, str, len, 0, 0);
		return IMAP_STEP_AGAIN;
	}
	if (c == '\r' || c == '\n')
		return imap_parser_fail_at(p, "Invalid header list in section", NULL, c != '\n');
	if (!imap_is_astring_char(c))
		return imap_parser_fail_at(p, "Invalid characters in atom", NULL, c != '\n');
	buf_append_char(&p->tok, (char)c);
	return IMAP_STEP_NEXT;
}

static enum imap_step imap_state_section_field_end(struct imap_parser *p, unsigned char c)
{
	if (c == ' ') {
		p->state = IMAP_STATE_SECTION_FIELD;
		return IMAP_STEP_NEXT;
	}
	if (c != ')')
		return imap_parser_fail_at(p, "Invalid header list in section", NULL, c != '\n');
	p->in_fields = false;
	p->state = IMAP_STATE_SECTION_CLOSE;
	return IMAP_STEP_NEXT;
}

static enum imap_step imap_state_section_close(struct imap_parser *p, unsigned char c)
{
	if (c != ']')
		return imap_parser_fail_at(p, "Missing ']' after section", NULL, c != '\n');
	p->state = IMAP_STATE_SECTION_AFTER;
	return IMAP_STEP_NEXT;
}

/* After "]" or the partial's ">": the token must end here. */
static enum imap_step imap_parser_section_end(struct imap_parser *p, unsigned char c)
{
	if (c != ' ' && c != ')' && c != '\r' && c != '\n')
		return imap_parser_fail(p, "Invalid characters after section");
	p->section = NULL;
	p->state = IMAP_STATE_ARG_END;
	return IMAP_STEP_AGAIN;
}

static enum imap_step imap_state_section_after(struct imap_parser *p, unsigned char c)
{
	if (c != '<' || p->section_size)
		return imap_parser_section_end(p, c);
	p->section->has_partial = true;
	buf_reset(&p->tok);
	p->state = IMAP_STATE_PARTIAL_OFFSET;
	return IMAP_STEP_NEXT;
}

/* Accumulates a number64 digit into *num; -1 on overflow. */
static int imap_number64_add(uint64_t *num, unsigned char c)
{
	uint64_t digit = c - '0';
	if (*num > (IMAP_NUMBER64_MAX - digit) / 10)
		return -1;
	*num = *num * 10 + digit;
	return 0;
}

/* partial = "<" number64 "." nz-number64 ">" */
static enum imap_step imap_state_partial_offset(struct imap_parser *p, unsigned char c)
{
	struct imap_section *sec = p->section;
	if (imap_is_digit(c) && imap_number64_add(&sec->partial_offset, c) == 0) {
		buf_append_char(&p->tok, (char)c);
		return IMAP_STEP_NEXT;
	}
	if (c != '.' || p->tok.len == 0)
		return imap_parser_fail_at(p, "Invalid partial", NULL, c != '\n');
	buf_reset(&p->tok);
	p->state = IMAP_STATE_PARTIAL_LENGTH;
	return IMAP_STEP_NEXT;
}

static enum imap_step imap_state_partial_length(struct imap_parser *p, unsigned char c)
{
	struct imap_section *sec = p->section;
	bool nz_ok = p->tok.len > 0 || c != '0';
	if (imap_is_digit(c) && nz_ok && imap_number64_add(&sec->partial_length, c) == 0) {
		buf_append_char(&p->tok, (char)c);
		return IMAP_STEP_NEXT;
	}
	if (c != '>' || p->tok.len == 0)
		return imap_parser_fail_at(p, "Invalid partial", NULL, c != '\n');
	buf_reset(&p->tok);
	p->state = IMAP_STATE_PARTIAL_END;
	return IMAP_STEP_NEXT;
}

/* ---- skipping and raw lines ---- */

static void imap_parser_skip_track(struct imap_parser *p, unsigned char c)
{
	enum imap_skip_state s = p->skip;
	if (c == '{') {
		p->skip = IMAP_SKIP_BRACE;
		p->skip_size = 0;
		p->skip_nonsync = false;
	} else if (imap_is_digit(c) && (s == IMAP_SKIP_BRACE || s == IMAP_SKIP_DIGITS)) {
		uint64_t digit = c - '0';
		/* Saturate: an absurd size skips the rest of the stream. */
		p->skip_size = p->skip_size > (UINT64_MAX - digit) / 10 ? UINT64_MAX
		                                                        : p->skip_size * 10 + digit;
		p->skip = IMAP_SKIP_DIGITS;
	} else if (c == '+' && s == IMAP_SKIP_DIGITS) {
		p->skip = IMAP_SKIP_PLUS;
		p->skip_nonsync = true;
	} else if (c == '}' && (s == IMAP_SKIP_DIGITS || s == IMAP_SKIP_PLUS)) {
		p->skip = IMAP_SKIP_CLOSE;
	} else if (c == '\r' && s == IMAP_SKIP_CLOSE) {
		p->skip = IMAP_SKIP_CR;
	} else {
		p->skip = IMAP_SKIP_NONE;
	}
}

static enum imap_step imap_state_skip_line(struct imap_parser *p, unsigned char c)
{
	if (c != '\n') {
		imap_parser_skip_track(p, c);
		return IMAP_STEP_NEXT;
	}
	/* A line ending in {n+} continues after n bytes; after {n} the
	 * client waits for a continuation that never comes. */
	if (p->skip == IMAP_SKIP_CR && p->skip_nonsync)
		imap_parser_skip_literal(p, p->skip_size);
	else
		p->state = imap_parser_start_state(p);
	p->skip = IMAP_SKIP_NONE;
	return IMAP_STEP_NEXT;
}

static enum imap_step imap_state_raw_line(struct imap_parser *p, unsigned char c)
{
	if (c == '\r') {
		p->state = IMAP_STATE_RAW_LF;
		return IMAP_STEP_NEXT;
	}
	if (c == '\n')
		return imap_parser_fail_at(p, "LF without CR", NULL, false);
	if (c == '\0')
		return imap_parser_fail(p, "NUL characters in line");
	buf_append_char(&p->tok, (char)c);
	return IMAP_STEP_NEXT;
}

static enum imap_step imap_state_raw_lf(struct imap_parser *p, unsigned char c)
{
	if (c != '\n')
		return imap_parser_fail(p, "CR without LF");
	p->cmd.line = xstrndup(buf_str(&p->tok), p->tok.len);
	p->cmd.line_len = p->tok.len;
	buf_reset(&p->tok);
	p->line_mode = false;
	p->state = IMAP_STATE_TAG;
	return IMAP_STEP_DONE;
}

static enum imap_step imap_state_bulk(struct imap_parser *p, unsigned char c)
{
	panic("imap parser: bulk state %d reached the byte loop", (int)p->state);
}

static imap_state_fn *const imap_state_handlers[IMAP_STATE_COUNT] = {
        [IMAP_STATE_TAG] = imap_state_tag,
        [IMAP_STATE_NAME] = imap_state_name,
        [IMAP_STATE_ARG_NEXT] = imap_state_arg_next,
        [IMAP_STATE_LIST_FIRST] = imap_state_list_first,
        [IMAP_STATE_ARG_END] = imap_state_arg_end,
        [IMAP_STATE_ATOM] = imap_state_atom,
        [IMAP_STATE_QUOTED] = imap_state_quoted,
        [IMAP_STATE_QUOTED_ESC] = imap_state_quoted_esc,
        [IMAP_STATE_LITERAL_SIZE] = imap_state_literal_size,
        [IMAP_STATE_LITERAL_PLUS] = imap_state_literal_plus,
        [IMAP_STATE_LITERAL_CR] = imap_state_literal_cr,
        [IMAP_STATE_LITERAL_LF] = imap_state_literal_lf,
        [IMAP_STATE_LITERAL_WAIT] = imap_state_literal_wait,
        [IMAP_STATE_LITERAL_DATA] = imap_state_bulk,
        [IMAP_STATE_SECTION] = imap_state_section,
        [IMAP_STATE_SECTION_LIST_OPEN] = imap_state_section_list_open,
        [IMAP_STATE_SECTION_FIELD] = imap_state_section_field,
        [IMAP_STATE_SECTION_FIELD_ATOM] = imap_state_section_field_atom,
        [IMAP_STATE_SECTION_FIELD_END] = imap_state_section_field_end,
        [IMAP_STATE_SECTION_CLOSE] = imap_state_section_close,
        [IMAP_STATE_SECTION_AFTER] = imap_state_section_after,
        [IMAP_STATE_PARTIAL_OFFSET] = imap_state_partial_offset,
        [IMAP_STATE_PARTIAL_LENGTH] = imap_state_partial_length,
        [IMAP_STATE_PARTIAL_END] = imap_parser_section_end,
        [IMAP_STATE_EOL] = imap_state_eol,
        [IMAP_STATE_SKIP_LINE] = imap_state_skip_line,
        [IMAP_STATE_SKIP_LITERAL] = imap_state_bulk,
        [IMAP_STATE_RAW_LINE] = imap_state_raw_line,
        [IMAP_STATE_RAW_LF] = imap_state_raw_lf,
};

/* ---- the feed loop ---- */

static bool imap_state_counts(enum imap_state state)
{
	return state != IMAP_STATE_SKIP_LINE && state != IMAP_STATE_SKIP_LITERAL &&
	       state != IMAP_STATE_LITERAL_DATA;
}

/* Literal bytes kept in memory; NUL only in literal8. */
static enum imap_step imap_parser_literal_copy(struct imap_parser *p, const unsigned char *d,
                                               size_t n)
{
	char *dest = p->literal_field + p->literal_pos;
	memcpy(dest, d, n);
	p->literal_pos += n;
	p->literal_left -= n;
	if (!p->literal.binary && memchr(dest, '\0', n) != NULL) {
		uint64_t left = p->literal_left;
		imap_parser_fail(p, "NUL characters in literal");
		imap_parser_skip_literal(p, left);
		return IMAP_STEP_ERROR;
	}
	if (p->literal_left > 0)
		return IMAP_STEP_NEXT;
	p->literal_field[p->literal_pos] = '\0';
	return imap_parser_literal_done(p);
}

static void imap_parser_begin(struct imap_parser *p)
{
	if (!p->finished)
		return;
	imap_parser_free_command(p);
	p->finished = false;
}

static enum imap_parse_result imap_parser_result(struct imap_parser *p, enum imap_step step)
{
	switch (step) {
	case IMAP_STEP_DONE:
		p->finished = true;
		return IMAP_PARSE_DONE;
	case IMAP_STEP_LITERAL:
		return IMAP_PARSE_LITERAL;
	case IMAP_STEP_ERROR:
		p->finished = true;
		return IMAP_PARSE_ERROR;
	default:
		return IMAP_PARSE_NEED_MORE;
	}
}

/* Handles bulk states at d[0..size); returns bytes used. */
static size_t imap_parser_bulk(struct imap_parser *p, const unsigned char *d, size_t size,
                               enum imap_step *step_r)
{
	size_t n = p->literal_left < size ? (size_t)p->literal_left : size;
	*step_r = IMAP_STEP_NEXT;
	if (p->state == IMAP_STATE_SKIP_LITERAL) {
		p->literal_left -= n;
		if (p->literal_left == 0)
			imap_parser_skip_line(p);
	} else if (p->literal_streamed) {
		p->literal_left -= n;
		if (p->literal_left == 0)
			*step_r = imap_parser_literal_done(p);
	} else {
		*step_r = imap_parser_literal_copy(p, d, n);
	}
	return n;
}

enum imap_parse_result imap_parser_feed(struct imap_parser *p, const void *data, size_t size,
                                        size_t *consumed_r)
{
	const unsigned char *d = data;
	size_t i = 0;
	bool fresh = true;
	enum imap_step step = IMAP_STEP_NEXT;

	imap_parser_begin(p);
	while (i < size) {
		if (p->state == IMAP_STATE_LITERAL_DATA || p->state == IMAP_STATE_SKIP_LITERAL) {
			bool streamed = p->state == IMAP_STATE_LITERAL_DATA && p->literal_streamed;
			i += imap_parser_bulk(p, d + i, size - i, &step);
			if (streamed) {
				/* The chunk is exactly what this call consumed. */
				*consumed_r = i;
				return step == IMAP_STEP_ERROR ? imap_parser_result(p, step)
				                               : IMAP_PARSE_LITERAL_DATA;
			}
			if (step != IMAP_STEP_NEXT)
				break;
			continue;
		}
		if (fresh && imap_state_counts(p->state) &&
		    ++p->line_used > p->limits.max_line_length) {
			step = imap_parser_fail_at(p, "Command line too long", NULL, d[i] != '\n');
			i++;
			break;
		}
		step = imap_state_handlers[p->state](p, d[i]);
		fresh = step != IMAP_STEP_AGAIN;
		if (fresh)
			i++;
		if (step != IMAP_STEP_NEXT && step != IMAP_STEP_AGAIN)
			break;
	}
	*consumed_r = i;
	return imap_parser_result(p, step);
}

/* ---- the public face ---- */

static void imap_parser_apply_limits(struct imap_parser *p, const struct imap_parser_limits *limits)
{
	p->limits = *limits;
	if (p->limits.max_line_length == 0)
		p->limits.max_line_length = 1;
	unsigned int need = p->limits.max_list_depth + 1;
	if (need < p->depth + 1)
		need = p->depth + 1;
	p->stack = xreallocarray(p->stack, need, sizeof(*p->stack));
	p->stack[0] = &p->cmd.args;
	/* Tokens never outgrow the line; the +1 keeps room for the NUL. */
	p->tok.max = p->limits.max_line_length + 1;
}

struct imap_parser *imap_parser_create(const struct imap_parser_limits *limits, unsigned int flags)
{
	struct imap_parser *p = xcalloc(1, sizeof(*p));
	buf_init(&p->tok, 1);
	imap_parser_apply_limits(p, limits);
	p->flags = flags;
	p->state = IMAP_STATE_TAG;
	return p;
}

void imap_parser_destroy(struct imap_parser **parser)
{
	struct imap_parser *p = *parser;
	if (p == NULL)
		return;
	imap_parser_free_command(p);
	buf_free(&p->tok);
	free(p->stack);
	free(p);
	*parser = NULL;
}

void imap_parser_set_limits(struct imap_parser *p, const struct imap_parser_limits *limits)
{
	imap_parser_apply_limits(p, limits);
}

void imap_parser_set_flags(struct imap_parser *p, unsigned int flags)
{
	p->flags = flags;
}

const struct imap_command *imap_parser_command(const struct imap_parser *p)
{
	return &p->cmd;
}

const struct imap_parser_error *imap_parser_error(const struct imap_parser *p)
{
	return &p->error;
}

const struct imap_literal_info *imap_parser_literal(const struct imap_parser *p)
{
	return &p->literal;
}

static void imap_parser_check_wait(const struct imap_parser *p)
{
	if (p->state != IMAP_STATE_LITERAL_WAIT)
		panic("imap parser: literal decision without a literal");
}

/* Starts reading the accepted literal's bytes; a literal of no bytes is
 * complete at once. */
static int imap_parser_literal_begin(struct imap_parser *p, bool streamed)
{
	p->literal_pos = 0;
	p->literal_left = p->literal.size;
	p->literal_streamed = streamed;
	p->state = IMAP_STATE_LITERAL_DATA;
	if (p->literal_left > 0)
		return 0;
	if (!streamed)
		p->literal_field[0] = '\0';
	if (imap_parser_literal_done(p) == IMAP_STEP_ERROR) {
		p->finished = true;
		return -1;
	}
	return 0;
}

int imap_parser_literal_inline(struct imap_parser *p)
{
	imap_parser_check_wait(p);
	uint64_t room = p->limits.max_line_length - p->line_used;
	if (p->line_used > p->limits.max_line_length || p->literal.size > room) {
		imap_parser_fail_literal(p, "Literal too large", "TOOBIG");
		p->finished = true;
		return -1;
	}
	p->line_used += (size_t)p->literal.size;
	p->literal_field = xmalloc((size_t)p->literal.size + 1);
	return imap_parser_literal_begin(p, false);
}

int imap_parser_literal_stream(struct imap_parser *p)
{
	imap_parser_check_wait(p);
	/* A header field name is small: it stays in memory. */
	if (p->in_fields)
		return imap_parser_literal_inline(p);
	p->literal_field = NULL;
	return imap_parser_literal_begin(p, true);
}

void imap_parser_literal_refuse(struct imap_parser *p)
{
	imap_parser_check_wait(p);
	if (p->literal.nonsync)
		imap_parser_skip_literal(p, p->literal.size);
	else
		p->state = imap_parser_start_state(p);
	p->finished = true;
}

void imap_parser_read_line(struct imap_parser *p)
{
	p->line_mode = true;
	if (p->state == IMAP_STATE_TAG)
		p->state = IMAP_STATE_RAW_LINE;
}

void imap_parser_reset(struct imap_parser *p)
{
	imap_parser_free_command(p);
	imap_parser_literal_reset(p);
	p->finished = false;
	p->line_mode = false;
	p->literal_streamed = false;
	p->state = IMAP_STATE_TAG;
}

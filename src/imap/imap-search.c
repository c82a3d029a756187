/* SEARCH keys (RFC 9051 6.4.4, RFC 7162 MODSEQ, RFC 5182 "$"): parsed
 * into a tree, then matched message by message. Header keys compare the
 * decoded field (RFC 2047) and BODY / TEXT the texts of src/fts (decoded
 * header, decoded text parts), both without regard to ASCII case. BODY
 * and TEXT are answered from the full-text index once per search (in
 * prepare); when the index cannot answer they scan the files, which gives
 * the same result (the reference). Search strings may come in the
 * charsets of imap_search_charsets and are converted to UTF-8. */
#include "imap/imap-private.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/conn.h"
#include "lib/log.h"
#include "lib/strnum.h"
#include "lib/xmalloc.h"
#include "fts/fts.h"
#include "mime/mime.h"

/* The charsets SEARCH CHARSET accepts (RFC 9051 6.4.4: UTF-8 and US-ASCII
 * at least), as listed in BADCHARSET; other names of the same converters
 * are refused so that the list tells the truth. */
static const char *const imap_search_charsets[] = {
        "UTF-8", "US-ASCII", "ISO-2022-JP", "Shift_JIS", "CP932", "Windows-31J", "EUC-JP",
};

enum imap_key_type {
	KEY_ALL,
	KEY_AND,
	KEY_OR,
	KEY_NOT,
	KEY_SEQSET,
	KEY_UIDSET,
	KEY_FLAG,
	KEY_UNFLAG,
	KEY_NEW,
	KEY_OLD,
	KEY_RECENT,
	KEY_NONE,
	KEY_LARGER,
	KEY_SMALLER,
	KEY_BEFORE,
	KEY_ON,
	KEY_SINCE,
	KEY_SENTBEFORE,
	KEY_SENTON,
	KEY_SENTSINCE,
	KEY_HEADER,
	KEY_BODY,
	KEY_TEXT,
	KEY_KEYWORD,
	KEY_UNKEYWORD,
	KEY_EMAILID,
	KEY_SAVEDBEFORE,
	KEY_SAVEDON,
	KEY_SAVEDSINCE,
	KEY_MODSEQ,
};

struct imap_key {
	enum imap_key_type type;
	struct imap_key *children; /* AND, OR, NOT */
	struct imap_key *next;
	unsigned int flag;
	uint64_t num;
	time_t date;
	char *field, *value; /* HEADER; BODY/TEXT use value */
	struct imap_seqset set;
	/* BODY/TEXT answered by the index: the matching UIDs, ascending */
	bool indexed;
	uint32_t *uids;
	size_t uid_count;
};

struct imap_search {
	struct imap_key *root;
	bool scan;       /* BODY/TEXT by reading the files, not the index */
	bool has_modseq; /* a MODSEQ key: the result carries MODSEQ */
	bool needs_parts; /* a key reads the message (header, Date, unindexed text) */
	/* MODSEQ of every message as the store has it now (has_modseq) */
	struct store_msg_flags *modseqs;
	size_t modseq_count;
};

/* What one message's match needs, loaded when first asked for. */
struct imap_search_msg {
	struct imap_session *sess;
	const struct imap_search *search;
	size_t idx;
	const struct store_msg *msg;
	int fd;
	const struct mime_part *root;
	struct buf header;
	bool header_loaded;
	bool failed;
	struct buf cached; /* the index's header lines, when cached_state is 1 */
	int cached_state;  /* 0 not looked for, 1 found, -1 none */
};

/* ---- keys that take no argument or one ---- */

enum imap_key_arg { ARG_NONE, ARG_STRING, ARG_NUMBER, ARG_DATE, ARG_HEADER };

static const struct {
	const char *name;
	enum imap_key_type type;
	enum imap_key_arg arg;
	unsigned int flag;
	const char *field;
} imap_keys[] = {
        {"ALL", KEY_ALL, ARG_NONE, 0, NULL},
        {"ANSWERED", KEY_FLAG, ARG_NONE, STORE_FLAG_ANSWERED, NULL},
        {"DELETED", KEY_FLAG, ARG_NONE, STORE_FLAG_DELETED, NULL},
        {"DRAFT", KEY_FLAG, ARG_NONE, STORE_FLAG_DRAFT, NULL},
        {"FLAGGED", KEY_FLAG, ARG_NONE, STORE_FLAG_FLAGGED, NULL},
        {"SEEN", KEY_FLAG, ARG_NONE, STORE_FLAG_SEEN, NULL},
        {"UNANSWERED", KEY_UNFLAG, ARG_NONE, STORE_FLAG_ANSWERED, NULL},
        {"UNDELETED", KEY_UNFLAG, ARG_NONE, STORE_FLAG_DELETED, NULL},
        {"UNDRAFT", KEY_UNFLAG, ARG_NONE, STORE_FLAG_DRAFT, NULL},
        {"UNFLAGGED", KEY_UNFLAG, ARG_NONE, STORE_FLAG_FLAGGED, NULL},
        {"UNSEEN", KEY_UNFLAG, ARG_NONE, STORE_FLAG_SEEN, NULL},
        {"NEW", KEY_NEW, ARG_NONE, 0, NULL},
        {"OLD", KEY_OLD, ARG_NONE, 0, NULL},
        {"RECENT", KEY_RECENT, ARG_NONE, 0, NULL},
        {"KEYWORD", KEY_KEYWORD, ARG_STRING, 0, NULL},
        {"UNKEYWORD", KEY_UNKEYWORD, ARG_STRING, 0, NULL},
        {"EMAILID", KEY_EMAILID, ARG_STRING, 0, NULL},
        {"THREADID", KEY_NONE, ARG_STRING, 0, NULL}, /* no message has one */
        {"SAVEDBEFORE", KEY_SAVEDBEFORE, ARG_DATE, 0, NULL},
        {"SAVEDON", KEY_SAVEDON, ARG_DATE, 0, NULL},
        {"SAVEDSINCE", KEY_SAVEDSINCE, ARG_DATE, 0, NULL},
        {"SAVEDATESUPPORTED", KEY_ALL, ARG_NONE, 0, NULL}, /* every mailbox has save dates */
        {"LARGER", KEY_LARGER, ARG_NUMBER, 0, NULL},
        {"SMALLER", KEY_SMALLER, ARG_NUMBER, 0, NULL},
        {"BEFORE", KEY_BEFORE, ARG_DATE, 0, NULL},
        {"ON", KEY_ON, ARG_DATE, 0, NULL},
        {"SINCE", KEY_SINCE, ARG_DATE, 0, NULL},
        {"SENTBEFORE", KEY_SENTBEFORE, ARG_DATE, 0, NULL},
        {"SENTON", KEY_SENTON, ARG_DATE, 0, NULL},
        {"SENTSINCE", KEY_SENTSINCE, ARG_DATE, 0, NULL},
        {"BODY", KEY_BODY, ARG_STRING, 0, NULL},
        {"TEXT", KEY_TEXT, ARG_STRING, 0, NULL},
        {"SUBJECT", KEY_HEADER, ARG_STRING, 0, "Subject"},
        {"FROM", KEY_HEADER, ARG_STRING, 0, "From"},
        {"TO", KEY_HEADER, ARG_STRING, 0, "To"},
        {"CC", KEY_HEADER, ARG_STRING, 0, "Cc"},
        {"BCC", KEY_HEADER, ARG_STRING, 0, "Bcc"},
        {"HEADER", KEY_HEADER, ARG_HEADER, 0, NULL},
};

struct imap_search_parser {
	struct imap_session *sess;
	struct imap_search *search;
	const char *charset; /* NULL for UTF-8 and US-ASCII: bytes kept */
	const struct imap_arg *args;
	unsigned int count, pos;
	const char *error;
};

static void imap_key_free(struct imap_key *key)
{
	while (key != NULL) {
		struct imap_key *next = key->next;
		imap_key_free(key->children);
		imap_seqset_free(&key->set);
		free(key->field);
		free(key->value);
		free(key->uids);
		free(key);
		key = next;
	}
}

void imap_search_free(struct imap_search **searchp)
{
	if (*searchp == NULL)
		return;
	imap_key_free((*searchp)->root);
	store_msg_flags_free(&(*searchp)->modseqs, (*searchp)->modseq_count);
	free(*searchp);
	*searchp = NULL;
}

static struct imap_key *imap_key_new(enum imap_key_type type)
{
	struct imap_key *key = xcalloc(1, sizeof(*key));
	key->type = type;
	imap_seqset_init(&key->set);
	return key;
}

/* ASCII lower case, so that comparisons ignore case (as fts_fold). */
static char *imap_search_fold(const char *s)
{
	char *out = xstrdup(s);
	fts_fold(out, strlen(out));
	return out;
}

/* A search string in the command's charset, as folded UTF-8. */
static char *imap_search_string(const struct imap_search_parser *p, const char *s)
{
	if (p->charset == NULL)
		return imap_search_fold(s);
	struct buf out = BUF_INIT(0);
	(void)mime_charset_to_utf8(p->charset, s, strlen(s), &out);
	char *folded = imap_search_fold(buf_str(&out));
	buf_free(&out);
	return folded;
}

static const struct imap_arg *imap_sp_next(struct imap_search_parser *p)
{
	return p->pos < p->count ? &p->args[p->pos++] : NULL;
}

static int imap_sp_string(struct imap_search_parser *p, char **str_r)
{
	const struct imap_arg *arg = imap_sp_next(p);
	const char *s;
	if (arg == NULL || !imap_arg_get_astring(arg, &s) || arg->type == IMAP_ARG_NIL) {
		p->error = "Missing search string";
		return -1;
	}
	*str_r = imap_search_string(p, s);
	return 0;
}

static int imap_sp_arg(struct imap_search_parser *p, struct imap_key *key, enum imap_key_arg type)
{
	const struct imap_arg *arg;
	const char *s;
	switch (type) {
	case ARG_NONE:
		return 0;
	case ARG_STRING:
		return imap_sp_string(p, &key->value);
	case ARG_HEADER:
		if (imap_sp_string(p, &key->field) < 0)
			return -1;
		return imap_sp_string(p, &key->value);
	case ARG_NUMBER:
		arg = imap_sp_next(p);
		if (arg == NULL || !imap_arg_get_atom(arg, &s) || str_to_uint64(s, &key->num) < 0) {
			p->error = "Invalid number";
			return -1;
		}
		return 0;
	case ARG_DATE:
		arg = imap_sp_next(p);
		if (arg == NULL || !imap_arg_get_astring(arg, &s) ||
		    imap_date_parse(s, &key->date) < 0) {
			p->error = "Invalid date";
			return -1;
		}
		return 0;
	}
	return -1;
}

static struct imap_key *imap_sp_key(struct imap_search_parser *p);

static struct imap_key *imap_sp_list(struct imap_search_parser *p, const struct imap_arg *args,
                                     unsigned int count)
{
	struct imap_search_parser sub = {p->sess, p->search, p->charset, args, count, 0, NULL};
	struct imap_key *and = imap_key_new(KEY_AND), **tail = &and->children;
	if (count == 0) {
		p->error = "Empty search list";
		imap_key_free(and);
		return NULL;
	}
	while (sub.pos < sub.count) {
		*tail = imap_sp_key(&sub);
		if (*tail == NULL) {
			p->error = sub.error;
			imap_key_free(and);
			return NULL;
		}
		tail = &(*tail)->next;
	}
	return and;
}

static struct imap_key *imap_sp_children(struct imap_search_parser *p, enum imap_key_type type,
                                         unsigned int n)
{
	struct imap_key *key = imap_key_new(type), **tail = &key->children;
	for (unsigned int i = 0; i < n; i++) {
		*tail = imap_sp_key(p);
		if (*tail == NULL) {
			imap_key_free(key);
			return NULL;
		}
		tail = &(*tail)->next;
	}
	return key;
}

static struct imap_key *imap_sp_set(struct imap_search_parser *p, const struct imap_arg *arg,
                                    enum imap_key_type type)
{
	struct imap_key *key = imap_key_new(type);
	if (imap_arg_get_seqset(arg, &key->set, &p->error) < 0) {
		imap_key_free(key);
		return NULL;
	}
	/* RFC 5182: "$" (alone) is the saved result, the same messages as a
	 * sequence set or as a UID set */
	if (key->set.saved) {
		key->type = KEY_UIDSET;
		imap_searchres_add(p->sess, &key->set, true);
	}
	return key;
}

static struct imap_key *imap_sp_named(struct imap_search_parser *p, const char *name)
{
	for (size_t i = 0; i < sizeof(imap_keys) / sizeof(imap_keys[0]); i++) {
		if (strcasecmp(name, imap_keys[i].name) != 0)
			continue;
		struct imap_key *key = imap_key_new(imap_keys[i].type);
		key->flag = imap_keys[i].flag;
		if (imap_keys[i].field != NULL)
			key->field = imap_search_fold(imap_keys[i].field);
		if (imap_sp_arg(p, key, imap_keys[i].arg) < 0) {
			imap_key_free(key);
			return NULL;
		}
		return key;
	}
	p->error = "Unknown search key";
	return NULL;
}

/* MODSEQ ["/flags/..." priv|shared|all] n (RFC 7162 3.1.5). The store
 * keeps one MODSEQ per message, so the entry is checked and ignored, as
 * the RFC asks of such a server. */
static struct imap_key *imap_sp_modseq(struct imap_search_parser *p)
{
	const struct imap_arg *arg = imap_sp_next(p), *type;
	const char *s;
	if (arg != NULL && (arg->type == IMAP_ARG_STRING || arg->type == IMAP_ARG_LITERAL)) {
		type = imap_sp_next(p);
		if (type == NULL ||
		    (!imap_arg_atom_equals(type, "priv") && !imap_arg_atom_equals(type, "shared") &&
		     !imap_arg_atom_equals(type, "all"))) {
			p->error = "Invalid MODSEQ entry type";
			return NULL;
		}
		arg = imap_sp_next(p);
	}
	struct imap_key *key = imap_key_new(KEY_MODSEQ);
	if (arg == NULL || !imap_arg_get_atom(arg, &s) || str_to_uint64(s, &key->num) < 0 ||
	    key->num > INT64_MAX) {
		p->error = "Invalid MODSEQ value";
		imap_key_free(key);
		return NULL;
	}
	p->search->has_modseq = true;
	return key;
}

static struct imap_key *imap_sp_key(struct imap_search_parser *p)
{
	const struct imap_arg *arg = imap_sp_next(p), *list;
	const char *name;
	unsigned int n;
	if (arg == NULL) {
		p->error = "Missing search key";
		return NULL;
	}
	if (imap_arg_get_list(arg, &list, &n))
		return imap_sp_list(p, list, n);
	/* a sequence set may hold '*', which plain atoms do not */
	if (arg->type == IMAP_ARG_ATOM && arg->str[0] != '\0' &&
	    strchr("0123456789*$", arg->str[0]) != NULL)
		return imap_sp_set(p, arg, KEY_SEQSET);
	if (!imap_arg_get_atom(arg, &name)) {
		p->error = "Invalid search key";
		return NULL;
	}
	if (strcasecmp(name, "NOT") == 0)
		return imap_sp_children(p, KEY_NOT, 1);
	if (strcasecmp(name, "OR") == 0)
		return imap_sp_children(p, KEY_OR, 2);
	if (strcasecmp(name, "UID") == 0) {
		const struct imap_arg *set = imap_sp_next(p);
		if (set == NULL) {
			p->error = "Missing UID set";
			return NULL;
		}
		return imap_sp_set(p, set, KEY_UIDSET);
	}
	if (strcasecmp(name, "MODSEQ") == 0)
		return imap_sp_modseq(p);
	return imap_sp_named(p, name);
}

/* 1 when strings are converted, 0 when kept as bytes, -1 unknown. */
static int imap_search_charset(const char *charset)
{
	if (charset == NULL || strcasecmp(charset, "UTF-8") == 0 ||
	    strcasecmp(charset, "US-ASCII") == 0)
		return 0;
	for (size_t i = 0; i < sizeof(imap_search_charsets) / sizeof(imap_search_charsets[0]);
	     i++) {
		if (strcasecmp(charset, imap_search_charsets[i]) == 0)
			return mime_charset_canonical(charset) != NULL ? 1 : -1;
	}
	return -1;
}

static void imap_search_badcharset(struct imap_session *sess)
{
	struct buf list = BUF_INIT(0);
	for (size_t i = 0; i < sizeof(imap_search_charsets) / sizeof(imap_search_charsets[0]); i++)
		buf_printf(&list, "%s%s", i > 0 ? " " : "", imap_search_charsets[i]);
	imap_done(sess, "NO [BADCHARSET (%s)] Unsupported charset", buf_str(&list));
	buf_free(&list);
}

struct imap_search *imap_search_parse_charset(struct imap_session *sess,
                                              const struct imap_arg *args, unsigned int count,
                                              const char *charset, bool *no_r)
{
	int conv = imap_search_charset(charset);
	*no_r = conv < 0;
	if (conv < 0) {
		imap_search_badcharset(sess);
		return NULL;
	}
	struct imap_search *search = xcalloc(1, sizeof(*search));
	struct imap_search_parser p = {sess, search, conv > 0 ? charset : NULL, args, count,
	                               0,    NULL};
	search->root = imap_sp_list(&p, args, count);
	if (search->root == NULL) {
		imap_search_free(&search);
		imap_bad(sess, p.error != NULL ? p.error : "Invalid search");
	}
	return search;
}

struct imap_search *imap_search_parse(struct imap_session *sess, const struct imap_arg *args,
                                      unsigned int count)
{
	bool no;
	return imap_search_parse_charset(sess, args, count, NULL, &no);
}

/* ---- dates ---- */

static int imap_month_index(const char *s)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	char m[4];
	for (int i = 0; i < 3; i++) {
		if (s[i] == '\0')
			return -1;
		m[i] = (char)(s[i] | 0x20);
	}
	m[3] = '\0';
	const char *at = strstr(months, m);
	return at == NULL || (at - months) % 3 != 0 ? -1 : (int)((at - months) / 3);
}

static int imap_day_time(int day, int mon, int year, time_t *t_r)
{
	if (day < 1 || day > 31 || mon < 0 || year < 1900 || year > 9999)
		return -1;
	struct tm tm = {.tm_mday = day, .tm_mon = mon, .tm_year = year - 1900};
	*t_r = timegm(&tm);
	return 0;
}

int imap_date_parse(const char *str, time_t *t_r)
{
	const char *dash1 = strchr(str, '-');
	const char *dash2 = dash1 != NULL ? strchr(dash1 + 1, '-') : NULL;
	uint32_t day, year;
	if (dash1 == NULL || dash2 == NULL || dash2 - dash1 != 4 || dash1 - str > 2 || dash1 == str)
		return -1;
	char daybuf[3] = {0};
	memcpy(daybuf, str, (size_t)(dash1 - str));
	if (str_to_uint32(daybuf, &day) < 0 || strlen(dash2 + 1) != 4 ||
	    str_to_uint32(dash2 + 1, &year) < 0)
		return -1;
	return imap_day_time((int)day, imap_month_index(dash1 + 1), (int)year, t_r);
}

/* "[Day, ] DD Mon YYYY ..." (RFC 5322 3.3, obsolete forms loosely). */
int imap_rfc5322_date(const char *value, time_t *day_r)
{
	const char *p = value;
	const char *comma = strchr(p, ',');
	if (comma != NULL)
		p = comma + 1;
	p += strspn(p, " \t\r\n");
	char *end;
	long day = strtol(p, &end, 10);
	if (end == p)
		return -1;
	p = end + strspn(end, " \t\r\n");
	int mon = imap_month_index(p);
	if (mon < 0 || strlen(p) < 3)
		return -1;
	p += 3;
	long year = strtol(p, &end, 10);
	if (end == p)
		return -1;
	if (year < 50)
		year += 2000;
	else if (year < 1000)
		year += 1900;
	return imap_day_time((int)day, mon, (int)year, day_r);
}

/* ---- matching ---- */

static int imap_uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int imap_modseq_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a;
	uint32_t y = ((const struct store_msg_flags *)b)->uid;
	return x < y ? -1 : x > y;
}

/* The message's MODSEQ as the store has it at this search, else the
 * view's. */
uint64_t imap_search_msg_modseq(const struct imap_search *search, const struct store_msg *msg)
{
	const struct store_msg_flags *f = NULL;
	if (search->modseq_count > 0)
		f = bsearch(&msg->uid, search->modseqs, search->modseq_count,
		            sizeof(search->modseqs[0]), imap_modseq_cmp);
	return f != NULL ? f->modseq : msg->modseq;
}

static time_t imap_day_of(time_t t)
{
	return t - (t % 86400 + 86400) % 86400;
}

static const struct mime_part *imap_search_root(struct imap_search_msg *m)
{
	const char *error;
	enum store_error err;
	if (m->root == NULL && !m->failed) {
		m->root = imap_message_parts(m->sess, m->msg, &err, &error);
		m->failed = m->root == NULL;
	}
	return m->root;
}

static const char *imap_search_header(struct imap_search_msg *m)
{
	const char *error;
	enum store_error err;
	if (m->header_loaded)
		return m->failed ? NULL : buf_str(&m->header);
	m->header_loaded = true;
	buf_init(&m->header, 0);
	if (imap_search_root(m) == NULL)
		m->failed = true;
	else if (m->fd < 0)
		m->fd = store_msg_open(m->sess->store, m->sess->mbox->name, m->msg->uid, &err,
		                       &error);
	if (m->failed || m->fd < 0 ||
	    imap_read_range(m->fd, m->root->header_offset, m->root->header_size, &m->header,
	                    &error) < 0) {
		m->failed = true;
		return NULL;
	}
	return buf_str(&m->header);
}

static bool imap_contains_folded(const char *haystack, const char *needle)
{
	char *folded = imap_search_fold(haystack);
	bool found = strstr(folded, needle) != NULL;
	free(folded);
	return found;
}

/* The header lines a key on field reads: the lines the index keeps when
 * field is among them (no file opened), else the whole header. */
static const char *imap_search_fields(struct imap_search_msg *m, const char *field, size_t *len_r)
{
	if (mime_field_cached(field) && m->cached_state == 0)
		m->cached_state = imap_message_cached_header(m->sess, m->msg, &m->cached) > 0 ? 1 : -1;
	if (mime_field_cached(field) && m->cached_state > 0) {
		*len_r = m->cached.len;
		return buf_str(&m->cached);
	}
	const char *header = imap_search_header(m);
	*len_r = m->header.len;
	return header;
}

static bool imap_match_header(struct imap_search_msg *m, const struct imap_key *key)
{
	size_t len;
	const char *header = imap_search_fields(m, key->field, &len);
	if (header == NULL)
		return false;
	char *raw = mime_header_get(header, len, key->field);
	if (raw == NULL)
		return false;
	char *decoded = mime_header_decode(raw, strlen(raw));
	bool found = imap_contains_folded(decoded, key->value);
	free(decoded);
	free(raw);
	return found;
}

static bool imap_match_sent(struct imap_search_msg *m, const struct imap_key *key)
{
	size_t len;
	const char *header = imap_search_fields(m, "Date", &len);
	time_t day;
	if (header == NULL)
		return false;
	char *raw = mime_header_get(header, len, "Date");
	int ret = raw != NULL ? imap_rfc5322_date(raw, &day) : -1;
	free(raw);
	if (ret < 0)
		return false;
	if (key->type == KEY_SENTBEFORE)
		return day < key->date;
	if (key->type == KEY_SENTON)
		return day == key->date;
	return day >= key->date;
}

/* BODY/TEXT: from the index's answer, else by reading the message. */
static bool imap_match_text(struct imap_search_msg *m, const struct imap_key *key)
{
	const char *error;
	bool found = false;
	if (key->indexed)
		return key->uid_count > 0 && bsearch(&m->msg->uid, key->uids, key->uid_count,
		                                     sizeof(uint32_t), imap_uid_cmp) != NULL;
	if (imap_search_header(m) == NULL)
		return false;
	if (key->value[0] == '\0')
		return true;
	if (fts_message_contains(m->fd, m->root, key->value, key->type == KEY_TEXT, &found,
	                         &error) < 0)
		m->failed = true;
	return found;
}

/* Keys on what the index holds beside flags: keywords, EMAILID (RFC
 * 8474), the save date (RFC 8514). */
static bool imap_match_meta(const struct store_msg *msg, const struct imap_key *key)
{
	switch (key->type) {
	case KEY_KEYWORD:
		return imap_keywords_contain(msg->keywords, key->value);
	case KEY_UNKEYWORD:
		return !imap_keywords_contain(msg->keywords, key->value);
	case KEY_EMAILID:
		return strcasecmp(msg->emailid, key->value) == 0;
	case KEY_SAVEDBEFORE:
		return imap_day_of(msg->save_date) < key->date;
	case KEY_SAVEDON:
		return imap_day_of(msg->save_date) == key->date;
	default:
		return imap_day_of(msg->save_date) >= key->date;
	}
}

static bool imap_key_match(struct imap_search_msg *m, const struct imap_key *key);

static bool imap_match_children(struct imap_search_msg *m, const struct imap_key *key)
{
	const struct imap_key *c;
	switch (key->type) {
	case KEY_AND:
		for (c = key->children; c != NULL; c = c->next) {
			if (!imap_key_match(m, c))
				return false;
		}
		return true;
	case KEY_OR:
		return imap_key_match(m, key->children) || imap_key_match(m, key->children->next);
	default:
		return !imap_key_match(m, key->children);
	}
}

static bool imap_key_match(struct imap_search_msg *m, const struct imap_key *key)
{
	const struct store_msg *msg = m->msg;
	switch (key->type) {
	case KEY_ALL:
		return true;
	case KEY_NONE:
	case KEY_NEW:
	case KEY_RECENT:
		return false; /* nothing is \Recent; THREADID is NIL */
	case KEY_OLD:
		return true;
	case KEY_AND:
	case KEY_OR:
	case KEY_NOT:
		return imap_match_children(m, key);
	case KEY_SEQSET:
		return imap_seqset_contains(&key->set, (uint32_t)(m->idx + 1));
	case KEY_UIDSET:
		return imap_seqset_contains(&key->set, msg->uid);
	case KEY_FLAG:
		return (msg->flags & key->flag) != 0;
	case KEY_UNFLAG:
		return (msg->flags & key->flag) == 0;
	case KEY_LARGER:
		return msg->vsize > key->num;
	case KEY_SMALLER:
		return msg->vsize < key->num;
	case KEY_BEFORE:
		return imap_day_of(msg->internal_date) < key->date;
	case KEY_ON:
		return imap_day_of(msg->internal_date) == key->date;
	case KEY_SINCE:
		return imap_day_of(msg->internal_date) >= key->date;
	case KEY_SENTBEFORE:
	case KEY_SENTON:
	case KEY_SENTSINCE:
		return imap_match_sent(m, key);
	case KEY_HEADER:
		return imap_match_header(m, key);
	case KEY_KEYWORD:
	case KEY_UNKEYWORD:
	case KEY_EMAILID:
	case KEY_SAVEDBEFORE:
	case KEY_SAVEDON:
	case KEY_SAVEDSINCE:
		return imap_match_meta(msg, key);
	case KEY_MODSEQ:
		return imap_search_msg_modseq(m->search, msg) >= key->num;
	default:
		return imap_match_text(m, key);
	}
}

/* Resolves "*" in the sets now that the view is known. */
static void imap_search_resolve(struct imap_session *sess, struct imap_key *key)
{
	const struct imap_mailbox *mbox = sess->mbox;
	for (; key != NULL; key = key->next) {
		if (key->type == KEY_SEQSET)
			imap_seqset_resolve(&key->set, (uint32_t)mbox->count);
		else if (key->type == KEY_UIDSET)
			imap_seqset_resolve(&key->set,
			                    mbox->count > 0 ? mbox->msgs[mbox->count - 1].uid : 0);
		imap_search_resolve(sess, key->children);
	}
}

static bool imap_search_has_text(const struct imap_key *key)
{
	for (; key != NULL; key = key->next) {
		if (((key->type == KEY_BODY || key->type == KEY_TEXT) && key->value[0] != '\0') ||
		    imap_search_has_text(key->children))
			return true;
	}
	return false;
}

/* Asks the index for every BODY/TEXT key; a key it cannot answer scans. */
static void imap_search_index_keys(struct imap_session *sess, struct imap_key *key)
{
	const char *error;
	for (; key != NULL; key = key->next) {
		imap_search_index_keys(sess, key->children);
		if ((key->type != KEY_BODY && key->type != KEY_TEXT) || key->value[0] == '\0')
			continue;
		if (fts_search(sess->store, sess->mbox->name, key->value, key->type == KEY_TEXT,
		               &key->uids, &key->uid_count, &error) == 0)
			key->indexed = true;
		else
			log_warn("imap session=%s user=%s event=fts_search_failed error=\"%s\"",
			         conn_id(sess->conn), imap_user(sess), error);
	}
}

/* Brings the index up to date for the mailbox (messages from before the
 * index, copies from an older version); on failure the keys scan. */
static void imap_search_use_index(struct imap_session *sess, struct imap_search *search)
{
	const char *error;
	if (search->scan || !imap_search_has_text(search->root))
		return;
	if (fts_index_missing(sess->store, sess->mbox->name, &error) < 0) {
		log_warn("imap session=%s user=%s event=fts_catch_up_failed error=\"%s\"",
		         conn_id(sess->conn), imap_user(sess), error);
		return;
	}
	imap_search_index_keys(sess, search->root);
}

static void imap_search_load_modseqs(struct imap_session *sess, struct imap_search *search)
{
	enum store_error err;
	const char *error;
	if (!search->has_modseq || search->modseqs != NULL)
		return;
	if (store_msg_flags_list(sess->store, sess->mbox->name, 0, &search->modseqs,
	                         &search->modseq_count, &err, &error) < 0) {
		log_warn("imap session=%s user=%s event=modseq_list_failed error=\"%s\"",
		         conn_id(sess->conn), imap_user(sess), error);
		search->modseqs = NULL;
		search->modseq_count = 0;
	}
}

static bool imap_search_reads_messages(const struct imap_key *key)
{
	for (; key != NULL; key = key->next) {
		switch (key->type) {
		case KEY_HEADER:
		case KEY_SENTBEFORE:
		case KEY_SENTON:
		case KEY_SENTSINCE:
			return true;
		case KEY_BODY:
		case KEY_TEXT:
			if (!key->indexed)
				return true;
			break;
		default:
			break;
		}
		if (imap_search_reads_messages(key->children))
			return true;
	}
	return false;
}

void imap_search_prepare(struct imap_session *sess, struct imap_search *search)
{
	imap_search_resolve(sess, search->root);
	imap_search_load_modseqs(sess, search);
	imap_search_use_index(sess, search);
	search->needs_parts = imap_search_reads_messages(search->root);
}

/* Matching reads messages one by one in view order: their structure blobs
 * are read ahead a window at a time. */
static void imap_search_prefetch(struct imap_session *sess, const struct imap_search *search,
                                 size_t idx)
{
	if (!search->needs_parts || idx % IMAP_PREFETCH_WINDOW != 0)
		return;
	size_t n = sess->mbox->count - idx;
	if (n > IMAP_PREFETCH_WINDOW)
		n = IMAP_PREFETCH_WINDOW;
	size_t window[IMAP_PREFETCH_WINDOW];
	for (size_t i = 0; i < n; i++)
		window[i] = idx + i;
	imap_parts_prefetch(sess, window, n);
}

int imap_search_match(struct imap_session *sess, struct imap_search *search, size_t idx)
{
	struct imap_search_msg m = {
	        .sess = sess,
	        .search = search,
	        .idx = idx,
	        .msg = &sess->mbox->msgs[idx],
	        .fd = -1,
	        .header = BUF_INIT(0),
	        .cached = BUF_INIT(0),
	};
	imap_search_prefetch(sess, search, idx);
	bool match = imap_key_match(&m, search->root);
	if (m.fd >= 0)
		close(m.fd);
	buf_free(&m.header);
	buf_free(&m.cached);
	return match ? 1 : 0;
}

bool imap_search_has_modseq(const struct imap_search *search)
{
	return search->has_modseq;
}

void imap_search_set_scan(struct imap_search *search, bool scan)
{
	search->scan = scan;
}

/* Appends ascending numbers to set as coalesced ranges, normalizing once
 * (adding them one by one would sort the set each time). */
void imap_seqset_add_sorted(struct imap_seqset *set, const uint32_t *nums, size_t count)
{
	bool star = set->has_star;
	set->has_star = true; /* defers normalizing to the end */
	for (size_t i = 0; i < count;) {
		size_t j = i;
		while (j + 1 < count && nums[j + 1] == nums[j] + 1)
			j++;
		imap_seqset_add_range(set, nums[i], nums[j]);
		i = j + 1;
	}
	set->has_star = star;
	if (!star)
		imap_seqset_normalize(set);
}

void imap_searchres_add(struct imap_session *sess, struct imap_seqset *set, bool uid)
{
	uint32_t *nums = xcalloc(sess->searchres_count + 1, sizeof(uint32_t));
	size_t n = 0;
	for (size_t i = 0; i < sess->searchres_count; i++) {
		ssize_t idx = sess->mbox != NULL
		                      ? imap_mailbox_find_uid(sess->mbox, sess->searchres[i])
		                      : -1;
		if (idx >= 0)
			nums[n++] = uid ? sess->searchres[i] : (uint32_t)idx + 1;
	}
	imap_seqset_add_sorted(set, nums, n);
	free(nums);
}

void imap_search_index(struct imap_session *sess, const char *mailbox, const uint32_t *uids,
                       size_t count)
{
	const char *error;
	for (size_t i = 0; i < count; i++) {
		if (fts_index_message(sess->store, mailbox, uids[i], &error) < 0)
			log_warn("imap session=%s user=%s event=fts_index_failed mailbox=\"%s\""
			         " uid=%" PRIu32 " error=\"%s\"",
			         conn_id(sess->conn), imap_user(sess), mailbox, uids[i], error);
	}
}

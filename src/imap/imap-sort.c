/* SORT keys (RFC 5256 section 3, RFC 5957): each message's keys are
 * computed once from its header block (only the header is read, never the
 * body), folded for i;ascii-casemap, and the messages are sorted with
 * qsort on them; equal keys keep sequence order. The base subject (2.1)
 * and sent date (2.2) also serve THREAD. */
#include "imap/imap-sort.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "imap/imap-private.h"
#include "lib/xmalloc.h"
#include "mime/mime.h"

/* Header bytes read per message: as much as the MIME parser keeps. */
#define IMAP_SORT_HEADER_MAX (256 * 1024)
/* msg-ids taken from one References field. */
#define IMAP_SORT_MAX_REFS 1000
/* Addresses looked at for the first real one (groups come first). */
#define IMAP_SORT_MAX_ADDRS 64

/* ---- base subject (RFC 5256 2.1) ---- */

static void imap_casemap(char *s)
{
	for (; *s != '\0'; s++) {
		if (*s >= 'a' && *s <= 'z')
			*s = (char)(*s - 'a' + 'A');
	}
}

/* Step 1 after decoding: tabs and line ends become spaces, runs of
 * spaces one space; ASCII folded (matching below is then upper case). */
static char *imap_subject_normalize(const char *raw)
{
	char *decoded = mime_header_decode(raw, strlen(raw));
	char *out = xmalloc(strlen(decoded) + 1), *o = out;
	for (const char *p = decoded; *p != '\0'; p++) {
		char c = *p == '\t' || *p == '\r' || *p == '\n' ? ' ' : *p;
		if (c == ' ' && o > out && o[-1] == ' ')
			continue;
		*o++ = c;
	}
	*o = '\0';
	free(decoded);
	imap_casemap(out);
	return out;
}

/* subj-blob = "[" *BLOBCHAR "]" *WSP; returns the length, 0 if none. */
static size_t imap_subj_blob(const char *s, size_t len)
{
	size_t i = 1;
	if (len == 0 || s[0] != '[')
		return 0;
	while (i < len && s[i] != '[' && s[i] != ']')
		i++;
	if (i >= len || s[i] != ']')
		return 0;
	for (i++; i < len && s[i] == ' '; i++)
		;
	return i;
}

/* subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":" */
static size_t imap_subj_refwd(const char *s, size_t len)
{
	size_t i;
	if (len >= 2 && strncmp(s, "RE", 2) == 0)
		i = 2;
	else if (len >= 2 && strncmp(s, "FW", 2) == 0)
		i = len >= 3 && s[2] == 'D' ? 3 : 2;
	else
		return 0;
	while (i < len && s[i] == ' ')
		i++;
	i += imap_subj_blob(s + i, len - i);
	return i < len && s[i] == ':' ? i + 1 : 0;
}

/* subj-leader = (*subj-blob subj-refwd) / WSP */
static size_t imap_subj_leader(const char *s, size_t len)
{
	size_t i = 0, n;
	if (len > 0 && s[0] == ' ')
		return 1;
	while ((n = imap_subj_blob(s + i, len - i)) > 0)
		i += n;
	n = imap_subj_refwd(s + i, len - i);
	return n > 0 ? i + n : 0;
}

/* Step 2: trailing "(fwd)" and whitespace. */
static void imap_subj_trailers(const char *s, size_t *len, bool *reply)
{
	for (;;) {
		if (*len > 0 && s[*len - 1] == ' ') {
			(*len)--;
		} else if (*len >= 5 && strncmp(s + *len - 5, "(FWD)", 5) == 0) {
			*len -= 5;
			*reply = true;
		} else {
			return;
		}
	}
}

/* Steps 3 to 5: leaders and blobs, until none is left. */
static void imap_subj_leaders(const char *s, size_t *start, size_t len, bool *reply)
{
	bool changed = true;
	while (changed) {
		changed = false;
		size_t n;
		while ((n = imap_subj_leader(s + *start, len - *start)) > 0) {
			if (s[*start] != ' ')
				*reply = true;
			*start += n;
			changed = true;
		}
		n = imap_subj_blob(s + *start, len - *start);
		if (n > 0 && *start + n < len) {
			*start += n;
			changed = true;
		}
	}
}

char *imap_base_subject(const char *raw, bool *reply_r)
{
	char *s = imap_subject_normalize(raw != NULL ? raw : "");
	size_t start = 0, len = strlen(s);
	bool reply = false;
	for (;;) {
		imap_subj_trailers(s, &len, &reply);
		imap_subj_leaders(s, &start, len, &reply);
		/* step 6: "[fwd:" ... "]" around the rest */
		if (len - start < 6 || strncmp(s + start, "[FWD:", 5) != 0 || s[len - 1] != ']')
			break;
		start += 5;
		len--;
		reply = true;
	}
	char *out = xstrndup(s + start, len - start);
	free(s);
	if (reply_r != NULL)
		*reply_r = reply;
	return out;
}

/* ---- sent date (RFC 5322 3.3, obsolete forms) ---- */

static const char *imap_skip_cfws(const char *p)
{
	for (;;) {
		p += strspn(p, " \t\r\n");
		if (*p != '(')
			return p;
		int depth = 0;
		for (; *p != '\0'; p++) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '(')
				depth++;
			else if (*p == ')' && --depth == 0)
				break;
		}
		if (*p == '\0')
			return p;
		p++;
	}
}

/* Up to max digits; -1 when there is none. */
static int imap_digits(const char **pp, int max, int *n_r)
{
	const char *p = *pp;
	int n = 0, i = 0;
	for (; i < max && *p >= '0' && *p <= '9'; i++, p++)
		n = n * 10 + (*p - '0');
	if (i == 0)
		return -1;
	*pp = p;
	*n_r = n;
	return i;
}

static int imap_month(const char **pp)
{
	static const char months[] = "JANFEBMARAPRMAYJUNJULAUGSEPOCTNOVDEC";
	char m[4] = {0};
	const char *p = *pp;
	for (int i = 0; i < 3; i++) {
		if (p[i] == '\0')
			return -1;
		m[i] = p[i] >= 'a' && p[i] <= 'z' ? (char)(p[i] - 'a' + 'A') : p[i];
	}
	const char *at = strstr(months, m);
	if (at == NULL || (at - months) % 3 != 0)
		return -1;
	for (p += 3; (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'); p++)
		; /* "July" */
	*pp = p;
	return (int)((at - months) / 3);
}

static const struct {
	const char *name;
	int hours;
} imap_zones[] = {
        {"UT", 0},   {"GMT", 0},  {"Z", 0},    {"EST", -5}, {"EDT", -4}, {"CST", -6},
        {"CDT", -5}, {"MST", -7}, {"MDT", -6}, {"PST", -8}, {"PDT", -7},
};

/* Seconds east of UTC; an unknown or missing zone counts as UTC (RFC
 * 5322 4.3: military zones are "-0000"). */
static long imap_zone(const char *p)
{
	int n;
	if ((*p == '+' || *p == '-') && p[1] >= '0' && p[1] <= '9') {
		const char *d = p + 1;
		if (imap_digits(&d, 4, &n) != 4 || n % 100 > 59)
			return 0;
		long off = (long)(n / 100) * 3600 + (long)(n % 100) * 60;
		return *p == '-' ? -off : off;
	}
	size_t len = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
	for (size_t i = 0; i < sizeof(imap_zones) / sizeof(imap_zones[0]); i++) {
		if (strlen(imap_zones[i].name) == len &&
		    strncasecmp(p, imap_zones[i].name, len) == 0)
			return (long)imap_zones[i].hours * 3600;
	}
	return 0;
}

/* "hh:mm[:ss]" */
static int imap_time_of_day(const char **pp, struct tm *tm)
{
	const char *p = *pp;
	if (imap_digits(&p, 2, &tm->tm_hour) < 0 || *p++ != ':' ||
	    imap_digits(&p, 2, &tm->tm_min) < 0)
		return -1;
	if (*p == ':') {
		p++;
		if (imap_digits(&p, 2, &tm->tm_sec) < 0)
			return -1;
	}
	*pp = p;
	return tm->tm_hour > 23 || tm->tm_min > 59 || tm->tm_sec > 60 ? -1 : 0;
}

int imap_sort_date_parse(const char *value, time_t *t_r)
{
	struct tm tm = {0};
	const char *p = imap_skip_cfws(value);
	int year, ylen;
	if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) {
		p += strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
		p = imap_skip_cfws(p);
		if (*p == ',')
			p = imap_skip_cfws(p + 1);
	}
	if (imap_digits(&p, 2, &tm.tm_mday) < 0 || tm.tm_mday < 1 || tm.tm_mday > 31)
		return -1;
	p = imap_skip_cfws(p);
	if ((tm.tm_mon = imap_month(&p)) < 0)
		return -1;
	p = imap_skip_cfws(p);
	if ((ylen = imap_digits(&p, 4, &year)) < 2)
		return -1;
	/* RFC 5322 4.3: two digits under 50 are 20xx, others 19xx */
	if (ylen == 2 && year < 50)
		year += 2000;
	else if (ylen < 4)
		year += 1900;
	tm.tm_year = year - 1900;
	p = imap_skip_cfws(p);
	if (imap_time_of_day(&p, &tm) < 0)
		return -1;
	*t_r = timegm(&tm) - (time_t)imap_zone(imap_skip_cfws(p));
	return 0;
}

/* ---- msg-ids (RFC 5256: normalized so that quoting does not matter) ---- */

static const char *imap_skip_quoted(const char *p)
{
	for (p++; *p != '\0' && *p != '"'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
	}
	return *p == '"' ? p + 1 : p;
}

/* The inside of "<...>" with quotes, escapes, comments and blanks
 * removed; NULL when it is not local@domain. *pp moves past '>'. */
static char *imap_msgid_one(const char **pp)
{
	const char *p = *pp + 1;
	struct buf id = BUF_INIT(0);
	while (*p != '\0' && *p != '>') {
		if (*p == '(') {
			p = imap_skip_cfws(p);
			continue;
		}
		if (*p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '"' || *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' ||
		         *p == '<') {
			p++;
			continue;
		}
		buf_append_char(&id, *p++);
	}
	*pp = *p == '>' ? p + 1 : p;
	const char *s = buf_str(&id), *at = strchr(s, '@');
	if (*p != '>' || at == NULL || at == s || at[1] == '\0') {
		buf_free(&id);
		return NULL;
	}
	return buf_steal(&id);
}

size_t imap_msgid_list(const char *value, char ***ids_r, size_t max)
{
	char **ids = NULL;
	size_t n = 0, size = 0;
	const char *p = value;
	while (*p != '\0' && n < max) {
		if (*p == '(') {
			p = imap_skip_cfws(p);
		} else if (*p == '"') {
			p = imap_skip_quoted(p);
		} else if (*p == '<') {
			char *id = imap_msgid_one(&p);
			if (id == NULL)
				continue;
			if (n == size) {
				size = size == 0 ? 4 : size * 2;
				ids = xreallocarray(ids, size, sizeof(*ids));
			}
			ids[n++] = id;
		} else {
			p++;
		}
	}
	*ids_r = ids;
	return n;
}

/* ---- addresses ---- */

static const struct mime_address *imap_first_address(const struct mime_address *list)
{
	for (; list != NULL; list = list->next) {
		if (list->host != NULL && list->mailbox != NULL)
			return list;
	}
	return NULL;
}

static char *imap_decode_fold(const char *s)
{
	char *out = mime_header_decode(s, strlen(s));
	imap_casemap(out);
	return out;
}

/* addr-mailbox and RFC 5957's display form of the first address. */
static void imap_sort_address(const char *value, char **mailbox_r, char **display_r)
{
	struct mime_address *list =
	        value != NULL ? mime_address_parse(value, strlen(value), IMAP_SORT_MAX_ADDRS)
	                      : NULL;
	const struct mime_address *a = imap_first_address(list);
	if (a == NULL) {
		*mailbox_r = xstrdup("");
		*display_r = xstrdup("");
	} else {
		*mailbox_r = imap_decode_fold(a->mailbox);
		*display_r = a->name != NULL ? imap_decode_fold(a->name) : xstrdup("");
		if ((*display_r)[0] == '\0') {
			free(*display_r);
			*display_r = a->host[0] != '\0' ? xasprintf("%s@%s", *mailbox_r, a->host)
			                                : xstrdup(*mailbox_r);
			imap_casemap(*display_r);
		}
	}
	mime_address_free(&list);
}

/* ---- one message ---- */

static void imap_sort_fill_refs(struct imap_sort_msg *msg, const char *header, size_t len)
{
	char *value = mime_header_get(header, len, "Message-ID"), **ids;
	if (value != NULL && imap_msgid_list(value, &ids, 1) == 1) {
		msg->message_id = ids[0];
		free(ids);
	}
	free(value);
	value = mime_header_get(header, len, "References");
	if (value != NULL)
		msg->ref_count = imap_msgid_list(value, &msg->refs, IMAP_SORT_MAX_REFS);
	free(value);
	if (msg->ref_count > 0)
		return;
	free(msg->refs);
	msg->refs = NULL;
	/* RFC 5256 2.2 step 1: else the first valid In-Reply-To msg-id */
	value = mime_header_get(header, len, "In-Reply-To");
	if (value != NULL)
		msg->ref_count = imap_msgid_list(value, &msg->refs, 1);
	free(value);
}

void imap_sort_msg_fill(struct imap_sort_msg *msg, const char *header, size_t len,
                        unsigned int needs)
{
	char *value;
	if ((needs & IMAP_SORT_NEED_SUBJECT) != 0) {
		value = mime_header_get(header, len, "Subject");
		msg->subject = imap_base_subject(value, &msg->reply);
		free(value);
	}
	if ((needs & IMAP_SORT_NEED_DATE) != 0) {
		time_t t;
		value = mime_header_get(header, len, "Date");
		if (value != NULL && imap_sort_date_parse(value, &t) == 0)
			msg->sent = t;
		free(value);
	}
	if ((needs & IMAP_SORT_NEED_ADDR) != 0) {
		value = mime_header_get(header, len, "From");
		imap_sort_address(value, &msg->from, &msg->display_from);
		free(value);
		value = mime_header_get(header, len, "To");
		imap_sort_address(value, &msg->to, &msg->display_to);
		free(value);
		value = mime_header_get(header, len, "Cc");
		char *unused;
		imap_sort_address(value, &msg->cc, &unused);
		free(unused);
		free(value);
	}
	if ((needs & IMAP_SORT_NEED_REFS) != 0)
		imap_sort_fill_refs(msg, header, len);
}

/* Where the header block ends (after its blank line), or 0. */
static size_t imap_header_end(const char *data, size_t len, size_t from)
{
	if (len >= 1 && data[0] == '\n')
		return 1;
	if (len >= 2 && data[0] == '\r' && data[1] == '\n')
		return 2;
	for (size_t i = from; i + 1 < len; i++) {
		if (data[i] != '\n')
			continue;
		if (data[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && data[i + 1] == '\r' && data[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* The header block, or as much of it as the limit allows. */
static size_t imap_sort_read_header(int fd, struct buf *out)
{
	char chunk[8192];
	uint64_t off = 0;
	for (;;) {
		ssize_t n = pread(fd, chunk, sizeof(chunk), (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return out->len;
		size_t from = out->len > 2 ? out->len - 2 : 0;
		size_t room = IMAP_SORT_HEADER_MAX - out->len;
		if (buf_append(out, chunk, (size_t)n < room ? (size_t)n : room) < 0 ||
		    (size_t)n >= room)
			return out->len;
		off += (uint64_t)n;
		size_t end = imap_header_end(out->data, out->len, from);
		if (end > 0)
			return end;
	}
}

static void imap_sort_msg_empty(struct imap_sort_msg *msg, unsigned int needs)
{
	imap_sort_msg_fill(msg, "", 0, needs);
}

void imap_sort_msg_load(struct imap_session *sess, size_t idx, unsigned int needs,
                        struct imap_sort_msg *msg)
{
	const struct store_msg *sm = &sess->mbox->msgs[idx];
	memset(msg, 0, sizeof(*msg));
	msg->seq = (uint32_t)(idx + 1);
	msg->uid = sm->uid;
	msg->size = sm->vsize;
	msg->arrival = sm->internal_date;
	msg->sent = sm->internal_date;
	if (needs == 0)
		return;
	enum store_error err;
	const char *error;
	int fd = store_msg_open(sess->store, sess->mbox->name, sm->uid, &err, &error);
	if (fd < 0) {
		/* expunged by another session meanwhile: it still sorts */
		imap_sort_msg_empty(msg, needs);
		return;
	}
	struct buf header = BUF_INIT(IMAP_SORT_HEADER_MAX);
	size_t len = imap_sort_read_header(fd, &header);
	close(fd);
	imap_sort_msg_fill(msg, buf_str(&header), len, needs);
	buf_free(&header);
}

void imap_sort_msg_clear(struct imap_sort_msg *msg)
{
	free(msg->subject);
	free(msg->from);
	free(msg->to);
	free(msg->cc);
	free(msg->display_from);
	free(msg->display_to);
	free(msg->message_id);
	for (size_t i = 0; i < msg->ref_count; i++)
		free(msg->refs[i]);
	free(msg->refs);
	memset(msg, 0, sizeof(*msg));
}

/* ---- criteria and the sort ---- */

static const struct {
	const char *name;
	enum imap_sort_key key;
	unsigned int needs;
	bool display; /* SORT=DISPLAY (RFC 5957) */
} imap_sort_keys[] = {
        {"ARRIVAL", IMAP_SORT_ARRIVAL, 0, false},
        {"CC", IMAP_SORT_CC, IMAP_SORT_NEED_ADDR, false},
        {"DATE", IMAP_SORT_DATE, IMAP_SORT_NEED_DATE, false},
        {"FROM", IMAP_SORT_FROM, IMAP_SORT_NEED_ADDR, false},
        {"SIZE", IMAP_SORT_SIZE, 0, false},
        {"SUBJECT", IMAP_SORT_SUBJECT, IMAP_SORT_NEED_SUBJECT, false},
        {"TO", IMAP_SORT_TO, IMAP_SORT_NEED_ADDR, false},
        {"DISPLAYFROM", IMAP_SORT_DISPLAYFROM, IMAP_SORT_NEED_ADDR, true},
        {"DISPLAYTO", IMAP_SORT_DISPLAYTO, IMAP_SORT_NEED_ADDR, true},
};
#define IMAP_SORT_KEY_COUNT (sizeof(imap_sort_keys) / sizeof(imap_sort_keys[0]))

static int imap_sort_key_find(const char *name, bool display)
{
	for (size_t i = 0; i < IMAP_SORT_KEY_COUNT; i++) {
		if (strcasecmp(name, imap_sort_keys[i].name) == 0 &&
		    (display || !imap_sort_keys[i].display))
			return (int)i;
	}
	return -1;
}

int imap_sort_parse_criteria(const char *const *names, unsigned int count, bool display,
                             struct imap_sort_criterion *crit, const char **error_r)
{
	unsigned int n = 0;
	bool reverse = false;
	for (unsigned int i = 0; i < count; i++) {
		if (strcasecmp(names[i], "REVERSE") == 0 && !reverse) {
			reverse = true;
			continue;
		}
		int k = imap_sort_key_find(names[i], display);
		if (k < 0 || n == IMAP_SORT_MAX_KEYS) {
			*error_r = k < 0 ? "Unknown sort criterion" : "Too many sort criteria";
			return -1;
		}
		crit[n].key = imap_sort_keys[k].key;
		crit[n++].reverse = reverse;
		reverse = false;
	}
	if (n == 0 || reverse) {
		*error_r = n == 0 ? "Empty sort criteria" : "REVERSE without a criterion";
		return -1;
	}
	crit[n].key = IMAP_SORT_END;
	crit[n].reverse = false;
	return 0;
}

unsigned int imap_sort_needs(const struct imap_sort_criterion *crit)
{
	unsigned int needs = 0;
	for (; crit->key != IMAP_SORT_END; crit++) {
		for (size_t i = 0; i < IMAP_SORT_KEY_COUNT; i++) {
			if (imap_sort_keys[i].key == crit->key)
				needs |= imap_sort_keys[i].needs;
		}
	}
	return needs;
}

static int imap_cmp_num(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b ? 1 : 0;
}

static int imap_cmp_time(time_t a, time_t b)
{
	return a < b ? -1 : a > b ? 1 : 0;
}

static const char *imap_sort_string(const struct imap_sort_msg *m, enum imap_sort_key key)
{
	switch (key) {
	case IMAP_SORT_CC:
		return m->cc;
	case IMAP_SORT_FROM:
		return m->from;
	case IMAP_SORT_SUBJECT:
		return m->subject;
	case IMAP_SORT_TO:
		return m->to;
	case IMAP_SORT_DISPLAYFROM:
		return m->display_from;
	default:
		return m->display_to;
	}
}

static int imap_sort_cmp_key(const struct imap_sort_msg *a, const struct imap_sort_msg *b,
                             enum imap_sort_key key)
{
	switch (key) {
	case IMAP_SORT_ARRIVAL:
		return imap_cmp_time(a->arrival, b->arrival);
	case IMAP_SORT_DATE:
		return imap_cmp_time(a->sent, b->sent);
	case IMAP_SORT_SIZE:
		return imap_cmp_num(a->size, b->size);
	default: {
		const char *sa = imap_sort_string(a, key), *sb = imap_sort_string(b, key);
		/* folded already: i;ascii-casemap is now an octet compare */
		return strcmp(sa != NULL ? sa : "", sb != NULL ? sb : "");
	}
	}
}

static int imap_sort_cmp(const void *pa, const void *pb, void *context)
{
	const struct imap_sort_msg *a = *(const struct imap_sort_msg *const *)pa;
	const struct imap_sort_msg *b = *(const struct imap_sort_msg *const *)pb;
	const struct imap_sort_criterion *crit = context;
	for (; crit->key != IMAP_SORT_END; crit++) {
		int c = imap_sort_cmp_key(a, b, crit->key);
		if (c != 0)
			return crit->reverse ? -c : c;
	}
	/* RFC 5256 3: the implicit last key, never reversed */
	return imap_cmp_num(a->seq, b->seq);
}

void imap_sort_msgs(struct imap_sort_msg **msgs, size_t count,
                    const struct imap_sort_criterion *crit)
{
	qsort_r(msgs, count, sizeof(*msgs), imap_sort_cmp, (void *)crit);
}

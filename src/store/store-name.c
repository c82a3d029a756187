/* Mailbox names <-> Maildir++ folder names, and message file names. */
#include "store/store-private.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/strnum.h"
#include "lib/xmalloc.h"

#define STORE_NAME_MAX 255

static const struct {
	char letter;
	unsigned int flag;
} store_flag_letters[] = {
        /* ASCII order, as Maildir requires */
        {'D', STORE_FLAG_DRAFT}, {'F', STORE_FLAG_FLAGGED}, {'R', STORE_FLAG_ANSWERED},
        {'S', STORE_FLAG_SEEN},  {'T', STORE_FLAG_DELETED},
};
#define STORE_FLAG_LETTER_COUNT (sizeof(store_flag_letters) / sizeof(store_flag_letters[0]))

static int store_name_check_bytes(const char *name, const char **error_r)
{
	size_t len = strlen(name);
	if (len == 0) {
		*error_r = "empty mailbox name";
		return -1;
	}
	if (len > STORE_NAME_MAX) {
		*error_r = "mailbox name too long";
		return -1;
	}
	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			*error_r = "control character in mailbox name";
			return -1;
		}
	}
	return 0;
}

static int store_name_check_component(const char *comp, size_t len, const char **error_r)
{
	if (len == 0) {
		*error_r = "empty component in mailbox name";
		return -1;
	}
	if ((len == 1 && comp[0] == '.') || (len == 2 && comp[0] == '.' && comp[1] == '.')) {
		*error_r = "\".\" or \"..\" in mailbox name";
		return -1;
	}
	return 0;
}

int store_name_normalize(const char *name, char **canon_r, const char **error_r)
{
	if (store_name_check_bytes(name, error_r) < 0)
		return -1;
	const char *p = name;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash != NULL ? (size_t)(slash - p) : strlen(p);
		if (store_name_check_component(p, len, error_r) < 0)
			return -1;
		if (slash == NULL)
			break;
		p = slash + 1;
	}
	char *canon = xstrdup(name);
	/* "INBOX" is case-insensitive, also as the first component of a child. */
	if (strncasecmp(canon, "INBOX", 5) == 0 && (canon[5] == '\0' || canon[5] == '/'))
		memcpy(canon, "INBOX", 5);
	char *folder = store_name_to_folder(canon);
	bool bad = strlen(folder) > NAME_MAX || strcmp(folder, STORE_POP3_LOCK_FILE) == 0 ||
	           strcmp(folder, STORE_REBUILD_LOCK_FILE) == 0 ||
	           strcmp(folder, STORE_NOTIFY_FILE) == 0;
	free(folder);
	if (bad) {
		free(canon);
		*error_r = "mailbox name not allowed";
		return -1;
	}
	*canon_r = canon;
	return 0;
}

/* "" for INBOX; otherwise "." + components joined by '.', with '.', '/'
 * and '%' inside a component written as %2E, %2F, %25. */
char *store_name_to_folder(const char *canon)
{
	if (strcmp(canon, "INBOX") == 0)
		return xstrdup("");
	struct buf b = BUF_INIT(0);
	buf_append_char(&b, '.');
	for (const char *p = canon; *p != '\0'; p++) {
		if (*p == '/')
			buf_append_char(&b, '.');
		else if (*p == '.')
			buf_append_str(&b, "%2E");
		else if (*p == '%')
			buf_append_str(&b, "%25");
		else
			buf_append_char(&b, *p);
	}
	return buf_steal(&b);
}


/* Decodes a folder name found on disk; refuses anything that does not
 * round-trip exactly (so each mailbox has one folder). */
int store_folder_to_name(const char *folder, char **name_r)
{
	if (folder[0] == '\0') {
		*name_r = xstrdup("INBOX");
		return 0;
	}
	if (folder[0] != '.' || folder[1] == '\0')
		return -1;
	struct buf b = BUF_INIT(STORE_NAME_MAX);
	int ret = 0;
	for (const char *p = folder + 1; *p != '\0' && ret == 0; p++) {
		if (*p == '.') {
			ret = buf_append_char(&b, '/');
		} else if (*p == '%') {
			int hi = hex_digit_value(p[1]);
			int lo = hi < 0 ? -1 : hex_digit_value(p[2]);
			if (lo < 0 || hi * 16 + lo == '/')
				ret = -1;
			else
				ret = buf_append_char(&b, (char)(hi * 16 + lo));
			p += 2;
		} else {
			ret = buf_append_char(&b, *p);
		}
	}
	char *canon = NULL;
	const char *error;
	if (ret == 0 && store_name_normalize(buf_str(&b), &canon, &error) == 0) {
		char *back = store_name_to_folder(canon);
		if (strcmp(back, folder) != 0)
			ret = -1;
		free(back);
	} else {
		ret = -1;
	}
	buf_free(&b);
	if (ret < 0) {
		free(canon);
		return -1;
	}
	*name_r = canon;
	return 0;
}

char *store_folder_path(const char *root, const char *canon)
{
	char *folder = store_name_to_folder(canon);
	char *path = folder[0] == '\0' ? xstrdup(root) : xasprintf("%s/%s", root, folder);
	free(folder);
	return path;
}

static void store_host_part(char *out, size_t room)
{
	char host[256];
	if (gethostname(host, sizeof(host)) < 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	if (host[0] == '\0')
		memcpy(host, "localhost", sizeof("localhost"));
	size_t i;
	for (i = 0; host[i] != '\0' && i < room; i++) {
		unsigned char c = (unsigned char)host[i];
		/* ',' ':' '/' have meanings in the file name; keep 0x21-0x7e only */
		out[i] = (c <= 0x20 || c >= 0x7f || c == '/' || c == ':' || c == ',') ? '_'
		                                                                      : (char)c;
	}
	out[i] = '\0';
}

/* A unique base: <sec>.M<usec>P<pid>Q<counter>R<random>.<host>, at most
 * STORE_BASE_MAX bytes so that it can serve as the POP3 UIDL. */
char *store_new_base(void)
{
	static unsigned int counter;
	struct timeval tv;
	uint32_t rnd = 0;

	gettimeofday(&tv, NULL);
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		rnd = (uint32_t)tv.tv_usec ^ ((uint32_t)getpid() << 12) ^ counter;
	char *prefix = xasprintf("%lld.M%ldP%ldQ%uR%08x.", (long long)tv.tv_sec, (long)tv.tv_usec,
	                         (long)getpid(), ++counter, rnd);
	size_t used = strlen(prefix);
	size_t room = used < STORE_BASE_MAX ? STORE_BASE_MAX - used : 1;
	if (room > STORE_HOST_MAX)
		room = STORE_HOST_MAX;
	char host[STORE_HOST_MAX + 1];
	store_host_part(host, room);
	char *base = xasprintf("%s%s", prefix, host);
	free(prefix);
	return base;
}

static unsigned int store_flags_parse(const char *letters)
{
	unsigned int flags = 0;
	for (const char *p = letters; *p != '\0'; p++) {
		for (size_t i = 0; i < STORE_FLAG_LETTER_COUNT; i++) {
			if (store_flag_letters[i].letter == *p)
				flags |= store_flag_letters[i].flag;
		}
	}
	return flags;
}

static void store_fname_field(struct store_fname *fn, const char *field, size_t len)
{
	uint64_t v;
	if (len < 3 || field[1] != '=' || strn_to_uint64(field + 2, len - 2, &v) < 0)
		return;
	switch (field[0]) {
	case 'S':
		fn->size = v;
		fn->has_size = true;
		break;
	case 'W':
		fn->vsize = v;
		fn->has_vsize = true;
		break;
	case 'U':
		if (v > 0 && v <= UINT32_MAX) {
			fn->uid = (uint32_t)v;
			fn->has_uid = true;
		}
		break;
	case 'M':
		fn->modseq = v;
		fn->has_modseq = true;
		break;
	default:
		break;
	}
}

/* rel is "new/NAME" or "cur/NAME". Returns -1 for names that are not
 * messages (dot files, empty base). */
int store_fname_parse(const char *rel, struct store_fname *fn_r)
{
	memset(fn_r, 0, sizeof(*fn_r));
	if (strncmp(rel, "cur/", 4) == 0)
		fn_r->in_cur = true;
	else if (strncmp(rel, "new/", 4) != 0)
		return -1;
	const char *name = rel + 4;
	const char *colon = strchr(name, ':');
	size_t main_len = colon != NULL ? (size_t)(colon - name) : strlen(name);
	if (colon != NULL && strncmp(colon, ":2,", 3) == 0) {
		fn_r->has_info = true;
		fn_r->flags = store_flags_parse(colon + 3);
	}
	const char *comma = memchr(name, ',', main_len);
	size_t base_len = comma != NULL ? (size_t)(comma - name) : main_len;
	if (base_len == 0 || name[0] == '.')
		return -1;
	fn_r->base = xstrndup(name, base_len);
	const char *end = name + main_len;
	for (const char *p = comma; p != NULL && p < end;) {
		p++;
		const char *next = memchr(p, ',', (size_t)(end - p));
		size_t len = next != NULL ? (size_t)(next - p) : (size_t)(end - p);
		store_fname_field(fn_r, p, len);
		p = next;
	}
	return 0;
}

void store_fname_free(struct store_fname *fn)
{
	xfree(fn->base);
}

char *store_fname_build(const char *base, bool in_cur, uint64_t size, uint64_t vsize, uint32_t uid,
                        uint64_t modseq, unsigned int flags)
{
	char letters[STORE_FLAG_LETTER_COUNT + 1];
	size_t n = 0;
	for (size_t i = 0; i < STORE_FLAG_LETTER_COUNT; i++) {
		if ((flags & store_flag_letters[i].flag) != 0)
			letters[n++] = store_flag_letters[i].letter;
	}
	letters[n] = '\0';
	return xasprintf("%s/%s,S=%llu,W=%llu,U=%u,M=%llu%s%s", in_cur ? "cur" : "new", base,
	                 (unsigned long long)size, (unsigned long long)vsize, uid,
	                 (unsigned long long)modseq, in_cur ? ":2," : "", letters);
}

/* The base when it is a valid UIDL (1-70 chars 0x21-0x7e, RFC 1939); a
 * stable hash of it for foreign file names that are not. */
char *store_uidl(const char *base)
{
	size_t len = strlen(base);
	bool ok = len > 0 && len <= STORE_BASE_MAX;
	for (const unsigned char *p = (const unsigned char *)base; ok && *p != '\0'; p++)
		ok = *p >= 0x21 && *p <= 0x7e;
	if (ok)
		return xstrdup(base);
	uint64_t h = 14695981039346656037ULL;
	for (const unsigned char *p = (const unsigned char *)base; *p != '\0'; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return xasprintf("X%016llx", (unsigned long long)h);
}

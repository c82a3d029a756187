/* The envelope file of a queued message: one `key value` line each, values
 * %XX-escaped where they hold control bytes or '%', recipients as a `rcpt`
 * line followed by their own keys, and a final `end` line so that a torn
 * file is refused (docs/queue.md). Written by temp file + fsync + rename +
 * fsync of the folder, so a reader sees the old or the new file whole. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fdio.h"
#include "lib/strnum.h"
#include "lib/xmalloc.h"
#include "smtp/queue-private.h"

#define QUEUE_FORMAT_LINE "yubin-queue 1"

const char *const queue_rcpt_state_names[] = {
	[QUEUE_RCPT_PENDING] = "pending",
	[QUEUE_RCPT_DELIVERED] = "delivered",
	[QUEUE_RCPT_FAILED] = "failed",
	[QUEUE_RCPT_HELD] = "held",
	NULL,
};
static const char *const ret_names[] = { "default", "full", "hdrs", NULL };
static const char *const body_names[] = { "7bit", "8bitmime", "binarymime", NULL };

/* ---- writing ---- */

static void put_escaped(struct buf *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '%')
			buf_printf(out, "%%%02X", *p);
		else
			buf_append_char(out, (char)*p);
	}
}

static void put_line(struct buf *out, const char *key, const char *value)
{
	if (value == NULL)
		return;
	buf_append_str(out, key);
	buf_append_char(out, ' ');
	put_escaped(out, value);
	buf_append_char(out, '\n');
}

static void put_rcpt(struct buf *out, const struct queue_rcpt *r,
		     const struct queue_rcpt_status *st)
{
	put_line(out, "rcpt", r->address);
	put_line(out, "orcpt", r->orcpt);
	buf_printf(out, "notify %u\nstate %s\nattempts %u\nnext %lld\n", r->notify,
		   queue_rcpt_state_names[st->state], st->attempts, (long long)st->next_attempt);
	put_line(out, "reply", st->last_reply);
}

void queue_entry_format(const struct queue_entry *entry, struct buf *out)
{
	const struct queue_envelope *env = &entry->env;
	buf_printf(out, QUEUE_FORMAT_LINE "\narrival %lld\nsize %llu\n", (long long)entry->arrival,
		   (unsigned long long)entry->size);
	put_line(out, "sender", env->sender);
	put_line(out, "origin", env->origin);
	put_line(out, "envid", env->envid);
	buf_printf(out, "ret %s\nbody %s\nsmtputf8 %s\nwarned %s\n", ret_names[env->ret],
		   body_names[env->body], env->smtputf8 ? "yes" : "no",
		   entry->warned ? "yes" : "no");
	for (size_t i = 0; i < env->rcpt_count; i++)
		put_rcpt(out, &env->rcpts[i], &entry->status[i]);
	buf_append_str(out, "end\n");
}

/* ---- parsing ---- */

struct parse_state {
	struct queue_entry *entry;
	bool seen_format, seen_end, seen_sender;
	const char *error;
};

static int unescape(const char *s, size_t len, char **out_r)
{
	char *out = xmalloc(len + 1);
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '%') {
			out[o++] = s[i];
			continue;
		}
		int hi = i + 2 < len ? hex_digit_value((unsigned char)s[i + 1]) : -1;
		int lo = i + 2 < len ? hex_digit_value((unsigned char)s[i + 2]) : -1;
		/* A NUL would cut the string short: never written, refused. */
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
			free(out);
			return -1;
		}
		out[o++] = (char)(hi * 16 + lo);
		i += 2;
	}
	out[o] = '\0';
	*out_r = out;
	return 0;
}

static int word_index(const char *const *words, const char *value)
{
	for (int i = 0; words[i] != NULL; i++) {
		if (strcmp(words[i], value) == 0)
			return i;
	}
	return -1;
}

static struct queue_rcpt_status *last_status(struct parse_state *ps)
{
	struct queue_entry *e = ps->entry;
	return e->env.rcpt_count == 0 ? NULL : &e->status[e->env.rcpt_count - 1];
}

static int set_string(char **field, const char *value)
{
	if (*field != NULL)
		return -1;
	*field = xstrdup(value);
	return 0;
}

static int key_arrival(struct parse_state *ps, const char *v)
{
	uint64_t n;
	if (str_to_uint64(v, &n) < 0)
		return -1;
	ps->entry->arrival = (time_t)n;
	return 0;
}

static int key_size(struct parse_state *ps, const char *v)
{
	return str_to_uint64(v, &ps->entry->size);
}

static int key_sender(struct parse_state *ps, const char *v)
{
	ps->seen_sender = true;
	return set_string(&ps->entry->env.sender, v);
}

static int key_origin(struct parse_state *ps, const char *v)
{
	return set_string(&ps->entry->env.origin, v);
}

static int key_envid(struct parse_state *ps, const char *v)
{
	return set_string(&ps->entry->env.envid, v);
}

static int key_ret(struct parse_state *ps, const char *v)
{
	int i = word_index(ret_names, v);
	ps->entry->env.ret = (enum queue_ret)i;
	return i < 0 ? -1 : 0;
}

static int key_body(struct parse_state *ps, const char *v)
{
	int i = word_index(body_names, v);
	ps->entry->env.body = (enum queue_body)i;
	return i < 0 ? -1 : 0;
}

static int parse_yes_no(const char *v, bool *out)
{
	if (strcmp(v, "yes") != 0 && strcmp(v, "no") != 0)
		return -1;
	*out = strcmp(v, "yes") == 0;
	return 0;
}

static int key_smtputf8(struct parse_state *ps, const char *v)
{
	return parse_yes_no(v, &ps->entry->env.smtputf8);
}

static int key_warned(struct parse_state *ps, const char *v)
{
	return parse_yes_no(v, &ps->entry->warned);
}

static int key_rcpt(struct parse_state *ps, const char *v)
{
	struct queue_entry *e = ps->entry;
	size_t n = e->env.rcpt_count + 1;
	e->env.rcpts = xreallocarray(e->env.rcpts, n, sizeof(*e->env.rcpts));
	e->status = xreallocarray(e->status, n, sizeof(*e->status));
	memset(&e->env.rcpts[n - 1], 0, sizeof(e->env.rcpts[0]));
	memset(&e->status[n - 1], 0, sizeof(e->status[0]));
	e->env.rcpts[n - 1].address = xstrdup(v);
	e->env.rcpt_count = n;
	return v[0] == '\0' ? -1 : 0;
}

static int key_orcpt(struct parse_state *ps, const char *v)
{
	struct queue_entry *e = ps->entry;
	if (e->env.rcpt_count == 0)
		return -1;
	return set_string(&e->env.rcpts[e->env.rcpt_count - 1].orcpt, v);
}

static int key_notify(struct parse_state *ps, const char *v)
{
	struct queue_entry *e = ps->entry;
	uint32_t n;
	if (e->env.rcpt_count == 0 || str_to_uint32(v, &n) < 0 || n > 0xf)
		return -1;
	e->env.rcpts[e->env.rcpt_count - 1].notify = n;
	return 0;
}

static int key_state(struct parse_state *ps, const char *v)
{
	struct queue_rcpt_status *st = last_status(ps);
	int i = word_index(queue_rcpt_state_names, v);
	if (st == NULL || i < 0)
		return -1;
	st->state = (enum queue_rcpt_state)i;
	return 0;
}

static int key_attempts(struct parse_state *ps, const char *v)
{
	struct queue_rcpt_status *st = last_status(ps);
	return st == NULL ? -1 : str_to_uint32(v, &st->attempts);
}

static int key_next(struct parse_state *ps, const char *v)
{
	struct queue_rcpt_status *st = last_status(ps);
	uint64_t n;
	if (st == NULL || str_to_uint64(v, &n) < 0)
		return -1;
	st->next_attempt = (time_t)n;
	return 0;
}

static int key_reply(struct parse_state *ps, const char *v)
{
	struct queue_rcpt_status *st = last_status(ps);
	return st == NULL ? -1 : set_string(&st->last_reply, v);
}

static const struct {
	const char *key;
	int (*parse)(struct parse_state *ps, const char *value);
} entry_keys[] = {
	{ "arrival", key_arrival },   { "size", key_size },         { "sender", key_sender },
	{ "origin", key_origin },     { "envid", key_envid },       { "ret", key_ret },
	{ "body", key_body },         { "smtputf8", key_smtputf8 }, { "warned", key_warned },
	{ "rcpt", key_rcpt },         { "orcpt", key_orcpt },       { "notify", key_notify },
	{ "state", key_state },       { "attempts", key_attempts }, { "next", key_next },
	{ "reply", key_reply },
};

static int parse_line(struct parse_state *ps, const char *line, size_t len)
{
	if (!ps->seen_format) {
		ps->seen_format = len == strlen(QUEUE_FORMAT_LINE) &&
				  memcmp(line, QUEUE_FORMAT_LINE, len) == 0;
		return ps->seen_format ? 0 : -1;
	}
	if (ps->seen_end)
		return -1;
	if (len == 3 && memcmp(line, "end", 3) == 0) {
		ps->seen_end = true;
		return 0;
	}
	const char *sp = memchr(line, ' ', len);
	if (sp == NULL)
		return -1;
	size_t klen = (size_t)(sp - line);
	char *value;
	if (unescape(sp + 1, len - klen - 1, &value) < 0)
		return -1;
	int ret = -1;
	for (size_t i = 0; i < sizeof(entry_keys) / sizeof(entry_keys[0]); i++) {
		if (strlen(entry_keys[i].key) == klen && memcmp(entry_keys[i].key, line, klen) == 0) {
			ret = entry_keys[i].parse(ps, value);
			break;
		}
	}
	free(value);
	return ret;
}

struct queue_entry *queue_entry_parse(const char *id, const char *text, size_t len,
                                      const char **error_r)
{
	struct parse_state ps = { .entry = xcalloc(1, sizeof(struct queue_entry)) };
	ps.entry->id = xstrdup(id);
	size_t pos = 0;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		if (nl == NULL || parse_line(&ps, text + pos, (size_t)(nl - (text + pos))) < 0) {
			*error_r = nl == NULL ? "the envelope file is torn (no line end)"
					      : "the envelope file has a bad line";
			queue_entry_free(&ps.entry);
			return NULL;
		}
		pos = (size_t)(nl - text) + 1;
	}
	if (!ps.seen_end || !ps.seen_sender || ps.entry->env.rcpt_count == 0) {
		*error_r = "the envelope file is incomplete";
		queue_entry_free(&ps.entry);
		return NULL;
	}
	return ps.entry;
}

/* ---- entries ---- */

void queue_envelope_clear(struct queue_envelope *env)
{
	for (size_t i = 0; i < env->rcpt_count; i++) {
		free(env->rcpts[i].address);
		free(env->rcpts[i].orcpt);
	}
	free(env->rcpts);
	free(env->sender);
	free(env->envid);
	free(env->origin);
	memset(env, 0, sizeof(*env));
}

void queue_entry_free(struct queue_entry **entry)
{
	struct queue_entry *e = *entry;
	if (e == NULL)
		return;
	for (size_t i = 0; i < e->env.rcpt_count; i++)
		free(e->status[i].last_reply);
	free(e->status);
	queue_envelope_clear(&e->env);
	free(e->id);
	free(e);
	*entry = NULL;
}

static char *strdup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

struct queue_entry *queue_entry_new(const char *id, const struct queue_envelope *env, time_t now)
{
	struct queue_entry *e = xcalloc(1, sizeof(*e));
	e->id = xstrdup(id);
	e->arrival = now;
	e->env.sender = xstrdup(env->sender != NULL ? env->sender : "");
	e->env.ret = env->ret;
	e->env.envid = strdup_or_null(env->envid);
	e->env.body = env->body;
	e->env.smtputf8 = env->smtputf8;
	e->env.origin = strdup_or_null(env->origin);
	e->env.rcpt_count = env->rcpt_count;
	e->env.rcpts = xcalloc(env->rcpt_count, sizeof(*e->env.rcpts));
	e->status = xcalloc(env->rcpt_count, sizeof(*e->status));
	for (size_t i = 0; i < env->rcpt_count; i++) {
		e->env.rcpts[i].address = xstrdup(env->rcpts[i].address);
		e->env.rcpts[i].orcpt = strdup_or_null(env->rcpts[i].orcpt);
		e->env.rcpts[i].notify = env->rcpts[i].notify;
	}
	return e;
}

bool queue_entry_finished(const struct queue_entry *entry)
{
	for (size_t i = 0; i < entry->env.rcpt_count; i++) {
		enum queue_rcpt_state st = entry->status[i].state;
		if (st == QUEUE_RCPT_PENDING || st == QUEUE_RCPT_HELD)
			return false;
	}
	return true;
}

/* ---- files ---- */

static char *entry_path(const char *dir, const char *id, const char *suffix)
{
	return xasprintf("%s/%s%s", dir, id, suffix);
}

static int read_file(const char *path, struct buf *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	char chunk[8192];
	ssize_t n;
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || buf_append(out, chunk, (size_t)n) < 0) {
			close(fd);
			return -1;
		}
	}
	close(fd);
	return 1;
}

int queue_entry_read(const char *dir, const char *id, struct queue_entry **entry_r,
                     const char **error_r)
{
	char *path = entry_path(dir, id, QUEUE_ENV_SUFFIX);
	struct buf text = BUF_INIT(QUEUE_ENV_MAX);
	int ret = read_file(path, &text);
	free(path);
	if (ret < 0)
		*error_r = "cannot read the envelope file";
	if (ret > 0) {
		*entry_r = queue_entry_parse(id, buf_str(&text), text.len, error_r);
		ret = *entry_r != NULL ? 1 : -1;
	}
	buf_free(&text);
	return ret;
}

int queue_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int ret = fsync(fd);
	close(fd);
	return ret;
}

int queue_entry_write(const char *dir, const struct queue_entry *entry, const char **error_r)
{
	struct buf text = BUF_INIT(0);
	queue_entry_format(entry, &text);
	char *tmp = entry_path(dir, entry->id, QUEUE_ENV_SUFFIX QUEUE_TMP_SUFFIX);
	char *path = entry_path(dir, entry->id, QUEUE_ENV_SUFFIX);
	int ret = -1;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		if (fd_write_all(fd, buf_str(&text), text.len) == 0 && fsync(fd) == 0 &&
		    rename(tmp, path) == 0 && queue_fsync_dir(dir) == 0)
			ret = 0;
		close(fd);
	}
	if (ret < 0) {
		*error_r = "cannot write the envelope file";
		unlink(tmp);
	}
	buf_free(&text);
	free(tmp);
	free(path);
	return ret;
}

int queue_entry_remove(const char *dir, const char *id, const char **error_r)
{
	char *env = entry_path(dir, id, QUEUE_ENV_SUFFIX);
	char *msg = entry_path(dir, id, QUEUE_MSG_SUFFIX);
	int ret = 0;
	if (unlink(env) < 0 && errno != ENOENT)
		ret = -1;
	else if (unlink(msg) < 0 && errno != ENOENT)
		ret = -1;
	if (ret < 0)
		*error_r = "cannot remove the message files";
	free(env);
	free(msg);
	return ret;
}

int queue_message_open(const char *dir, const char *id)
{
	char *path = entry_path(dir, id, QUEUE_MSG_SUFFIX);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	return fd;
}

int queue_lock(const char *dir, const char **error_r)
{
	char *path = xasprintf("%s/" QUEUE_LOCK_NAME, dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	free(path);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		*error_r = "cannot lock the queue";
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

void queue_unlock(int *lock_fd)
{
	if (*lock_fd >= 0)
		close(*lock_fd);
	*lock_fd = -1;
}

/* ---- listing ---- */

bool queue_id_valid(const char *id)
{
	size_t len = strlen(id);
	if (len == 0 || len > 64)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = id[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-'))
			return false;
	}
	return true;
}

static char *name_id(const char *name, const char *suffix);

static int cmp_ids(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int queue_list(const char *dir, char ***ids_r, size_t *count_r, const char **error_r)
{
	*ids_r = NULL;
	*count_r = 0;
	DIR *d = opendir(dir);
	if (d == NULL) {
		*error_r = "cannot read the queue folder";
		return errno == ENOENT ? 0 : -1;
	}
	size_t count = 0, alloc = 0;
	char **ids = NULL;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		char *id = name_id(de->d_name, QUEUE_ENV_SUFFIX);
		if (id == NULL)
			continue;
		if (count == alloc) {
			alloc = alloc == 0 ? 64 : alloc * 2;
			ids = xreallocarray(ids, alloc, sizeof(*ids));
		}
		ids[count++] = id;
	}
	closedir(d);
	/* IDs start with the arrival time in hex of fixed width. */
	if (count > 0)
		qsort(ids, count, sizeof(*ids), cmp_ids);
	*ids_r = ids;
	*count_r = count;
	return 0;
}

void queue_list_free(char **ids, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(ids[i]);
	free(ids);
}

/* "<id><suffix>" -> id (malloc'd) when the name has that form. */
static char *name_id(const char *name, const char *suffix)
{
	size_t len = strlen(name), slen = strlen(suffix);
	if (len <= slen || strcmp(name + len - slen, suffix) != 0)
		return NULL;
	char *id = xstrndup(name, len - slen);
	if (!queue_id_valid(id))
		xfree(id);
	return id;
}

/* A leftover of a crash: a message whose envelope was never committed, or
 * an envelope rewrite that never reached its rename. */
static bool is_leftover(const char *dir, const char *name)
{
	char *id = name_id(name, QUEUE_MSG_SUFFIX);
	if (id == NULL)
		id = name_id(name, QUEUE_ENV_SUFFIX QUEUE_TMP_SUFFIX);
	if (id == NULL)
		return false;
	bool tmp = strstr(name, QUEUE_TMP_SUFFIX) != NULL;
	char *env = entry_path(dir, id, QUEUE_ENV_SUFFIX);
	bool leftover = tmp || access(env, F_OK) < 0;
	free(env);
	free(id);
	return leftover;
}

size_t queue_cleanup(const char *dir, time_t now, time_t max_age)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return 0;
	size_t removed = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		if (!is_leftover(dir, de->d_name) ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    st.st_mtime > now - max_age)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}

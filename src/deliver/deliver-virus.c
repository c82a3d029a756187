/* Virus scanning: every leaf MIME part, transfer-decoded, goes through the
 * built-in EICAR check and, when [virus] clamd is set, to clamd (one
 * INSTREAM per part, so a finding names its part). Infected parts are
 * replaced by a notice (deliver-strip.c) and the message is delivered; a
 * scanner failure either defers the message or lets it through unscanned,
 * as [virus] on_failure says. */
#include "deliver/deliver.h"
#include "deliver/deliver-private.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/fdio.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "mime/mime.h"

#define VIRUS_CHUNK 65536
#define EICAR_NAME "Eicar-Test-Signature"

static const char eicar[] =
        "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

struct virus_scan {
	const struct yubin_config *config;
	int fd;
	const struct mime_part *root;
	struct deliver_virus_hit *hits;
	size_t hit_count;
	const char *error; /* the first clamd failure (static), or NULL */
};

/* One leaf part being scanned. */
struct virus_part {
	const char *name; /* IMAP part number, for logs */
	unsigned char head[DELIVER_EICAR_MAX + 1];
	size_t head_len;
	uint64_t total;
	struct deliver_clamd *clamd;
	bool too_big;
};

/* EICAR's definition: the file may end with whitespace after the string,
 * up to 128 bytes in all. */
bool deliver_virus_is_eicar(const void *head, size_t head_len, uint64_t total)
{
	const unsigned char *p = head;
	size_t len = sizeof(eicar) - 1;
	if (total < len || total > DELIVER_EICAR_MAX || head_len < total)
		return false;
	if (memcmp(p, eicar, len) != 0)
		return false;
	for (size_t i = len; i < total; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n' && p[i] != 0x1a)
			return false;
	return true;
}

static bool virus_use_clamd(const struct virus_scan *scan)
{
	const char *clamd = scan->config->virus.clamd;
	return clamd != NULL && clamd[0] != '\0' && scan->error == NULL;
}

static void virus_clamd_failed(struct virus_scan *scan, struct virus_part *vp,
                               const char *error)
{
	char esc[300];
	const char *addr = scan->config->virus.clamd;
	log_warn("virus scan failed part=%s clamd=%s error=\"%s\"", vp->name,
	         log_escape(addr, strlen(addr), esc, sizeof(esc)), error);
	scan->error = error;
	deliver_clamd_abort(&vp->clamd);
}

/* Opens clamd at the first byte: empty parts cost no connection. */
static void virus_part_feed(struct virus_scan *scan, struct virus_part *vp, const void *data,
                            size_t len)
{
	const char *error;
	if (len == 0)
		return;
	size_t room = sizeof(vp->head) - vp->head_len;
	memcpy(vp->head + vp->head_len, data, len < room ? len : room);
	vp->head_len += len < room ? len : room;
	vp->total += len;
	if (vp->too_big || (vp->clamd == NULL && (vp->total != len || !virus_use_clamd(scan))))
		return;
	if (vp->total > scan->config->virus.max_scan_size) {
		vp->too_big = true;
		deliver_clamd_abort(&vp->clamd);
		return;
	}
	if (vp->clamd == NULL) {
		vp->clamd = deliver_clamd_open(scan->config->virus.clamd, scan->config->virus.timeout,
		                               &error);
		if (vp->clamd == NULL) {
			virus_clamd_failed(scan, vp, error);
			return;
		}
	}
	if (deliver_clamd_write(vp->clamd, data, len, &error) < 0)
		virus_clamd_failed(scan, vp, error);
}

/* Decodes the part's body chunk by chunk into virus_part_feed. */
static int virus_decode(struct virus_scan *scan, const struct mime_part *part,
                        struct virus_part *vp)
{
	struct mime_decoder *dec = mime_decoder_create(mime_cte_parse(part->encoding));
	struct buf out = BUF_INIT(0);
	char *chunk = xmalloc(VIRUS_CHUNK);
	uint64_t off = part->body_offset, end = part->body_offset + part->body_size;
	int ret = 0;
	while (off < end && ret == 0) {
		size_t want = end - off < VIRUS_CHUNK ? (size_t)(end - off) : VIRUS_CHUNK;
		ssize_t n = pread(scan->fd, chunk, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = -1;
			break;
		}
		off += (uint64_t)n;
		(void)mime_decoder_feed(dec, chunk, (size_t)n, &out);
		virus_part_feed(scan, vp, out.data, out.len);
		buf_reset(&out);
	}
	(void)mime_decoder_finish(dec, &out);
	virus_part_feed(scan, vp, out.data, out.len);
	buf_free(&out);
	free(chunk);
	mime_decoder_destroy(&dec);
	return ret;
}

static void virus_log_found(const struct virus_scan *scan, const struct mime_part *part,
                            const char *name, const char *virus)
{
	char esc_virus[200], esc_file[300], esc_from[300], esc_mid[300];
	char *file = mime_param_get_utf8(part->disp_params, part->disp_param_count, "filename");
	if (file == NULL)
		file = mime_param_get_utf8(part->params, part->param_count, "name");
	const struct mime_envelope *env = scan->root->envelope;
	const char *from = env != NULL ? env->fields[MIME_ENV_FROM] : NULL;
	const char *mid = env != NULL ? env->fields[MIME_ENV_MESSAGE_ID] : NULL;
	from = from != NULL ? from : "";
	mid = mid != NULL ? mid : "";
	file = file != NULL ? file : xstrdup("");
	log_warn("virus found virus=\"%s\" part=%s filename=\"%s\" from=\"%s\" message-id=\"%s\"",
	         log_escape(virus, strlen(virus), esc_virus, sizeof(esc_virus)), name,
	         log_escape(file, strlen(file), esc_file, sizeof(esc_file)),
	         log_escape(from, strlen(from), esc_from, sizeof(esc_from)),
	         log_escape(mid, strlen(mid), esc_mid, sizeof(esc_mid)));
	free(file);
}

static void virus_add_hit(struct virus_scan *scan, const struct mime_part *part,
                          const char *name, char *virus)
{
	virus_log_found(scan, part, name, virus);
	scan->hits = xreallocarray(scan->hits, scan->hit_count + 1, sizeof(*scan->hits));
	scan->hits[scan->hit_count].part = part;
	scan->hits[scan->hit_count].virus = virus;
	scan->hit_count++;
}

static void virus_scan_leaf(struct virus_scan *scan, const struct mime_part *part,
                            const char *name)
{
	struct virus_part vp = {.name = name};
	char *virus = NULL;
	const char *error = "reading the message failed";
	if (virus_decode(scan, part, &vp) < 0) {
		virus_clamd_failed(scan, &vp, error);
	} else if (deliver_virus_is_eicar(vp.head, vp.head_len, vp.total)) {
		deliver_clamd_abort(&vp.clamd);
		virus = xstrdup(EICAR_NAME);
	} else if (vp.clamd != NULL) {
		if (deliver_clamd_finish(&vp.clamd, &virus, &error) < 0)
			virus_clamd_failed(scan, &vp, error);
	}
	if (vp.too_big)
		log_info("virus scan part=%s size=%" PRIu64 " max_scan_size=%" PRIu64
		         " event=not_sent_to_clamd", name, vp.total, scan->config->virus.max_scan_size);
	if (virus != NULL)
		virus_add_hit(scan, part, name, virus);
}

/* Walks the tree naming parts as IMAP does: entity is true for the message
 * itself and each embedded message, whose body alone is part "N.1". */
static void virus_walk(struct virus_scan *scan, const struct mime_part *part, const char *name,
                       bool entity)
{
	if (part->children == NULL) {
		char *leaf = entity ? xasprintf("%s%s1", name, name[0] != '\0' ? "." : "")
		                    : xstrdup(name);
		virus_scan_leaf(scan, part, leaf);
		free(leaf);
		return;
	}
	if ((part->flags & MIME_PART_MESSAGE) != 0) {
		virus_walk(scan, part->children, name, true);
		return;
	}
	unsigned int i = 1;
	for (const struct mime_part *c = part->children; c != NULL; c = c->next, i++) {
		char *child = xasprintf("%s%s%u", name, name[0] != '\0' ? "." : "", i);
		virus_walk(scan, c, child, false);
		free(child);
	}
}

static int virus_parse_chunk(void *context, const void *data, size_t len)
{
	mime_parser_feed(context, data, len);
	return 0;
}

/* The cleaned copy of the message, in a memfd. */
static enum deliver_scan_status virus_strip(const struct virus_scan *scan, int *cleaned_fd_r,
                                            const char **error_r)
{
	int out = memfd_create("yubin-virus", MFD_CLOEXEC);
	if (out < 0) {
		*error_r = "memfd_create failed";
		return DELIVER_SCAN_TEMPFAIL;
	}
	if (deliver_strip_write(scan->fd, scan->root, scan->hits, scan->hit_count, out,
	                        error_r) < 0) {
		close(out);
		return DELIVER_SCAN_TEMPFAIL;
	}
	*cleaned_fd_r = out;
	return DELIVER_SCAN_CLEANED;
}

static enum deliver_scan_status virus_outcome(const struct virus_scan *scan, int *cleaned_fd_r,
                                              const char **error_r)
{
	if (scan->error != NULL) {
		const char *on_failure = scan->config->virus.on_failure;
		bool accept = on_failure != NULL && strcmp(on_failure, "accept") == 0;
		log_warn("virus scan incomplete error=\"%s\" action=%s", scan->error,
		         accept ? "accept_unscanned" : "tempfail");
		if (!accept) {
			*error_r = "virus scanner unavailable";
			return DELIVER_SCAN_TEMPFAIL;
		}
	}
	if (scan->hit_count == 0)
		return DELIVER_SCAN_CLEAN;
	return virus_strip(scan, cleaned_fd_r, error_r);
}

enum deliver_scan_status deliver_scan(const struct yubin_config *config, int fd,
                                      int *cleaned_fd_r, const char **error_r)
{
	*cleaned_fd_r = -1;
	if (!config->virus.enabled)
		return DELIVER_SCAN_CLEAN;
	struct mime_parser *parser = mime_parser_create(NULL);
	if (fd_read_all(fd, virus_parse_chunk, parser) != 0) {
		mime_parser_destroy(&parser);
		*error_r = "reading the message failed";
		return DELIVER_SCAN_TEMPFAIL;
	}
	struct virus_scan scan = {.config = config, .fd = fd};
	struct mime_part *root = mime_parser_finish(&parser);
	scan.root = root;
	virus_walk(&scan, root, "", true);
	enum deliver_scan_status status = virus_outcome(&scan, cleaned_fd_r, error_r);
	for (size_t i = 0; i < scan.hit_count; i++)
		free(scan.hits[i].virus);
	free(scan.hits);
	mime_part_free(&root);
	return status;
}

/* `yubin deliver` and other callers without an envelope:
 * deliver_message_env scans (env NULL is "not scanned yet"), then delivers. */
enum deliver_status deliver_message(const struct yubin_config *config, struct dir *dir, int fd,
                                    const char *const *recipients, size_t count,
                                    struct deliver_result *results)
{
	return deliver_message_env(config, dir, fd, NULL, recipients, count, results);
}

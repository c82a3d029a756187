/* The body test (RFC 5173): :raw (the undecoded body), :content with a
 * list of MIME types, :text (the default: every text part, transfer-
 * decoded and converted to UTF-8). Each part is one value for the match. */
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "mime/mime.h"
#include "sieve/sieve-run.h"

#define BODY_MAX_PART (4 * 1024 * 1024) /* decoded bytes of one part tested */

/* Transfer-decodes a part; text parts also go to UTF-8. The result is
 * cut at BODY_MAX_PART. */
static char *part_text(const struct sieve_run *run, const struct mime_part *part, bool text)
{
	const char *data = run->msg->data + part->body_offset;
	size_t len = (size_t)part->body_size;
	struct buf raw = BUF_INIT(BODY_MAX_PART), out = BUF_INIT(BODY_MAX_PART);
	struct mime_decoder *dec = mime_decoder_create(mime_cte_parse(part->encoding));

	(void)buf_append_str(&raw, "");
	(void)mime_decoder_feed(dec, data, len, &raw);
	(void)mime_decoder_finish(dec, &raw);
	mime_decoder_destroy(&dec);
	if (!text)
		return buf_steal(&raw);
	const char *charset = mime_param_get(part->params, part->param_count, "charset");
	(void)buf_append_str(&out, "");
	if (charset != NULL)
		(void)mime_charset_to_utf8(charset, raw.data, raw.len, &out);
	else
		(void)mime_charset_guess_to_utf8(raw.data, raw.len, &out);
	buf_free(&raw);
	return buf_steal(&out);
}

/* "" matches every type, "text" every text/<any>, "text/plain" only
 * itself (RFC 5173 5.2). */
static bool type_wanted(const struct mime_part *part, const struct sieve_strlist *types)
{
	const char *type = part->type != NULL ? part->type : "text";
	const char *subtype = part->subtype != NULL ? part->subtype : "plain";

	for (size_t i = 0; i < types->count; i++) {
		const char *want = types->items[i];
		const char *slash = strchr(want, '/');

		if (want[0] == '\0')
			return true;
		if (slash == NULL && strcasecmp(want, type) == 0)
			return true;
		if (slash != NULL && strlen(type) == (size_t)(slash - want) &&
		    strncasecmp(want, type, strlen(type)) == 0 &&
		    strcasecmp(slash + 1, subtype) == 0)
			return true;
	}
	return false;
}

static void collect_parts(const struct sieve_run *run, const struct mime_part *part,
                          const struct sieve_strlist *types, struct sieve_strlist *values)
{
	for (; part != NULL; part = part->next) {
		bool container = (part->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE)) != 0;

		if (container) {
			collect_parts(run, part->children, types, values);
			continue;
		}
		bool text = mime_part_is_text(part);
		if (types == NULL ? !text : !type_wanted(part, types))
			continue;
		char *s = part_text(run, part, text);
		sieve_strlist_push(values, s);
	}
}

int sieve_test_body(struct sieve_run *run, const struct sieve_node *node)
{
	struct sieve_strlist values = {NULL, 0};
	const struct sieve_tag *content = sieve_node_tag(node, ":content");
	struct sieve_matcher m;

	if (sieve_node_tag(node, ":raw") != NULL) {
		size_t off = run->result->body_offset;
		size_t len = run->msg->len - off;
		sieve_strlist_add(&values, run->msg->data + off,
		                  len > BODY_MAX_PART ? BODY_MAX_PART : len);
	} else {
		struct mime_part *root = mime_parse(run->msg->data, run->msg->len, NULL);
		struct sieve_strlist types = {NULL, 0};

		if (content != NULL)
			sieve_strlist_from_arg(run, content->value, &types);
		collect_parts(run, root, content != NULL ? &types : NULL, &values);
		sieve_strlist_free(&types);
		mime_part_free(&root);
	}
	if (sieve_run_check_time(run, node->line) < 0 ||
	    sieve_matcher_init(run, node, &node->args[node->arg_count - 1], &m) < 0) {
		sieve_strlist_free(&values);
		return -1;
	}
	int ret = sieve_match_values(run, &m, &values);
	sieve_matcher_free(&m);
	sieve_strlist_free(&values);
	return ret;
}

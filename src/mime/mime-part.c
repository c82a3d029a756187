/* The part tree: allocation, freeing and small queries. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/xmalloc.h"
#include "mime/mime-private.h"

const struct mime_limits mime_default_limits = {
	.max_depth = 100,
	.max_parts = 10000,
	.max_header_size = 256 * 1024,
	.max_line_length = 64 * 1024,
};

struct mime_part *mime_part_new(struct mime_part *parent)
{
	struct mime_part *part = xcalloc(1, sizeof(*part));
	part->parent = parent;
	if (parent == NULL)
		return part;
	struct mime_part **tail = &parent->children;
	while (*tail != NULL)
		tail = &(*tail)->next;
	*tail = part;
	return part;
}

void mime_params_free(struct mime_param *params, unsigned int count)
{
	for (unsigned int i = 0; i < count; i++) {
		free(params[i].name);
		free(params[i].value);
	}
	free(params);
}

void mime_envelope_free(struct mime_envelope **env)
{
	if (*env == NULL)
		return;
	for (unsigned int i = 0; i < MIME_ENV_COUNT; i++)
		free((*env)->fields[i]);
	xfree(*env);
}

static void mime_part_free_one(struct mime_part *part)
{
	free(part->type);
	free(part->subtype);
	mime_params_free(part->params, part->param_count);
	free(part->encoding);
	free(part->id);
	free(part->description);
	free(part->md5);
	free(part->location);
	free(part->language);
	free(part->disposition);
	mime_params_free(part->disp_params, part->disp_param_count);
	mime_envelope_free(&part->envelope);
	free(part->cached_header);
	free(part);
}

/* Iterative, so a deep hostile tree cannot exhaust the stack. */
void mime_part_free(struct mime_part **root)
{
	struct mime_part *part = *root;
	*root = NULL;
	while (part != NULL) {
		if (part->children != NULL) {
			struct mime_part *child = part->children;
			part->children = NULL;
			/* splice the children before the remaining siblings */
			struct mime_part *last = child;
			while (last->next != NULL)
				last = last->next;
			last->next = part->next;
			part->next = child;
		}
		struct mime_part *next = part->next;
		mime_part_free_one(part);
		part = next;
	}
}

unsigned int mime_part_count(const struct mime_part *root)
{
	unsigned int count = 0;
	const struct mime_part *part = root;
	while (part != NULL) {
		count++;
		if (part->children != NULL) {
			part = part->children;
			continue;
		}
		while (part != NULL && part != root && part->next == NULL)
			part = part->parent;
		if (part == NULL || part == root)
			break;
		part = part->next;
	}
	return count;
}

const char *mime_param_get(const struct mime_param *params, unsigned int count, const char *name)
{
	for (unsigned int i = 0; i < count; i++) {
		if (strcasecmp(params[i].name, name) == 0)
			return params[i].value;
	}
	return NULL;
}

bool mime_part_is_text(const struct mime_part *part)
{
	if ((part->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE)) != 0)
		return false;
	return part->type == NULL || strcasecmp(part->type, "text") == 0;
}

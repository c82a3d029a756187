/* The header fields kept in the index beside the part tree. The set is
 * what mail clients put in their message lists (Thunderbird, Apple Mail,
 * K-9, Outlook ask for a subset of it with BODY.PEEK[HEADER.FIELDS (...)])
 * and what SEARCH's header keys read. */
#include <string.h>
#include <strings.h>

#include "lib/xmalloc.h"
#include "mime/mime-private.h"

#define MIME_CACHED_HEADER_MAX (64 * 1024)

char *const mime_cached_fields[] = {
        "From",        "To",         "Cc",          "Bcc",        "Subject",
        "Date",        "Message-ID", "In-Reply-To", "References", "Reply-To",
        "Sender",      "Content-Type", "Priority",  "X-Priority", "Importance",
        "Newsgroups",  "List-Id",    "List-Post",   "List-Unsubscribe",
        "Auto-Submitted", "Disposition-Notification-To", NULL,
};

bool mime_field_cached(const char *name)
{
	for (size_t i = 0; mime_cached_fields[i] != NULL; i++) {
		if (strcasecmp(mime_cached_fields[i], name) == 0)
			return true;
	}
	return false;
}

bool mime_fields_cached(char *const *fields, unsigned int count)
{
	for (unsigned int i = 0; i < count; i++) {
		if (!mime_field_cached(fields[i]))
			return false;
	}
	return true;
}

void mime_part_cache_header(struct mime_part *root, const char *header, size_t len)
{
	size_t count = 0;
	while (mime_cached_fields[count] != NULL)
		count++;
	struct buf out = BUF_INIT(MIME_CACHED_HEADER_MAX);
	free(root->cached_header);
	root->cached_header = NULL;
	root->cached_header_len = 0;
	if (mime_header_filter(header, len, mime_cached_fields, (unsigned int)count, false,
	                       &out) == 0) {
		root->cached_header_len = out.len;
		root->cached_header = buf_steal(&out);
	}
	buf_free(&out);
}

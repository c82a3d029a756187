/* Reading the shared corpus for the unit tests (corpus.h). */
#include "corpus.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"

#define CORPUS_MAX_FILE (64 * 1024 * 1024)

static void corpus_mbox(corpus_message_fn *fn, void *context, const char *name, const char *data,
                        size_t len)
{
	size_t pos = 0;
	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		if (nl == NULL)
			return;
		size_t start = (size_t)(nl - data) + 1, end = start;
		for (;;) {
			const char *next = memchr(data + end, '\n', len - end);
			if (next == NULL) {
				end = len;
				break;
			}
			end = (size_t)(next - data) + 1;
			if (len - end >= 5 && memcmp(data + end, "From ", 5) == 0)
				break;
		}
		size_t msg_end = end < len && end > start ? end - 1 : end;
		fn(context, name, data + start, msg_end - start);
		pos = end;
	}
}

static char *corpus_read_file(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	struct buf b = BUF_INIT(CORPUS_MAX_FILE);
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_append(&b, chunk, n) < 0)
			break;
	}
	fclose(f);
	*len_r = b.len;
	return buf_steal(&b);
}

/* One INDEX.tsv record: path, size, kind ("mbox" or "message" count; a
 * content type with a line break continues a record on a line that has
 * no kind). */
static void corpus_record(corpus_message_fn *fn, void *context, const char *dir, char *line,
                          struct corpus_count *count)
{
	char *tab1 = strchr(line, '\t');
	if (tab1 == NULL || strncmp(line, "path\t", 5) == 0)
		return;
	*tab1 = '\0';
	char *tab2 = strchr(tab1 + 1, '\t');
	const char *kind = tab2 != NULL ? tab2 + 1 : "";
	bool mbox = strncmp(kind, "mbox\t", 5) == 0;
	if (!mbox && strncmp(kind, "message\t", 8) != 0)
		return;
	char path[8192];
	snprintf(path, sizeof(path), "%s/%s", dir, line);
	size_t len;
	char *data = corpus_read_file(path, &len);
	if (data == NULL) {
		fprintf(stderr, "cannot read %s\n", path);
		count->unreadable++;
		return;
	}
	if (mbox)
		corpus_mbox(fn, context, line, data, len);
	else
		fn(context, line, data, len);
	free(data);
	count->files++;
}

int corpus_each_message(corpus_message_fn *fn, void *context, struct corpus_count *count_r)
{
	const char *src = getenv("YUBIN_SOURCE_ROOT");
	char dir[4096], path[8192], line[4096];
	snprintf(dir, sizeof(dir), "%s/../shared/corpus", src != NULL ? src : ".");
	snprintf(path, sizeof(path), "%s/INDEX.tsv", dir);
	struct corpus_count count = {0, 0};
	FILE *index = fopen(path, "r");
	if (index == NULL) {
		printf("corpus not found at %s: skipped\n", dir);
		*count_r = count;
		return -1;
	}
	while (fgets(line, sizeof(line), index) != NULL)
		corpus_record(fn, context, dir, line, &count);
	fclose(index);
	*count_r = count;
	return 0;
}

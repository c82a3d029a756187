/* The shared corpus of real messages (../shared/corpus, listed in its
 * INDEX.tsv) for the unit tests that must survive every one of them. */
#ifndef YUBIN_TEST_CORPUS_H
#define YUBIN_TEST_CORPUS_H

#include <stddef.h>

/* Gets each message: a message file whole, an mbox split at its "From "
 * lines (without the line end that separates two messages). */
typedef void corpus_message_fn(void *context, const char *name, const char *data, size_t len);

struct corpus_count {
	unsigned int files;      /* files read */
	unsigned int unreadable; /* listed but not readable (named on stderr) */
};

/* Walks the corpus under $YUBIN_SOURCE_ROOT/../shared/corpus. -1 (after
 * printing "corpus not found at ...: skipped") when it is absent. */
int corpus_each_message(corpus_message_fn *fn, void *context, struct corpus_count *count_r);

#endif

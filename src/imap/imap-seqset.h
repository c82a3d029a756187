/* IMAP sequence sets (RFC 9051 sequence-set, RFC 5182 "$"): message
 * numbers or UIDs as sorted, disjoint ranges. "*" (the largest number in
 * use) is kept unresolved until imap_seqset_resolve() knows it. */
#ifndef YUBIN_IMAP_SEQSET_H
#define YUBIN_IMAP_SEQSET_H

#include <stdbool.h>
#include <stdint.h>

struct buf;

/* In a parsed set before resolving, 0 stands for "*". */
#define IMAP_SEQ_STAR 0

struct imap_seq_range {
	uint32_t first;
	uint32_t last; /* first <= last once normalized */
};

struct imap_seqset {
	struct imap_seq_range *ranges;
	unsigned int count;
	unsigned int alloc;
	bool has_star; /* contains "*": call imap_seqset_resolve */
	bool saved;    /* contains "$": merge the saved SEARCHRES set */
};

void imap_seqset_init(struct imap_seqset *set);
void imap_seqset_free(struct imap_seqset *set);
/* Parses str into set (initialized here, free it even on failure).
 * Numbers are 1..4294967295; ranges in any order. Returns -1 with a
 * client-facing static text on bad syntax. */
int imap_seqset_parse(struct imap_seqset *set, const char *str, const char **error_r);
/* Replaces "*" with max (the largest number or UID in use; with 0 "*"
 * matches nothing) and normalizes. */
void imap_seqset_resolve(struct imap_seqset *set, uint32_t max);
/* Adds a range (any order) or another set, keeping the set normalized. */
void imap_seqset_add_range(struct imap_seqset *set, uint32_t first, uint32_t last);
void imap_seqset_add_set(struct imap_seqset *set, const struct imap_seqset *other);
/* Sorts and merges overlapping and adjacent ranges. */
void imap_seqset_normalize(struct imap_seqset *set);

/* These need a resolved, normalized set. */
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t num);
uint64_t imap_seqset_count(const struct imap_seqset *set);
/* Copies the members of the ascending list nums[] that are in set to
 * out[] (room for count entries; may be nums itself); returns how many. */
unsigned int imap_seqset_filter(const struct imap_seqset *set, const uint32_t *nums,
                                unsigned int count, uint32_t *out);

struct imap_seqset_iter {
	unsigned int range;
	uint64_t next;
};
void imap_seqset_iter_init(struct imap_seqset_iter *iter);
bool imap_seqset_iter_next(const struct imap_seqset *set, struct imap_seqset_iter *iter,
                           uint32_t *num_r);

/* "1:3,5,9:*" (unresolved stars as "*"); -1 when buf's maximum is hit. */
int imap_seqset_format(const struct imap_seqset *set, struct buf *buf);

#endif

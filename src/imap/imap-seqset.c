#include "imap/imap-seqset.h"

#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"

void imap_seqset_init(struct imap_seqset *set)
{
	memset(set, 0, sizeof(*set));
}

void imap_seqset_free(struct imap_seqset *set)
{
	xfree(set->ranges);
	imap_seqset_init(set);
}

static void imap_seqset_append(struct imap_seqset *set, uint32_t first, uint32_t last)
{
	if (set->count == set->alloc) {
		set->alloc = set->alloc == 0 ? 8 : set->alloc * 2;
		set->ranges = xreallocarray(set->ranges, set->alloc, sizeof(*set->ranges));
	}
	if (first != IMAP_SEQ_STAR && last != IMAP_SEQ_STAR && first > last) {
		uint32_t tmp = first;
		first = last;
		last = tmp;
	}
	set->ranges[set->count].first = first;
	set->ranges[set->count].last = last;
	set->count++;
}

/* seq-number = nz-number / "*"; nz-number has no leading zero. */
static int imap_seqset_number(const char **pp, uint32_t *num_r)
{
	const char *p = *pp;
	if (*p == '*') {
		*pp = p + 1;
		*num_r = IMAP_SEQ_STAR;
		return 0;
	}
	if (*p < '1' || *p > '9')
		return -1;
	uint64_t num = 0;
	while (*p >= '0' && *p <= '9') {
		num = num * 10 + (uint64_t)(*p - '0');
		if (num > UINT32_MAX)
			return -1;
		p++;
	}
	*pp = p;
	*num_r = (uint32_t)num;
	return 0;
}

static int imap_seqset_element(struct imap_seqset *set, const char **pp)
{
	uint32_t first, last;
	if (imap_seqset_number(pp, &first) < 0)
		return -1;
	last = first;
	if (**pp == ':') {
		(*pp)++;
		if (imap_seqset_number(pp, &last) < 0)
			return -1;
	}
	if (first == IMAP_SEQ_STAR || last == IMAP_SEQ_STAR)
		set->has_star = true;
	imap_seqset_append(set, first, last);
	return 0;
}

int imap_seqset_parse(struct imap_seqset *set, const char *str, const char **error_r)
{
	imap_seqset_init(set);
	const char *p = str;
	for (;;) {
		/* RFC 5182: "$" is a whole sequence-set, so only last. */
		if (*p == '$') {
			set->saved = true;
			p++;
		} else if (imap_seqset_element(set, &p) < 0) {
			*error_r = "Invalid sequence set";
			return -1;
		}
		if (*p == '\0')
			break;
		if (*p != ',' || set->saved) {
			*error_r = "Invalid sequence set";
			return -1;
		}
		p++;
	}
	if (!set->has_star)
		imap_seqset_normalize(set);
	return 0;
}

static int imap_seq_range_cmp(const void *a, const void *b)
{
	const struct imap_seq_range *ra = a, *rb = b;
	if (ra->first != rb->first)
		return ra->first < rb->first ? -1 : 1;
	return ra->last < rb->last ? -1 : (ra->last > rb->last);
}

void imap_seqset_normalize(struct imap_seqset *set)
{
	if (set->count == 0)
		return;
	qsort(set->ranges, set->count, sizeof(*set->ranges), imap_seq_range_cmp);
	unsigned int out = 0;
	for (unsigned int i = 1; i < set->count; i++) {
		struct imap_seq_range *cur = &set->ranges[out];
		const struct imap_seq_range *r = &set->ranges[i];
		if ((uint64_t)r->first <= (uint64_t)cur->last + 1) {
			if (r->last > cur->last)
				cur->last = r->last;
		} else {
			set->ranges[++out] = *r;
		}
	}
	set->count = out + 1;
}

void imap_seqset_resolve(struct imap_seqset *set, uint32_t max)
{
	unsigned int out = 0;
	for (unsigned int i = 0; i < set->count; i++) {
		struct imap_seq_range r = set->ranges[i];
		bool star = r.first == IMAP_SEQ_STAR || r.last == IMAP_SEQ_STAR;
		if (star && max == 0)
			continue;
		if (r.first == IMAP_SEQ_STAR)
			r.first = max;
		if (r.last == IMAP_SEQ_STAR)
			r.last = max;
		if (r.first > r.last) {
			uint32_t tmp = r.first;
			r.first = r.last;
			r.last = tmp;
		}
		set->ranges[out++] = r;
	}
	set->count = out;
	set->has_star = false;
	imap_seqset_normalize(set);
}

void imap_seqset_add_range(struct imap_seqset *set, uint32_t first, uint32_t last)
{
	imap_seqset_append(set, first, last);
	if (!set->has_star)
		imap_seqset_normalize(set);
}

void imap_seqset_add_set(struct imap_seqset *set, const struct imap_seqset *other)
{
	for (unsigned int i = 0; i < other->count; i++)
		imap_seqset_append(set, other->ranges[i].first, other->ranges[i].last);
	set->has_star = set->has_star || other->has_star;
	if (!set->has_star)
		imap_seqset_normalize(set);
}

bool imap_seqset_contains(const struct imap_seqset *set, uint32_t num)
{
	unsigned int lo = 0, hi = set->count;
	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;
		const struct imap_seq_range *r = &set->ranges[mid];
		if (num < r->first)
			hi = mid;
		else if (num > r->last)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

uint64_t imap_seqset_count(const struct imap_seqset *set)
{
	uint64_t n = 0;
	for (unsigned int i = 0; i < set->count; i++)
		n += (uint64_t)set->ranges[i].last - set->ranges[i].first + 1;
	return n;
}

unsigned int imap_seqset_filter(const struct imap_seqset *set, const uint32_t *nums,
                                unsigned int count, uint32_t *out)
{
	unsigned int n = 0, r = 0;
	for (unsigned int i = 0; i < count && r < set->count; i++) {
		while (r < set->count && set->ranges[r].last < nums[i])
			r++;
		if (r < set->count && nums[i] >= set->ranges[r].first)
			out[n++] = nums[i];
	}
	return n;
}

void imap_seqset_iter_init(struct imap_seqset_iter *iter)
{
	iter->range = 0;
	iter->next = 0;
}

bool imap_seqset_iter_next(const struct imap_seqset *set, struct imap_seqset_iter *iter,
                           uint32_t *num_r)
{
	while (iter->range < set->count) {
		const struct imap_seq_range *r = &set->ranges[iter->range];
		if (iter->next < r->first)
			iter->next = r->first;
		if (iter->next <= r->last) {
			*num_r = (uint32_t)iter->next++;
			return true;
		}
		iter->range++;
	}
	return false;
}

static int imap_seqset_format_num(struct buf *buf, uint32_t num)
{
	if (num == IMAP_SEQ_STAR)
		return buf_append_char(buf, '*');
	return buf_printf(buf, "%u", num);
}

int imap_seqset_format(const struct imap_seqset *set, struct buf *buf)
{
	for (unsigned int i = 0; i < set->count; i++) {
		const struct imap_seq_range *r = &set->ranges[i];
		if (i > 0 && buf_append_char(buf, ',') < 0)
			return -1;
		if (imap_seqset_format_num(buf, r->first) < 0)
			return -1;
		if (r->first != r->last &&
		    (buf_append_char(buf, ':') < 0 || imap_seqset_format_num(buf, r->last) < 0))
			return -1;
	}
	if (set->saved && buf_append_str(buf, set->count > 0 ? ",$" : "$") < 0)
		return -1;
	return 0;
}

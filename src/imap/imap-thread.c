/* THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256 section 2.2 and
 * 3). Message-IDs and subjects are looked up in open-addressing hash
 * tables and sibling lists are doubly linked, so the work stays linear in
 * the messages and their references (plus the sorts). Every walk over the
 * tree is iterative: a reply chain of 100,000 messages is 100,000 deep. */
#include "imap/imap-sort.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/xmalloc.h"

struct imap_thread_node {
	const struct imap_sort_msg *msg; /* NULL: a dummy */
	struct imap_thread_node *parent, *first, *last, *prev, *next;
};

struct imap_thread_hash_entry {
	const char *key;
	struct imap_thread_node *node;
};

/* Keys are borrowed (the messages own them); no removal is needed. */
struct imap_thread_hash {
	struct imap_thread_hash_entry *entries;
	size_t mask;
};

struct imap_thread {
	struct imap_thread_node *nodes; /* pool, sized for the worst case */
	size_t node_count, node_max;
	struct imap_thread_node *root;
};

/* ---- hash table ---- */

static void imap_thread_hash_init(struct imap_thread_hash *h, size_t count)
{
	size_t size = 16;
	while (size < count * 2)
		size *= 2;
	h->entries = xcalloc(size, sizeof(*h->entries));
	h->mask = size - 1;
}

static uint64_t imap_thread_hash_str(const char *s)
{
	uint64_t h = 14695981039346656037ULL; /* FNV-1a */
	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

/* The slot for key: its entry, or the empty one where it goes. */
static struct imap_thread_hash_entry *imap_thread_hash_slot(struct imap_thread_hash *h,
                                                            const char *key)
{
	size_t i = (size_t)imap_thread_hash_str(key) & h->mask;
	while (h->entries[i].key != NULL && strcmp(h->entries[i].key, key) != 0)
		i = (i + 1) & h->mask;
	return &h->entries[i];
}

/* ---- tree links ---- */

static struct imap_thread_node *imap_thread_node_new(struct imap_thread *t,
                                                     const struct imap_sort_msg *msg)
{
	if (t->node_count == t->node_max)
		panic("imap thread: node pool of %zu exhausted", t->node_max);
	struct imap_thread_node *n = &t->nodes[t->node_count++];
	n->msg = msg;
	return n;
}

static void imap_thread_unlink(struct imap_thread_node *n)
{
	struct imap_thread_node *p = n->parent;
	if (p == NULL)
		return;
	if (n->prev != NULL)
		n->prev->next = n->next;
	else
		p->first = n->next;
	if (n->next != NULL)
		n->next->prev = n->prev;
	else
		p->last = n->prev;
	n->parent = n->prev = n->next = NULL;
}

/* Makes n a child of parent, before `before` (NULL: at the end). */
static void imap_thread_insert(struct imap_thread_node *parent, struct imap_thread_node *n,
                               struct imap_thread_node *before)
{
	n->parent = parent;
	n->next = before;
	n->prev = before != NULL ? before->prev : parent->last;
	if (n->prev != NULL)
		n->prev->next = n;
	else
		parent->first = n;
	if (before != NULL)
		before->prev = n;
	else
		parent->last = n;
}

/* Whether making parent the parent of child would make a loop, that is
 * whether parent is child or one of its descendants. A child without
 * children has none, which keeps reply chains read in order linear. */
static bool imap_thread_would_loop(const struct imap_thread_node *parent,
                                   const struct imap_thread_node *child)
{
	if (child->first == NULL)
		return parent == child;
	for (; parent != NULL; parent = parent->parent) {
		if (parent == child)
			return true;
	}
	return false;
}

/* The message a node stands for in sorts and subjects: itself, or the
 * first child of a dummy. */
static const struct imap_sort_msg *imap_thread_rep(const struct imap_thread_node *n)
{
	while (n->msg == NULL && n->first != NULL)
		n = n->first;
	return n->msg;
}

/* ---- REFERENCES step 1: containers and links ---- */

static struct imap_thread_node *imap_thread_id_node(struct imap_thread *t,
                                                    struct imap_thread_hash *ids, const char *id)
{
	struct imap_thread_hash_entry *e = imap_thread_hash_slot(ids, id);
	if (e->key == NULL) {
		e->key = id;
		e->node = imap_thread_node_new(t, NULL);
	}
	return e->node;
}

/* The message's own container: the dummy made for its Message-ID, or a
 * new one when the ID is missing or already taken (a duplicate). */
static struct imap_thread_node *imap_thread_msg_node(struct imap_thread *t,
                                                     struct imap_thread_hash *ids,
                                                     const struct imap_sort_msg *msg)
{
	if (msg->message_id != NULL) {
		struct imap_thread_node *n = imap_thread_id_node(t, ids, msg->message_id);
		if (n->msg == NULL) {
			n->msg = msg;
			return n;
		}
	}
	return imap_thread_node_new(t, msg);
}

static void imap_thread_link_msg(struct imap_thread *t, struct imap_thread_hash *ids,
                                 const struct imap_sort_msg *msg)
{
	struct imap_thread_node *self = imap_thread_msg_node(t, ids, msg), *prev = NULL;
	/* 1A: each reference is the parent of the next, unless the next
	 * already has one or the link would make a loop */
	for (size_t i = 0; i < msg->ref_count; i++) {
		struct imap_thread_node *r = imap_thread_id_node(t, ids, msg->refs[i]);
		if (prev != NULL && r->parent == NULL && !imap_thread_would_loop(prev, r))
			imap_thread_insert(prev, r, NULL);
		prev = r;
	}
	/* 1B: the last reference is the parent of this message; an older
	 * link (from a truncated References elsewhere) is replaced */
	if (prev != NULL && self->parent == prev)
		return;
	imap_thread_unlink(self);
	if (prev != NULL && !imap_thread_would_loop(prev, self))
		imap_thread_insert(prev, self, NULL);
}

/* ---- REFERENCES step 3: pruning dummies ---- */

struct imap_thread_stack {
	struct imap_thread_node **items;
	size_t count, size;
};

static void imap_thread_push(struct imap_thread_stack *s, struct imap_thread_node *n)
{
	if (s->count == s->size) {
		s->size = s->size == 0 ? 64 : s->size * 2;
		s->items = xreallocarray(s->items, s->size, sizeof(*s->items));
	}
	s->items[s->count++] = n;
}

/* Replaces dummy d by its children, in its place. Returns the first. */
static struct imap_thread_node *imap_thread_promote(struct imap_thread_node *d)
{
	struct imap_thread_node *parent = d->parent, *before = d->next, *first = d->first;
	while (d->first != NULL) {
		struct imap_thread_node *c = d->first;
		imap_thread_unlink(c);
		imap_thread_insert(parent, c, before);
	}
	imap_thread_unlink(d);
	return first;
}

/* One node's children: dummies without children go, dummies with children
 * give them to this level (at the top only when there is one). The others
 * are pushed for their own turn. */
static void imap_thread_prune_children(struct imap_thread *t, struct imap_thread_node *x,
                                       struct imap_thread_stack *pending)
{
	struct imap_thread_node *c = x->first;
	while (c != NULL) {
		struct imap_thread_node *next = c->next;
		if (c->msg == NULL && c->first == NULL) {
			imap_thread_unlink(c);
			c = next;
			continue;
		}
		if (c->msg == NULL && (x != t->root || c->first == c->last)) {
			c = imap_thread_promote(c); /* looked at again: may be a dummy */
			continue;
		}
		imap_thread_push(pending, c);
		c = next;
	}
}

static void imap_thread_prune(struct imap_thread *t)
{
	struct imap_thread_stack pending = {NULL, 0, 0};
	imap_thread_push(&pending, t->root);
	while (pending.count > 0)
		imap_thread_prune_children(t, pending.items[--pending.count], &pending);
	free(pending.items);
}

/* ---- sorting siblings by sent date (RFC 5256 2.2) ---- */

static int imap_thread_date_cmp(const void *pa, const void *pb)
{
	const struct imap_sort_msg *a = imap_thread_rep(*(struct imap_thread_node *const *)pa);
	const struct imap_sort_msg *b = imap_thread_rep(*(struct imap_thread_node *const *)pb);
	if (a->sent != b->sent)
		return a->sent < b->sent ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq ? 1 : 0;
}

static void imap_thread_sort_children(struct imap_thread_node *x, struct imap_thread_stack *scratch)
{
	scratch->count = 0;
	for (struct imap_thread_node *c = x->first; c != NULL; c = c->next)
		imap_thread_push(scratch, c);
	if (scratch->count < 2)
		return;
	qsort(scratch->items, scratch->count, sizeof(*scratch->items), imap_thread_date_cmp);
	x->first = x->last = NULL;
	for (size_t i = 0; i < scratch->count; i++) {
		struct imap_thread_node *c = scratch->items[i];
		c->prev = c->next = NULL;
		imap_thread_insert(x, c, NULL);
	}
}

/* Every sibling list, the deepest first (a dummy's place depends on its
 * sorted first child). */
static void imap_thread_sort_all(struct imap_thread *t)
{
	struct imap_thread_stack order = {NULL, 0, 0}, pending = {NULL, 0, 0},
	                         scratch = {NULL, 0, 0};
	imap_thread_push(&pending, t->root);
	while (pending.count > 0) {
		struct imap_thread_node *x = pending.items[--pending.count];
		imap_thread_push(&order, x);
		for (struct imap_thread_node *c = x->first; c != NULL; c = c->next)
			imap_thread_push(&pending, c);
	}
	for (size_t i = order.count; i > 0; i--)
		imap_thread_sort_children(order.items[i - 1], &scratch);
	free(order.items);
	free(pending.items);
	free(scratch.items);
}

/* ---- REFERENCES step 5: subjects ---- */

static const char *imap_thread_subject(const struct imap_thread_node *n)
{
	const struct imap_sort_msg *m = imap_thread_rep(n);
	return m != NULL && m->subject != NULL ? m->subject : "";
}

static bool imap_thread_is_reply(const struct imap_thread_node *n)
{
	return n->msg != NULL && n->msg->reply;
}

/* 5B: one root child per subject, dummies and non-replies preferred. */
static void imap_thread_subject_table(struct imap_thread *t, struct imap_thread_hash *subjects)
{
	for (struct imap_thread_node *c = t->root->first; c != NULL; c = c->next) {
		const char *subject = imap_thread_subject(c);
		if (subject[0] == '\0')
			continue;
		struct imap_thread_hash_entry *e = imap_thread_hash_slot(subjects, subject);
		if (e->key == NULL ||
		    (e->node->msg != NULL && (c->msg == NULL || (imap_thread_is_reply(e->node) &&
		                                                 !imap_thread_is_reply(c))))) {
			e->key = subject;
			e->node = c;
		}
	}
}

/* 5C: c joins the thread in the table entry e. */
static void imap_thread_merge(struct imap_thread *t, struct imap_thread_hash_entry *e,
                              struct imap_thread_node *c)
{
	struct imap_thread_node *other = e->node;
	if (other->msg == NULL && c->msg == NULL) {
		while (c->first != NULL) {
			struct imap_thread_node *g = c->first;
			imap_thread_unlink(g);
			imap_thread_insert(other, g, NULL);
		}
		imap_thread_unlink(c);
	} else if (other->msg == NULL ||
	           (imap_thread_is_reply(c) && !imap_thread_is_reply(other))) {
		imap_thread_unlink(c);
		imap_thread_insert(other, c, NULL);
	} else {
		struct imap_thread_node *d = imap_thread_node_new(t, NULL);
		imap_thread_insert(t->root, d, other);
		imap_thread_unlink(other);
		imap_thread_unlink(c);
		imap_thread_insert(d, other, NULL);
		imap_thread_insert(d, c, NULL);
		e->node = d;
	}
}

static void imap_thread_group_subjects(struct imap_thread *t, size_t count)
{
	struct imap_thread_hash subjects;
	struct imap_thread_stack roots = {NULL, 0, 0};
	imap_thread_hash_init(&subjects, count);
	imap_thread_subject_table(t, &subjects);
	for (struct imap_thread_node *c = t->root->first; c != NULL; c = c->next)
		imap_thread_push(&roots, c);
	for (size_t i = 0; i < roots.count; i++) {
		struct imap_thread_node *c = roots.items[i];
		const char *subject = imap_thread_subject(c);
		if (c->parent != t->root || subject[0] == '\0')
			continue; /* merged into a new dummy already */
		struct imap_thread_hash_entry *e = imap_thread_hash_slot(&subjects, subject);
		if (e->key != NULL && e->node != c)
			imap_thread_merge(t, e, c);
	}
	free(roots.items);
	free(subjects.entries);
}

static void imap_thread_references(struct imap_thread *t, const struct imap_sort_msg *msgs,
                                   size_t count)
{
	struct imap_thread_hash ids;
	size_t refs = 0;
	for (size_t i = 0; i < count; i++)
		refs += msgs[i].ref_count;
	imap_thread_hash_init(&ids, count + refs);
	for (size_t i = 0; i < count; i++)
		imap_thread_link_msg(t, &ids, &msgs[i]);
	free(ids.entries);
	/* step 2: the containers without a parent make the root set */
	for (size_t i = 0; i < t->node_count; i++) {
		struct imap_thread_node *n = &t->nodes[i];
		if (n != t->root && n->parent == NULL)
			imap_thread_insert(t->root, n, NULL);
	}
	imap_thread_prune(t);
	/* step 4 sorts the root set by date, a dummy's children first; sorting
	 * every level now gives the same root order, and step 6 sorts them
	 * all again anyway */
	imap_thread_sort_all(t);
	imap_thread_group_subjects(t, count);
	imap_thread_sort_all(t);
}

/* ---- ORDEREDSUBJECT ---- */

static int imap_thread_subject_cmp(const void *pa, const void *pb)
{
	const struct imap_sort_msg *a = *(const struct imap_sort_msg *const *)pa;
	const struct imap_sort_msg *b = *(const struct imap_sort_msg *const *)pb;
	int c = strcmp(a->subject != NULL ? a->subject : "", b->subject != NULL ? b->subject : "");
	if (c != 0)
		return c;
	if (a->sent != b->sent)
		return a->sent < b->sent ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq ? 1 : 0;
}

/* Sorted by base subject then date; each run of one subject is a thread
 * whose first message is the parent of all the others; the threads are
 * then sorted by the date of their first message. */
static void imap_thread_ordered_subject(struct imap_thread *t, const struct imap_sort_msg *msgs,
                                        size_t count)
{
	const struct imap_sort_msg **sorted = xcalloc(count + 1, sizeof(*sorted));
	for (size_t i = 0; i < count; i++)
		sorted[i] = &msgs[i];
	qsort(sorted, count, sizeof(*sorted), imap_thread_subject_cmp);
	struct imap_thread_node *head = NULL;
	for (size_t i = 0; i < count; i++) {
		struct imap_thread_node *n = imap_thread_node_new(t, sorted[i]);
		if (head != NULL && strcmp(head->msg->subject != NULL ? head->msg->subject : "",
		                           n->msg->subject != NULL ? n->msg->subject : "") == 0) {
			imap_thread_insert(head, n, NULL);
		} else {
			imap_thread_insert(t->root, n, NULL);
			head = n;
		}
	}
	free(sorted);
	struct imap_thread_stack scratch = {NULL, 0, 0};
	imap_thread_sort_children(t->root, &scratch);
	free(scratch.items);
}

/* ---- the response (RFC 5256 4: thread-list) ---- */

static void imap_thread_number(const struct imap_thread_node *n, bool uid, bool first,
                               struct buf *out)
{
	buf_printf(out, "%s%" PRIu32, first ? "" : " ", uid ? n->msg->uid : n->msg->seq);
}

/* One thread: "(a b (c d)(e))". A node with one child continues the
 * list; with several, each child's subtree is a nested list. The stack
 * holds, for each open branch, the child being written. */
static void imap_thread_write_one(const struct imap_thread_node *n, bool uid,
                                  struct imap_thread_stack *stack, struct buf *out)
{
	bool first = true;
	stack->count = 0;
	buf_append_char(out, '(');
	for (;;) {
		if (n->msg != NULL) {
			imap_thread_number(n, uid, first, out);
			first = false;
		}
		if (n->first != NULL && n->first == n->last) {
			n = n->first; /* a chain (or a lone dummy's child) */
			continue;
		}
		if (n->first != NULL) {
			buf_append_str(out, first ? "(" : " (");
			imap_thread_push(stack, (struct imap_thread_node *)n->first);
			n = n->first;
			first = true;
			continue;
		}
		buf_append_char(out, ')');
		while (stack->count > 0 && stack->items[stack->count - 1]->next == NULL) {
			stack->count--;
			buf_append_char(out, ')');
		}
		if (stack->count == 0)
			return;
		n = stack->items[stack->count - 1] = stack->items[stack->count - 1]->next;
		buf_append_char(out, '(');
		first = true;
	}
}

void imap_thread_build(const struct imap_sort_msg *msgs, size_t count,
                       enum imap_thread_algorithm algorithm, bool uid, struct buf *out)
{
	struct imap_thread t;
	size_t max = 1 + 2 * count;
	for (size_t i = 0; i < count; i++)
		max += msgs[i].ref_count;
	t.nodes = xcalloc(max, sizeof(*t.nodes));
	t.node_max = max;
	t.node_count = 0;
	t.root = imap_thread_node_new(&t, NULL);
	if (algorithm == IMAP_THREAD_REFERENCES)
		imap_thread_references(&t, msgs, count);
	else
		imap_thread_ordered_subject(&t, msgs, count);
	struct imap_thread_stack stack = {NULL, 0, 0};
	for (const struct imap_thread_node *c = t.root->first; c != NULL; c = c->next)
		imap_thread_write_one(c, uid, &stack, out);
	free(stack.items);
	free(t.nodes);
}

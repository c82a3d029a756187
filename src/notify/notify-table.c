/* The two indexes over a notify instance's accounts: by root (so that 10,000
 * sessions on 1,000 accounts share 1,000 kernel watches) and by watch
 * descriptor (to route inotify events). Chained, doubling at load 1. */
#include "notify/notify-private.h"

#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"

#define NOTIFY_TABLE_MIN 16

uint32_t notify_hash_root(const char *root)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)root; *p != '\0'; p++) {
		h ^= *p;
		h *= 16777619u;
	}
	return h;
}

uint32_t notify_hash_wd(int wd)
{
	return (uint32_t)wd * 2654435761u;
}

static void notify_table_link(struct notify_table *t, enum notify_key key,
                              struct notify_account *acc)
{
	size_t i = acc->hval[key] & (t->size - 1);
	acc->hnext[key] = t->slots[i];
	t->slots[i] = acc;
}

static void notify_table_grow(struct notify_table *t, enum notify_key key)
{
	struct notify_account **old = t->slots;
	size_t old_size = t->size;
	t->size = old_size == 0 ? NOTIFY_TABLE_MIN : old_size * 2;
	t->slots = xcalloc(t->size, sizeof(*t->slots));
	for (size_t i = 0; i < old_size; i++) {
		struct notify_account *acc = old[i];
		while (acc != NULL) {
			struct notify_account *next = acc->hnext[key];
			notify_table_link(t, key, acc);
			acc = next;
		}
	}
	free(old);
}

void notify_table_insert(struct notify_table *t, enum notify_key key, struct notify_account *acc)
{
	if (t->count >= t->size)
		notify_table_grow(t, key);
	notify_table_link(t, key, acc);
	t->count++;
}

void notify_table_remove(struct notify_table *t, enum notify_key key, struct notify_account *acc)
{
	if (t->size == 0)
		return;
	struct notify_account **pp = &t->slots[acc->hval[key] & (t->size - 1)];
	while (*pp != NULL && *pp != acc)
		pp = &(*pp)->hnext[key];
	if (*pp == NULL)
		return;
	*pp = acc->hnext[key];
	acc->hnext[key] = NULL;
	t->count--;
}

void notify_table_free(struct notify_table *t)
{
	xfree(t->slots);
	t->size = 0;
	t->count = 0;
}

struct notify_account *notify_table_find_root(const struct notify_table *t, const char *root)
{
	if (t->size == 0)
		return NULL;
	struct notify_account *acc = t->slots[notify_hash_root(root) & (t->size - 1)];
	while (acc != NULL && strcmp(acc->root, root) != 0)
		acc = acc->hnext[NOTIFY_BY_ROOT];
	return acc;
}

struct notify_account *notify_table_find_wd(const struct notify_table *t, int wd,
                                            const struct notify_account *after)
{
	if (t->size == 0)
		return NULL;
	struct notify_account *acc = after != NULL ? after->hnext[NOTIFY_BY_WD]
	                                           : t->slots[notify_hash_wd(wd) & (t->size - 1)];
	while (acc != NULL && acc->wd != wd)
		acc = acc->hnext[NOTIFY_BY_WD];
	return acc;
}

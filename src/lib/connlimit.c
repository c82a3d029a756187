/* Connection counts across worker processes without locks. The master maps
 * one anonymous shared region before forking; each worker owns one slot (a
 * total and an open-addressing table of per-IP counts) and is its only
 * writer. Readers sum over all slots with relaxed atomic loads, so two
 * workers accepting at the same moment may admit one or two connections
 * over a limit: the limits protect resources, they are not exact quotas. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/un.h>

#include "lib/log.h"
#include "lib/net-private.h"
#include "lib/xmalloc.h"

/* Distinct client addresses one worker can count at once; beyond that a
 * connection still counts towards the total but not towards its IP. */
#define CONNLIMIT_IPS 4096

struct connlimit_entry {
	/* The address as two words so that readers never see a torn key. */
	_Atomic uint64_t hi;
	_Atomic uint64_t lo;
	_Atomic uint32_t count; /* 0 = empty */
};

struct connlimit_slot {
	_Atomic uint32_t total;
	struct connlimit_entry ips[CONNLIMIT_IPS];
};

struct connlimit {
	struct connlimit_slot *slots;
	unsigned slot_count;
	size_t size;
};

struct connlimit *connlimit_create(unsigned slots)
{
	struct connlimit *limits = xcalloc(1, sizeof(*limits));
	limits->size = sizeof(struct connlimit_slot) * slots;
	void *map = mmap(NULL, limits->size, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		fatal("connlimit: mmap of %zu bytes failed: %m", limits->size);
	limits->slots = map;
	limits->slot_count = slots;
	return limits;
}

void connlimit_destroy(struct connlimit **limits)
{
	if (*limits == NULL)
		return;
	munmap((*limits)->slots, (*limits)->size);
	xfree(*limits);
}

unsigned connlimit_slot_count(const struct connlimit *limits)
{
	return limits->slot_count;
}

void connlimit_clear_slot(struct connlimit *limits, unsigned slot)
{
	if (slot >= limits->slot_count)
		return;
	struct connlimit_slot *s = &limits->slots[slot];
	for (size_t i = 0; i < CONNLIMIT_IPS; i++)
		atomic_store_explicit(&s->ips[i].count, 0, memory_order_relaxed);
	atomic_store_explicit(&s->total, 0, memory_order_relaxed);
}

static void addr_words(const struct in6_addr *ip, uint64_t *hi_r,
		       uint64_t *lo_r)
{
	memcpy(hi_r, ip->s6_addr, 8);
	memcpy(lo_r, ip->s6_addr + 8, 8);
}

static size_t addr_home(uint64_t hi, uint64_t lo)
{
	uint64_t h = (hi ^ (lo * 0x9e3779b97f4a7c15ULL)) * 0xff51afd7ed558ccdULL;
	return (size_t)(h >> 32) % CONNLIMIT_IPS;
}

/* Index of ip's entry in the slot, or of the empty entry where it would
 * go; -1 when neither exists (table full). */
static long slot_find(struct connlimit_slot *s, uint64_t hi, uint64_t lo)
{
	size_t i = addr_home(hi, lo);
	for (size_t n = 0; n < CONNLIMIT_IPS; n++) {
		struct connlimit_entry *e = &s->ips[i];
		if (atomic_load_explicit(&e->count, memory_order_relaxed) == 0)
			return (long)i;
		if (atomic_load_explicit(&e->hi, memory_order_relaxed) == hi &&
		    atomic_load_explicit(&e->lo, memory_order_relaxed) == lo)
			return (long)i;
		i = (i + 1) % CONNLIMIT_IPS;
	}
	return -1;
}

static uint32_t slot_ip_count(struct connlimit_slot *s, uint64_t hi,
			      uint64_t lo)
{
	long i = slot_find(s, hi, lo);
	if (i < 0)
		return 0;
	return atomic_load_explicit(&s->ips[i].count, memory_order_relaxed);
}

uint32_t connlimit_count_total(const struct connlimit *limits)
{
	uint32_t sum = 0;
	for (unsigned i = 0; i < limits->slot_count; i++)
		sum += atomic_load_explicit(&limits->slots[i].total,
					    memory_order_relaxed);
	return sum;
}

uint32_t connlimit_count_ip(const struct connlimit *limits,
			    const struct in6_addr *ip)
{
	uint64_t hi, lo;
	uint32_t sum = 0;
	addr_words(ip, &hi, &lo);
	for (unsigned i = 0; i < limits->slot_count; i++)
		sum += slot_ip_count(&limits->slots[i], hi, lo);
	return sum;
}

static bool slot_add_ip(struct connlimit_slot *s, uint64_t hi, uint64_t lo)
{
	long i = slot_find(s, hi, lo);
	if (i < 0)
		return false;
	struct connlimit_entry *e = &s->ips[i];
	uint32_t count = atomic_load_explicit(&e->count, memory_order_relaxed);
	if (count == 0) {
		atomic_store_explicit(&e->hi, hi, memory_order_relaxed);
		atomic_store_explicit(&e->lo, lo, memory_order_relaxed);
	}
	atomic_store_explicit(&e->count, count + 1, memory_order_release);
	return true;
}

enum connlimit_result connlimit_acquire(struct connlimit *limits,
					unsigned slot,
					const struct in6_addr *ip,
					uint32_t max_total,
					uint32_t max_per_ip,
					const char **reason_r)
{
	if (max_total != 0 && connlimit_count_total(limits) >= max_total) {
		*reason_r = "limit";
		return CONNLIMIT_REFUSED;
	}
	if (max_per_ip != 0 && connlimit_count_ip(limits, ip) >= max_per_ip) {
		*reason_r = "per-ip-limit";
		return CONNLIMIT_REFUSED;
	}
	if (slot >= limits->slot_count)
		return CONNLIMIT_UNTRACKED;
	struct connlimit_slot *s = &limits->slots[slot];
	atomic_fetch_add_explicit(&s->total, 1, memory_order_relaxed);
	uint64_t hi, lo;
	addr_words(ip, &hi, &lo);
	return slot_add_ip(s, hi, lo) ? CONNLIMIT_TRACKED : CONNLIMIT_UNTRACKED;
}

static void entry_move(struct connlimit_entry *to, struct connlimit_entry *from)
{
	atomic_store_explicit(&to->hi, atomic_load_explicit(&from->hi, memory_order_relaxed),
			      memory_order_relaxed);
	atomic_store_explicit(&to->lo, atomic_load_explicit(&from->lo, memory_order_relaxed),
			      memory_order_relaxed);
	atomic_store_explicit(&to->count,
			      atomic_load_explicit(&from->count, memory_order_relaxed),
			      memory_order_release);
}

/* Is home h outside the cyclic range (hole, j]? Then the entry at j may
 * move back into the hole without breaking its probe chain. */
static bool may_fill_hole(size_t hole, size_t j, size_t h)
{
	if (hole <= j)
		return h <= hole || h > j;
	return h <= hole && h > j;
}

/* Deletion by backward shift keeps every probe chain free of holes, so
 * lookups may stop at the first empty entry. */
static void slot_remove_at(struct connlimit_slot *s, size_t hole)
{
	size_t j = hole;
	for (size_t n = 0; n < CONNLIMIT_IPS; n++) {
		j = (j + 1) % CONNLIMIT_IPS;
		struct connlimit_entry *e = &s->ips[j];
		if (atomic_load_explicit(&e->count, memory_order_relaxed) == 0)
			break;
		size_t h = addr_home(atomic_load_explicit(&e->hi, memory_order_relaxed),
				     atomic_load_explicit(&e->lo, memory_order_relaxed));
		if (may_fill_hole(hole, j, h)) {
			entry_move(&s->ips[hole], e);
			hole = j;
		}
	}
	atomic_store_explicit(&s->ips[hole].count, 0, memory_order_release);
}

void connlimit_release(struct connlimit *limits, unsigned slot,
		       const struct in6_addr *ip, bool tracked)
{
	if (slot >= limits->slot_count)
		return;
	struct connlimit_slot *s = &limits->slots[slot];
	if (atomic_load_explicit(&s->total, memory_order_relaxed) > 0)
		atomic_fetch_sub_explicit(&s->total, 1, memory_order_relaxed);
	if (!tracked)
		return;
	uint64_t hi, lo;
	addr_words(ip, &hi, &lo);
	long i = slot_find(s, hi, lo);
	if (i < 0)
		return;
	struct connlimit_entry *e = &s->ips[i];
	uint32_t count = atomic_load_explicit(&e->count, memory_order_relaxed);
	if (count > 1)
		atomic_store_explicit(&e->count, count - 1, memory_order_release);
	else if (count == 1)
		slot_remove_at(s, (size_t)i);
}

void connlimit_addr_from_sockaddr(const struct sockaddr *sa,
				  struct in6_addr *ip_r)
{
	memset(ip_r, 0, sizeof(*ip_r));
	if (sa->sa_family == AF_INET6) {
		*ip_r = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;
		ip_r->s6_addr[10] = 0xff;
		ip_r->s6_addr[11] = 0xff;
		memcpy(ip_r->s6_addr + 12, &sin->sin_addr, 4);
	}
}

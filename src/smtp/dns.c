/* c-ares on libevent: each lookup owns a channel whose sockets are watched
 * by libevent events (ARES_OPT_SOCK_STATE_CB) and whose retransmissions run
 * from one timer. A finished lookup hands its result over through a
 * deferred event, so callers are never called back from inside c-ares or
 * from inside the call that started the lookup. */
#include "smtp/dns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config.h"
#include "lib/xmalloc.h"

#define DNS_MAX_HOSTS 16

struct dns_sock {
	ares_socket_t fd;
	struct event *ev;
	struct dns_sock *next;
};

struct dns_lookup {
	struct event_base *base;
	ares_channel channel;
	bool have_channel;
	struct dns_sock *socks;
	struct event *timer;
	struct event *done;
	dns_callback *callback;
	void *context;
	char *name;
	struct dns_result *result;
	size_t pending;      /* address lookups still running */
	bool any_temp;       /* one of them failed temporarily */
	bool finished;
};

struct dns_addr_query {
	struct dns_lookup *lookup;
	size_t index;
};

static void dns_arm_timer(struct dns_lookup *lk)
{
	struct timeval maxtv = { 5, 0 }, tv, *tvp;
	if (lk->finished)
		return;
	tvp = ares_timeout(lk->channel, &maxtv, &tv);
	evtimer_add(lk->timer, tvp);
}

static void dns_on_sock(evutil_socket_t fd, short what, void *arg)
{
	struct dns_lookup *lk = arg;
	ares_process_fd(lk->channel, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
			(what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	dns_arm_timer(lk);
}

static void dns_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dns_lookup *lk = arg;
	(void)fd;
	(void)what;
	ares_process_fd(lk->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_arm_timer(lk);
}

static void dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns_lookup *lk = data;
	struct dns_sock **p = &lk->socks;
	while (*p != NULL && (*p)->fd != fd)
		p = &(*p)->next;
	if (*p != NULL) {
		struct dns_sock *s = *p;
		event_free(s->ev);
		*p = s->next;
		free(s);
	}
	if (!readable && !writable)
		return;
	struct dns_sock *s = xcalloc(1, sizeof(*s));
	short what = EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);
	s->fd = fd;
	s->ev = event_new(lk->base, fd, what, dns_on_sock, lk);
	event_add(s->ev, NULL);
	s->next = lk->socks;
	lk->socks = s;
}

static void dns_finish(struct dns_lookup *lk, enum dns_status status, const char *error,
		       const char *enhanced)
{
	lk->result->status = status;
	lk->result->error = error;
	lk->result->enhanced = enhanced;
	lk->finished = true;
	evtimer_del(lk->timer);
	event_active(lk->done, EV_TIMEOUT, 0);
}

static void dns_destroy(struct dns_lookup *lk)
{
	if (lk->have_channel)
		ares_destroy(lk->channel);  /* callbacks see ARES_EDESTRUCTION */
	while (lk->socks != NULL) {
		struct dns_sock *s = lk->socks;
		lk->socks = s->next;
		event_free(s->ev);
		free(s);
	}
	event_free(lk->timer);
	event_free(lk->done);
	dns_result_free(&lk->result);
	free(lk->name);
	free(lk);
}

static void dns_on_done(evutil_socket_t fd, short what, void *arg)
{
	struct dns_lookup *lk = arg;
	struct dns_result *result = lk->result;
	(void)fd;
	(void)what;
	lk->result = NULL;
	if (result->status != DNS_OK) {
		for (size_t i = 0; i < result->host_count; i++) {
			free(result->hosts[i].name);
			free(result->hosts[i].addrs);
		}
		free(result->hosts);
		result->hosts = NULL;
		result->host_count = 0;
	}
	lk->callback(lk->context, result);
	dns_destroy(lk);
}

static int dns_channel_init(struct dns_lookup *lk, const struct yubin_config *config)
{
	struct ares_options opts;
	memset(&opts, 0, sizeof(opts));
	opts.sock_state_cb = dns_sock_state;
	opts.sock_state_cb_data = lk;
	opts.timeout = (int)config->dns.timeout;
	opts.tries = (int)config->dns.tries;
	int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
	if (ares_init_options(&lk->channel, &opts, mask) != ARES_SUCCESS)
		return -1;
	lk->have_channel = true;
	if (config->dns.servers[0] != '\0' &&
	    ares_set_servers_ports_csv(lk->channel, config->dns.servers) != ARES_SUCCESS)
		return -1;
	return 0;
}

static struct dns_lookup *dns_lookup_new(struct event_base *base, const struct yubin_config *config,
					 const char *name, dns_callback *callback, void *context)
{
	static bool library_ready;
	struct dns_lookup *lk = xcalloc(1, sizeof(*lk));
	if (!library_ready) {
		ares_library_init(ARES_LIB_INIT_ALL);
		library_ready = true;
	}
	lk->base = base;
	lk->callback = callback;
	lk->context = context;
	lk->name = xstrdup(name);
	lk->result = xcalloc(1, sizeof(*lk->result));
	lk->timer = evtimer_new(base, dns_on_timer, lk);
	lk->done = event_new(base, -1, 0, dns_on_done, lk);
	if (dns_channel_init(lk, config) < 0)
		dns_finish(lk, DNS_TEMPFAIL, "the resolver could not be set up ([dns] servers)", "4.4.3");
	return lk;
}

static bool dns_status_is_temp(int status)
{
	return status != ARES_ENOTFOUND && status != ARES_ENODATA && status != ARES_ENONAME &&
	       status != ARES_EBADNAME;
}

static void dns_add_addr(struct dns_host *host, const struct sockaddr *sa, size_t len)
{
	if (len > sizeof(struct sockaddr_storage) ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
		return;
	host->addrs = xreallocarray(host->addrs, host->addr_count + 1, sizeof(*host->addrs));
	memset(&host->addrs[host->addr_count], 0, sizeof(*host->addrs));
	memcpy(&host->addrs[host->addr_count], sa, len);
	host->addr_count++;
}

/* Drops the hosts without an address and decides the outcome. */
static void dns_addrs_complete(struct dns_lookup *lk)
{
	struct dns_result *r = lk->result;
	size_t kept = 0;
	for (size_t i = 0; i < r->host_count; i++) {
		if (r->hosts[i].addr_count == 0) {
			free(r->hosts[i].name);
			free(r->hosts[i].addrs);
			continue;
		}
		r->hosts[kept++] = r->hosts[i];
	}
	r->host_count = kept;
	if (kept > 0)
		dns_finish(lk, DNS_OK, NULL, NULL);
	else if (lk->any_temp)
		dns_finish(lk, DNS_TEMPFAIL, "address lookup failed temporarily", "4.4.3");
	else
		dns_finish(lk, DNS_PERMFAIL, "no address for the mail host", "5.1.2");
}

static void dns_on_addrinfo(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
	struct dns_addr_query *q = arg;
	struct dns_lookup *lk = q->lookup;
	(void)timeouts;
	if (status == ARES_EDESTRUCTION || lk->finished) {
		free(q);
		ares_freeaddrinfo(ai);
		return;
	}
	if (status == ARES_SUCCESS && ai != NULL) {
		for (struct ares_addrinfo_node *n = ai->nodes; n != NULL; n = n->ai_next)
			dns_add_addr(&lk->result->hosts[q->index], n->ai_addr, n->ai_addrlen);
	} else if (dns_status_is_temp(status)) {
		lk->any_temp = true;
	}
	free(q);
	ares_freeaddrinfo(ai);
	if (--lk->pending == 0)
		dns_addrs_complete(lk);
}

static void dns_resolve_hosts(struct dns_lookup *lk)
{
	struct ares_addrinfo_hints hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	lk->pending = lk->result->host_count;
	for (size_t i = 0; i < lk->result->host_count && !lk->finished; i++) {
		struct dns_addr_query *q = xmalloc(sizeof(*q));
		q->lookup = lk;
		q->index = i;
		ares_getaddrinfo(lk->channel, lk->result->hosts[i].name, NULL, &hints,
				 dns_on_addrinfo, q);
	}
	dns_arm_timer(lk);
}

static void dns_result_add_host(struct dns_result *r, const char *name, unsigned int pref)
{
	r->hosts = xreallocarray(r->hosts, r->host_count + 1, sizeof(*r->hosts));
	memset(&r->hosts[r->host_count], 0, sizeof(*r->hosts));
	r->hosts[r->host_count].name = xstrdup(name);
	r->hosts[r->host_count].preference = pref;
	r->host_count++;
}

struct dns_mx_sort {
	struct ares_mx_reply *mx;
	uint32_t shuffle;
};

static int dns_mx_cmp(const void *a, const void *b)
{
	const struct dns_mx_sort *x = a, *y = b;
	if (x->mx->priority != y->mx->priority)
		return x->mx->priority < y->mx->priority ? -1 : 1;
	return x->shuffle < y->shuffle ? -1 : x->shuffle > y->shuffle;
}

static bool dns_is_null_mx(const struct ares_mx_reply *mx)
{
	return mx->host[0] == '\0' || strcmp(mx->host, ".") == 0;
}

/* RFC 5321 5.1: lowest preference first, equal ones in random order. */
static void dns_take_mx(struct dns_lookup *lk, struct ares_mx_reply *list)
{
	struct dns_mx_sort sorted[DNS_MAX_HOSTS];
	size_t n = 0;
	for (struct ares_mx_reply *mx = list; mx != NULL && n < DNS_MAX_HOSTS; mx = mx->next) {
		if (dns_is_null_mx(mx))
			continue;
		sorted[n].mx = mx;
		sorted[n].shuffle = arc4random();
		n++;
	}
	qsort(sorted, n, sizeof(sorted[0]), dns_mx_cmp);
	for (size_t i = 0; i < n; i++)
		dns_result_add_host(lk->result, sorted[i].mx->host, sorted[i].mx->priority);
}

static void dns_on_mx_reply(struct dns_lookup *lk, unsigned char *abuf, int alen)
{
	struct ares_mx_reply *list = NULL;
	int status = abuf == NULL ? ARES_ENODATA : ares_parse_mx_reply(abuf, alen, &list);
	/* NOERROR without answers (ANCOUNT 0) is "no MX" too. */
	bool no_answer = abuf != NULL && alen >= 12 && abuf[6] == 0 && abuf[7] == 0;
	if (status == ARES_ENODATA || no_answer || (status == ARES_SUCCESS && list == NULL)) {
		if (list != NULL)
			ares_free_data(list);
		dns_result_add_host(lk->result, lk->name, 0);   /* implicit MX */
	} else if (status != ARES_SUCCESS) {
		dns_finish(lk, DNS_TEMPFAIL, "malformed MX answer", "4.4.3");
		return;
	} else if (list->next == NULL && dns_is_null_mx(list)) {
		/* RFC 7505 3: a single "0 ." record */
		ares_free_data(list);
		dns_finish(lk, DNS_PERMFAIL, "the domain accepts no mail (null MX, RFC 7505)", "5.1.10");
		return;
	} else {
		dns_take_mx(lk, list);
		ares_free_data(list);
		if (lk->result->host_count == 0) {
			dns_finish(lk, DNS_PERMFAIL, "the domain accepts no mail (null MX, RFC 7505)",
				   "5.1.10");
			return;
		}
	}
	dns_resolve_hosts(lk);
}

static void dns_on_mx(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_lookup *lk = arg;
	(void)timeouts;
	if (status == ARES_EDESTRUCTION || lk->finished)
		return;
	if (status == ARES_SUCCESS)
		dns_on_mx_reply(lk, abuf, alen);
	else if (status == ARES_ENODATA)
		dns_on_mx_reply(lk, NULL, 0);
	else if (status == ARES_ENOTFOUND)
		dns_finish(lk, DNS_PERMFAIL, "no such domain (NXDOMAIN)", "5.1.2");
	else
		dns_finish(lk, DNS_TEMPFAIL, "MX lookup failed temporarily", "4.4.3");
}

struct dns_lookup *dns_lookup_mx(struct event_base *base, const struct yubin_config *config,
				 const char *domain, dns_callback *callback, void *context)
{
	struct dns_lookup *lk = dns_lookup_new(base, config, domain, callback, context);
	if (lk->finished)
		return lk;
	ares_query(lk->channel, domain, ns_c_in, ns_t_mx, dns_on_mx, lk);
	if (!lk->finished)
		dns_arm_timer(lk);
	return lk;
}

static bool dns_parse_literal(const char *host, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		return true;
	}
	return false;
}

struct dns_lookup *dns_lookup_host(struct event_base *base, const struct yubin_config *config,
				   const char *host, dns_callback *callback, void *context)
{
	struct dns_lookup *lk = dns_lookup_new(base, config, host, callback, context);
	struct sockaddr_storage ss;
	if (lk->finished)
		return lk;
	dns_result_add_host(lk->result, host, 0);
	if (dns_parse_literal(host, &ss)) {
		dns_add_addr(&lk->result->hosts[0], (struct sockaddr *)&ss, sizeof(ss));
		dns_finish(lk, DNS_OK, NULL, NULL);
		return lk;
	}
	dns_resolve_hosts(lk);
	return lk;
}

void dns_lookup_cancel(struct dns_lookup **lookup)
{
	if (*lookup == NULL)
		return;
	dns_destroy(*lookup);
	*lookup = NULL;
}

void dns_result_free(struct dns_result **result)
{
	struct dns_result *r = *result;
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->host_count; i++) {
		free(r->hosts[i].name);
		free(r->hosts[i].addrs);
	}
	free(r->hosts);
	free(r);
	*result = NULL;
}

void dns_addr_set_port(struct sockaddr_storage *addr, unsigned int port)
{
	if (addr->ss_family == AF_INET)
		((struct sockaddr_in *)addr)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)addr)->sin6_port = htons((uint16_t)port);
}

socklen_t dns_addr_len(const struct sockaddr_storage *addr)
{
	return addr->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

const char *dns_addr_str(const struct sockaddr_storage *addr, char *buf, size_t size)
{
	const void *a = addr->ss_family == AF_INET
		? (const void *)&((const struct sockaddr_in *)addr)->sin_addr
		: (const void *)&((const struct sockaddr_in6 *)addr)->sin6_addr;
	if (inet_ntop(addr->ss_family, a, buf, (socklen_t)size) == NULL)
		snprintf(buf, size, "?");
	return buf;
}

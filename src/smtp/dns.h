/* Asynchronous DNS for the SMTP client: c-ares with its sockets driven by
 * libevent events on the caller's loop. One lookup answers "where does mail
 * for this domain go" (RFC 5321 5.1: MX in preference order, equal
 * preferences shuffled, no MX = the domain itself as implicit MX, RFC 7505
 * null MX refused) or "what are the addresses of this host". The servers
 * asked are [dns] servers, else the system's /etc/resolv.conf. */
#ifndef YUBIN_SMTP_DNS_H
#define YUBIN_SMTP_DNS_H

#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct yubin_config;

enum dns_status {
	DNS_OK,
	DNS_TEMPFAIL,   /* SERVFAIL, timeout, refused: try again later */
	DNS_PERMFAIL,   /* NXDOMAIN, null MX, no address at all */
};

struct dns_host {
	char *name;
	unsigned int preference;
	struct sockaddr_storage *addrs;
	size_t addr_count;
};

struct dns_result {
	enum dns_status status;
	/* Why it failed (static string), NULL on success. */
	const char *error;
	/* RFC 3463 code for a failure: "5.1.10" null MX, "5.1.2" no such domain,
	 * "4.4.3" resolver trouble. */
	const char *enhanced;
	/* In the order to try; only hosts that have at least one address. */
	struct dns_host *hosts;
	size_t host_count;
};

/* Gets the result; owns it from now on (dns_result_free). */
typedef void dns_callback(void *context, struct dns_result *result);

struct dns_lookup;

/* Both start a lookup; the callback runs exactly once, later, from the loop
 * (never inside these calls). */
struct dns_lookup *dns_lookup_mx(struct event_base *base, const struct yubin_config *config,
				 const char *domain, dns_callback *callback, void *context);
/* A/AAAA of one host (an IP literal is answered without DNS); the result
 * has one host on success. */
struct dns_lookup *dns_lookup_host(struct event_base *base, const struct yubin_config *config,
				   const char *host, dns_callback *callback, void *context);
/* Stops a lookup: no callback. Accepts NULL. */
void dns_lookup_cancel(struct dns_lookup **lookup);
void dns_result_free(struct dns_result **result);

/* The port of a sockaddr_storage holding AF_INET or AF_INET6. */
void dns_addr_set_port(struct sockaddr_storage *addr, unsigned int port);
socklen_t dns_addr_len(const struct sockaddr_storage *addr);
/* "192.0.2.1" or "2001:db8::1" into buf; returns buf. */
const char *dns_addr_str(const struct sockaddr_storage *addr, char *buf, size_t size);

#endif

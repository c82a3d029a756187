/* Where a domain's mail goes ([transport] routes, then [relay], then MX)
 * and with which TLS policy; and the one TLS client context. */
#include "smtp/smtpc-private.h"

#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/config.h"
#include "lib/strnum.h"
#include "lib/xmalloc.h"

static const char *const smtpc_tls_names[] = { "none", "may", "encrypt", "verify", NULL };

/* Finds key in "k=v, k2=v2" (keys case-insensitive); the value is
 * returned malloc'd, or NULL. */
static char *smtpc_map_lookup(const char *map, const char *key)
{
	const char *p = map + strspn(map, ", \t");
	size_t key_len = strlen(key);
	while (*p != '\0') {
		size_t len = strcspn(p, ", \t");
		const char *eq = memchr(p, '=', len);
		if (eq != NULL && (size_t)(eq - p) == key_len && strncasecmp(p, key, key_len) == 0)
			return xstrndup(eq + 1, len - (size_t)(eq - p) - 1);
		p += len;
		p += strspn(p, ", \t");
	}
	return NULL;
}

static int smtpc_tls_parse(const char *word, enum smtpc_tls *tls_r)
{
	for (unsigned int i = 0; smtpc_tls_names[i] != NULL; i++) {
		if (strcasecmp(word, smtpc_tls_names[i]) == 0) {
			*tls_r = (enum smtpc_tls)i;
			return 0;
		}
	}
	return -1;
}

static int smtpc_port_parse(const char *s, unsigned int *port_r)
{
	uint32_t port;
	if (str_to_uint32(s, &port) < 0 || port == 0 || port > 65535)
		return -1;
	*port_r = port;
	return 0;
}

/* "[host]:port", "[host]", "host:port", "host" (Postfix's nexthop). */
static int smtpc_nexthop_parse(const char *text, struct smtpc_route *route)
{
	const char *colon;
	route->port = 25;
	if (text[0] == '[') {
		const char *end = strchr(text, ']');
		if (end == NULL || end == text + 1)
			return -1;
		route->mx = false;
		route->host = xstrndup(text + 1, (size_t)(end - text - 1));
		if (end[1] == '\0')
			return 0;
		return end[1] == ':' ? smtpc_port_parse(end + 2, &route->port) : -1;
	}
	route->mx = true;
	colon = strrchr(text, ':');
	route->host = colon == NULL ? xstrdup(text) : xstrndup(text, (size_t)(colon - text));
	if (route->host[0] == '\0')
		return -1;
	return colon == NULL ? 0 : smtpc_port_parse(colon + 1, &route->port);
}

static void smtpc_route_relay(const struct yubin_config *config, struct smtpc_route *route)
{
	route->host = xstrdup(config->relay.host);
	route->port = config->relay.port;
	route->mx = false;
	route->relay = true;
	route->implicit_tls = config->relay.tls == TLS_MODE_IMPLICIT;
	if (config->relay.tls == TLS_MODE_NONE)
		route->tls = SMTPC_TLS_NONE;
	else
		route->tls = config->relay.verify ? SMTPC_TLS_VERIFY : SMTPC_TLS_ENCRYPT;
}

int smtpc_route_find(const struct yubin_config *config, const char *domain,
		     struct smtpc_route *route, const char **error_r)
{
	char *hop = smtpc_map_lookup(config->transport.routes, domain);
	char *policy = smtpc_map_lookup(config->smtp_client.tls_policy_map, domain);
	int ret = 0;

	memset(route, 0, sizeof(*route));
	if (smtpc_tls_parse(config->smtp_client.tls_policy, &route->tls) < 0)
		route->tls = SMTPC_TLS_MAY;
	if (hop != NULL) {
		if (smtpc_nexthop_parse(hop, route) < 0) {
			*error_r = "malformed [transport] routes entry for this domain";
			ret = -1;
		}
	} else if (config->relay.host[0] != '\0') {
		smtpc_route_relay(config, route);
	} else {
		route->host = xstrdup(domain);
		route->port = 25;
		route->mx = true;
	}
	if (ret == 0 && policy != NULL && !route->relay && smtpc_tls_parse(policy, &route->tls) < 0) {
		*error_r = "unknown policy in [smtp_client] tls_policy_map for this domain";
		ret = -1;
	}
	free(hop);
	free(policy);
	return ret;
}

void smtpc_route_free(struct smtpc_route *route)
{
	free(route->host);
	route->host = NULL;
}

static SSL_CTX *smtpc_ctx;
static char *smtpc_ctx_ca;

static SSL_CTX *smtpc_tls_ctx_new(const char *ca_file, const char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	int ok;
	if (ctx == NULL) {
		*error_r = "cannot create a TLS context";
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (strcmp(ca_file, "system") == 0)
		ok = SSL_CTX_set_default_verify_paths(ctx);
	else
		ok = SSL_CTX_load_verify_locations(ctx, ca_file, NULL);
	if (ok != 1) {
		SSL_CTX_free(ctx);
		*error_r = "cannot load the CA certificates ([smtp_client] ca_file)";
		return NULL;
	}
	return ctx;
}

SSL_CTX *smtpc_tls_ctx(const struct yubin_config *config, const char **error_r)
{
	const char *ca = config->smtp_client.ca_file;
	if (smtpc_ctx != NULL && strcmp(smtpc_ctx_ca, ca) == 0)
		return smtpc_ctx;
	SSL_CTX *ctx = smtpc_tls_ctx_new(ca, error_r);
	if (ctx == NULL)
		return NULL;
	/* Connections still using the old one hold their own reference. */
	SSL_CTX_free(smtpc_ctx);
	free(smtpc_ctx_ca);
	smtpc_ctx = ctx;
	smtpc_ctx_ca = xstrdup(ca);
	return ctx;
}

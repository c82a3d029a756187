#include "lib/address.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"

#define ADDRESS_LOCAL_MAX 64
#define DOMAIN_LABEL_MAX 63
#define DOMAIN_MAX 253

static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool is_ldh(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

static bool is_local_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

static char *lower_copy(const char *s, size_t len)
{
	char *copy = xstrndup(s, len);
	for (size_t i = 0; i < len; i++)
		copy[i] = ascii_lower(copy[i]);
	return copy;
}

/* One label: [a-z0-9-], 1..63 bytes, no '-' at either end. */
static const char *domain_check_label(const char *label, size_t len)
{
	if (len == 0)
		return "the domain has an empty label (two dots in a row, or a dot at the start)";
	if (len > DOMAIN_LABEL_MAX)
		return "a label of the domain is longer than 63 characters";
	if (label[0] == '-' || label[len - 1] == '-')
		return "a label of the domain starts or ends with '-'";
	for (size_t i = 0; i < len; i++) {
		if (!is_ldh(label[i]))
			return "the domain may contain only letters, digits, '-' and '.'";
	}
	return NULL;
}

static const char *domain_check(const char *domain, size_t len)
{
	if (len == 0)
		return "the domain is empty";
	if (len > DOMAIN_MAX)
		return "the domain is longer than 253 characters";
	size_t labels = 0;
	const char *p = domain, *end = domain + len;
	for (;;) {
		const char *dot = memchr(p, '.', (size_t)(end - p));
		const char *label_end = dot != NULL ? dot : end;
		const char *error = domain_check_label(p, (size_t)(label_end - p));
		if (error != NULL)
			return error;
		labels++;
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	if (labels < 2)
		return "the domain needs at least two labels (like example.org)";
	return NULL;
}

char *domain_normalize(const char *domain, const char **error_r)
{
	size_t len = strlen(domain);
	if (len > 0 && domain[len - 1] == '.')
		len--;
	char *copy = lower_copy(domain, len);
	const char *error = domain_check(copy, len);
	if (error != NULL) {
		xfree(copy);
		*error_r = error;
		return NULL;
	}
	return copy;
}

static const char *local_check(const char *local, size_t len)
{
	if (len == 0)
		return "the local part (before '@') is empty";
	if (len > ADDRESS_LOCAL_MAX)
		return "the local part (before '@') is longer than 64 characters";
	if (local[0] == '.' || local[len - 1] == '.')
		return "the local part (before '@') starts or ends with '.'";
	for (size_t i = 0; i < len; i++) {
		if (local[i] == '+')
			return "the local part may not contain '+' (reserved for subaddresses)";
		if (!is_local_char(local[i]))
			return "the local part may contain only letters, digits, '.', '_' and '-'";
		if (local[i] == '.' && local[i + 1] == '.')
			return "the local part (before '@') has two dots in a row";
	}
	return NULL;
}

/* Splits at the only '@'; NULL with an error when there is not exactly one. */
static const char *address_split(const char *address, const char **at_r)
{
	const char *at = strchr(address, '@');
	if (at == NULL)
		return "the address has no '@' (it must look like user@example.org)";
	if (strchr(at + 1, '@') != NULL)
		return "the address has more than one '@'";
	*at_r = at;
	return NULL;
}

char *address_normalize(const char *address, const char **error_r)
{
	const char *at, *error = address_split(address, &at);
	if (error != NULL) {
		*error_r = error;
		return NULL;
	}
	size_t local_len = (size_t)(at - address);
	char *local = lower_copy(address, local_len);
	error = local_check(local, local_len);
	if (error != NULL) {
		xfree(local);
		*error_r = error;
		return NULL;
	}
	char *domain = domain_normalize(at + 1, error_r);
	if (domain == NULL) {
		xfree(local);
		return NULL;
	}
	char *result = xasprintf("%s@%s", local, domain);
	xfree(local);
	xfree(domain);
	return result;
}

const char *address_domain(const char *address)
{
	const char *at = strrchr(address, '@');
	return at != NULL ? at + 1 : "";
}

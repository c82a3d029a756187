#include "auth/auth.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

/* Decoded client data is refused past this: credentials are short. */
#define SASL_DATA_MAX 1024
#define SASL_CHALLENGE_MAX 64

struct sasl;

/* One mechanism: called with the decoded response (NULL when the client
 * sent no initial response). */
struct sasl_mech {
	const char *name;
	enum sasl_status (*step)(struct sasl *sasl, const struct buf *data, const char **error_r);
};

struct sasl {
	const struct sasl_mech *mech;
	unsigned int step;    /* responses received so far */
	bool over;            /* DONE, FAILED or CANCELLED was returned */
	struct buf challenge; /* base64 text */
	char *username;
	char *password;
};

static enum sasl_status sasl_plain_step(struct sasl *sasl, const struct buf *data,
                                        const char **error_r);
static enum sasl_status sasl_login_step(struct sasl *sasl, const struct buf *data,
                                        const char **error_r);

static const struct sasl_mech sasl_mechs[] = {
        {"PLAIN", sasl_plain_step},
        {"LOGIN", sasl_login_step},
};

const char *sasl_mechanisms(void)
{
	return "PLAIN LOGIN";
}

struct sasl *sasl_begin(const char *mechanism)
{
	for (size_t i = 0; i < sizeof(sasl_mechs) / sizeof(sasl_mechs[0]); i++) {
		if (strcasecmp(mechanism, sasl_mechs[i].name) == 0) {
			struct sasl *sasl = xcalloc(1, sizeof(*sasl));
			sasl->mech = &sasl_mechs[i];
			buf_init(&sasl->challenge, SASL_CHALLENGE_MAX);
			return sasl;
		}
	}
	return NULL;
}

static void wipe_free(char **s)
{
	if (*s == NULL)
		return;
	explicit_bzero(*s, strlen(*s));
	xfree(*s);
}

void sasl_free(struct sasl **saslp)
{
	struct sasl *sasl = *saslp;
	if (sasl == NULL)
		return;
	wipe_free(&sasl->username);
	wipe_free(&sasl->password);
	buf_free(&sasl->challenge);
	free(sasl);
	*saslp = NULL;
}

const char *sasl_username(const struct sasl *sasl)
{
	return sasl->username;
}

const char *sasl_password(const struct sasl *sasl)
{
	return sasl->password;
}

static enum sasl_status sasl_challenge(struct sasl *sasl, const char *text)
{
	buf_reset(&sasl->challenge);
	if (base64_encode(text, strlen(text), &sasl->challenge) < 0)
		panic("sasl: challenge '%s' does not fit its buffer", text);
	return SASL_CONTINUE;
}

/* A credential field: non-empty and without NUL bytes (it becomes a C
 * string). */
static char *sasl_field(const char *data, size_t len)
{
	if (len == 0 || memchr(data, '\0', len) != NULL)
		return NULL;
	return xstrndup(data, len);
}

static enum sasl_status sasl_fail(const char *why, const char **error_r)
{
	*error_r = why;
	return SASL_FAILED;
}

/* RFC 4616: [authzid] NUL authcid NUL passwd. Acting as another user is
 * not supported, so a non-empty authzid must name the same user. */
static enum sasl_status sasl_plain_parse(struct sasl *sasl, const char *msg, size_t len,
                                         const char **error_r)
{
	const char *nul1 = memchr(msg, '\0', len);
	const char *nul2 =
	        nul1 == NULL ? NULL : memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - msg));
	if (nul2 == NULL)
		return sasl_fail("malformed PLAIN message", error_r);
	const char *authcid = nul1 + 1, *passwd = nul2 + 1;
	size_t authcid_len = (size_t)(nul2 - authcid);
	size_t passwd_len = len - (size_t)(passwd - msg);
	sasl->username = sasl_field(authcid, authcid_len);
	sasl->password = sasl_field(passwd, passwd_len);
	if (sasl->username == NULL || sasl->password == NULL)
		return sasl_fail("empty or malformed user name or password", error_r);
	size_t authzid_len = (size_t)(nul1 - msg);
	if (authzid_len > 0 &&
	    (authzid_len != authcid_len || strncasecmp(msg, authcid, authcid_len) != 0))
		return sasl_fail("authorization identity not supported", error_r);
	return SASL_DONE;
}

static enum sasl_status sasl_plain_step(struct sasl *sasl, const struct buf *data,
                                        const char **error_r)
{
	if (data == NULL) {
		if (sasl->step > 0)
			return sasl_fail("missing response", error_r);
		return sasl_challenge(sasl, "");
	}
	return sasl_plain_parse(sasl, buf_str(data), data->len, error_r);
}

/* LOGIN (draft-murchison-sasl-login): the server asks "Username:" then
 * "Password:"; an initial response is the user name. */
static enum sasl_status sasl_login_step(struct sasl *sasl, const struct buf *data,
                                        const char **error_r)
{
	if (data == NULL) {
		if (sasl->step > 0)
			return sasl_fail("missing response", error_r);
		return sasl_challenge(sasl, "Username:");
	}
	char *field = sasl_field(buf_str(data), data->len);
	if (field == NULL)
		return sasl_fail("empty or malformed user name or password", error_r);
	if (sasl->username == NULL) {
		sasl->username = field;
		return sasl_challenge(sasl, "Password:");
	}
	sasl->password = field;
	return SASL_DONE;
}

/* Decodes a response; "=" stands for an empty one. */
static int sasl_decode(const char *response, struct buf *data, const char **error_r)
{
	if (strcmp(response, "=") == 0)
		return 0;
	size_t len = strlen(response);
	if (len % 4 == 0 && len > 0) {
		size_t pad = (response[len - 1] == '=') + (response[len - 2] == '=');
		if (len / 4 * 3 - pad > SASL_DATA_MAX) {
			*error_r = "response too long";
			return -1;
		}
	}
	if (base64_decode(response, len, data) < 0) {
		*error_r = "invalid base64";
		return -1;
	}
	return 0;
}

static enum sasl_status sasl_run(struct sasl *sasl, const char *response, const char **error_r)
{
	if (response == NULL)
		return sasl->mech->step(sasl, NULL, error_r);
	if (strcmp(response, "*") == 0)
		return SASL_CANCELLED;
	struct buf data = BUF_INIT(SASL_DATA_MAX);
	enum sasl_status status = SASL_FAILED;
	if (sasl_decode(response, &data, error_r) == 0)
		status = sasl->mech->step(sasl, &data, error_r);
	if (data.data != NULL)
		explicit_bzero(data.data, data.len);
	buf_free(&data);
	return status;
}

enum sasl_status sasl_step(struct sasl *sasl, const char *response, const char **challenge_r,
                           const char **error_r)
{
	if (sasl->over)
		return sasl_fail("the authentication exchange is already over", error_r);
	enum sasl_status status = sasl_run(sasl, response, error_r);
	sasl->step++;
	if (status == SASL_CONTINUE)
		*challenge_r = buf_str(&sasl->challenge);
	else
		sasl->over = true;
	if (status == SASL_FAILED) {
		wipe_free(&sasl->username);
		wipe_free(&sasl->password);
	}
	return status;
}

#include "auth/auth.h"
#include "lib/base64.h"
#include "lib/buf.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* base64 of len bytes (which may hold NULs); static, valid until next call. */
static const char *b64(const char *data, size_t len)
{
	static struct buf out = BUF_INIT(0);
	buf_reset(&out);
	base64_encode(data, len, &out);
	return buf_str(&out);
}

#define B64(lit) b64(lit, sizeof(lit) - 1)

struct sasl_case {
	const char *name;
	const char *mech;
	/* Responses in order; NULL entry = no initial response. */
	const char *responses[3];
	size_t count;
	enum sasl_status want[3];
	const char *challenges[3]; /* expected challenge after each CONTINUE */
	const char *user;          /* on DONE */
	const char *password;
	const char *error; /* on FAILED */
};

static void run_case(const struct sasl_case *c)
{
	struct sasl *sasl = sasl_begin(c->mech);
	CHECK(sasl != NULL);
	if (sasl == NULL)
		return;
	enum sasl_status status = SASL_FAILED;
	const char *error = NULL;
	for (size_t i = 0; i < c->count; i++) {
		const char *challenge = NULL;
		status = sasl_step(sasl, c->responses[i], &challenge, &error);
		if (status != c->want[i])
			fprintf(stderr, "case %s step %zu\n", c->name, i);
		CHECK_INT(status, c->want[i]);
		if (status == SASL_CONTINUE && c->challenges[i] != NULL)
			CHECK_STR(challenge, c->challenges[i]);
	}
	if (status == SASL_DONE) {
		CHECK_STR(sasl_username(sasl), c->user);
		CHECK_STR(sasl_password(sasl), c->password);
	}
	if (status == SASL_FAILED && c->error != NULL)
		CHECK_STR(error, c->error);
	/* nothing more after the end */
	if (status != SASL_CONTINUE) {
		const char *challenge;
		CHECK_INT(sasl_step(sasl, "=", &challenge, &error), SASL_FAILED);
	}
	sasl_free(&sasl);
	CHECK(sasl == NULL);
}

static void test_cases(void)
{
	char too_long[1100];
	memset(too_long, 'a', sizeof(too_long));
	char big_b64[2000];
	snprintf(big_b64, sizeof(big_b64), "%s", b64(too_long, 1025));
	char just_fits[2000], long_pw[1022];
	memcpy(too_long, "\0u\0", 3);
	snprintf(just_fits, sizeof(just_fits), "%s", b64(too_long, 1024));
	memset(long_pw, 'a', sizeof(long_pw) - 1); /* 1024 - "\0u\0" */
	long_pw[sizeof(long_pw) - 1] = '\0';

	char plain_ir[64], plain_authz[64], plain_other[64], plain_noauthc[64];
	char plain_nopw[64], plain_onenul[64], login_user[64], login_pw[64];
	snprintf(plain_ir, sizeof(plain_ir), "%s", B64("\0alice@example.org\0pw"));
	snprintf(plain_authz, sizeof(plain_authz), "%s",
	         B64("alice@example.org\0alice@example.org\0pw"));
	snprintf(plain_other, sizeof(plain_other), "%s",
	         B64("bob@example.org\0alice@example.org\0pw"));
	snprintf(plain_noauthc, sizeof(plain_noauthc), "%s", B64("\0\0pw"));
	snprintf(plain_nopw, sizeof(plain_nopw), "%s", B64("\0alice@example.org\0"));
	snprintf(plain_onenul, sizeof(plain_onenul), "%s", B64("alice@example.org\0pw"));
	snprintf(login_user, sizeof(login_user), "%s", B64("alice@example.org"));
	snprintf(login_pw, sizeof(login_pw), "%s", B64("p\xc3\xa4ss word"));

	const struct sasl_case cases[] = {
	        {"plain-ir",
	         "PLAIN",
	         {plain_ir},
	         1,
	         {SASL_DONE},
	         {NULL},
	         "alice@example.org",
	         "pw",
	         NULL},
	        {"plain-lower",
	         "plain",
	         {plain_ir},
	         1,
	         {SASL_DONE},
	         {NULL},
	         "alice@example.org",
	         "pw",
	         NULL},
	        {"plain-no-ir",
	         "PLAIN",
	         {NULL, plain_ir},
	         2,
	         {SASL_CONTINUE, SASL_DONE},
	         {""},
	         "alice@example.org",
	         "pw",
	         NULL},
	        {"plain-authzid-same",
	         "PLAIN",
	         {plain_authz},
	         1,
	         {SASL_DONE},
	         {NULL},
	         "alice@example.org",
	         "pw",
	         NULL},
	        {"plain-authzid-other",
	         "PLAIN",
	         {plain_other},
	         1,
	         {SASL_FAILED},
	         {NULL},
	         NULL,
	         NULL,
	         "authorization identity not supported"},
	        {"plain-empty-authcid",
	         "PLAIN",
	         {plain_noauthc},
	         1,
	         {SASL_FAILED},
	         {NULL},
	         NULL,
	         NULL,
	         NULL},
	        {"plain-empty-passwd",
	         "PLAIN",
	         {plain_nopw},
	         1,
	         {SASL_FAILED},
	         {NULL},
	         NULL,
	         NULL,
	         NULL},
	        {"plain-one-nul",
	         "PLAIN",
	         {plain_onenul},
	         1,
	         {SASL_FAILED},
	         {NULL},
	         NULL,
	         NULL,
	         "malformed PLAIN message"},
	        {"plain-empty-ir", "PLAIN", {"="}, 1, {SASL_FAILED}, {NULL}, NULL, NULL, NULL},
	        {"plain-cancel",
	         "PLAIN",
	         {NULL, "*"},
	         2,
	         {SASL_CONTINUE, SASL_CANCELLED},
	         {""},
	         NULL,
	         NULL,
	         NULL},
	        {"plain-bad-b64",
	         "PLAIN",
	         {"AGFsaWNl!"},
	         1,
	         {SASL_FAILED},
	         {NULL},
	         NULL,
	         NULL,
	         "invalid base64"},
	        {"plain-bad-pad",
	         "PLAIN",
	         {"AGE=a==="},
	         1,
	         {SASL_FAILED},
	         {NULL},
	         NULL,
	         NULL,
	         "invalid base64"},
	        {"plain-oversize",
	         "PLAIN",
	         {big_b64},
	         1,
	         {SASL_FAILED},
	         {NULL},
	         NULL,
	         NULL,
	         "response too long"},
	        {"plain-1024", "PLAIN", {just_fits}, 1, {SASL_DONE}, {NULL}, "u", long_pw, NULL},
	        {"login",
	         "LOGIN",
	         {NULL, login_user, login_pw},
	         3,
	         {SASL_CONTINUE, SASL_CONTINUE, SASL_DONE},
	         {"VXNlcm5hbWU6", "UGFzc3dvcmQ6"},
	         "alice@example.org",
	         "p\xc3\xa4ss word",
	         NULL},
	        {"login-ir",
	         "LOGIN",
	         {login_user, login_pw},
	         2,
	         {SASL_CONTINUE, SASL_DONE},
	         {"UGFzc3dvcmQ6"},
	         "alice@example.org",
	         "p\xc3\xa4ss word",
	         NULL},
	        {"login-cancel",
	         "LOGIN",
	         {NULL, login_user, "*"},
	         3,
	         {SASL_CONTINUE, SASL_CONTINUE, SASL_CANCELLED},
	         {NULL},
	         NULL,
	         NULL,
	         NULL},
	        {"login-empty-user",
	         "LOGIN",
	         {NULL, ""},
	         2,
	         {SASL_CONTINUE, SASL_FAILED},
	         {NULL},
	         NULL,
	         NULL,
	         NULL},
	        {"login-bad-b64",
	         "LOGIN",
	         {NULL, "YWxpY2U"},
	         2,
	         {SASL_CONTINUE, SASL_FAILED},
	         {NULL},
	         NULL,
	         NULL,
	         "invalid base64"},
	        {"login-missing",
	         "LOGIN",
	         {NULL, NULL},
	         2,
	         {SASL_CONTINUE, SASL_FAILED},
	         {NULL},
	         NULL,
	         NULL,
	         NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
}

static void test_mechanisms(void)
{
	CHECK_STR(sasl_mechanisms(), "PLAIN LOGIN");
	CHECK(sasl_begin("CRAM-MD5") == NULL);
	CHECK(sasl_begin("") == NULL);
	struct sasl *sasl = sasl_begin("login");
	CHECK(sasl != NULL);
	sasl_free(&sasl);
	sasl_free(&sasl); /* NULL is fine */
}

int main(void)
{
	test_cases();
	test_mechanisms();
	return test_report();
}

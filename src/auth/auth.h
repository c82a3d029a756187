/* Authentication: one credential check that every protocol calls, with
 * the client address, the protocol, the TLS state and the mechanism; and
 * the SASL mechanisms PLAIN (RFC 4616) and LOGIN. */
#ifndef YUBIN_AUTH_H
#define YUBIN_AUTH_H

#include <stdbool.h>
#include <stddef.h>

struct dir;
struct yubin_config;

struct auth_request {
	const char *protocol;     /* "pop3", "imap", "smtp" */
	const char *session_id;
	const char *remote_ip;
	bool secured;             /* TLS is active */
	const char *mechanism;    /* "PLAIN", "LOGIN", "USER" */
};

enum auth_result {
	AUTH_OK,
	AUTH_FAILED,       /* unknown user or wrong password: same answer */
	AUTH_DISABLED,     /* right password, account disabled */
	AUTH_TEMPFAIL,     /* directory unavailable */
};

/* Whether a login may happen on this connection now (TLS, or the config
 * allows plaintext). */
bool auth_allowed(const struct yubin_config *config, bool secured);

/* Checks a user name (address) and password. The work done is the same for
 * unknown users and known ones (a dummy hash is verified), and hashes are
 * compared in constant time. Logs the outcome (never the password). On
 * AUTH_OK *address_r is the account's normalized address (caller frees).
 * The caller answers a failure only after the config's auth.failure_delay. */
enum auth_result auth_password(struct dir *dir, const struct auth_request *req,
			       const char *user, const char *password,
			       char **address_r);

/* A yescrypt ($y$) hash of password, for the directory. NULL on failure. */
char *auth_hash_password(const char *password);
/* Verifies password against a crypt(3) hash (yescrypt, bcrypt,
 * sha512-crypt) in constant time. */
bool auth_verify_hash(const char *password, const char *hash);

/* SASL server side, protocol-independent. Responses and challenges are
 * base64 text as the protocols carry them. */
struct sasl;

enum sasl_status {
	SASL_CONTINUE,   /* send *challenge_r to the client, wait for a response */
	SASL_DONE,       /* credentials are ready: sasl_username/password */
	SASL_FAILED,     /* malformed exchange; *error_r says why */
	SASL_CANCELLED,  /* client sent "*" */
};

/* Space-separated mechanism names this build offers: "PLAIN LOGIN". */
const char *sasl_mechanisms(void);
/* NULL when the mechanism is not supported (name is case-insensitive). */
struct sasl *sasl_begin(const char *mechanism);
/* response: the client's base64 text ("=" is an empty initial response),
 * or NULL when there was no initial response. On SASL_CONTINUE
 * *challenge_r is base64 text (owned by the sasl object). */
enum sasl_status sasl_step(struct sasl *sasl, const char *response,
			   const char **challenge_r, const char **error_r);
const char *sasl_username(const struct sasl *sasl);
const char *sasl_password(const struct sasl *sasl);
void sasl_free(struct sasl **sasl);

#endif

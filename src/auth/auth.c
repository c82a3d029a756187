#include "auth/auth.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config.h"
#include "lib/xmalloc.h"

bool auth_allowed(const struct yubin_config *config, bool secured)
{
	return secured || config->auth.allow_plaintext;
}

/* Runs crypt_ra and copies a successful result; the work area is wiped
 * (it held the password's derived state). */
static char *auth_crypt(const char *password, const char *setting)
{
	void *data = NULL;
	int size = 0;
	const char *result = crypt_ra(password, setting, &data, &size);
	char *copy = NULL;
	/* libxcrypt reports failure with NULL or a hash starting with '*'. */
	if (result != NULL && result[0] != '*')
		copy = xstrdup(result);
	if (data != NULL) {
		explicit_bzero(data, (size_t)size);
		free(data);
	}
	return copy;
}

char *auth_hash_password(const char *password)
{
	/* count 0 = libxcrypt's default cost; rbytes NULL = its own randomness. */
	char *salt = crypt_gensalt_ra("$y$", 0, NULL, 0);
	if (salt == NULL)
		return NULL;
	char *hash = auth_crypt(password, salt);
	free(salt);
	return hash;
}

bool auth_verify_hash(const char *password, const char *hash)
{
	/* '*' and '!' mark locked or invalid entries (shadow(5) convention). */
	if (hash == NULL || hash[0] == '\0' || hash[0] == '*' || hash[0] == '!')
		return false;
	char *computed = auth_crypt(password, hash);
	if (computed == NULL)
		return false;
	size_t len = strlen(hash);
	bool match = strlen(computed) == len && CRYPTO_memcmp(computed, hash, len) == 0;
	free(computed);
	return match;
}

/* The Sender Rewriting Scheme (Shevek's "Sender Rewriting Scheme", as
 * libsrs2 and postsrsd implement it): forwarded mail leaves with an
 * envelope sender in the forwarding domain, so SPF passes at the target,
 * and a bounce to that address finds its way back.
 *
 *   SRS0=HHHH=TT=orig-domain=orig-local@forwarder
 *   SRS1=HHHH=first-forwarder==HHHH=TT=orig-domain=orig-local@forwarder
 *
 * HHHH: the first 4 base64 characters of HMAC-SHA256 (key: the SRS
 * secret file) over the lower-cased rest, compared without regard to case
 * because some MTAs fold local parts. TT: the day (days since 1970 mod
 * 1024) in base32. SRS1 is used when the sender is already SRS: it keeps
 * the original SRS0 part and only adds the hop that can undo it. */
#include "deliver/deliver-private.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/fdio.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#define SRS_KEY_LEN 32
#define SRS_KEY_MIN 16
#define SRS_HASH_LEN 4
#define SRS_DAY_SECONDS 86400
#define SRS_DAYS_MOD 1024 /* two base32 characters */
/* An address we make or take apart: RFC 5321 path length, with room. */
#define SRS_MAX_ADDRESS 1024

static const char srs_base32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

struct srs_key {
	unsigned char data[64];
	size_t len;
};

static char *srs_key_path(const struct yubin_config *config)
{
	const char *file = config->forward.srs_secret_file;
	if (file == NULL || file[0] == '\0')
		return config_data_path(config, "srs.key");
	if (file[0] == '/')
		return xstrdup(file);
	return config_data_path(config, file);
}

/* Writes a new random key next to path and links it into place, so that
 * two processes starting at once end up with the same key (the second
 * link fails and it reads the first one's). */
static int srs_key_create(const char *path)
{
	unsigned char key[SRS_KEY_LEN];
	if (RAND_bytes(key, sizeof(key)) != 1)
		return -1;
	char *tmp = xasprintf("%s.%ld.tmp", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int ret = fd < 0 ? -1 : 0;
	if (ret == 0 && (fd_write_all(fd, key, sizeof(key)) < 0 || fsync(fd) < 0))
		ret = -1;
	if (fd >= 0)
		close(fd);
	if (ret == 0 && link(tmp, path) < 0 && errno != EEXIST)
		ret = -1;
	if (ret == 0)
		log_info("srs event=key_created file=%s", path);
	unlink(tmp);
	free(tmp);
	explicit_bzero(key, sizeof(key));
	return ret;
}

static int srs_key_read(const char *path, struct srs_key *key)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n;
	do {
		n = read(fd, key->data, sizeof(key->data));
	} while (n < 0 && errno == EINTR);
	close(fd);
	if (n < SRS_KEY_MIN) {
		errno = n < 0 ? errno : EINVAL;
		return -1;
	}
	key->len = (size_t)n;
	return 0;
}

/* The secret, created at first use. -1 after logging why. */
static int srs_key_load(const struct yubin_config *config, struct srs_key *key)
{
	char *path = srs_key_path(config);
	int ret = srs_key_read(path, key);
	if (ret < 0 && errno == ENOENT && srs_key_create(path) == 0)
		ret = srs_key_read(path, key);
	if (ret < 0)
		log_error("srs event=key_unusable file=%s error=\"%s\"", path,
		          errno == EINVAL ? "shorter than 16 bytes" : strerror(errno));
	free(path);
	return ret;
}

/* HHHH over "kind=text" lower-cased. */
static void srs_hash(const struct srs_key *key, const char *kind, const char *text,
                     char out[SRS_HASH_LEN + 1])
{
	struct buf data, b64;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	buf_init(&data, SRS_MAX_ADDRESS * 2);
	buf_init(&b64, 256);
	buf_printf(&data, "%s=%s", kind, text);
	for (size_t i = 0; i < data.len; i++)
		data.data[i] = (char)tolower((unsigned char)data.data[i]);
	HMAC(EVP_sha256(), key->data, (int)key->len, (const unsigned char *)data.data, data.len,
	     mac, &mac_len);
	base64_encode(mac, mac_len, &b64);
	memcpy(out, b64.data, SRS_HASH_LEN);
	out[SRS_HASH_LEN] = '\0';
	buf_free(&data);
	buf_free(&b64);
}

static unsigned int srs_today(time_t now)
{
	return (unsigned int)((uint64_t)now / SRS_DAY_SECONDS % SRS_DAYS_MOD);
}

static void srs_timestamp(time_t now, char out[3])
{
	unsigned int day = srs_today(now);
	out[0] = srs_base32[day >> 5];
	out[1] = srs_base32[day & 31];
	out[2] = '\0';
}

static int srs_base32_value(char c)
{
	const char *p = strchr(srs_base32, toupper((unsigned char)c));
	return c != '\0' && p != NULL ? (int)(p - srs_base32) : -1;
}

/* Within max_age (ms) of now, counting across the 1024-day wrap. */
static bool srs_timestamp_fresh(const char *tt, time_t now, uint64_t max_age)
{
	int hi = srs_base32_value(tt[0]), lo = srs_base32_value(tt[1]);
	if (hi < 0 || lo < 0)
		return false;
	unsigned int then = (unsigned int)(hi << 5 | lo);
	unsigned int age = (srs_today(now) + SRS_DAYS_MOD - then) % SRS_DAYS_MOD;
	return (uint64_t)age * SRS_DAY_SECONDS * 1000 <= max_age;
}

/* "SRS0" or "SRS1" followed by one of the separators libsrs2 accepts. */
static bool srs_is_kind(const char *local, char digit)
{
	return strncasecmp(local, "SRS", 3) == 0 && local[3] == digit &&
	       (local[4] == '=' || local[4] == '+' || local[4] == '-');
}

static char *srs_make(const struct srs_key *key, const char *local, const char *domain,
                      const char *forwarder, time_t now)
{
	char hash[SRS_HASH_LEN + 1], tt[3];
	if (srs_is_kind(local, '1')) {
		/* SRS1=HHHH=host==...: keep host and the rest, new hash. */
		const char *host = local + 5 + strcspn(local + 5, "=");
		const char *host_end = *host != '\0' ? host + 1 + strcspn(host + 1, "=") : host;
		if (*host == '\0' || *host_end == '\0')
			return NULL;
		char *h = xstrndup(host + 1, (size_t)(host_end - host - 1));
		char *text = xasprintf("%s=%s", h, host_end + 1);
		srs_hash(key, "SRS1", text, hash);
		char *out = xasprintf("SRS1=%s=%s@%s", hash, text, forwarder);
		free(text);
		free(h);
		return out;
	}
	if (srs_is_kind(local, '0')) {
		/* SRS0 from another forwarder: SRS1=HHHH=thatdomain==HHHH=... */
		char *text = xasprintf("%s=%s", domain, local + 4);
		srs_hash(key, "SRS1", text, hash);
		char *out = xasprintf("SRS1=%s=%s@%s", hash, text, forwarder);
		free(text);
		return out;
	}
	srs_timestamp(now, tt);
	char *text = xasprintf("%s=%s=%s", tt, domain, local);
	srs_hash(key, "SRS0", text, hash);
	char *out = xasprintf("SRS0=%s=%s@%s", hash, text, forwarder);
	free(text);
	return out;
}

char *deliver_srs_forward_at(const struct yubin_config *config, const char *env_from,
                             const char *forwarder_domain, time_t now)
{
	struct srs_key key;
	const char *at = strrchr(env_from, '@');
	/* The null sender stays null; a sender without a domain, or SRS off,
	 * passes unchanged. */
	if (!config->forward.srs || env_from[0] == '\0' || at == NULL || at == env_from ||
	    at[1] == '\0' || strlen(env_from) > SRS_MAX_ADDRESS || srs_key_load(config, &key) < 0)
		return xstrdup(env_from);
	char *local = xstrndup(env_from, (size_t)(at - env_from));
	char *out = srs_make(&key, local, at + 1, forwarder_domain, now);
	explicit_bzero(&key, sizeof(key));
	free(local);
	return out != NULL ? out : xstrdup(env_from);
}

char *deliver_srs_forward(const struct yubin_config *config, const char *env_from,
                          const char *forwarder_domain)
{
	return deliver_srs_forward_at(config, env_from, forwarder_domain, time(NULL));
}

/* Splits "a=b" at the first '=': *rest_r after it; NULL when absent or
 * either side is empty. Returns a copy of the first field. */
static char *srs_field(const char *text, const char **rest_r)
{
	size_t len = strcspn(text, "=");
	if (len == 0 || text[len] != '=' || text[len + 1] == '\0')
		return NULL;
	*rest_r = text + len + 1;
	return xstrndup(text, len);
}

static bool srs_hash_ok(const struct srs_key *key, const char *kind, const char *hash,
                        const char *text)
{
	char want[SRS_HASH_LEN + 1];
	srs_hash(key, kind, text, want);
	return strlen(hash) == SRS_HASH_LEN && strncasecmp(hash, want, SRS_HASH_LEN) == 0;
}

/* SRS0 body "HHHH=TT=domain=local" -> "local@domain". */
static char *srs_reverse0(const struct yubin_config *config, const struct srs_key *key,
                          const char *body, time_t now)
{
	const char *text, *rest;
	char *hash = srs_field(body, &text);
	char *tt = hash != NULL ? srs_field(text, &rest) : NULL;
	char *domain = tt != NULL ? srs_field(rest, &rest) : NULL;
	char *out = NULL;
	if (domain != NULL && strlen(tt) == 2 && srs_hash_ok(key, "SRS0", hash, text) &&
	    srs_timestamp_fresh(tt, now, config->forward.srs_max_age))
		out = xasprintf("%s@%s", rest, domain);
	free(hash);
	free(tt);
	free(domain);
	return out;
}

/* SRS1 body "HHHH=host==rest" -> "SRS0=rest@host" (the previous hop's). */
static char *srs_reverse1(const struct srs_key *key, const char *body)
{
	const char *text, *rest;
	char *hash = srs_field(body, &text);
	char *host = hash != NULL ? srs_field(text, &rest) : NULL;
	char *out = NULL;
	if (host != NULL && srs_hash_ok(key, "SRS1", hash, text))
		out = xasprintf("SRS0%s@%s", rest, host);
	free(hash);
	free(host);
	return out;
}

int deliver_srs_reverse_at(const struct yubin_config *config, const char *address,
                           char **original_r, time_t now)
{
	struct srs_key key;
	const char *at = strrchr(address, '@');
	bool srs0 = srs_is_kind(address, '0'), srs1 = srs_is_kind(address, '1');
	*original_r = NULL;
	if ((!srs0 && !srs1) || at == NULL || strlen(address) > SRS_MAX_ADDRESS ||
	    srs_key_load(config, &key) < 0)
		return 0;
	char *local = xstrndup(address + 5, (size_t)(at - address - 5));
	*original_r = srs0 ? srs_reverse0(config, &key, local, now) : srs_reverse1(&key, local);
	explicit_bzero(&key, sizeof(key));
	free(local);
	return *original_r != NULL ? 1 : 0;
}

int deliver_srs_reverse(const struct yubin_config *config, const char *address, char **original_r)
{
	return deliver_srs_reverse_at(config, address, original_r, time(NULL));
}

int deliver_srs_pass_back(const struct yubin_config *config, const char *address, int fd,
                          const char **reason_r)
{
	char *original;
	const char *error;
	char esc[300], esc2[300];
	if (deliver_srs_reverse(config, address, &original) <= 0)
		return 0;
	const char *rcpts[] = {original};
	int ret = deliver_outbox_send("", rcpts, 1, NULL, 0, fd, 0, &error);
	log_escape(address, strlen(address), esc, sizeof(esc));
	log_escape(original, strlen(original), esc2, sizeof(esc2));
	if (ret < 0) {
		log_warn("deliver rcpt=%s event=srs_pass_back_failed to=%s error=\"%s\"", esc, esc2,
		         error);
		*reason_r = "temporary local problem, try again later";
	} else {
		log_info("deliver rcpt=%s event=srs_pass_back to=%s", esc, esc2);
	}
	free(original);
	return ret < 0 ? -1 : 1;
}

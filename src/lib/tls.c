/* TLS contexts (OpenSSL 3): one SSL_CTX per certificate, SNI picks one, and
 * `yubin init`'s self-signed certificate. A reload builds a new tls_server;
 * connections keep a reference to the one they started with. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "lib/net-private.h"
#include "lib/xmalloc.h"

struct tls_sni {
	char *hostname;   /* "mail.example.org" or "*.example.org" */
	SSL_CTX *ctx;
};

struct tls_server {
	int refcount;
	SSL_CTX *ctx;     /* [tls] cert_file/key_file: the default */
	struct tls_sni *sni;
	size_t sni_count;
};

/* Error texts name a file: they live here until the next TLS error (the
 * master is single-threaded and reads them at once). */
static char tls_last_error[600];

static const char *tls_error(const char *what, const char *file)
{
	char ossl[256] = "";
	unsigned long code = ERR_peek_last_error();
	if (code != 0)
		ERR_error_string_n(code, ossl, sizeof(ossl));
	ERR_clear_error();
	snprintf(tls_last_error, sizeof(tls_last_error), "tls: %s %s%s%s", what,
		 file, ossl[0] != '\0' ? ": " : "", ossl);
	return tls_last_error;
}

static int tls_min_version(const char *name)
{
	static const struct {
		const char *name;
		int version;
	} versions[] = {
		{ "1.2", TLS1_2_VERSION },
		{ "1.3", TLS1_3_VERSION },
	};
	if (name == NULL || name[0] == '\0')
		return TLS1_2_VERSION;
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		if (strcmp(versions[i].name, name) == 0)
			return versions[i].version;
	}
	return -1;
}

static int ctx_set_policy(SSL_CTX *ctx, const struct yubin_config *config,
			  const char **error_r)
{
	int version = tls_min_version(config->tls.min_version);
	if (version < 0) {
		*error_r = "tls: min_version must be 1.2 or 1.3";
		return -1;
	}
	SSL_CTX_set_min_proto_version(ctx, version);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
				 SSL_OP_CIPHER_SERVER_PREFERENCE);
	const char *ciphers = config->tls.ciphers;
	if (ciphers != NULL && ciphers[0] != '\0' &&
	    SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
		*error_r = tls_error("invalid cipher list", ciphers);
		return -1;
	}
	const char *suites = config->tls.ciphersuites;
	if (suites != NULL && suites[0] != '\0' &&
	    SSL_CTX_set_ciphersuites(ctx, suites) != 1) {
		*error_r = tls_error("invalid ciphersuites", suites);
		return -1;
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"yubin", 5);
	/* OpenSSL 3 picks ECDH groups automatically (X25519, P-256, ...). */
	return 0;
}

static SSL_CTX *ctx_create(const struct yubin_config *config,
			   const char *cert_file, const char *key_file,
			   const char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		*error_r = tls_error("cannot create a context for", cert_file);
		return NULL;
	}
	if (ctx_set_policy(ctx, config, error_r) < 0)
		goto fail;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		*error_r = tls_error("cannot load certificate", cert_file);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		*error_r = tls_error("cannot load key", key_file);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		*error_r = tls_error("key does not match certificate", cert_file);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static bool sni_matches(const char *pattern, const char *name)
{
	if (strcasecmp(pattern, name) == 0)
		return true;
	if (strncmp(pattern, "*.", 2) != 0)
		return false;
	/* "*.example.org" covers one label: "mail.example.org". */
	const char *dot = strchr(name, '.');
	return dot != NULL && dot != name && strcasecmp(pattern + 1, dot) == 0;
}

static SSL_CTX *sni_find(struct tls_server *tls, const char *name)
{
	for (size_t i = 0; i < tls->sni_count; i++) {
		if (strcasecmp(tls->sni[i].hostname, name) == 0)
			return tls->sni[i].ctx;
	}
	for (size_t i = 0; i < tls->sni_count; i++) {
		if (sni_matches(tls->sni[i].hostname, name))
			return tls->sni[i].ctx;
	}
	return NULL;
}

static int sni_callback(SSL *ssl, int *alert, void *arg)
{
	struct tls_server *tls = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	if (name == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	SSL_CTX *ctx = sni_find(tls, name);
	if (ctx != NULL)
		SSL_set_SSL_CTX(ssl, ctx);
	return SSL_TLSEXT_ERR_OK;
}

static int tls_add_certificates(struct tls_server *tls,
				const struct yubin_config *config,
				const char **error_r)
{
	const struct config_certificate *c;
	size_t n = 0;
	for (c = config->tls.certificates; c != NULL; c = c->next)
		n++;
	tls->sni = xcalloc(n, sizeof(*tls->sni));
	for (c = config->tls.certificates; c != NULL; c = c->next) {
		SSL_CTX *ctx = ctx_create(config, c->cert_file, c->key_file,
					  error_r);
		if (ctx == NULL)
			return -1;
		tls->sni[tls->sni_count].hostname = xstrdup(c->hostname);
		tls->sni[tls->sni_count++].ctx = ctx;
	}
	return 0;
}

struct tls_server *tls_server_create(const struct yubin_config *config,
				     const char **error_r)
{
	const char *cert = config->tls.cert_file;
	const char *key = config->tls.key_file;
	if (cert == NULL || cert[0] == '\0' || key == NULL || key[0] == '\0') {
		*error_r = "tls: cert_file and key_file must be set for TLS listeners";
		return NULL;
	}
	struct tls_server *tls = xcalloc(1, sizeof(*tls));
	tls->refcount = 1;
	tls->ctx = ctx_create(config, cert, key, error_r);
	if (tls->ctx == NULL || tls_add_certificates(tls, config, error_r) < 0) {
		tls_server_unref(&tls);
		return NULL;
	}
	SSL_CTX_set_tlsext_servername_callback(tls->ctx, sni_callback);
	SSL_CTX_set_tlsext_servername_arg(tls->ctx, tls);
	return tls;
}

struct tls_server *tls_server_ref(struct tls_server *tls)
{
	tls->refcount++;
	return tls;
}

void tls_server_unref(struct tls_server **tlsp)
{
	struct tls_server *tls = *tlsp;
	if (tls == NULL)
		return;
	*tlsp = NULL;
	if (--tls->refcount > 0)
		return;
	for (size_t i = 0; i < tls->sni_count; i++) {
		free(tls->sni[i].hostname);
		SSL_CTX_free(tls->sni[i].ctx);
	}
	free(tls->sni);
	SSL_CTX_free(tls->ctx);
	free(tls);
}

void tls_server_destroy(struct tls_server **tls)
{
	tls_server_unref(tls);
}

SSL_CTX *tls_server_ctx(struct tls_server *tls)
{
	return tls->ctx;
}

/* ---- self-signed certificate ---- */

static int cert_add_ext(X509 *x509, int nid, const char *value)
{
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x509, x509, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		return -1;
	int ret = X509_add_ext(x509, ext, -1) == 1 ? 0 : -1;
	X509_EXTENSION_free(ext);
	return ret;
}

static int cert_set_serial(X509 *x509)
{
	unsigned char bytes[16];
	if (RAND_bytes(bytes, sizeof(bytes)) != 1)
		return -1;
	bytes[0] &= 0x7f; /* positive */
	BIGNUM *bn = BN_bin2bn(bytes, sizeof(bytes), NULL);
	int ret = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x509)) != NULL
		? 0 : -1;
	BN_free(bn);
	return ret;
}

static int cert_set_names(X509 *x509, const char *hostname)
{
	X509_NAME *name = X509_get_subject_name(x509);
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
				       (const unsigned char *)hostname, -1, -1, 0) != 1)
		return -1;
	if (X509_set_issuer_name(x509, name) != 1)
		return -1;
	char *san = strcasecmp(hostname, "localhost") == 0
		? xasprintf("DNS:%s,IP:127.0.0.1,IP:::1", hostname)
		: xasprintf("DNS:%s", hostname);
	int ret = cert_add_ext(x509, NID_subject_alt_name, san);
	free(san);
	return ret;
}

static X509 *cert_build(EVP_PKEY *key, const char *hostname, int days)
{
	X509 *x509 = X509_new();
	if (x509 == NULL || X509_set_version(x509, 2) != 1 ||
	    cert_set_serial(x509) < 0 ||
	    X509_gmtime_adj(X509_getm_notBefore(x509), -3600) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x509), days, 0, NULL) == NULL ||
	    X509_set_pubkey(x509, key) != 1 ||
	    cert_set_names(x509, hostname) < 0 ||
	    cert_add_ext(x509, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    cert_add_ext(x509, NID_key_usage, "critical,digitalSignature") < 0 ||
	    cert_add_ext(x509, NID_ext_key_usage, "serverAuth") < 0 ||
	    cert_add_ext(x509, NID_subject_key_identifier, "hash") < 0 ||
	    X509_sign(x509, key, EVP_sha256()) == 0) {
		X509_free(x509);
		return NULL;
	}
	return x509;
}

enum pem_kind { PEM_KIND_CERT, PEM_KIND_KEY };

static int pem_write(FILE *f, enum pem_kind kind, void *obj)
{
	if (kind == PEM_KIND_CERT)
		return PEM_write_X509(f, obj) == 1 ? 0 : -1;
	return PEM_write_PrivateKey(f, obj, NULL, NULL, 0, NULL, NULL) == 1 ? 0 : -1;
}

/* Written to path.tmp, fsync'd and renamed: a reader never sees half a
 * file, and the key is never readable by others, not even for a moment. */
static int pem_write_atomic(const char *path, mode_t mode, enum pem_kind kind,
			    void *obj, const char **error_r)
{
	char *tmp = xasprintf("%s.tmp", path);
	int ret = -1;
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
	if (f == NULL) {
		if (fd >= 0)
			close(fd);
		*error_r = tls_error(strerror(errno), tmp);
		goto out;
	}
	bool ok = fchmod(fd, mode) == 0 && pem_write(f, kind, obj) == 0 &&
		  fflush(f) == 0 && fsync(fd) == 0;
	if (fclose(f) != 0)
		ok = false;
	if (!ok || rename(tmp, path) < 0) {
		*error_r = tls_error("cannot write", path);
		unlink(tmp);
		goto out;
	}
	ret = 0;
out:
	free(tmp);
	return ret;
}

int tls_write_self_signed(const char *hostname, const char *cert_path,
			  const char *key_path, int days, const char **error_r)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	if (key == NULL) {
		*error_r = tls_error("cannot generate a key for", hostname);
		return -1;
	}
	X509 *x509 = cert_build(key, hostname, days);
	int ret = -1;
	if (x509 == NULL)
		*error_r = tls_error("cannot build a certificate for", hostname);
	else if (pem_write_atomic(key_path, 0600, PEM_KIND_KEY, key, error_r) == 0 &&
		 pem_write_atomic(cert_path, 0644, PEM_KIND_CERT, x509, error_r) == 0)
		ret = 0;
	X509_free(x509);
	EVP_PKEY_free(key);
	return ret;
}

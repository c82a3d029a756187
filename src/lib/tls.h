/* TLS contexts: OpenSSL 3, TLS 1.2+ by default, a certificate and key per
 * hostname chosen by SNI, reloadable (SIGHUP) without touching open
 * connections; and the self-signed certificate `yubin init` writes. */
#ifndef YUBIN_TLS_H
#define YUBIN_TLS_H

struct tls_server;
struct yubin_config;
typedef struct ssl_ctx_st SSL_CTX;

/* Loads every certificate of the config. Returns NULL with *error_r set
 * (naming the file) when one cannot be loaded or does not match its key. */
struct tls_server *tls_server_create(const struct yubin_config *config,
				     const char **error_r);
void tls_server_destroy(struct tls_server **tls);
/* The context new connections use (SNI switches it per hostname). */
SSL_CTX *tls_server_ctx(struct tls_server *tls);

/* Writes a self-signed certificate and key (PEM) for hostname, valid for
 * `days`; the key file is created mode 0600. */
int tls_write_self_signed(const char *hostname, const char *cert_path,
			  const char *key_path, int days, const char **error_r);

#endif

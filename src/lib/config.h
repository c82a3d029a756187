/* yubin.conf: sections and `key = value`. One table (config.c) names every
 * setting with its type, default, bounds and place in struct yubin_config;
 * etc/yubin.conf.example and docs/config.md are checked against it by tests.
 *
 * Durations are stored in milliseconds, sizes in bytes. Relative paths are
 * resolved against the folder that holds the config file. */
#ifndef YUBIN_CONFIG_H
#define YUBIN_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/buf.h"

enum tls_mode {
	TLS_MODE_NONE,
	TLS_MODE_STARTTLS,
	TLS_MODE_IMPLICIT,
};

/* [listener NAME] — one listening socket. */
struct config_listener {
	char *name;
	char *protocol;        /* "pop3" (the protocols that exist) */
	char *address;         /* "127.0.0.1", "::", "*" */
	uint32_t port;
	enum tls_mode tls;
	struct config_listener *next;
};

/* [certificate HOSTNAME] — chosen by SNI; [tls] cert/key is the default. */
struct config_certificate {
	char *hostname;
	char *cert_file;
	char *key_file;
	struct config_certificate *next;
};

struct yubin_config {
	char *path;            /* absolute path of the file that was loaded */
	char *base_dir;        /* its folder: relative paths start here */

	struct {
		char *hostname;
		char *data_dir;
		char *user;        /* "" = stay the user that started it */
		char *group;
		uint32_t workers;  /* 0 = one per core */
		uint64_t shutdown_grace;   /* ms */
		uint32_t max_connections;
		uint32_t max_connections_per_ip;
	} server;

	struct {
		char *level;       /* debug | info | warn | error */
		char *target;      /* stderr | syslog | a file path */
	} log;

	struct {
		char *cert_file;
		char *key_file;
		char *min_version; /* "1.2" | "1.3" */
		char *ciphers;     /* TLS 1.2 cipher list, OpenSSL syntax */
		char *ciphersuites;/* TLS 1.3 suites */
		struct config_certificate *certificates;
	} tls;

	struct {
		bool allow_plaintext;      /* authentication without TLS */
		uint64_t failure_delay;    /* ms before answering a failed login */
	} auth;

	struct {
		uint64_t quota_bytes;      /* default for new accounts; 0 = none */
		uint64_t quota_messages;
		bool quota_tempfail;       /* over quota: temporary (75) or permanent */
		uint64_t max_message_size; /* 0 = none */
	} mail;

	struct {
		uint64_t login_delay;      /* ms between logins of one account; 0 = off */
		uint64_t idle_timeout;     /* ms; RFC 1939 asks for at least 10m */
		uint32_t max_bad_commands;
	} pop3;

	struct config_listener *listeners;
};

/* Loads and validates a config file. On any error returns -1 and appends one
 * line per error to errors, each "file:line: what is wrong"; every error in
 * the file is reported, not only the first. */
int config_load(const char *path, struct yubin_config **config_r,
		struct buf *errors);
/* Same, from memory (name is used in error lines; base_dir for relative
 * paths). Used by config_load and the fuzz target. */
int config_parse(const char *text, size_t len, const char *name,
		 const char *base_dir, struct yubin_config **config_r,
		 struct buf *errors);
void config_free(struct yubin_config **config);

/* Writes the commented example file (every option with its default). */
void config_write_example(FILE *out);

/* Absolute path of a file inside the data folder; caller frees. */
char *config_data_path(const struct yubin_config *config, const char *relative);

#endif

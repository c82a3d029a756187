/* yubin.conf: sections and `key = value`. One table (config-table.c) names
 * every setting with its type, default, bounds and place in struct yubin_config;
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
	char *protocol;        /* "pop3", "imap" (the protocols that exist) */
	char *address;         /* "127.0.0.1", "::", "*" */
	uint32_t port;
	enum tls_mode tls;
	uint64_t max_message_size; /* SMTP: SIZE here; 0 = [smtp] max_message_size */
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
		char *quota_warnings;      /* "80,95": percentages that send a notice; "" = none */
	} mail;

	struct {
		uint64_t login_delay;      /* ms between logins of one account; 0 = off */
		uint64_t idle_timeout;     /* ms; RFC 1939 asks for at least 10m */
		uint32_t max_bad_commands;
	} pop3;

	struct {
		uint64_t idle_timeout;     /* ms; RFC 9051 5.4 asks for at least 30m */
		uint32_t max_bad_commands;
		uint64_t max_line_length;  /* bytes of a command line after login */
	} imap;

	struct {
		uint64_t max_message_size; /* bytes; SIZE (RFC 1870); 0 = none */
		uint32_t max_recipients;   /* RCPTs per message */
		uint32_t max_messages;     /* transactions per connection */
		uint32_t max_errors;       /* error replies before 421 and close */
		uint64_t command_timeout;  /* ms; RFC 5321 4.5.3.2: 5m */
		uint64_t data_timeout;     /* ms between DATA/BDAT bytes */
		char *any_sender_accounts; /* "a@x, b@y": submission sender not checked */
	} smtp;

	struct {
		uint64_t retry_first;      /* ms after the first failed attempt */
		uint64_t retry_max;        /* ms; the doubling stops here */
		uint64_t lifetime;         /* ms after arrival: then bounce */
		uint64_t delay_warning;    /* ms after arrival: DSN "delayed"; 0 = never */
		uint32_t max_parallel;     /* deliveries in progress at once */
	} queue;

	struct {
		char *servers;             /* "ip[:port],..."; "" = /etc/resolv.conf */
		uint64_t timeout;          /* ms per try */
		uint32_t tries;
	} dns;

	struct {
		char *helo_name;           /* "" = server.hostname */
		char *tls_policy;          /* none | may | encrypt | verify */
		char *tls_policy_map;      /* "domain=policy, ..." overrides */
		char *ca_file;             /* "" = the system's CAs */
		uint64_t connect_timeout;  /* ms */
		uint64_t greeting_timeout; /* ms; RFC 5321 4.5.3.2: 5m */
		uint64_t command_timeout;  /* ms; MAIL, RCPT, others: 5m */
		uint64_t data_timeout;     /* ms; DATA 2m, each block 3m: one value */
		uint64_t data_done_timeout;/* ms; after the final dot: 10m */
		uint64_t reuse_time;       /* ms an idle connection is kept; 0 = never */
		uint32_t reuse_limit;      /* deliveries over one connection */
		uint32_t max_idle;         /* idle connections kept at once */
	} smtp_client;

	struct {
		char *host;                /* "" = no relay: MX lookup */
		uint32_t port;
		char *username;            /* "" = no AUTH */
		char *password;
		enum tls_mode tls;
		bool verify;
	} relay;

	struct {
		char *routes;              /* "domain=nexthop, ..." */
	} transport;

	struct {
		uint32_t max_addresses;    /* forwarding targets per account */
		bool srs;                  /* rewrite the sender of forwarded mail (SRS) */
		char *srs_secret_file;     /* "" = <data_dir>/srs.key */
		uint64_t srs_max_age;      /* ms an SRS address stays valid */
	} forward;

	struct {
		bool enabled;              /* the built-in EICAR check; clamd when set */
		char *clamd;               /* unix socket path or host:port; "" = none */
		uint64_t timeout;          /* ms: connect and each read/write to clamd */
		char *on_failure;          /* tempfail | accept: clamd down or erring */
		uint64_t max_scan_size;    /* bytes: a larger part is not sent to clamd */
	} virus;

	struct {
		uint32_t max_actions;      /* actions one message may collect */
		uint32_t max_redirects;    /* redirects one message may collect */
		uint64_t max_run_time;     /* ms for one script's execution */
		uint64_t max_script_size;  /* bytes of one script */
		char *global_dir;          /* include :global scripts; "" = none */
		uint32_t max_scripts;      /* scripts per account; 0 = no limit */
		uint64_t max_storage;      /* bytes of all scripts of an account; 0 = none */
	} sieve;

	struct {
		uint64_t min_period;       /* ms: the shortest :days/:seconds honoured */
		uint64_t max_period;       /* ms: the longest */
		uint64_t max_reason_size;  /* bytes of the reply's text */
	} vacation;

	struct config_listener *listeners;
};

/* The settings table (config-table.c). One row per setting drives parsing,
 * defaults, the example file and the docs test; nothing else lists keys. */
enum config_type {
	CONFIG_TYPE_STRING,
	CONFIG_TYPE_PATH,     /* char *; relative -> base_dir; `words` kept as is */
	CONFIG_TYPE_BOOL,     /* bool */
	CONFIG_TYPE_UINT,     /* uint32_t or uint64_t (by the field's size) */
	CONFIG_TYPE_SIZE,     /* uint64_t bytes */
	CONFIG_TYPE_DURATION, /* uint64_t ms */
	CONFIG_TYPE_ENUM,     /* char *: one of `words` */
	CONFIG_TYPE_ENUM_ID,  /* an enum field: the index of the value in `words` */
};

enum config_section_kind {
	CONFIG_SECTION_SINGLE,      /* [name]: fields of struct yubin_config */
	CONFIG_SECTION_LISTENER,    /* [listener NAME]: struct config_listener */
	CONFIG_SECTION_CERTIFICATE, /* [certificate HOST]: struct config_certificate */
};

#define CONFIG_FLAG_REQUIRED 0x1u
#define CONFIG_FLAG_SECRET   0x2u  /* never shown: the example leaves it empty */

struct config_section_def {
	const char *name;
	enum config_section_kind kind;
	const char *arg_name;      /* "NAME", "HOSTNAME"; NULL for single sections */
	/* Checks the ARG of [name ARG]; error_r is a static string. */
	int (*check_arg)(const char *arg, const char **error_r);
	const char *explanation;
};

struct config_setting {
	const char *section;
	const char *key;
	enum config_type type;
	const char *def;           /* default as text; NULL: required or computed */
	/* Default worked out on this machine (hostname); `def` is then only the
	 * example shown in the example file. Writes into buf, returns it. */
	const char *(*compute_default)(char *buf, size_t size);
	uint64_t min, max;         /* UINT, SIZE, DURATION (ms); max 0 = no limit */
	unsigned flags;
	size_t offset, size;       /* where the value lands in the section's struct */
	const char *const *words;  /* NULL-terminated */
	/* Extra validation of the value text, before it is parsed; error_r is a
	 * static string. */
	int (*check)(const char *value, const char **error_r);
	const char *explanation;   /* one line */
};

extern const struct config_section_def config_sections[];
extern const size_t config_sections_count;
extern const struct config_setting config_settings[];
extern const size_t config_settings_count;
/* The protocols a listener may speak (NULL-terminated). */
extern const char *const config_protocols[];

/* The allowed range of a number, size or duration setting in words ("from
 * 1 to 65535", "at most 60s"); "" when unbounded. Returns buf. */
const char *config_setting_range(const struct config_setting *setting,
				 char *buf, size_t size);

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

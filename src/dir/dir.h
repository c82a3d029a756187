/* The directory: hosted domains, accounts and aliases, in <data>/yubin.db
 * (SQLite, WAL, versioned migrations). Protocol code talks to accounts only
 * through this header. Functions that look something up return 1 (found),
 * 0 (not found) or -1 (error, *error_r says what); the others 0 or -1. */
#ifndef YUBIN_DIR_H
#define YUBIN_DIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct dir;

struct dir_account {
	char *address;         /* normalized local@domain */
	char *name;            /* display name, "" if none */
	char *password_hash;   /* crypt(3) string */
	uint64_t quota_bytes;  /* 0 = unlimited */
	uint64_t quota_messages;
	bool enabled;
	time_t created;
};

struct dir_alias {
	char *address;
	char *target;
};

/* Opens (creating and migrating as needed) the directory database. */
int dir_open(const char *db_path, struct dir **dir_r, const char **error_r);
void dir_close(struct dir **dir);
/* Schema version after migrations. */
int dir_schema_version(struct dir *dir);

/* Domains */
int dir_domain_add(struct dir *dir, const char *domain, const char **error_r);
/* Refuses a domain that still has accounts or aliases. */
int dir_domain_del(struct dir *dir, const char *domain, const char **error_r);
int dir_domain_exists(struct dir *dir, const char *domain, const char **error_r);
int dir_domain_list(struct dir *dir, char ***domains_r, size_t *count_r,
		    const char **error_r);

/* Accounts. password_hash is what auth_hash_password() produced. The
 * domain must exist; the address must not be an account or alias yet. */
int dir_account_add(struct dir *dir, const char *address, const char *password_hash,
		    const char *name, uint64_t quota_bytes, uint64_t quota_messages,
		    const char **error_r);
int dir_account_del(struct dir *dir, const char *address, const char **error_r);
int dir_account_lookup(struct dir *dir, const char *address,
		       struct dir_account **account_r, const char **error_r);
/* domain NULL = all domains; sorted by address. */
int dir_account_list(struct dir *dir, const char *domain,
		     struct dir_account ***accounts_r, size_t *count_r,
		     const char **error_r);
int dir_account_set_password(struct dir *dir, const char *address,
			     const char *password_hash, const char **error_r);
int dir_account_set_quota(struct dir *dir, const char *address, uint64_t bytes,
			  uint64_t messages, const char **error_r);
int dir_account_set_name(struct dir *dir, const char *address, const char *name,
			 const char **error_r);
int dir_account_set_enabled(struct dir *dir, const char *address, bool enabled,
			    const char **error_r);
void dir_account_free(struct dir_account **account);
void dir_account_list_free(struct dir_account ***accounts, size_t count);

/* Aliases: address (in a hosted domain, not an account) -> one or more
 * targets (accounts, other aliases, or external addresses). */
int dir_alias_add(struct dir *dir, const char *address, const char *target,
		  const char **error_r);
/* target NULL removes every target of the alias. */
int dir_alias_del(struct dir *dir, const char *address, const char *target,
		  const char **error_r);
int dir_alias_list(struct dir *dir, const char *domain, struct dir_alias **aliases_r,
		   size_t *count_r, const char **error_r);
void dir_alias_list_free(struct dir_alias **aliases, size_t count);

/* Resolves a recipient to the accounts that receive it (aliases expanded
 * recursively, loops and depth > 10 cut, duplicates removed). External
 * targets are returned in *external_r for the caller to relay. Returns 1
 * when the address is an account or alias, 0 when unknown. */
int dir_resolve(struct dir *dir, const char *address, char ***accounts_r,
		size_t *accounts_count_r, char ***external_r,
		size_t *external_count_r, const char **error_r);
void dir_strings_free(char ***strings, size_t count);

/* Routing settings of an account: how its mail is received (normally,
 * forwarded, or refused because the account is closed) and its vacation
 * reply. `deliver` turns them into the system Sieve script. An account
 * without settings receives normally with vacation off. */
enum dir_routing_mode {
	DIR_ROUTING_NORMAL,
	DIR_ROUTING_FORWARD,    /* to forward_to; keep_copy keeps one in INBOX */
	DIR_ROUTING_CLOSED,     /* mail refused permanently with close_reason */
};

struct dir_routing {
	enum dir_routing_mode mode;
	char **forward_to;      /* validated addresses, in the order given */
	size_t forward_count;
	bool keep_copy;
	char *close_reason;     /* "" = a standard text */
	bool vacation_enabled;
	char *vacation_subject; /* "" = "Auto: " + the original subject */
	char *vacation_body;
	uint32_t vacation_days;
};

/* Fills *routing_r (defaults when the account has no settings). The
 * strings belong to *routing_r until dir_routing_free(). */
int dir_routing_get(struct dir *dir, const char *address, struct dir_routing *routing_r,
		    const char **error_r);
/* Replaces the settings of an existing account (fails when there is none). */
int dir_routing_set(struct dir *dir, const char *address, const struct dir_routing *routing,
		    const char **error_r);
void dir_routing_free(struct dir_routing *routing);

/* Time of the last successful login of an account by a protocol, for
 * LOGIN-DELAY (0 = never). dir_login_record() stores now. */
int dir_login_last(struct dir *dir, const char *address, const char *protocol,
		   time_t *when_r, const char **error_r);
int dir_login_record(struct dir *dir, const char *address, const char *protocol,
		     time_t when, const char **error_r);

#endif

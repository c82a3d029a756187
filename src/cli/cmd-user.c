/* yubin user add|del|list|show|passwd|quota|enable|disable: accounts in
 * the directory and their mail folders in the store. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/auth.h"
#include "cli/cli.h"
#include "dir/dir.h"
#include "lib/address.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "mime/mime.h"
#include "store/store.h"

/* Parses the arguments (ADDRESS first), normalizes the address and opens
 * the directory. */
static int user_prepare(struct cli *cli, int *argc, char **argv, const struct cli_option *options,
                        int max, char **address_r)
{
	*address_r = NULL;
	int ret = cli_args(cli, argc, argv, options, 1, max);
	if (ret == 0)
		ret = cli_parse_address(argv[0], address_r);
	if (ret == 0)
		ret = cli_open_dir(cli, CLI_EXIT_FAIL);
	return ret;
}

/* Like user_prepare, and the account must exist. */
static int user_prepare_account(struct cli *cli, int *argc, char **argv, int max, char **address_r,
                                struct dir_account **account_r)
{
	*account_r = NULL;
	int ret = user_prepare(cli, argc, argv, NULL, max, address_r);
	if (ret == 0)
		ret = cli_lookup_account(cli, *address_r, account_r);
	return ret;
}

static const char *quota_text(uint64_t bytes, uint64_t messages, char *out, size_t outsize)
{
	char size[32];

	cli_format_size(bytes, size, sizeof(size));
	if (messages == 0)
		snprintf(out, outsize, "%s", bytes == 0 ? "unlimited" : size);
	else
		snprintf(out, outsize, "%s, %llu messages", bytes == 0 ? "unlimited" : size,
		         (unsigned long long)messages);
	return out;
}

static void secret_free(char *secret)
{
	if (secret != NULL)
		explicit_bzero(secret, strlen(secret));
	free(secret);
}

/* A hash for the directory; NULL after printing why. */
static char *user_hash(const char *password)
{
	char *hash = auth_hash_password(password);
	if (hash == NULL)
		cli_error("cannot hash the password");
	return hash;
}

/* The directory entry, then the mail folder; a folder that cannot be made
 * takes the entry away again so that no account exists without one. */
static int user_create(struct cli *cli, const char *address, const char *hash, const char *name,
                       uint64_t bytes, uint64_t messages)
{
	const char *error;

	if (dir_account_add(cli->dir, address, hash, name, bytes, messages, &error) < 0) {
		cli_error("cannot add account %s: %s", address, error);
		return CLI_EXIT_FAIL;
	}
	char *root = cli_account_root(cli, address);
	int ret = 0;
	if (store_account_create(root, &error) < 0) {
		cli_error("cannot create the mail folder %s: %s", root, error);
		if (dir_account_del(cli->dir, address, &error) < 0)
			cli_error("cannot remove account %s again: %s", address, error);
		ret = CLI_EXIT_FAIL;
	}
	free(root);
	return ret;
}

static int user_check_new(struct cli *cli, const char *address, const char *name)
{
	struct dir_account *account = NULL;
	const char *error;

	for (const char *p = name; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			cli_error("the name must not contain control characters");
			return EX_DATAERR;
		}
	}
	int ret = cli_require_domain(cli, address_domain(address));
	if (ret != 0)
		return ret;
	int found = dir_account_lookup(cli->dir, address, &account, &error);
	dir_account_free(&account);
	if (found < 0) {
		cli_error("cannot look up account %s: %s", address, error);
		return EX_TEMPFAIL;
	}
	if (found > 0) {
		cli_error("account %s already exists", address);
		return CLI_EXIT_FAIL;
	}
	return 0;
}

static int user_add(struct cli *cli, int argc, char **argv)
{
	const char *name = "", *quota = NULL, *messages = NULL;
	const struct cli_option options[] = {
	        {"name", &name, NULL},
	        {"quota", &quota, NULL},
	        {"quota-messages", &messages, NULL},
	        {NULL, NULL, NULL},
	};
	char *address, *password = NULL, *hash = NULL;
	uint64_t bytes = 0, count = 0;

	int ret = user_prepare(cli, &argc, argv, options, 1, &address);
	if (ret == 0) {
		bytes = cli->config->mail.quota_bytes;
		count = cli->config->mail.quota_messages;
	}
	if (ret == 0 && quota != NULL)
		ret = cli_parse_size("quota", quota, &bytes);
	if (ret == 0 && messages != NULL)
		ret = cli_parse_count("message quota", messages, &count);
	if (ret == 0)
		ret = user_check_new(cli, address, name);
	if (ret == 0)
		ret = cli_read_password(&password);
	if (ret == 0 && (hash = user_hash(password)) == NULL)
		ret = CLI_EXIT_FAIL;
	if (ret == 0)
		ret = user_create(cli, address, hash, name, bytes, count);
	if (ret == 0)
		printf("Added account %s\n", address);
	secret_free(password);
	secret_free(hash);
	free(address);
	return ret;
}

static int user_del(struct cli *cli, int argc, char **argv)
{
	char *address;
	struct dir_account *account;
	const char *error;

	int ret = user_prepare_account(cli, &argc, argv, 1, &address, &account);
	if (ret == 0 && dir_account_del(cli->dir, address, &error) < 0) {
		cli_error("cannot delete account %s: %s", address, error);
		ret = CLI_EXIT_FAIL;
	}
	if (ret == 0) {
		char *root = cli_account_root(cli, address);
		if (store_account_remove(root, &error) < 0) {
			cli_error("deleted account %s, but cannot remove its mail "
			          "folder %s: %s",
			          address, root, error);
			ret = CLI_EXIT_FAIL;
		} else {
			printf("Deleted account %s and its mail\n", address);
		}
		free(root);
	}
	dir_account_free(&account);
	free(address);
	return ret;
}

static void user_list_print(struct dir_account *const *accounts, size_t count)
{
	int width_address = 0, width_name = 0, width_quota = 0;
	char quota[64];

	for (size_t i = 0; i < count; i++) {
		int len = (int)strlen(accounts[i]->address);
		width_address = len > width_address ? len : width_address;
		len = accounts[i]->name[0] != '\0' ? (int)strlen(accounts[i]->name) : 1;
		width_name = len > width_name ? len : width_name;
		len = (int)strlen(quota_text(accounts[i]->quota_bytes, accounts[i]->quota_messages,
		                             quota, sizeof(quota)));
		width_quota = len > width_quota ? len : width_quota;
	}
	for (size_t i = 0; i < count; i++) {
		const struct dir_account *a = accounts[i];
		printf("%-*s  %-*s  %-*s  %s\n", width_address, a->address, width_name,
		       a->name[0] != '\0' ? a->name : "-", width_quota,
		       quota_text(a->quota_bytes, a->quota_messages, quota, sizeof(quota)),
		       a->enabled ? "enabled" : "disabled");
	}
}

static int user_list(struct cli *cli, int argc, char **argv)
{
	char *domain = NULL;
	struct dir_account **accounts;
	size_t count;
	const char *error;

	int ret = cli_list_prepare(cli, argc, argv, &domain);
	if (ret == 0 && dir_account_list(cli->dir, domain, &accounts, &count, &error) < 0) {
		cli_error("cannot list accounts: %s", error);
		ret = EX_TEMPFAIL;
	} else if (ret == 0) {
		user_list_print(accounts, count);
		dir_account_list_free(&accounts, count);
	}
	free(domain);
	return ret;
}

static void user_show_account(const struct dir_account *a)
{
	char created[64] = "unknown";
	char quota[64];
	struct tm tm;

	if (a->created != 0 && gmtime_r(&a->created, &tm) != NULL)
		strftime(created, sizeof(created), "%Y-%m-%d %H:%M:%S UTC", &tm);
	printf("address:  %s\n", a->address);
	printf("name:     %s\n", a->name[0] != '\0' ? a->name : "-");
	printf("enabled:  %s\n", a->enabled ? "yes" : "no");
	printf("created:  %s\n", created);
	printf("quota:    %s\n",
	       quota_text(a->quota_bytes, a->quota_messages, quota, sizeof(quota)));
}

static void user_show_usage(const struct dir_account *a, uint64_t bytes, uint64_t messages)
{
	char used[32], limit[32];

	printf("usage:    %s", cli_format_size(bytes, used, sizeof(used)));
	if (a->quota_bytes != 0)
		printf(" of %s (%.0f%%)", cli_format_size(a->quota_bytes, limit, sizeof(limit)),
		       (double)bytes * 100.0 / (double)a->quota_bytes);
	printf(", %llu message%s", (unsigned long long)messages, messages == 1 ? "" : "s");
	if (a->quota_messages != 0)
		printf(" of %llu", (unsigned long long)a->quota_messages);
	printf("\n");
}

static int user_show_mailboxes(struct store *store)
{
	char **names;
	size_t count;
	const char *error;
	int width = 0;

	if (store_mailbox_list(store, &names, &count, &error) < 0) {
		cli_error("cannot list mailboxes: %s", error);
		return CLI_EXIT_FAIL;
	}
	for (size_t i = 0; i < count; i++) {
		int len = (int)strlen(names[i]);
		width = len > width ? len : width;
	}
	printf("mailboxes:\n");
	for (size_t i = 0; i < count; i++) {
		struct store_status st;
		enum store_error err;
		char size[32];
		if (store_mailbox_status(store, names[i], &st, &err, &error) < 0) {
			printf("  %-*s  (%s)\n", width, names[i], error);
			continue;
		}
		printf("  %-*s  %6u message%s  %s\n", width, names[i], st.messages,
		       st.messages == 1 ? " " : "s", cli_format_size(st.size, size, sizeof(size)));
	}
	store_names_free(&names, count);
	return 0;
}

static int user_show_store(struct cli *cli, const struct dir_account *a)
{
	struct store *store;
	const char *error;
	uint64_t bytes, messages;

	char *root = cli_account_root(cli, a->address);
	int ret = store_open(root, &store, &error);
	free(root);
	if (ret < 0) {
		cli_error("cannot open the mail of %s: %s", a->address, error);
		return CLI_EXIT_FAIL;
	}
	if (store_quota_usage(store, &bytes, &messages, &error) < 0) {
		cli_error("cannot compute the quota usage: %s", error);
		ret = CLI_EXIT_FAIL;
	} else {
		user_show_usage(a, bytes, messages);
		ret = user_show_mailboxes(store);
	}
	store_close(&store);
	return ret;
}

static int user_show_routing(struct cli *cli, const char *address);

static int user_show(struct cli *cli, int argc, char **argv)
{
	char *address;
	struct dir_account *account;

	int ret = user_prepare_account(cli, &argc, argv, 1, &address, &account);
	if (ret == 0) {
		user_show_account(account);
		ret = user_show_routing(cli, address);
	}
	if (ret == 0)
		ret = user_show_store(cli, account);
	dir_account_free(&account);
	free(address);
	return ret;
}

static int user_passwd(struct cli *cli, int argc, char **argv)
{
	char *address, *password = NULL, *hash = NULL;
	struct dir_account *account;
	const char *error;

	int ret = user_prepare_account(cli, &argc, argv, 1, &address, &account);
	if (ret == 0)
		ret = cli_read_password(&password);
	if (ret == 0 && (hash = user_hash(password)) == NULL)
		ret = CLI_EXIT_FAIL;
	if (ret == 0 && dir_account_set_password(cli->dir, address, hash, &error) < 0) {
		cli_error("cannot set the password of %s: %s", address, error);
		ret = CLI_EXIT_FAIL;
	}
	if (ret == 0)
		printf("Changed the password of %s\n", address);
	secret_free(password);
	secret_free(hash);
	dir_account_free(&account);
	free(address);
	return ret;
}

static int user_quota(struct cli *cli, int argc, char **argv)
{
	char *address;
	struct dir_account *account;
	const char *error;
	uint64_t bytes = 0, messages = 0;
	char text[64];

	int ret = user_prepare_account(cli, &argc, argv, 3, &address, &account);
	if (ret == 0 && argc < 2)
		ret = cli_usage_error(cli, "missing argument: the quota SIZE");
	if (ret == 0)
		ret = cli_parse_size("quota", argv[1], &bytes);
	/* Without MESSAGES the message limit stays what it was. */
	if (ret == 0)
		messages = account->quota_messages;
	if (ret == 0 && argc == 3)
		ret = cli_parse_count("message quota", argv[2], &messages);
	if (ret == 0 && dir_account_set_quota(cli->dir, address, bytes, messages, &error) < 0) {
		cli_error("cannot set the quota of %s: %s", address, error);
		ret = CLI_EXIT_FAIL;
	}
	if (ret == 0)
		printf("Quota of %s: %s\n", address,
		       quota_text(bytes, messages, text, sizeof(text)));
	dir_account_free(&account);
	free(address);
	return ret;
}

static int user_set_enabled(struct cli *cli, int argc, char **argv, bool enabled)
{
	char *address;
	struct dir_account *account;
	const char *error;

	int ret = user_prepare_account(cli, &argc, argv, 1, &address, &account);
	if (ret == 0 && dir_account_set_enabled(cli->dir, address, enabled, &error) < 0) {
		cli_error("cannot %s account %s: %s", enabled ? "enable" : "disable", address,
		          error);
		ret = CLI_EXIT_FAIL;
	}
	if (ret == 0)
		printf("%s account %s\n", enabled ? "Enabled" : "Disabled", address);
	dir_account_free(&account);
	free(address);
	return ret;
}

static int user_enable(struct cli *cli, int argc, char **argv)
{
	return user_set_enabled(cli, argc, argv, true);
}

static int user_disable(struct cli *cli, int argc, char **argv)
{
	return user_set_enabled(cli, argc, argv, false);
}

/* ---- routing settings: forward, close, reopen, vacation ---- */

/* Reads ADDRESS (with the options), the account and its settings. */
static int routing_prepare(struct cli *cli, int *argc, char **argv,
                           const struct cli_option *options, int max, char **address_r,
                           struct dir_routing *routing_r)
{
	struct dir_account *account = NULL;
	const char *error;
	memset(routing_r, 0, sizeof(*routing_r));
	int ret = user_prepare(cli, argc, argv, options, max, address_r);
	if (ret == 0)
		ret = cli_lookup_account(cli, *address_r, &account);
	dir_account_free(&account);
	if (ret == 0 && dir_routing_get(cli->dir, *address_r, routing_r, &error) < 0) {
		cli_error("cannot read the routing settings of %s: %s", *address_r, error);
		ret = EX_TEMPFAIL;
	}
	return ret;
}

static int routing_save(struct cli *cli, const char *address, const struct dir_routing *r)
{
	const char *error;
	if (dir_routing_set(cli->dir, address, r, &error) < 0) {
		cli_error("cannot change the routing settings of %s: %s", address, error);
		return CLI_EXIT_FAIL;
	}
	return 0;
}

/* RFC 5322 atext, for the local part of a forwarding target (a dot-atom:
 * quoted local parts are refused, as most forms do). */
static bool target_local_valid(const char *local, size_t len)
{
	static const char special[] = "!#$%&'*+-/=?^_`{|}~";
	if (len == 0 || len > 64 || local[0] == '.' || local[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)local[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || (c != '\0' && strchr(special, c) != NULL) ||
		          (c == '.' && local[i + 1] != '.');
		if (!ok)
			return false;
	}
	return true;
}

/* A forwarding target: local@domain with the domain lower-cased. */
static int target_parse(const char *text, char **target_r)
{
	const char *at = strrchr(text, '@');
	const char *error = "it needs the form name@domain";
	char *domain = NULL;
	char esc[256];
	*target_r = NULL;
	if (at != NULL && !target_local_valid(text, (size_t)(at - text)))
		error = "the part before @ may hold letters, digits, . and !#$%&'*+-/=?^_`{|}~";
	else if (at != NULL && (domain = domain_normalize(at + 1, &error)) != NULL)
		*target_r = xasprintf("%.*s@%s", (int)(at - text), text, domain);
	free(domain);
	if (*target_r != NULL)
		return 0;
	cli_error("invalid forwarding address \"%s\": %s",
	          log_escape(text, strlen(text), esc, sizeof(esc)), error);
	return EX_DATAERR;
}

/* Replaces the targets with argv[1..argc), checked and without repeats. */
static int forward_set_targets(struct cli *cli, const char *address, int argc, char **argv,
                               struct dir_routing *r)
{
	uint32_t max = cli->config->forward.max_addresses;
	dir_strings_free(&r->forward_to, r->forward_count);
	r->forward_count = 0;
	for (int i = 1; i < argc; i++) {
		char *target;
		int ret = target_parse(argv[i], &target);
		if (ret != 0)
			return ret;
		bool seen = strcasecmp(target, address) == 0;
		for (size_t j = 0; j < r->forward_count && !seen; j++)
			seen = strcasecmp(r->forward_to[j], target) == 0;
		if (strcasecmp(target, address) == 0)
			cli_warn("%s is the account itself: left out", target);
		if (!seen) {
			r->forward_to = xreallocarray(r->forward_to, r->forward_count + 1,
			                              sizeof(*r->forward_to));
			r->forward_to[r->forward_count++] = target;
		} else {
			free(target);
		}
	}
	if (r->forward_count > max) {
		cli_error("at most %u forwarding addresses ([forward] max_addresses)", max);
		return EX_DATAERR;
	}
	if (r->forward_count == 0) {
		cli_error("no forwarding address left");
		return EX_DATAERR;
	}
	return 0;
}

static void routing_print_forward(const struct dir_routing *r)
{
	if (r->mode == DIR_ROUTING_CLOSED) {
		printf("routing:  closed (%s)\n",
		       r->close_reason[0] != '\0' ? r->close_reason : "no reason given");
		return;
	}
	if (r->mode != DIR_ROUTING_FORWARD || r->forward_count == 0) {
		printf("routing:  normal (mail is kept in INBOX)\n");
		return;
	}
	printf("routing:  forward to ");
	for (size_t i = 0; i < r->forward_count; i++)
		printf("%s%s", i > 0 ? ", " : "", r->forward_to[i]);
	printf(r->keep_copy ? " and keep a copy\n" : " (no copy kept)\n");
}

static void routing_print_vacation(const struct dir_routing *r)
{
	if (!r->vacation_enabled) {
		printf("vacation: off\n");
		return;
	}
	printf("vacation: on, once per sender every %u day%s, subject \"%s\"\n",
	       r->vacation_days, r->vacation_days == 1 ? "" : "s",
	       r->vacation_subject[0] != '\0' ? r->vacation_subject : "Auto: <the original>");
}

static int forward_apply(struct cli *cli, const char *address, int argc, char **argv,
                         bool keep, bool no_keep, struct dir_routing *r)
{
	if (keep && no_keep)
		return cli_usage_error(cli, "--keep and --no-keep exclude each other");
	if (argc == 1 && !keep && !no_keep) {
		routing_print_forward(r);
		return 0;
	}
	if (argc == 1 && (r->mode != DIR_ROUTING_FORWARD || r->forward_count == 0)) {
		cli_error("%s does not forward: give the addresses to forward to", address);
		return CLI_EXIT_FAIL;
	}
	/* New forwarding keeps a copy unless told not to: nothing is lost
	 * when a target address is mistyped. */
	bool was_forwarding = r->mode == DIR_ROUTING_FORWARD;
	r->keep_copy = keep || (!no_keep && (r->keep_copy || !was_forwarding));
	int ret = argc > 1 ? forward_set_targets(cli, address, argc, argv, r) : 0;
	if (ret == 0 && r->mode == DIR_ROUTING_CLOSED)
		cli_warn("%s was closed; it is open again and forwards", address);
	r->mode = DIR_ROUTING_FORWARD;
	if (ret == 0)
		ret = routing_save(cli, address, r);
	if (ret == 0)
		routing_print_forward(r);
	return ret;
}

static int user_forward(struct cli *cli, int argc, char **argv)
{
	bool keep = false, no_keep = false, off = false;
	const struct cli_option options[] = {
	        {"keep", NULL, &keep},
	        {"no-keep", NULL, &no_keep},
	        {"off", NULL, &off},
	        {NULL, NULL, NULL},
	};
	char *address = NULL;
	struct dir_routing r;
	int ret = routing_prepare(cli, &argc, argv, options, -1, &address, &r);
	if (ret == 0 && off && (argc > 1 || keep || no_keep))
		ret = cli_usage_error(cli, "--off takes no addresses and no --keep/--no-keep");
	if (ret == 0 && off) {
		if (r.mode == DIR_ROUTING_FORWARD)
			r.mode = DIR_ROUTING_NORMAL;
		dir_strings_free(&r.forward_to, r.forward_count);
		r.forward_count = 0;
		ret = routing_save(cli, address, &r);
		if (ret == 0)
			printf("Forwarding of %s is off\n", address);
	} else if (ret == 0) {
		ret = forward_apply(cli, address, argc, argv, keep, no_keep, &r);
	}
	dir_routing_free(&r);
	free(address);
	return ret;
}

/* A reason or subject goes into a Sieve string, a header or an SMTP
 * reply: one line of UTF-8 text. */
static int one_line_check(const char *what, const char *text)
{
	for (const char *p = text; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			cli_error("the %s must be one line without control characters", what);
			return EX_DATAERR;
		}
	}
	if (strlen(text) > 200 || !mime_utf8_is_valid(text, strlen(text))) {
		cli_error("the %s must be UTF-8 text of at most 200 bytes", what);
		return EX_DATAERR;
	}
	return 0;
}

static int user_close(struct cli *cli, int argc, char **argv)
{
	const char *reason = "";
	const struct cli_option options[] = {
	        {"reason", &reason, NULL},
	        {NULL, NULL, NULL},
	};
	char *address = NULL;
	struct dir_routing r;
	int ret = routing_prepare(cli, &argc, argv, options, 1, &address, &r);
	if (ret == 0)
		ret = one_line_check("reason", reason);
	if (ret == 0) {
		r.mode = DIR_ROUTING_CLOSED;
		dir_strings_free(&r.forward_to, r.forward_count);
		r.forward_count = 0;
		free(r.close_reason);
		r.close_reason = xstrdup(reason);
		ret = routing_save(cli, address, &r);
	}
	if (ret == 0)
		printf("Closed %s: new mail is refused and its senders are told\n", address);
	dir_routing_free(&r);
	free(address);
	return ret;
}

static int user_reopen(struct cli *cli, int argc, char **argv)
{
	char *address = NULL;
	struct dir_routing r;
	int ret = routing_prepare(cli, &argc, argv, NULL, 1, &address, &r);
	if (ret == 0 && r.mode != DIR_ROUTING_CLOSED) {
		cli_error("%s is not closed", address);
		ret = CLI_EXIT_FAIL;
	}
	if (ret == 0) {
		r.mode = DIR_ROUTING_NORMAL;
		free(r.close_reason);
		r.close_reason = xstrdup("");
		ret = routing_save(cli, address, &r);
	}
	if (ret == 0)
		printf("Reopened %s: mail is received normally again\n", address);
	dir_routing_free(&r);
	free(address);
	return ret;
}

/* The reply text: a file or "-" (standard input), UTF-8, bounded by
 * [vacation] max_reason_size. */
static int vacation_read_message(struct cli *cli, const char *file, char **text_r)
{
	uint64_t max = cli->config->vacation.max_reason_size;
	FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
	*text_r = NULL;
	if (f == NULL) {
		cli_error("cannot read %s: %s", file, strerror(errno));
		return EX_NOINPUT;
	}
	size_t cap = (size_t)(max != 0 && max < 1024 * 1024 ? max : 1024 * 1024);
	char *text = xmalloc(cap + 2);
	size_t len = fread(text, 1, cap + 1, f);
	bool failed = ferror(f) != 0;
	if (f != stdin)
		fclose(f);
	text[len] = '\0';
	int ret = 0;
	if (failed) {
		cli_error("cannot read %s", file);
		ret = EX_NOINPUT;
	} else if (len > cap || len == 0 || !mime_utf8_is_valid(text, len) ||
	           memchr(text, '\0', len) != NULL) {
		cli_error("the message must be UTF-8 text of 1 to %zu bytes", cap);
		ret = EX_DATAERR;
	}
	if (ret == 0)
		*text_r = text;
	else
		free(text);
	return ret;
}

struct vacation_args {
	bool on, off;
	const char *subject, *days, *message_file;
};

static int vacation_apply(struct cli *cli, const struct vacation_args *a, struct dir_routing *r)
{
	uint64_t days = r->vacation_days;
	char *text = NULL;
	if (a->subject != NULL && one_line_check("subject", a->subject) != 0)
		return EX_DATAERR;
	if (a->days != NULL && (cli_parse_count("days", a->days, &days) != 0 || days < 1 ||
	                        days > 365)) {
		cli_error("--days takes a number from 1 to 365");
		return EX_DATAERR;
	}
	if (a->message_file != NULL) {
		int ret = vacation_read_message(cli, a->message_file, &text);
		if (ret != 0)
			return ret;
		free(r->vacation_body);
		r->vacation_body = text;
	}
	if (r->vacation_body[0] == '\0') {
		cli_error("a vacation reply needs its text: --message-file FILE");
		return EX_DATAERR;
	}
	if (a->subject != NULL) {
		free(r->vacation_subject);
		r->vacation_subject = xstrdup(a->subject);
	}
	r->vacation_days = (uint32_t)days;
	r->vacation_enabled = true;
	return 0;
}

static const char vacation_caution[] =
        "Note: a vacation reply also answers spam with forged senders, so\n"
        "innocent people get mail they never asked for (backscatter). The\n"
        "campus discourages it: turn it on only for a real absence, and off\n"
        "again when back.\n";

static int user_vacation(struct cli *cli, int argc, char **argv)
{
	struct vacation_args a = {0};
	const struct cli_option options[] = {
	        {"on", NULL, &a.on},           {"off", NULL, &a.off},
	        {"subject", &a.subject, NULL}, {"days", &a.days, NULL},
	        {"message-file", &a.message_file, NULL}, {NULL, NULL, NULL},
	};
	char *address = NULL;
	struct dir_routing r;
	int ret = routing_prepare(cli, &argc, argv, options, 1, &address, &r);
	if (ret == 0 && a.on == a.off && (a.on || a.subject != NULL || a.days != NULL ||
	                                  a.message_file != NULL))
		ret = cli_usage_error(cli, "give --on (with its settings) or --off");
	if (ret == 0 && !a.on && !a.off) {
		routing_print_vacation(&r);
	} else if (ret == 0) {
		r.vacation_enabled = false;
		if (a.on)
			ret = vacation_apply(cli, &a, &r);
		if (ret == 0)
			ret = routing_save(cli, address, &r);
		if (ret == 0)
			routing_print_vacation(&r);
		if (ret == 0 && a.on)
			fputs(vacation_caution, stderr);
	}
	dir_routing_free(&r);
	free(address);
	return ret;
}

static int user_show_routing(struct cli *cli, const char *address)
{
	struct dir_routing r;
	const char *error;
	int ret = 0;
	if (dir_routing_get(cli->dir, address, &r, &error) < 0) {
		cli_error("cannot read the routing settings of %s: %s", address, error);
		ret = EX_TEMPFAIL;
	} else {
		routing_print_forward(&r);
		routing_print_vacation(&r);
	}
	dir_routing_free(&r);
	return ret;
}

static const struct cli_subcommand user_subcommands[] = {
        {"add", user_add},       {"del", user_del},         {"list", user_list},
        {"show", user_show},     {"passwd", user_passwd},   {"quota", user_quota},
        {"enable", user_enable}, {"disable", user_disable}, {"forward", user_forward},
        {"close", user_close},   {"reopen", user_reopen},   {"vacation", user_vacation},
        {NULL, NULL},
};

static int cmd_user(struct cli *cli, int argc, char **argv)
{
	return cli_run_subcommand(cli, user_subcommands, argc, argv);
}

const struct cli_command cli_cmd_user = {
        .name = "user",
        .run = cmd_user,
        .summary = "Manage accounts: add, del, list, show, passwd, quota, forward, vacation...",
        .usage = "usage: yubin [-c FILE] user add ADDRESS [--name NAME] [--quota SIZE]\n"
                 "                                        [--quota-messages N]\n"
                 "       yubin [-c FILE] user del ADDRESS\n"
                 "       yubin [-c FILE] user list [DOMAIN]\n"
                 "       yubin [-c FILE] user show ADDRESS\n"
                 "       yubin [-c FILE] user passwd ADDRESS\n"
                 "       yubin [-c FILE] user quota ADDRESS SIZE [MESSAGES]\n"
                 "       yubin [-c FILE] user enable ADDRESS\n"
                 "       yubin [-c FILE] user disable ADDRESS\n"
                 "       yubin [-c FILE] user forward ADDRESS [--keep|--no-keep] [TARGET...]\n"
                 "       yubin [-c FILE] user forward ADDRESS --off\n"
                 "       yubin [-c FILE] user close ADDRESS [--reason TEXT]\n"
                 "       yubin [-c FILE] user reopen ADDRESS\n"
                 "       yubin [-c FILE] user vacation ADDRESS --on --message-file FILE\n"
                 "                                     [--subject TEXT] [--days N]\n"
                 "       yubin [-c FILE] user vacation ADDRESS [--off]\n",
        .help = "  add      create an account and its mail folder (INBOX, Sent, Drafts,\n"
                "           Trash, Junk, Archive). The domain must be hosted.\n"
                "  del      delete an account and ALL its mail\n"
                "  list     one line per account: address, name, quota, enabled/disabled\n"
                "  show     an account's details, quota usage and mailboxes\n"
                "  passwd   set a new password\n"
                "  quota    set the size limit and, when given, the message limit (without\n"
                "           MESSAGES the message limit stays as it was)\n"
                "  enable, disable\n"
                "           allow or refuse logins and delivery for the account\n"
                "  forward  send the account's mail on to up to [forward] max_addresses\n"
                "           other addresses (given TARGETs replace the old ones). With\n"
                "           --keep (the default for new forwarding) a copy stays here and\n"
                "           the account's own Sieve filters sort it; with --no-keep\n"
                "           nothing is kept and the filters do not run. The envelope\n"
                "           sender is rewritten (SRS) so that SPF passes at the target.\n"
                "           Without TARGET or option: print the forwarding. --off: stop.\n"
                "  close    refuse all new mail for the account: senders get a permanent\n"
                "           error with the reason (550 5.2.1 at SMTP, or a bounce)\n"
                "  reopen   receive mail normally again after close\n"
                "  vacation an automatic reply (RFC 3834/5230: never to lists, bulk mail,\n"
                "           bounces; once per sender every N days). Off by default and\n"
                "           discouraged: replies to spam with forged senders hit innocent\n"
                "           people (backscatter). Without --on/--off: print the setting.\n"
                "\n"
                "Options of forward, close, vacation:\n"
                "  --keep, --no-keep    keep a copy in INBOX or not (forward)\n"
                "  --off                forwarding off / vacation off\n"
                "  --reason TEXT        one line told to senders of a closed account\n"
                "  --on                 vacation on; needs a text (--message-file)\n"
                "  --message-file FILE  the reply's UTF-8 text; - reads standard input (at\n"
                "                       most [vacation] max_reason_size)\n"
                "  --subject TEXT       the reply's subject (default: \"Auto: \" and the\n"
                "                       original subject)\n"
                "  --days N             at most one reply per sender every N days, 1-365\n"
                "                       (default 7; [vacation] min/max_period apply)\n"
                "\n"
                "Options of add:\n"
                "  --name NAME          display name (default: none)\n"
                "  --quota SIZE         size limit: 500M, 2G, 0 = unlimited (default:\n"
                "                       [mail] quota of the config)\n"
                "  --quota-messages N   message limit, 0 = unlimited (default: [mail]\n"
                "                       quota_messages)\n"
                "SIZE takes the units K, M, G, T (powers of 1024) or none for bytes;\n"
                "\"unlimited\" is the same as 0.\n"
                "\n"
                "Passwords (add, passwd): when standard input is a terminal the password\n"
                "is asked twice without echo; otherwise the first line of standard\n"
                "input is the password (a trailing CR/LF is removed). An empty password\n"
                "is refused; one shorter than 8 characters gets a warning.\n"
                "\n"
                "Exit status:\n"
                "  0   done\n"
                "  1   refused or failed (the account exists already, the mail folder\n"
                "      cannot be created or removed), or the config is invalid\n"
                "  64  usage error\n"
                "  65  invalid address, domain, size, name, forwarding target, reason,\n"
                "      vacation text, or no/mismatched password\n"
                "  66  the vacation message file cannot be read\n"
                "  67  no such account, or the domain is not hosted here\n"
                "  75  the directory database is unavailable; try again\n"
                "\n"
                "Examples:\n"
                "  yubin user add alice@example.ac.jp --name \"Alice Liddell\" --quota 2G\n"
                "  printf '%s\\n' \"$PASSWORD\" | yubin user passwd alice@example.ac.jp\n"
                "  yubin user quota alice@example.ac.jp 5G 100000\n"
                "  yubin user list example.ac.jp\n"
                "  yubin user forward alice@example.ac.jp --no-keep alice@lab.example.org\n"
                "  yubin user close bob@example.ac.jp --reason \"Bob has left; write to\n"
                "    office@example.ac.jp\"\n"
                "  yubin user vacation alice@example.ac.jp --on --days 7 --subject \"Away\"\n"
                "    --message-file away.txt\n",
};

/* yubin user add|del|list|show|passwd|quota|enable|disable: accounts in
 * the directory and their mail folders in the store. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "cli/cli.h"
#include "dir/dir.h"
#include "lib/address.h"
#include "lib/config.h"
#include "lib/xmalloc.h"
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

static int user_show(struct cli *cli, int argc, char **argv)
{
	char *address;
	struct dir_account *account;

	int ret = user_prepare_account(cli, &argc, argv, 1, &address, &account);
	if (ret == 0) {
		user_show_account(account);
		ret = user_show_store(cli, account);
	}
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

static const struct cli_subcommand user_subcommands[] = {
        {"add", user_add},       {"del", user_del},         {"list", user_list},
        {"show", user_show},     {"passwd", user_passwd},   {"quota", user_quota},
        {"enable", user_enable}, {"disable", user_disable}, {NULL, NULL},
};

static int cmd_user(struct cli *cli, int argc, char **argv)
{
	return cli_run_subcommand(cli, user_subcommands, argc, argv);
}

const struct cli_command cli_cmd_user = {
        .name = "user",
        .run = cmd_user,
        .summary = "Manage accounts: add, del, list, show, passwd, quota, enable, disable",
        .usage = "usage: yubin [-c FILE] user add ADDRESS [--name NAME] [--quota SIZE]\n"
                 "                                        [--quota-messages N]\n"
                 "       yubin [-c FILE] user del ADDRESS\n"
                 "       yubin [-c FILE] user list [DOMAIN]\n"
                 "       yubin [-c FILE] user show ADDRESS\n"
                 "       yubin [-c FILE] user passwd ADDRESS\n"
                 "       yubin [-c FILE] user quota ADDRESS SIZE [MESSAGES]\n"
                 "       yubin [-c FILE] user enable ADDRESS\n"
                 "       yubin [-c FILE] user disable ADDRESS\n",
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
                "  65  invalid address, domain, size, name, or no/mismatched password\n"
                "  67  no such account, or the domain is not hosted here\n"
                "  75  the directory database is unavailable; try again\n"
                "\n"
                "Examples:\n"
                "  yubin user add alice@example.ac.jp --name \"Alice Liddell\" --quota 2G\n"
                "  printf '%s\\n' \"$PASSWORD\" | yubin user passwd alice@example.ac.jp\n"
                "  yubin user quota alice@example.ac.jp 5G 100000\n"
                "  yubin user list example.ac.jp\n",
};

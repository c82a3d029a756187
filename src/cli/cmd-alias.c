/* yubin alias add|del|list: addresses that forward to accounts or other
 * aliases. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "dir/dir.h"
#include "lib/address.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

/* Characters no target address may hold (they would need quoting). */
#define ALIAS_BAD_CHARS " \t\r\n\"(),:;<>[\\]"

/* An external target keeps its local part as given (other systems allow
 * '+' and more); only its domain is normalized. `alias del` must match
 * such targets, even though `alias add` does not create them yet. */
static char *alias_external_target(struct cli *cli, const char *text)
{
	const char *at = strrchr(text, '@');
	const char *error;

	if (at == NULL || at == text || strpbrk(text, ALIAS_BAD_CHARS) != NULL)
		return NULL;
	for (const char *p = text; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return NULL;
	}
	char *domain = domain_normalize(at + 1, &error);
	if (domain == NULL)
		return NULL;
	char *target = NULL;
	if (dir_domain_exists(cli->dir, domain, &error) == 0)
		target = xasprintf("%.*s@%s", (int)(at - text), text, domain);
	free(domain);
	return target;
}

static int alias_parse_target(struct cli *cli, const char *text, char **target_r)
{
	const char *error;
	char esc[256];

	*target_r = address_normalize(text, &error);
	if (*target_r == NULL)
		*target_r = alias_external_target(cli, text);
	if (*target_r != NULL)
		return 0;
	cli_error("invalid target address \"%s\": %s",
	          log_escape(text, strlen(text), esc, sizeof(esc)), error);
	return EX_DATAERR;
}

/* Parses the arguments (ADDRESS first), opens the directory and checks
 * that the alias's domain is hosted. */
static int alias_prepare(struct cli *cli, int *argc, char **argv, int min, int max,
                         char **address_r)
{
	*address_r = NULL;
	int ret = cli_args(cli, argc, argv, NULL, min, max);
	if (ret == 0)
		ret = cli_parse_address(argv[0], address_r);
	if (ret == 0)
		ret = cli_open_dir(cli, CLI_EXIT_FAIL);
	if (ret == 0)
		ret = cli_require_domain(cli, address_domain(*address_r));
	return ret;
}

/* Mail to a target outside the hosted domains would wait for relaying,
 * which does not exist yet, and a target that is neither account nor alias
 * would bounce: both are refused when the alias is made. */
static int alias_check_target(struct cli *cli, const char *target)
{
	char **accounts, **external;
	size_t naccounts, nexternal;
	const char *error;

	int ret = dir_domain_exists(cli->dir, address_domain(target), &error);
	if (ret == 0) {
		cli_error("target %s is not in a hosted domain: an alias delivers to "
		          "accounts of hosted domains only",
		          target);
		return EX_NOUSER;
	}
	if (ret > 0)
		ret = dir_resolve(cli->dir, target, &accounts, &naccounts, &external, &nexternal,
		                  &error);
	if (ret < 0) {
		cli_error("cannot look up target %s: %s", target, error);
		return EX_TEMPFAIL;
	}
	if (ret == 0) {
		cli_error("target %s is unknown: not an account or alias", target);
		return EX_NOUSER;
	}
	dir_strings_free(&accounts, naccounts);
	dir_strings_free(&external, nexternal);
	return 0;
}

static int alias_add_one(struct cli *cli, const char *address, const char *text)
{
	char *target;
	const char *error;

	int ret = alias_parse_target(cli, text, &target);
	if (ret == 0)
		ret = alias_check_target(cli, target);
	if (ret != 0) {
		free(target);
		return ret;
	}
	if (dir_alias_add(cli->dir, address, target, &error) < 0) {
		cli_error("cannot add %s to alias %s: %s", target, address, error);
		ret = CLI_EXIT_FAIL;
	} else {
		printf("Added alias %s -> %s\n", address, target);
	}
	free(target);
	return ret;
}

static int alias_add(struct cli *cli, int argc, char **argv)
{
	char *address;

	int ret = alias_prepare(cli, &argc, argv, 2, -1, &address);
	for (int i = 1; ret == 0 && i < argc; i++)
		ret = alias_add_one(cli, address, argv[i]);
	free(address);
	return ret;
}

/* 1 when the alias (with that target, if one is given) exists. */
static int alias_exists(struct cli *cli, const char *address, const char *target)
{
	struct dir_alias *aliases;
	size_t count;
	const char *error;
	int found = 0;

	if (dir_alias_list(cli->dir, address_domain(address), &aliases, &count, &error) < 0) {
		cli_error("cannot list aliases: %s", error);
		return -1;
	}
	for (size_t i = 0; i < count && found == 0; i++) {
		if (strcmp(aliases[i].address, address) == 0 &&
		    (target == NULL || strcmp(aliases[i].target, target) == 0))
			found = 1;
	}
	dir_alias_list_free(&aliases, count);
	return found;
}

static int alias_del_checked(struct cli *cli, const char *address, const char *target)
{
	const char *error;

	int found = alias_exists(cli, address, target);
	if (found < 0)
		return EX_TEMPFAIL;
	if (found == 0 && target != NULL) {
		cli_error("alias %s has no target %s", address, target);
		return EX_NOUSER;
	}
	if (found == 0) {
		cli_error("no alias %s", address);
		return EX_NOUSER;
	}
	if (dir_alias_del(cli->dir, address, target, &error) < 0) {
		cli_error("cannot delete alias %s: %s", address, error);
		return CLI_EXIT_FAIL;
	}
	if (target != NULL)
		printf("Deleted alias %s -> %s\n", address, target);
	else
		printf("Deleted alias %s\n", address);
	return 0;
}

static int alias_del(struct cli *cli, int argc, char **argv)
{
	char *address, *target = NULL;

	int ret = alias_prepare(cli, &argc, argv, 1, 2, &address);
	if (ret == 0 && argc == 2)
		ret = alias_parse_target(cli, argv[1], &target);
	if (ret == 0)
		ret = alias_del_checked(cli, address, target);
	free(target);
	free(address);
	return ret;
}

static int alias_compare(const void *a, const void *b)
{
	const struct dir_alias *x = a, *y = b;
	int cmp = strcmp(x->address, y->address);
	return cmp != 0 ? cmp : strcmp(x->target, y->target);
}

/* One line per alias: "address -> target, target". */
static void alias_list_print(struct dir_alias *aliases, size_t count)
{
	int width = 0;

	if (count > 1)
		qsort(aliases, count, sizeof(*aliases), alias_compare);
	for (size_t i = 0; i < count; i++) {
		int len = (int)strlen(aliases[i].address);
		width = len > width ? len : width;
	}
	for (size_t i = 0; i < count; i++) {
		bool first = i == 0 || strcmp(aliases[i - 1].address, aliases[i].address) != 0;
		bool last =
		        i + 1 == count || strcmp(aliases[i + 1].address, aliases[i].address) != 0;
		if (first)
			printf("%-*s -> ", width, aliases[i].address);
		printf("%s%s", aliases[i].target, last ? "\n" : ", ");
	}
}

static int alias_list(struct cli *cli, int argc, char **argv)
{
	char *domain = NULL;
	struct dir_alias *aliases;
	size_t count;
	const char *error;

	int ret = cli_list_prepare(cli, argc, argv, &domain);
	if (ret == 0 && dir_alias_list(cli->dir, domain, &aliases, &count, &error) < 0) {
		cli_error("cannot list aliases: %s", error);
		ret = EX_TEMPFAIL;
	} else if (ret == 0) {
		alias_list_print(aliases, count);
		dir_alias_list_free(&aliases, count);
	}
	free(domain);
	return ret;
}

static const struct cli_subcommand alias_subcommands[] = {
        {"add", alias_add},
        {"del", alias_del},
        {"list", alias_list},
        {NULL, NULL},
};

static int cmd_alias(struct cli *cli, int argc, char **argv)
{
	return cli_run_subcommand(cli, alias_subcommands, argc, argv);
}

const struct cli_command cli_cmd_alias = {
        .name = "alias",
        .run = cmd_alias,
        .summary = "Add, delete or list aliases (addresses that forward)",
        .usage = "usage: yubin [-c FILE] alias add ADDRESS TARGET...\n"
                 "       yubin [-c FILE] alias del ADDRESS [TARGET]\n"
                 "       yubin [-c FILE] alias list [DOMAIN]\n",
        .help = "  add    make ADDRESS (in a hosted domain, not an account) deliver to\n"
                "         each TARGET: an account or another alias (external\n"
                "         addresses need outbound mail, which is not available\n"
                "         yet). Adding to an existing alias adds targets.\n"
                "  del    remove one TARGET of ADDRESS, or without TARGET the whole alias\n"
                "  list   one line per alias: ADDRESS -> TARGET, TARGET...\n"
                "Aliases are expanded recursively at delivery; loops are cut.\n"
                "\n"
                "Exit status:\n"
                "  0   done\n"
                "  1   refused (ADDRESS is an account, the target exists already), or\n"
                "      the config is invalid\n"
                "  64  usage error\n"
                "  65  invalid address or target\n"
                "  67  the domain is not hosted here; (add) a target is not an\n"
                "      account or alias of a hosted domain; (del) no such alias or\n"
                "      target\n"
                "  75  the directory database is unavailable; try again\n"
                "\n"
                "Example:\n"
                "  $ yubin alias add info@example.ac.jp alice@example.ac.jp bob@example.ac.jp\n"
                "  $ yubin alias list\n"
                "  info@example.ac.jp -> alice@example.ac.jp, bob@example.ac.jp\n",
};

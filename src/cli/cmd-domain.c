/* yubin domain add|del|list: the hosted mail domains. */
#include <stdlib.h>

#include "cli/cli.h"
#include "dir/dir.h"

/* Parses the one DOMAIN argument and opens the directory. */
static int domain_prepare(struct cli *cli, int argc, char **argv, char **domain_r)
{
	*domain_r = NULL;
	int ret = cli_args(cli, &argc, argv, NULL, 1, 1);
	if (ret == 0)
		ret = cli_parse_domain(argv[0], domain_r);
	if (ret == 0)
		ret = cli_open_dir(cli, CLI_EXIT_FAIL);
	return ret;
}

static int domain_add(struct cli *cli, int argc, char **argv)
{
	char *domain;
	const char *error;

	int ret = domain_prepare(cli, argc, argv, &domain);
	if (ret == 0 && dir_domain_add(cli->dir, domain, &error) < 0) {
		cli_error("cannot add domain %s: %s", domain, error);
		ret = CLI_EXIT_FAIL;
	} else if (ret == 0) {
		printf("Added domain %s\n", domain);
	}
	free(domain);
	return ret;
}

static int domain_del(struct cli *cli, int argc, char **argv)
{
	char *domain;
	const char *error;

	int ret = domain_prepare(cli, argc, argv, &domain);
	if (ret == 0)
		ret = cli_require_domain(cli, domain);
	if (ret == 0 && dir_domain_del(cli->dir, domain, &error) < 0) {
		cli_error("cannot delete domain %s: %s", domain, error);
		ret = CLI_EXIT_FAIL;
	} else if (ret == 0) {
		printf("Deleted domain %s\n", domain);
	}
	free(domain);
	return ret;
}

static int domain_list(struct cli *cli, int argc, char **argv)
{
	char **domains;
	size_t count;
	const char *error;

	int ret = cli_args(cli, &argc, argv, NULL, 0, 0);
	if (ret == 0)
		ret = cli_open_dir(cli, CLI_EXIT_FAIL);
	if (ret != 0)
		return ret;
	if (dir_domain_list(cli->dir, &domains, &count, &error) < 0) {
		cli_error("cannot list domains: %s", error);
		return EX_TEMPFAIL;
	}
	for (size_t i = 0; i < count; i++)
		printf("%s\n", domains[i]);
	dir_strings_free(&domains, count);
	return 0;
}

static const struct cli_subcommand domain_subcommands[] = {
        {"add", domain_add},
        {"del", domain_del},
        {"list", domain_list},
        {NULL, NULL},
};

static int cmd_domain(struct cli *cli, int argc, char **argv)
{
	return cli_run_subcommand(cli, domain_subcommands, argc, argv);
}

const struct cli_command cli_cmd_domain = {
        .name = "domain",
        .run = cmd_domain,
        .summary = "Add, delete or list the hosted mail domains",
        .usage = "usage: yubin [-c FILE] domain add DOMAIN\n"
                 "       yubin [-c FILE] domain del DOMAIN\n"
                 "       yubin [-c FILE] domain list\n",
        .help = "  add DOMAIN   host mail for DOMAIN (lower-cased; letters, digits,\n"
                "               hyphens and dots)\n"
                "  del DOMAIN   stop hosting DOMAIN; refused while it still has\n"
                "               accounts or aliases (delete those first)\n"
                "  list         print every hosted domain, one per line, sorted\n"
                "\n"
                "Exit status:\n"
                "  0   done\n"
                "  1   refused (the domain exists already, or still has accounts or\n"
                "      aliases), or the config is invalid\n"
                "  64  usage error\n"
                "  65  invalid domain name\n"
                "  67  del: the domain is not hosted here\n"
                "  75  the directory database is unavailable; try again\n"
                "\n"
                "Example:\n"
                "  $ yubin domain add example.ac.jp\n"
                "  Added domain example.ac.jp\n"
                "  $ yubin domain list\n"
                "  example.ac.jp\n",
};

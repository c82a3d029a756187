/* yubin check: load and validate the config, report every error. */
#include "cli/cli.h"
#include "lib/config.h"

static int cmd_check(struct cli *cli, int argc, char **argv)
{
	int ret = cli_args(cli, &argc, argv, NULL, 0, 0);
	if (ret != 0)
		return ret;
	ret = cli_load_config(cli, CLI_EXIT_FAIL);
	if (ret != 0)
		return ret;
	unsigned int count = 0;
	for (const struct config_listener *l = cli->config->listeners; l != NULL; l = l->next)
		count++;
	printf("config OK: %u listener%s\n", count, count == 1 ? "" : "s");
	return 0;
}

const struct cli_command cli_cmd_check = {
        .name = "check",
        .run = cmd_check,
        .summary = "Check the config file and report every error in it",
        .usage = "usage: yubin [-c FILE] check\n",
        .help = "Loads the config file the way \"yubin serve\" does and validates every\n"
                "setting. Each error is printed on its own line as FILE:LINE: PROBLEM,\n"
                "all of them, not only the first. On success prints the number of\n"
                "listeners.\n"
                "\n"
                "Exit status:\n"
                "  0   the config is valid\n"
                "  1   the config has errors (or cannot be read)\n"
                "  64  usage error\n"
                "\n"
                "Example:\n"
                "  $ yubin -c /etc/yubin/yubin.conf check\n"
                "  config OK: 2 listeners\n",
};

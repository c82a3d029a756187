/* yubin [-c FILE] COMMAND ...: global options, then one command from the
 * table below. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/log.h"

#ifndef YUBIN_VERSION
#include "cli/cli-version.h"
#endif

#define DEFAULT_CONFIG "./yubin.conf"

static int cmd_help(struct cli *cli, int argc, char **argv);

static const struct cli_command cli_cmd_help = {
        .name = "help",
        .run = cmd_help,
        .summary = "Show the commands, or the complete help of one command",
        .usage = "usage: yubin help [COMMAND]\n",
        .help = "Without a COMMAND, lists every command with a one-line summary.\n"
                "With one, prints that command's usage, options, exit codes and an\n"
                "example (the same as \"yubin COMMAND --help\").\n"
                "\n"
                "Exit status: 0, or 64 when COMMAND is unknown.\n"
                "\n"
                "Example:\n"
                "  yubin help user\n",
};

static const struct cli_command *const commands[] = {
        &cli_cmd_init,  &cli_cmd_serve,   &cli_cmd_check, &cli_cmd_domain, &cli_cmd_user,
        &cli_cmd_alias, &cli_cmd_deliver, &cli_cmd_send,  &cli_cmd_queue,  &cli_cmd_index,
        &cli_cmd_sieve,
        &cli_cmd_help,  NULL,
};

static const char global_usage[] = "usage: yubin [-c FILE] COMMAND [ARGUMENTS...]\n"
                                   "       yubin help [COMMAND]\n"
                                   "       yubin --version\n";

static void print_overview(FILE *out)
{
	fputs(global_usage, out);
	fputs("\nOptions:\n"
	      "  -c, --config FILE  the config file (default: $YUBIN_CONFIG, else\n"
	      "                     ./yubin.conf)\n"
	      "  -h, --help         this list\n"
	      "  --version          print the version\n"
	      "\nCommands:\n",
	      out);
	for (size_t i = 0; commands[i] != NULL; i++)
		fprintf(out, "  %-9s %s\n", commands[i]->name, commands[i]->summary);
	fputs("\nRun \"yubin help COMMAND\" for a command's options and exit codes.\n", out);
}

static const struct cli_command *command_find(const char *name)
{
	for (size_t i = 0; commands[i] != NULL; i++) {
		if (strcmp(commands[i]->name, name) == 0)
			return commands[i];
	}
	return NULL;
}

static int unknown_command(const char *name)
{
	char esc[128];
	cli_error("unknown command \"%s\"", log_escape(name, strlen(name), esc, sizeof(esc)));
	print_overview(stderr);
	return EX_USAGE;
}

static int cmd_help(struct cli *cli, int argc, char **argv)
{
	/* "yubin help user add" shows the help of "user". */
	int ret = cli_args(cli, &argc, argv, NULL, 0, -1);
	if (ret != 0)
		return ret;
	if (argc == 0) {
		print_overview(stdout);
		return 0;
	}
	const struct cli_command *cmd = command_find(argv[0]);
	if (cmd == NULL)
		return unknown_command(argv[0]);
	cli_print_help(cmd, stdout);
	return 0;
}

/* "--help" or "-h" before any "--" asks for the command's help. */
static bool wants_help(int argc, char **argv)
{
	for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	}
	return false;
}

/* Value of -c FILE, -cFILE, --config FILE or --config=FILE at argv[*i];
 * NULL when argv[*i] is not that option. */
static const char *config_option(int argc, char **argv, int *i, bool *missing_r)
{
	const char *arg = argv[*i];
	*missing_r = false;
	if (strncmp(arg, "--config=", 9) == 0)
		return arg + 9;
	if (strncmp(arg, "-c", 2) == 0 && arg[2] != '\0')
		return arg + 2;
	if (strcmp(arg, "-c") != 0 && strcmp(arg, "--config") != 0)
		return NULL;
	if (*i + 1 >= argc) {
		*missing_r = true;
		return NULL;
	}
	*i += 1;
	return argv[*i];
}

/* The options before the command. Returns the index of the command, or -1
 * when the process is done with *exit_r. */
static int parse_global(struct cli *cli, int argc, char **argv, int *exit_r)
{
	int i;
	bool missing;

	*exit_r = 0;
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *path = config_option(argc, argv, &i, &missing);
		if (path != NULL) {
			cli->config_path = path;
		} else if (missing) {
			cli_error("option %s needs a file name", argv[i]);
			*exit_r = EX_USAGE;
			return -1;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("yubin %s\n", YUBIN_VERSION);
			return -1;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			print_overview(stdout);
			return -1;
		} else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else {
			cli_error("unknown option %s", argv[i]);
			fputs(global_usage, stderr);
			*exit_r = EX_USAGE;
			return -1;
		}
	}
	if (i >= argc) {
		cli_error("no command given");
		print_overview(stderr);
		*exit_r = EX_USAGE;
		return -1;
	}
	return i;
}

int main(int argc, char **argv)
{
	struct cli cli = {0};
	int ret;

	cli.config_path = getenv("YUBIN_CONFIG");
	if (cli.config_path == NULL || cli.config_path[0] == '\0')
		cli.config_path = DEFAULT_CONFIG;
	int first = parse_global(&cli, argc, argv, &ret);
	if (first < 0)
		return ret;
	cli.cmd = command_find(argv[first]);
	if (cli.cmd == NULL)
		return unknown_command(argv[first]);
	int cmd_argc = argc - first - 1;
	char **cmd_argv = argv + first + 1;
	if (wants_help(cmd_argc, cmd_argv)) {
		cli_print_help(cli.cmd, stdout);
		return 0;
	}
	ret = cli.cmd->run(&cli, cmd_argc, cmd_argv);
	cli_deinit(&cli);
	if (fflush(stdout) != 0 && ret == 0)
		ret = CLI_EXIT_FAIL;
	return ret;
}

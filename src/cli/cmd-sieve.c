/* yubin sieve put|get|list|activate|deactivate|delete|check: an account's
 * Sieve scripts, in the same storage ManageSieve uses. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "dir/dir.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "sieve/sieve.h"

/* Opens the directory, checks the account and opens its script storage.
 * Takes argv[0] as the ADDRESS; returns 0 or an exit code. */
static int sieve_prepare(struct cli *cli, int *argc, char **argv, int min, int max,
			 char **address_r, struct sieve_storage **storage_r)
{
	struct dir_account *account = NULL;
	const char *error;

	*address_r = NULL;
	*storage_r = NULL;
	int ret = cli_args(cli, argc, argv, NULL, min, max);
	if (ret == 0)
		ret = cli_parse_address(argv[0], address_r);
	if (ret == 0)
		ret = cli_open_dir(cli, CLI_EXIT_FAIL);
	if (ret == 0)
		ret = cli_lookup_account(cli, *address_r, &account);
	dir_account_free(&account);
	if (ret != 0)
		return ret;
	struct sieve_storage_limits limits = { cli->config->sieve.max_scripts,
					       cli->config->sieve.max_storage };
	char *root = cli_account_root(cli, *address_r);
	ret = sieve_storage_open(root, &limits, storage_r, &error);
	free(root);
	if (ret < 0) {
		cli_error("cannot open the scripts of %s: %s", *address_r, error);
		return CLI_EXIT_FAIL;
	}
	return 0;
}

static void sieve_finish(char *address, struct sieve_storage *storage)
{
	sieve_storage_close(&storage);
	free(address);
}

/* A script name from the command line; prints why when it is invalid. */
static int sieve_check_name(const char *name)
{
	char esc[300];
	if (sieve_storage_name_valid(name))
		return 0;
	cli_error("invalid script name \"%s\": 1-128 characters, no '/', no control characters, "
		  "not starting with '.'", log_escape(name, strlen(name), esc, sizeof(esc)));
	return EX_DATAERR;
}

static const char *sieve_source_label(const char *path)
{
	return strcmp(path, "-") == 0 ? "standard input" : path;
}

/* Reads FILE, or standard input for "-", up to max bytes. */
static int sieve_read_source(const char *path, uint64_t max, struct buf *out)
{
	int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	char chunk[8192];
	ssize_t n;

	if (fd < 0) {
		cli_error("cannot open %s: %s", path, strerror(errno));
		return EX_NOINPUT;
	}
	buf_init(out, (size_t)max);
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || buf_append(out, chunk, (size_t)n) < 0) {
			if (n < 0)
				cli_error("cannot read %s: %s", path, strerror(errno));
			else
				cli_error("%s is larger than [sieve] max_script_size",
					  sieve_source_label(path));
			break;
		}
	}
	if (fd != STDIN_FILENO)
		close(fd);
	return n == 0 ? 0 : (n < 0 ? CLI_EXIT_FAIL : EX_DATAERR);
}

/* Compiles the script; prints "line L, column C: message" on an error. */
static int sieve_compile_check(struct cli *cli, const char *name, const struct buf *source)
{
	struct sieve_limits limits = sieve_default_limits;
	struct sieve_error err = { 0 };

	limits.max_script_size = cli->config->sieve.max_script_size;
	limits.max_actions = cli->config->sieve.max_actions;
	limits.max_redirects = cli->config->sieve.max_redirects;
	struct sieve_script *script = sieve_compile(name, buf_str(source), source->len, &limits,
						    &err);
	if (script != NULL) {
		sieve_script_free(&script);
		return 0;
	}
	if (err.line > 0)
		cli_error("line %u, column %u: %s", err.line, err.column, err.message);
	else
		cli_error("%s", err.message);
	return EX_DATAERR;
}

static int sieve_read_and_compile(struct cli *cli, const char *name, const char *path,
				  struct buf *source)
{
	int ret = sieve_read_source(path, cli->config->sieve.max_script_size + 1, source);
	if (ret == 0 && source->len > cli->config->sieve.max_script_size) {
		cli_error("%s is larger than [sieve] max_script_size", sieve_source_label(path));
		ret = EX_DATAERR;
	}
	return ret == 0 ? sieve_compile_check(cli, name, source) : ret;
}

static int sieve_put(struct cli *cli, int argc, char **argv)
{
	char *address;
	struct sieve_storage *storage;
	struct buf source = BUF_INIT(0);
	const char *error;
	bool quota;

	int ret = sieve_prepare(cli, &argc, argv, 2, 3, &address, &storage);
	if (ret == 0)
		ret = sieve_check_name(argv[1]);
	if (ret == 0)
		ret = sieve_read_and_compile(cli, argv[1], argc > 2 ? argv[2] : "-", &source);
	if (ret == 0 &&
	    sieve_storage_put(storage, argv[1], buf_str(&source), source.len, &quota, &error) < 0) {
		cli_error("cannot store %s for %s: %s", argv[1], address, error);
		ret = quota ? EX_NOPERM : CLI_EXIT_FAIL;
	}
	if (ret == 0)
		printf("Stored script %s for %s (%zu bytes)\n", argv[1], address, source.len);
	buf_free(&source);
	sieve_finish(address, storage);
	return ret;
}

static int sieve_get(struct cli *cli, int argc, char **argv)
{
	char *address, *source = NULL;
	struct sieve_storage *storage;
	const char *error;
	size_t len;

	int ret = sieve_prepare(cli, &argc, argv, 2, 2, &address, &storage);
	if (ret == 0)
		ret = sieve_check_name(argv[1]);
	if (ret == 0) {
		int found = sieve_storage_get(storage, argv[1], &source, &len, &error);
		if (found < 0)
			cli_error("cannot read %s of %s: %s", argv[1], address, error);
		else if (found == 0)
			cli_error("%s has no script %s", address, argv[1]);
		else
			fwrite(source, 1, len, stdout);
		ret = found > 0 ? 0 : CLI_EXIT_FAIL;
	}
	free(source);
	sieve_finish(address, storage);
	return ret;
}

static int sieve_list(struct cli *cli, int argc, char **argv)
{
	char *address;
	struct sieve_storage *storage;
	struct sieve_script_info *scripts;
	size_t count;
	const char *error;

	int ret = sieve_prepare(cli, &argc, argv, 1, 1, &address, &storage);
	if (ret == 0 && sieve_storage_list(storage, &scripts, &count, &error) < 0) {
		cli_error("cannot list the scripts of %s: %s", address, error);
		ret = CLI_EXIT_FAIL;
	} else if (ret == 0) {
		for (size_t i = 0; i < count; i++)
			printf("%s%s\n", scripts[i].name, scripts[i].active ? " (active)" : "");
		sieve_storage_list_free(&scripts, count);
	}
	sieve_finish(address, storage);
	return ret;
}

/* activate with a NAME, deactivate without. */
static int sieve_set_active(struct cli *cli, int argc, char **argv, bool activate)
{
	char *address;
	struct sieve_storage *storage;
	const char *error;

	int ret = sieve_prepare(cli, &argc, argv, activate ? 2 : 1, activate ? 2 : 1, &address,
				&storage);
	const char *name = activate && ret == 0 ? argv[1] : NULL;
	if (ret == 0 && name != NULL)
		ret = sieve_check_name(name);
	if (ret == 0 && sieve_storage_activate(storage, name, &error) < 0) {
		cli_error("cannot activate %s for %s: %s", name != NULL ? name : "-", address, error);
		ret = CLI_EXIT_FAIL;
	}
	if (ret == 0 && name != NULL)
		printf("Activated script %s for %s\n", name, address);
	else if (ret == 0)
		printf("Deactivated the scripts of %s\n", address);
	sieve_finish(address, storage);
	return ret;
}

static int sieve_activate(struct cli *cli, int argc, char **argv)
{
	return sieve_set_active(cli, argc, argv, true);
}

static int sieve_deactivate(struct cli *cli, int argc, char **argv)
{
	return sieve_set_active(cli, argc, argv, false);
}

static int sieve_delete(struct cli *cli, int argc, char **argv)
{
	char *address;
	struct sieve_storage *storage;
	const char *error;
	bool active;

	int ret = sieve_prepare(cli, &argc, argv, 2, 2, &address, &storage);
	if (ret == 0)
		ret = sieve_check_name(argv[1]);
	if (ret == 0 && sieve_storage_delete(storage, argv[1], &active, &error) < 0) {
		if (active)
			cli_error("%s is the active script of %s: deactivate it first", argv[1],
				  address);
		else
			cli_error("cannot delete %s of %s: %s", argv[1], address, error);
		ret = CLI_EXIT_FAIL;
	}
	if (ret == 0)
		printf("Deleted script %s of %s\n", argv[1], address);
	sieve_finish(address, storage);
	return ret;
}

static int sieve_check(struct cli *cli, int argc, char **argv)
{
	struct buf source = BUF_INIT(0);

	int ret = cli_args(cli, &argc, argv, NULL, 1, 1);
	if (ret == 0)
		ret = cli_load_config(cli, CLI_EXIT_FAIL);
	if (ret == 0)
		ret = sieve_read_and_compile(cli, argv[0], argv[0], &source);
	if (ret == 0)
		printf("%s: OK\n", argv[0]);
	buf_free(&source);
	return ret;
}

static const struct cli_subcommand sieve_subcommands[] = {
	{ "put", sieve_put },
	{ "get", sieve_get },
	{ "list", sieve_list },
	{ "activate", sieve_activate },
	{ "deactivate", sieve_deactivate },
	{ "delete", sieve_delete },
	{ "check", sieve_check },
	{ NULL, NULL },
};

static int cmd_sieve(struct cli *cli, int argc, char **argv)
{
	return cli_run_subcommand(cli, sieve_subcommands, argc, argv);
}

const struct cli_command cli_cmd_sieve = {
        .name = "sieve",
        .run = cmd_sieve,
        .summary = "Store, list and activate an account's Sieve filter scripts",
        .usage = "usage: yubin sieve put ADDRESS NAME [FILE|-]\n"
                 "       yubin sieve get ADDRESS NAME\n"
                 "       yubin sieve list ADDRESS\n"
                 "       yubin sieve activate ADDRESS NAME\n"
                 "       yubin sieve deactivate ADDRESS\n"
                 "       yubin sieve delete ADDRESS NAME\n"
                 "       yubin sieve check FILE\n",
        .help = "The scripts live in the account's folder (sieve/NAME.sieve), the same\n"
                "storage ManageSieve clients (port 4190) use; the active one runs on\n"
                "every message delivered to the account.\n"
                "\n"
                "  put         compiles FILE (standard input when absent or -) and stores\n"
                "              it as NAME, replacing a script of that name; a script\n"
                "              with an error is not stored: \"line L, column C: message\"\n"
                "  get         prints the script exactly as stored\n"
                "  list        one name a line; the active one ends in \" (active)\"\n"
                "  activate    makes NAME the script that runs at delivery\n"
                "  deactivate  no script runs any more\n"
                "  delete      removes NAME (the active script is refused: deactivate\n"
                "              it first)\n"
                "  check       compiles FILE only, and says what is wrong\n"
                "Names: 1-128 characters, no '/', no control characters, not starting\n"
                "with '.'. Limits: [sieve] max_script_size, max_scripts, max_storage.\n"
                "\n"
                "Exit status:\n"
                "  0   done\n"
                "  1   no such script, the active script cannot be deleted, or the\n"
                "      storage failed\n"
                "  64  usage error\n"
                "  65  the script does not compile, is too large, or the name is\n"
                "      invalid\n"
                "  66  FILE cannot be opened\n"
                "  67  no such account\n"
                "  75  the directory is unavailable\n"
                "  77  over the account's script limits (max_scripts, max_storage)\n"
                "\n"
                "Example:\n"
                "  yubin sieve put alice@example.edu main filters.sieve\n"
                "  yubin sieve activate alice@example.edu main\n",
};

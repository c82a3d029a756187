/* The `yubin` command line: a table of commands (main.c), one file per
 * command (cmd-*.c) and the helpers they share (cli.c). Internal to src/cli.
 *
 * Exit codes follow sysexits(3) so that an MTA running `yubin deliver`
 * knows whether to retry: 0 done, 1 failed, 64 usage, 65 bad input,
 * 67 unknown account/alias/domain, 75 temporary failure (try again),
 * 77 refused by policy (too big, over quota). docs/cli.md lists them. */
#ifndef YUBIN_CLI_H
#define YUBIN_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sysexits.h>

struct dir;
struct dir_account;
struct yubin_config;

#define CLI_EXIT_FAIL 1

/* What a command works with; cli_deinit() releases it after the command. */
struct cli {
	const char *config_path;
	const struct cli_command *cmd;
	struct yubin_config *config;
	struct dir *dir;
};

struct cli_command {
	const char *name;
	/* argv[0..argc) are the arguments after the command name. Returns
	 * the process exit code. */
	int (*run)(struct cli *cli, int argc, char **argv);
	const char *summary; /* one line for `yubin help` */
	const char *usage;   /* "usage: yubin ..." lines, each ending in \n */
	const char *help;    /* the rest: options, exit codes, an example */
};

/* A command's sub-commands ("user add", "domain list"); run() gets the
 * arguments after the sub-command's name and checks them with cli_args(). */
struct cli_subcommand {
	const char *name;
	int (*run)(struct cli *cli, int argc, char **argv);
};

/* A long option: "--name VALUE" or "--name=VALUE" sets *value_r; with
 * value_r NULL the option is a flag that sets *flag_r. */
struct cli_option {
	const char *name;
	const char **value_r;
	bool *flag_r;
};

extern const struct cli_command cli_cmd_init;
extern const struct cli_command cli_cmd_serve;
extern const struct cli_command cli_cmd_check;
extern const struct cli_command cli_cmd_domain;
extern const struct cli_command cli_cmd_user;
extern const struct cli_command cli_cmd_alias;
extern const struct cli_command cli_cmd_deliver;
extern const struct cli_command cli_cmd_index;
extern const struct cli_command cli_cmd_queue;
extern const struct cli_command cli_cmd_send;
extern const struct cli_command cli_cmd_sieve;

/* "yubin: <message>\n" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the error and the command's usage on stderr; returns EX_USAGE. */
int cli_usage_error(const struct cli *cli, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
void cli_print_help(const struct cli_command *cmd, FILE *out);

/* Takes the options out of argv (they may stand anywhere before "--"),
 * leaving the positional arguments in argv[0..*argc), and checks that
 * there are between min and max of them (max -1: no limit). options may
 * be NULL. Returns 0, or EX_USAGE after printing what is wrong. */
int cli_args(struct cli *cli, int *argc, char **argv, const struct cli_option *options, int min,
             int max);
/* Runs the sub-command named by argv[0] with the arguments after it. */
int cli_run_subcommand(struct cli *cli, const struct cli_subcommand *subs, int argc, char **argv);

/* Loads cli->config_path and sets up logging; on failure prints every
 * error line and returns fail_code. */
int cli_load_config(struct cli *cli, int fail_code);
/* Loads the config, drops root privileges to server.user (refusing root
 * without one) and opens the directory. Config and privilege errors return
 * fail_code, a directory that cannot be opened EX_TEMPFAIL. */
int cli_open_dir(struct cli *cli, int fail_code);
void cli_deinit(struct cli *cli);

/* Reads a new password: the first line of standard input when it is not
 * a terminal, else asked twice on /dev/tty with echo off. Returns 0 with
 * a string the caller frees, or an exit code after printing why. */
int cli_read_password(char **password_r);

/* Validate and normalize command-line input; on failure print why and
 * return EX_DATAERR. */
int cli_parse_address(const char *text, char **address_r);
int cli_parse_domain(const char *text, char **domain_r);
int cli_parse_size(const char *what, const char *text, uint64_t *bytes_r);
int cli_parse_count(const char *what, const char *text, uint64_t *count_r);

/* 0 when the domain is hosted; else prints why and returns EX_NOUSER (or
 * EX_TEMPFAIL when the directory fails). */
int cli_require_domain(struct cli *cli, const char *domain);
/* For "list [DOMAIN]" commands: parses the optional domain (*domain_r NULL
 * when absent), opens the directory and checks the domain is hosted. */
int cli_list_prepare(struct cli *cli, int argc, char **argv, char **domain_r);
/* Looks an account up: 0 with *account_r, or an exit code after printing
 * why (EX_NOUSER when there is no such account). */
int cli_lookup_account(struct cli *cli, const char *address, struct dir_account **account_r);
/* <data_dir>/mail/<domain>/<local> of an account; caller frees. */
char *cli_account_root(const struct cli *cli, const char *address);

/* "0B", "512B", "1.5K", "20M", "1G" (powers of 1024); returns out. */
const char *cli_format_size(uint64_t bytes, char *out, size_t outsize);

#endif

#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "dir/dir.h"
#include "lib/address.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/privs.h"
#include "lib/strnum.h"
#include "lib/xmalloc.h"
#include "smtp/queue.h"
#include "store/store.h"

#define CLI_PASSWORD_MAX 1024
#define CLI_PASSWORD_WARN_LEN 8

static void cli_vmessage(const char *prefix, const char *fmt, va_list ap)
{
	fputs("yubin: ", stderr);
	fputs(prefix, stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void cli_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cli_vmessage("", fmt, ap);
	va_end(ap);
}

void cli_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cli_vmessage("warning: ", fmt, ap);
	va_end(ap);
}

void cli_print_help(const struct cli_command *cmd, FILE *out)
{
	fputs(cmd->usage, out);
	fputs("\n", out);
	fputs(cmd->help, out);
}

int cli_usage_error(const struct cli *cli, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cli_vmessage("", fmt, ap);
	va_end(ap);
	if (cli->cmd != NULL) {
		fputs(cli->cmd->usage, stderr);
		fprintf(stderr, "Run \"yubin help %s\" for details.\n", cli->cmd->name);
	}
	return EX_USAGE;
}

static const struct cli_option *option_find(const struct cli_option *options, const char *name,
                                            size_t len)
{
	for (; options != NULL && options->name != NULL; options++) {
		if (strlen(options->name) == len && strncmp(options->name, name, len) == 0)
			return options;
	}
	return NULL;
}

/* Applies the option argv[*i]; a value in the next argument is consumed. */
static int option_apply(struct cli *cli, const struct cli_option *options, int argc, char **argv,
                        int *i)
{
	const char *arg = argv[*i];
	const char *eq = strchr(arg, '=');
	size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
	/* -c FILE may also follow the command (`yubin user list -c FILE`). */
	const struct cli_option config_option = {"config", &cli->config_path, NULL};
	const struct cli_option *opt = NULL;

	if (strcmp(arg, "-c") == 0)
		opt = &config_option;
	else if (arg[1] == '-')
		opt = option_find(options, arg + 2, len - 2);
	if (opt == NULL && len == 8 && strncmp(arg, "--config", 8) == 0)
		opt = &config_option;
	if (opt == NULL)
		return cli_usage_error(cli, "unknown option %.*s", (int)len, arg);
	if (opt->value_r == NULL) {
		if (eq != NULL)
			return cli_usage_error(cli, "option --%s takes no value", opt->name);
		*opt->flag_r = true;
		return 0;
	}
	if (eq != NULL) {
		*opt->value_r = eq + 1;
		return 0;
	}
	if (*i + 1 >= argc)
		return cli_usage_error(cli, "option --%s needs a value", opt->name);
	*i += 1;
	*opt->value_r = argv[*i];
	return 0;
}

int cli_args(struct cli *cli, int *argc, char **argv, const struct cli_option *options, int min,
             int max)
{
	int count = 0;
	bool only_args = false;

	for (int i = 0; i < *argc; i++) {
		const char *arg = argv[i];
		if (only_args || arg[0] != '-' || arg[1] == '\0') {
			argv[count++] = argv[i];
		} else if (strcmp(arg, "--") == 0) {
			only_args = true;
		} else {
			int ret = option_apply(cli, options, *argc, argv, &i);
			if (ret != 0)
				return ret;
		}
	}
	*argc = count;
	if (count < min)
		return cli_usage_error(cli, "missing argument");
	if (max >= 0 && count > max)
		return cli_usage_error(cli, "too many arguments");
	return 0;
}

int cli_run_subcommand(struct cli *cli, const struct cli_subcommand *subs, int argc, char **argv)
{
	if (argc == 0)
		return cli_usage_error(cli, "%s needs a sub-command", cli->cmd->name);
	for (; subs->name != NULL; subs++) {
		if (strcmp(subs->name, argv[0]) == 0)
			return subs->run(cli, argc - 1, argv + 1);
	}
	char esc[128];
	return cli_usage_error(cli, "unknown sub-command \"%s %s\"", cli->cmd->name,
	                       log_escape(argv[0], strlen(argv[0]), esc, sizeof(esc)));
}

/* Each config error line as one "yubin: file:line: ..." line. */
static void print_error_lines(const char *text)
{
	while (*text != '\0') {
		size_t len = strcspn(text, "\n");
		if (len > 0)
			fprintf(stderr, "yubin: %.*s\n", (int)len, text);
		text += len;
		if (*text == '\n')
			text++;
	}
}

/* Logs go where the config says; on a terminal only what needs attention,
 * so that a command's own output stays readable. */
static void cli_setup_log(const struct cli *cli)
{
	enum log_level level = LOG_LEVEL_INFO;
	const char *target = cli->config->log.target;
	const char *error;

	if (cli->config->log.level != NULL)
		(void)log_level_parse(cli->config->log.level, &level);
	if (target == NULL || strcmp(target, "stderr") == 0) {
		target = "stderr";
		if (level < LOG_LEVEL_WARN)
			level = LOG_LEVEL_WARN;
	}
	log_set_role(cli->cmd != NULL ? cli->cmd->name : "cli");
	if (log_open(target, level, "yubin", &error) < 0)
		cli_warn("cannot open the log %s: %s; logging to stderr", target, error);
}

int cli_load_config(struct cli *cli, int fail_code)
{
	if (cli->config != NULL)
		return 0;
	if (access(cli->config_path, F_OK) < 0 && errno == ENOENT) {
		cli_error("config file %s does not exist (give one with -c FILE "
		          "or YUBIN_CONFIG, or create one with \"yubin init\")",
		          cli->config_path);
		return fail_code;
	}
	struct buf errors = BUF_INIT(0);
	int ret = config_load(cli->config_path, &cli->config, &errors);
	if (ret < 0) {
		print_error_lines(buf_str(&errors));
		if (errors.len == 0)
			cli_error("cannot load %s", cli->config_path);
	}
	buf_free(&errors);
	if (ret < 0)
		return fail_code;
	cli_setup_log(cli);
	/* Every command that delivers (serve workers, the queue runner,
	 * deliver) passes here: mail that delivery makes goes to the queue. */
	queue_register_outbox(cli->config);
	return 0;
}

/* Becomes uid/gid for good (the owner of the data folder). */
static int become_owner(uid_t uid, gid_t gid)
{
	const struct passwd *pw = getpwuid(uid);
	int ret = pw != NULL ? initgroups(pw->pw_name, gid) : setgroups(0, NULL);

	if (ret < 0 || setgid(gid) < 0 || setuid(uid) < 0 || setuid(0) == 0) {
		cli_error("cannot switch to uid %ld, the owner of the data folder: %s", (long)uid,
		          strerror(errno));
		return -1;
	}
	return 0;
}

/* Started as root, a command becomes server.user before it touches the
 * data folder, so that nothing there is owned by root (lib/privs.h).
 * Without server.user it becomes the data folder's owner: an MTA or cron
 * running `deliver` as root then still writes files the server can read. */
static int cli_drop_root(const struct cli *cli)
{
	const char *user = cli->config->server.user;
	const char *error;
	struct stat st;

	if (geteuid() == 0 && (user == NULL || user[0] == '\0') &&
	    stat(cli->config->server.data_dir, &st) == 0 && st.st_uid != 0) {
		/* A log file just opened as root stays the owner's, like privs_drop() does */
		const char *log = cli->config->log.target;
		if (log != NULL && log[0] == '/' && chown(log, st.st_uid, st.st_gid) < 0)
			cli_warn("cannot give the log %s to uid %ld: %s", log, (long)st.st_uid,
			         strerror(errno));
		return become_owner(st.st_uid, st.st_gid);
	}
	if (privs_drop(cli->config, &error) < 0) {
		cli_error("%s (in %s)", error, cli->config->path);
		return -1;
	}
	return 0;
}

int cli_open_dir(struct cli *cli, int fail_code)
{
	const char *error;
	int ret = cli_load_config(cli, fail_code);
	if (ret != 0 || cli->dir != NULL)
		return ret;
	if (cli_drop_root(cli) < 0)
		return fail_code;
	char *path = config_data_path(cli->config, "yubin.db");
	if (dir_open(path, &cli->dir, &error) < 0) {
		cli_error("cannot open the directory %s: %s", path, error);
		ret = EX_TEMPFAIL;
	}
	free(path);
	return ret;
}

void cli_deinit(struct cli *cli)
{
	dir_close(&cli->dir);
	config_free(&cli->config);
}

/* Reads one line (without its CR/LF) into buf. -1: too long or NUL. */
static int read_line_fd(int fd, struct buf *buf)
{
	char c;
	ssize_t n;

	while ((n = read(fd, &c, 1)) == 1 || (n < 0 && errno == EINTR)) {
		if (n < 0)
			continue;
		if (c == '\n')
			break;
		if (c == '\0' || buf_append_char(buf, c) < 0)
			return -1;
	}
	if (n < 0)
		return -1;
	while (buf->len > 0 && buf->data[buf->len - 1] == '\r')
		buf->data[--buf->len] = '\0';
	return 0;
}

static int tty_fd = -1;
static struct termios tty_saved;

static void tty_restore(void)
{
	if (tty_fd >= 0)
		(void)tcsetattr(tty_fd, TCSAFLUSH, &tty_saved);
}

/* A signal while echo is off must not leave the terminal silent. */
static void tty_on_signal(int sig)
{
	tty_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void tty_catch_signals(void (*handler)(int))
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], handler);
}

/* Asks once with echo off. */
static int tty_ask(const char *prompt, struct buf *buf)
{
	struct termios quiet = tty_saved;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	if (write(tty_fd, prompt, strlen(prompt)) < 0 || tcsetattr(tty_fd, TCSAFLUSH, &quiet) < 0)
		return -1;
	int ret = read_line_fd(tty_fd, buf);
	tty_restore();
	(void)!write(tty_fd, "\n", 1);
	return ret;
}

/* Asks twice on the terminal; 0 or an exit code. */
static int password_from_tty(struct buf *first)
{
	struct buf second = BUF_INIT(CLI_PASSWORD_MAX);
	int ret = 0;

	tty_fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (tty_fd < 0 || tcgetattr(tty_fd, &tty_saved) < 0) {
		cli_error("cannot use the terminal to ask for the password: %s", strerror(errno));
		ret = CLI_EXIT_FAIL;
	} else {
		tty_catch_signals(tty_on_signal);
		if (tty_ask("New password: ", first) < 0 ||
		    tty_ask("Retype new password: ", &second) < 0) {
			cli_error("cannot read the password (too long?)");
			ret = EX_DATAERR;
		} else if (strcmp(buf_str(first), buf_str(&second)) != 0) {
			cli_error("the passwords do not match");
			ret = EX_DATAERR;
		}
		tty_catch_signals(SIG_DFL);
	}
	if (tty_fd >= 0)
		close(tty_fd);
	tty_fd = -1;
	if (second.data != NULL)
		explicit_bzero(second.data, second.cap);
	buf_free(&second);
	return ret;
}

/* Counts characters, not bytes, so that UTF-8 passwords are judged fairly. */
static size_t utf8_length(const char *s)
{
	size_t n = 0;
	for (; *s != '\0'; s++) {
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	}
	return n;
}

int cli_read_password(char **password_r)
{
	struct buf pw = BUF_INIT(CLI_PASSWORD_MAX);
	int ret = 0;

	if (isatty(STDIN_FILENO)) {
		ret = password_from_tty(&pw);
	} else if (read_line_fd(STDIN_FILENO, &pw) < 0) {
		cli_error("cannot read the password from standard input "
		          "(longer than %d bytes, or a NUL byte)",
		          CLI_PASSWORD_MAX);
		ret = EX_DATAERR;
	}
	if (ret == 0 && pw.len == 0) {
		cli_error(isatty(STDIN_FILENO) ? "no password given"
		                               : "no password given on standard input");
		ret = EX_DATAERR;
	}
	if (ret != 0) {
		if (pw.data != NULL)
			explicit_bzero(pw.data, pw.cap);
		buf_free(&pw);
		return ret;
	}
	if (utf8_length(buf_str(&pw)) < CLI_PASSWORD_WARN_LEN)
		cli_warn("the password is shorter than %d characters", CLI_PASSWORD_WARN_LEN);
	*password_r = buf_steal(&pw);
	return 0;
}

static const char *escape_arg(const char *text, char *out, size_t outsize)
{
	return log_escape(text, strlen(text), out, outsize);
}

int cli_parse_address(const char *text, char **address_r)
{
	const char *error;
	char esc[256];

	*address_r = address_normalize(text, &error);
	if (*address_r != NULL)
		return 0;
	cli_error("invalid address \"%s\": %s", escape_arg(text, esc, sizeof(esc)), error);
	return EX_DATAERR;
}

int cli_parse_domain(const char *text, char **domain_r)
{
	const char *error;
	char esc[256];

	*domain_r = domain_normalize(text, &error);
	if (*domain_r != NULL)
		return 0;
	cli_error("invalid domain \"%s\": %s", escape_arg(text, esc, sizeof(esc)), error);
	return EX_DATAERR;
}

int cli_parse_size(const char *what, const char *text, uint64_t *bytes_r)
{
	char esc[128];

	if (strcmp(text, "unlimited") == 0 || strcmp(text, "none") == 0) {
		*bytes_r = 0;
		return 0;
	}
	if (str_parse_size(text, bytes_r) == 0)
		return 0;
	cli_error("invalid %s \"%s\": give a size such as 500M, 2G or 0 "
	          "(unlimited)",
	          what, escape_arg(text, esc, sizeof(esc)));
	return EX_DATAERR;
}

int cli_parse_count(const char *what, const char *text, uint64_t *count_r)
{
	char esc[128];

	if (strcmp(text, "unlimited") == 0 || strcmp(text, "none") == 0) {
		*count_r = 0;
		return 0;
	}
	if (str_to_uint64(text, count_r) == 0)
		return 0;
	cli_error("invalid %s \"%s\": give a whole number (0 = unlimited)", what,
	          escape_arg(text, esc, sizeof(esc)));
	return EX_DATAERR;
}

int cli_require_domain(struct cli *cli, const char *domain)
{
	const char *error;

	switch (dir_domain_exists(cli->dir, domain, &error)) {
	case 1:
		return 0;
	case 0:
		cli_error("domain %s is not hosted here (add it with "
		          "\"yubin domain add %s\")",
		          domain, domain);
		return EX_NOUSER;
	default:
		cli_error("cannot look up domain %s: %s", domain, error);
		return EX_TEMPFAIL;
	}
}

int cli_lookup_account(struct cli *cli, const char *address, struct dir_account **account_r)
{
	const char *error;

	switch (dir_account_lookup(cli->dir, address, account_r, &error)) {
	case 1:
		return 0;
	case 0:
		cli_error("no account %s", address);
		return EX_NOUSER;
	default:
		cli_error("cannot look up account %s: %s", address, error);
		return EX_TEMPFAIL;
	}
}

char *cli_account_root(const struct cli *cli, const char *address)
{
	return store_account_root(cli->config->server.data_dir, address);
}

const char *cli_format_size(uint64_t bytes, char *out, size_t outsize)
{
	static const char units[] = "KMGTPE";
	uint64_t div = 1;
	size_t unit = 0;

	if (bytes < 1024) {
		snprintf(out, outsize, "%lluB", (unsigned long long)bytes);
		return out;
	}
	while (unit + 1 < sizeof(units) - 1 && bytes / div >= 1024 * 1024) {
		div *= 1024;
		unit++;
	}
	div *= 1024;
	if (bytes % div == 0)
		snprintf(out, outsize, "%llu%c", (unsigned long long)(bytes / div), units[unit]);
	else
		snprintf(out, outsize, "%.1f%c", (double)bytes / (double)div, units[unit]);
	return out;
}

int cli_list_prepare(struct cli *cli, int argc, char **argv, char **domain_r)
{
	*domain_r = NULL;
	int ret = cli_args(cli, &argc, argv, NULL, 0, 1);
	if (ret == 0 && argc == 1)
		ret = cli_parse_domain(argv[0], domain_r);
	if (ret == 0)
		ret = cli_open_dir(cli, CLI_EXIT_FAIL);
	if (ret == 0 && *domain_r != NULL)
		ret = cli_require_domain(cli, *domain_r);
	return ret;
}

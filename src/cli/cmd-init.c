/* yubin init DIR: a ready-to-run installation in one folder: config,
 * data folder with the directory database, a self-signed certificate. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "dir/dir.h"
#include "lib/config.h"
#include "lib/tls.h"
#include "lib/xmalloc.h"

#define INIT_CERT_DAYS 825
/* Who owns the data when init runs as root and --user is not given. */
#define INIT_ROOT_USERS           \
	{                         \
		"yubin", "nobody" \
	}

/* What the new installation is made with. */
struct init_settings {
	char hostname[256];
	char *domain;     /* NULL: none added */
	const char *user; /* [server] user; NULL: not written */
	bool as_root;     /* then the data belongs to user */
	uid_t uid;
	gid_t gid;
};

struct init_paths {
	char *dir; /* absolute */
	char *config;
	char *data;
	char *tls;
	char *cert;
	char *key;
};

static int init_mkdir(const char *path, mode_t mode)
{
	struct stat st;

	if (mkdir(path, mode) == 0)
		return 0;
	if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	cli_error("cannot create the folder %s: %s", path,
	          errno == EEXIST ? "a file of that name exists" : strerror(errno));
	return -1;
}

/* Creates DIR and makes every path absolute, so that the printed next
 * steps work from any folder. */
static int init_paths_make(const char *dir, struct init_paths *paths)
{
	char real[PATH_MAX];

	if (init_mkdir(dir, 0755) < 0)
		return CLI_EXIT_FAIL;
	if (realpath(dir, real) == NULL) {
		cli_error("cannot resolve %s: %s", dir, strerror(errno));
		return CLI_EXIT_FAIL;
	}
	paths->dir = xstrdup(real);
	paths->config = xasprintf("%s/yubin.conf", real);
	paths->data = xasprintf("%s/data", real);
	paths->tls = xasprintf("%s/data/tls", real);
	paths->cert = xasprintf("%s/data/tls/cert.pem", real);
	paths->key = xasprintf("%s/data/tls/key.pem", real);
	if (access(paths->config, F_OK) == 0) {
		cli_error("%s already exists; not overwriting an installation", paths->config);
		return CLI_EXIT_FAIL;
	}
	return 0;
}

static void init_paths_free(struct init_paths *paths)
{
	free(paths->dir);
	free(paths->config);
	free(paths->data);
	free(paths->tls);
	free(paths->cert);
	free(paths->key);
}

/* Keeps a certificate that is already there (the operator's own). */
static int init_certificate(const struct init_paths *paths, const char *hostname)
{
	const char *error;

	if (access(paths->cert, F_OK) == 0 && access(paths->key, F_OK) == 0) {
		printf("Kept the existing certificate %s\n", paths->cert);
		return 0;
	}
	if (tls_write_self_signed(hostname, paths->cert, paths->key, INIT_CERT_DAYS, &error) < 0) {
		cli_error("cannot write a self-signed certificate: %s", error);
		return -1;
	}
	printf("Created a self-signed certificate for %s, valid %d days: %s\n", hostname,
	       INIT_CERT_DAYS, paths->cert);
	return 0;
}

static const char init_config_format[] =
        "# yubin configuration, written by \"yubin init\" on %s.\n"
        "# Every option and its default: etc/yubin.conf.example; reference:\n"
        "# docs/config.md. Relative paths start at this file's folder.\n"
        "\n"
        "[server]\n"
        "hostname = %s\n"
        "data_dir = data\n"
        "%s%s%s"
        "\n"
        "[log]\n"
        "level = info\n"
        "\n"
        "[tls]\n"
        "cert = data/tls/cert.pem\n"
        "key = data/tls/key.pem\n"
        "\n"
        "# Demo ports on the loopback address; use 110/995, 143/993 and\n"
        "# 25/587/465 and address = * in production.\n"
        "[listener pop3]\n"
        "protocol = pop3\n"
        "address = 127.0.0.1\n"
        "port = 2110\n"
        "tls = starttls\n"
        "\n"
        "[listener pop3s]\n"
        "protocol = pop3\n"
        "address = 127.0.0.1\n"
        "port = 2995\n"
        "tls = implicit\n"
        "\n"
        "[listener imap]\n"
        "protocol = imap\n"
        "address = 127.0.0.1\n"
        "port = 2143\n"
        "tls = starttls\n"
        "\n"
        "[listener imaps]\n"
        "protocol = imap\n"
        "address = 127.0.0.1\n"
        "port = 2993\n"
        "tls = implicit\n"
        "\n"
        "# SMTP: the MX (25 in production), submission with STARTTLS (587)\n"
        "# and with implicit TLS (465, RFC 8314).\n"
        "[listener smtp]\n"
        "protocol = smtp\n"
        "address = 127.0.0.1\n"
        "port = 2525\n"
        "tls = starttls\n"
        "\n"
        "[listener submission]\n"
        "protocol = submission\n"
        "address = 127.0.0.1\n"
        "port = 2587\n"
        "tls = starttls\n"
        "\n"
        "[listener submissions]\n"
        "protocol = submission\n"
        "address = 127.0.0.1\n"
        "port = 2465\n"
        "tls = implicit\n"
        "\n"
        "# ManageSieve (RFC 5804): mail clients upload filter scripts.\n"
        "[listener managesieve]\n"
        "protocol = managesieve\n"
        "address = 127.0.0.1\n"
        "port = 4190\n"
        "tls = starttls\n";

static int init_write_config(const char *path, const struct init_settings *set)
{
	char date[32];
	time_t now = time(NULL);
	struct tm tm;

	strftime(date, sizeof(date), "%Y-%m-%d", gmtime_r(&now, &tm));
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	FILE *out = fd < 0 ? NULL : fdopen(fd, "w");
	if (out == NULL) {
		cli_error("cannot create %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	fprintf(out, init_config_format, date, set->hostname, set->user != NULL ? "user = " : "",
	        set->user != NULL ? set->user : "", set->user != NULL ? "\n" : "");
	if (fflush(out) != 0 || fsync(fd) < 0 || fclose(out) != 0) {
		cli_error("cannot write %s: %s", path, strerror(errno));
		unlink(path);
		return -1;
	}
	printf("Created %s\n", path);
	return 0;
}

static int init_add_domain(struct cli *cli, const char *domain)
{
	const char *error;

	if (domain == NULL)
		return 0;
	if (dir_domain_add(cli->dir, domain, &error) < 0) {
		cli_error("cannot add domain %s: %s", domain, error);
		return CLI_EXIT_FAIL;
	}
	printf("Added domain %s\n", domain);
	return 0;
}

static void init_print_next(const struct init_paths *paths, const char *domain)
{
	printf("\nNext steps:\n");
	if (domain == NULL) {
		printf("  yubin -c %s domain add example.org\n", paths->config);
		domain = "example.org";
	}
	printf("  yubin -c %s user add alice@%s\n", paths->config, domain);
	printf("  yubin -c %s serve\n", paths->config);
	printf("POP3 then listens on 127.0.0.1 port 2110 (STARTTLS) and port 2995 "
	       "(TLS).\n");
}

/* As root, the files made so far go to server.user: the server and every
 * later command run as that user and must read and write them. */
static int init_chown(const struct init_paths *paths, const struct init_settings *set)
{
	const char *const files[] = {paths->data, paths->tls, paths->cert, paths->key,
	                             paths->config};

	if (!set->as_root)
		return 0;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (chown(files[i], set->uid, set->gid) < 0) {
			cli_error("cannot give %s to user %s: %s", files[i], set->user,
			          strerror(errno));
			return -1;
		}
	}
	printf("Gave the data folder to user %s ([server] user)\n", set->user);
	return 0;
}

/* The steps after the folder exists; each prints what it made. */
static int init_create(struct cli *cli, const struct init_paths *paths,
                       const struct init_settings *set)
{
	if (init_mkdir(paths->data, 0750) < 0 || init_mkdir(paths->tls, 0700) < 0)
		return CLI_EXIT_FAIL;
	if (init_certificate(paths, set->hostname) < 0 ||
	    init_write_config(paths->config, set) < 0 || init_chown(paths, set) < 0)
		return CLI_EXIT_FAIL;
	cli->config_path = paths->config;
	int ret = cli_open_dir(cli, CLI_EXIT_FAIL);
	if (ret != 0)
		return ret;
	printf("Created %s (directory database yubin.db)\n", paths->data);
	ret = init_add_domain(cli, set->domain);
	if (ret == 0)
		init_print_next(paths, set->domain);
	return ret;
}

/* [server] user: the one given; as root without one, the first of
 * INIT_ROOT_USERS that exists (the server refuses to run as root). */
static int init_user(const char *given, struct init_settings *set)
{
	static const char *const candidates[] = INIT_ROOT_USERS;
	const struct passwd *pw = NULL;

	set->as_root = geteuid() == 0;
	set->user = given;
	if (given != NULL)
		pw = getpwnam(given);
	for (size_t i = 0; given == NULL && set->as_root && pw == NULL &&
	                   i < sizeof(candidates) / sizeof(candidates[0]);
	     i++) {
		set->user = candidates[i];
		pw = getpwnam(set->user);
	}
	if (set->user != NULL && pw == NULL) {
		cli_error("user %s does not exist (give another with --user)", set->user);
		return -1;
	}
	if (pw != NULL && pw->pw_uid == 0) {
		cli_error("the server must not run as root: give another user with --user");
		return -1;
	}
	if (pw != NULL) {
		set->uid = pw->pw_uid;
		set->gid = pw->pw_gid;
	}
	return 0;
}

static int init_hostname(const char *given, char *out, size_t outsize)
{
	if (given != NULL) {
		snprintf(out, outsize, "%s", given);
	} else if (gethostname(out, outsize) < 0) {
		cli_error("cannot get the host name (%s); give one with --hostname",
		          strerror(errno));
		return -1;
	}
	out[outsize - 1] = '\0';
	if (out[0] == '\0' || strpbrk(out, " \t\r\n#=") != NULL) {
		cli_error("invalid host name \"%s\"", out);
		return -1;
	}
	return 0;
}

static int cmd_init(struct cli *cli, int argc, char **argv)
{
	const char *hostname_opt = NULL, *domain_opt = NULL, *user_opt = NULL;
	const struct cli_option options[] = {
	        {"hostname", &hostname_opt, NULL},
	        {"domain", &domain_opt, NULL},
	        {"user", &user_opt, NULL},
	        {NULL, NULL, NULL},
	};
	struct init_settings set = {0};
	struct init_paths paths = {0};

	int ret = cli_args(cli, &argc, argv, options, 1, 1);
	if (ret != 0)
		return ret;
	if (init_hostname(hostname_opt, set.hostname, sizeof(set.hostname)) < 0 ||
	    init_user(user_opt, &set) < 0)
		return EX_DATAERR;
	if (domain_opt != NULL && cli_parse_domain(domain_opt, &set.domain) != 0)
		return EX_DATAERR;
	ret = init_paths_make(argv[0], &paths);
	if (ret == 0)
		ret = init_create(cli, &paths, &set);
	init_paths_free(&paths);
	free(set.domain);
	return ret;
}

const struct cli_command cli_cmd_init = {
        .name = "init",
        .run = cmd_init,
        .summary = "Create a new installation: config, data folder, certificate",
        .usage = "usage: yubin init DIR [--hostname NAME] [--domain DOMAIN] [--user USER]\n",
        .help = "Creates DIR (if needed) and in it:\n"
                "  yubin.conf              hostname, data_dir = data, log level info, and\n"
                "                          POP3 listeners on 127.0.0.1: port 2110\n"
                "                          (STARTTLS) and port 2995 (implicit TLS)\n"
                "  data/                   the data folder, with the directory database\n"
                "                          data/yubin.db\n"
                "  data/tls/cert.pem, key.pem\n"
                "                          a self-signed certificate for the host name,\n"
                "                          valid 825 days (an existing one is kept)\n"
                "Refuses to run when DIR/yubin.conf exists. Then prints the next steps.\n"
                "\n"
                "Options:\n"
                "  --hostname NAME   the server's host name (default: the machine's,\n"
                "                    from gethostname)\n"
                "  --domain DOMAIN   also add DOMAIN as a hosted mail domain\n"
                "  --user USER       [server] user, the user the server runs as; when\n"
                "                    init runs as root the data folder is given to\n"
                "                    USER (default as root: yubin if that user\n"
                "                    exists, else nobody; otherwise none: the server\n"
                "                    stays the user that starts it)\n"
                "\n"
                "Exit status:\n"
                "  0   created\n"
                "  1   DIR/yubin.conf exists, or a file could not be created\n"
                "  64  usage error (no DIR, unknown option)\n"
                "  65  invalid host name, domain or user\n"
                "  75  the directory database could not be opened\n"
                "\n"
                "Example:\n"
                "  yubin init /srv/mail --hostname mail.example.ac.jp --domain example.ac.jp\n"
                "  cd /srv/mail && yubin user add alice@example.ac.jp && yubin serve\n",
};

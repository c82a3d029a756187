/* yubin deliver: the local delivery agent an MTA (Postfix pipe, fetchmail,
 * procmail) runs with the message on standard input. The exit code is all
 * the MTA sees, so it follows sysexits(3) and is 0 only when every
 * recipient has a durable copy; anything that may work later is 75. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "deliver/deliver.h"
#include "lib/config.h"
#include "lib/fdio.h"
#include "lib/xmalloc.h"

#define DELIVER_CHUNK 65536

/* An unlinked file in the data folder: nothing is left behind on a crash,
 * and it is on the same file system as the store. */
static int deliver_tmpfile(const char *data_dir)
{
	int fd = open(data_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	/* mkstemp() replaces the last six characters, which must be 'X'. */
	char *path = xasprintf("%s/.deliver-......", data_dir);
	memset(path + strlen(path) - 6, 'X', 6);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	else
		cli_error("cannot create a temporary file in %s: %s", data_dir, strerror(errno));
	free(path);
	return fd;
}

/* Copies standard input into fd, at most max bytes (0 = no limit). */
static int deliver_copy_stdin(int fd, uint64_t max)
{
	static char chunk[DELIVER_CHUNK];
	uint64_t total = 0;
	ssize_t n;

	while ((n = read(STDIN_FILENO, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			cli_error("cannot read the message: %s", strerror(errno));
			return EX_TEMPFAIL;
		}
		total += (uint64_t)n;
		if (max != 0 && total > max) {
			cli_error("message is larger than the %llu-byte limit",
			          (unsigned long long)max);
			return EX_NOPERM;
		}
		if (fd_write_all(fd, chunk, (size_t)n) < 0) {
			cli_error("cannot store the message: %s", strerror(errno));
			return EX_TEMPFAIL;
		}
	}
	if (total == 0) {
		cli_error("empty message");
		return EX_DATAERR;
	}
	return lseek(fd, 0, SEEK_SET) < 0 ? EX_TEMPFAIL : 0;
}

static const char *const status_text[] = {
        [DELIVER_OK] = "delivered",
        [DELIVER_UNKNOWN_USER] = "unknown user",
        [DELIVER_TEMPFAIL] = "temporary failure, try again later",
        [DELIVER_PERMFAIL] = "delivery refused",
};

/* How bad a status is for the MTA: a temporary failure wins, because a
 * retry is the only outcome that loses nothing. */
static int status_rank(enum deliver_status status)
{
	static const int rank[] = {
	        [DELIVER_OK] = 0,
	        [DELIVER_UNKNOWN_USER] = 1,
	        [DELIVER_PERMFAIL] = 2,
	        [DELIVER_TEMPFAIL] = 3,
	};
	return rank[status];
}

/* Prints each failed recipient; returns the worst status seen. */
static enum deliver_status deliver_report(enum deliver_status worst,
                                          const struct deliver_result *results, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		enum deliver_status st = results[i].status;
		if (st == DELIVER_OK)
			continue;
		const char *why = st != DELIVER_UNKNOWN_USER && results[i].reason != NULL
		                          ? results[i].reason
		                          : status_text[st];
		cli_error("%s: %s", results[i].recipient, why);
		if (status_rank(st) > status_rank(worst))
			worst = st;
	}
	return worst;
}

static int deliver_run(struct cli *cli, int fd, const char *from, int argc, char **argv)
{
	size_t count = (size_t)argc;
	struct deliver_result *results = xcalloc(count, sizeof(*results));
	/* "<>" (as an MTA writes the null sender) is the empty reverse path */
	struct deliver_envelope env = {.from = from != NULL && strcmp(from, "<>") == 0 ? "" : from};
	enum deliver_status worst = deliver_message_env(cli->config, cli->dir, fd, &env,
	                                                (const char *const *)argv, count, results);
	worst = deliver_report(worst, results, count);
	deliver_results_free(results, count);
	free(results);
	return deliver_exit_code(worst);
}

static int cmd_deliver(struct cli *cli, int argc, char **argv)
{
	const char *from = NULL;
	const struct cli_option options[] = {
	        {"from", &from, NULL},
	        {NULL, NULL, NULL},
	};
	int ret = cli_args(cli, &argc, argv, options, 0, -1);
	if (ret != 0)
		return ret;
	if (argc == 0)
		return cli_usage_error(cli, "no recipients given");
	ret = cli_open_dir(cli, EX_TEMPFAIL);
	if (ret != 0)
		return ret;
	int fd = deliver_tmpfile(cli->config->server.data_dir);
	if (fd < 0)
		return EX_TEMPFAIL;
	ret = deliver_copy_stdin(fd, cli->config->mail.max_message_size);
	if (ret == 0)
		ret = deliver_run(cli, fd, from, argc, argv);
	close(fd);
	return ret;
}

const struct cli_command cli_cmd_deliver = {
        .name = "deliver",
        .run = cmd_deliver,
        .summary = "Deliver a message from standard input (for an MTA)",
        .usage = "usage: yubin [-c FILE] deliver [--from SENDER] [--] ADDRESS...\n",
        .help = "Reads one message from standard input and delivers it to each ADDRESS\n"
                "(an account or an alias of a hosted domain) through the same pipeline\n"
                "as mail from the network. The message is stored exactly as given.\n"
                "Meant for Postfix (pipe(8)), fetchmail (--mda) and procmail; use \"--\"\n"
                "before addresses that could start with '-'.\n"
                "\n"
                "--from SENDER gives the envelope sender (\"<>\" or \"\" for a bounce):\n"
                "Sieve's envelope test, vacation replies and redirects use it. Without\n"
                "it, a Return-Path field of the message is taken, else none is known\n"
                "(then no vacation reply is sent and redirects go with the null sender).\n"
                "\n"
                "One line per failed recipient goes to standard error, e.g.\n"
                "  yubin: nobody@example.ac.jp: unknown user\n"
                "The exit status is 0 only when every recipient has a durable copy.\n"
                "With several recipients it is the worst outcome (75 before 77 before\n"
                "67); recipients that did get a copy keep it.\n"
                "\n"
                "Exit status:\n"
                "  0   delivered to every recipient\n"
                "  64  usage error (no recipients, unknown option)\n"
                "  65  the message is empty\n"
                "  67  a recipient is unknown\n"
                "  75  temporary failure (config, directory or disk problem, or over\n"
                "      quota when [mail] quota_tempfail = yes): the MTA should retry\n"
                "  77  refused: larger than [mail] max_message_size, or over quota\n"
                "\n"
                "Examples:\n"
                "  yubin -c /srv/mail/yubin.conf deliver alice@example.ac.jp < message.eml\n"
                "  # Postfix master.cf:\n"
                "  yubin unix - n n - - pipe flags=DRhu user=yubin\n"
                "    argv=/usr/bin/yubin -c /srv/mail/yubin.conf deliver --from ${sender}\n"
                "    -- ${recipient}\n",
};

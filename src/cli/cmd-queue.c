/* yubin queue: look at and steer the outbound queue (smtp/queue.h). Every
 * change is a read-modify-write of one envelope file under the queue lock,
 * the same lock the runner takes, and ends with a wake of the runner. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "smtp/queue.h"

/* The header lines `show` prints at most. */
#define QUEUE_SHOW_HEADER_MAX 65536

static const char *format_time(time_t t, char *out, size_t size)
{
	struct tm tm;
	if (t == 0) {
		snprintf(out, size, "now");
		return out;
	}
	localtime_r(&t, &tm);
	strftime(out, size, "%Y-%m-%d %H:%M:%S", &tm);
	return out;
}

static int queue_cli_open(struct cli *cli, char **dir_r)
{
	int ret = cli_open_dir(cli, EX_TEMPFAIL);
	if (ret != 0)
		return ret;
	*dir_r = queue_dir_path(cli->config);
	return 0;
}

static int check_id(struct cli *cli, const char *id)
{
	char esc[128];
	if (queue_id_valid(id))
		return 0;
	return cli_usage_error(cli, "\"%s\" is not a queue ID",
	                       log_escape(id, strlen(id), esc, sizeof(esc)));
}

/* Reads one message; prints why and returns an exit code when it cannot. */
static int read_entry(const char *dir, const char *id, struct queue_entry **entry_r)
{
	const char *error;
	int ret = queue_entry_read(dir, id, entry_r, &error);
	if (ret > 0)
		return 0;
	if (ret == 0) {
		cli_error("%s: no such message in the queue", id);
		return EX_NOINPUT;
	}
	cli_error("%s: %s", id, error);
	return EX_TEMPFAIL;
}

static void print_rcpt(const struct queue_entry *e, size_t i)
{
	const struct queue_rcpt_status *st = &e->status[i];
	char when[64];
	printf("    %-9s <%s>", queue_rcpt_state_names[st->state], e->env.rcpts[i].address);
	if (st->state == QUEUE_RCPT_PENDING)
		printf(" attempts=%u next=%s", st->attempts,
		       format_time(st->next_attempt, when, sizeof(when)));
	else if (st->attempts > 0)
		printf(" attempts=%u", st->attempts);
	putchar('\n');
	if (st->last_reply != NULL)
		printf("              %s\n", st->last_reply);
}

static void print_summary(const struct queue_entry *e)
{
	char when[64], size[32];
	printf("%s  %6s  %s  <%s>\n", e->id, cli_format_size(e->size, size, sizeof(size)),
	       format_time(e->arrival, when, sizeof(when)), e->env.sender);
	for (size_t i = 0; i < e->env.rcpt_count; i++)
		print_rcpt(e, i);
}

static int queue_list_cmd(struct cli *cli, int argc, char **argv)
{
	char *dir, **ids;
	size_t count, shown = 0;
	const char *error;
	int ret = cli_args(cli, &argc, argv, NULL, 0, 0);
	if (ret == 0)
		ret = queue_cli_open(cli, &dir);
	if (ret != 0)
		return ret;
	if (queue_list(dir, &ids, &count, &error) < 0) {
		cli_error("%s: %s", dir, error);
		free(dir);
		return EX_TEMPFAIL;
	}
	for (size_t i = 0; i < count; i++) {
		struct queue_entry *e;
		if (queue_entry_read(dir, ids[i], &e, &error) <= 0)
			continue;
		print_summary(e);
		shown++;
		queue_entry_free(&e);
	}
	printf("%zu message%s in the queue\n", shown, shown == 1 ? "" : "s");
	queue_list_free(ids, count);
	free(dir);
	return 0;
}

static void print_header(const char *dir, const char *id)
{
	int fd = queue_message_open(dir, id);
	if (fd < 0)
		return;
	char *data = xmalloc(QUEUE_SHOW_HEADER_MAX + 1);
	ssize_t n = pread(fd, data, QUEUE_SHOW_HEADER_MAX, 0);
	close(fd);
	if (n > 0) {
		data[n] = '\0';
		char *end = strstr(data, "\r\n\r\n");
		if (end != NULL)
			end[2] = '\0';
		fputs("\n", stdout);
		for (const char *p = data; *p != '\0'; p++) {
			if (*p != '\r')
				putchar(*p);
		}
	}
	free(data);
}

static int queue_show_cmd(struct cli *cli, int argc, char **argv)
{
	char *dir;
	struct queue_entry *e;
	int ret = cli_args(cli, &argc, argv, NULL, 1, 1);
	if (ret == 0)
		ret = check_id(cli, argv[0]);
	if (ret == 0)
		ret = queue_cli_open(cli, &dir);
	if (ret != 0)
		return ret;
	ret = read_entry(dir, argv[0], &e);
	if (ret == 0) {
		static const char *const bodies[] = { "7bit", "8bitmime", "binarymime" };
		static const char *const rets[] = { "default", "full", "hdrs" };
		print_summary(e);
		printf("origin: %s\nbody: %s  smtputf8: %s  ret: %s  envid: %s  delay notice sent: %s\n",
		       e->env.origin != NULL ? e->env.origin : "", bodies[e->env.body],
		       e->env.smtputf8 ? "yes" : "no", rets[e->env.ret],
		       e->env.envid != NULL ? e->env.envid : "-", e->warned ? "yes" : "no");
		print_header(dir, argv[0]);
		queue_entry_free(&e);
	}
	free(dir);
	return ret;
}

/* ---- changes ---- */

enum queue_change { CHANGE_FLUSH, CHANGE_HOLD, CHANGE_RELEASE };

/* Returns how many recipients changed. */
static size_t change_entry(struct queue_entry *e, enum queue_change change)
{
	size_t n = 0;
	for (size_t i = 0; i < e->env.rcpt_count; i++) {
		struct queue_rcpt_status *st = &e->status[i];
		if (change == CHANGE_HOLD && st->state == QUEUE_RCPT_PENDING) {
			st->state = QUEUE_RCPT_HELD;
		} else if (change == CHANGE_RELEASE && st->state == QUEUE_RCPT_HELD) {
			st->state = QUEUE_RCPT_PENDING;
			st->next_attempt = 0;
		} else if (change == CHANGE_FLUSH && st->state == QUEUE_RCPT_PENDING) {
			st->next_attempt = 0;
		} else {
			continue;
		}
		n++;
	}
	return n;
}

static int apply_change(const char *dir, const char *id, enum queue_change change,
                        size_t *changed_r)
{
	const char *error;
	struct queue_entry *e;
	int ret = read_entry(dir, id, &e);
	if (ret != 0)
		return ret;
	*changed_r = change_entry(e, change);
	if (*changed_r > 0 && queue_entry_write(dir, e, &error) < 0) {
		cli_error("%s: %s", id, error);
		ret = EX_TEMPFAIL;
	}
	queue_entry_free(&e);
	return ret;
}

/* One message, or with id NULL every message (flush). */
static int change_locked(const char *dir, const char *id, enum queue_change change,
                         size_t *changed_r)
{
	const char *error;
	char **ids;
	size_t count;
	*changed_r = 0;
	if (id != NULL)
		return apply_change(dir, id, change, changed_r);
	if (queue_list(dir, &ids, &count, &error) < 0) {
		cli_error("%s: %s", dir, error);
		return EX_TEMPFAIL;
	}
	int ret = 0;
	for (size_t i = 0; i < count && ret != EX_TEMPFAIL; i++) {
		size_t n = 0;
		/* A message finished meanwhile is not an error for "all". */
		int r = apply_change(dir, ids[i], change, &n);
		if (r == EX_TEMPFAIL)
			ret = r;
		*changed_r += n;
	}
	queue_list_free(ids, count);
	return ret;
}

static int queue_change_cmd(struct cli *cli, int argc, char **argv, enum queue_change change,
                            int min)
{
	static const char *const verbs[] = { "flushed", "held", "released" };
	char *dir;
	const char *error;
	size_t changed;
	int ret = cli_args(cli, &argc, argv, NULL, min, 1);
	if (ret == 0 && argc == 1)
		ret = check_id(cli, argv[0]);
	if (ret == 0)
		ret = queue_cli_open(cli, &dir);
	if (ret != 0)
		return ret;
	int lock = queue_lock(dir, &error);
	if (lock < 0) {
		cli_error("%s: %s", dir, error);
		free(dir);
		return EX_TEMPFAIL;
	}
	ret = change_locked(dir, argc == 1 ? argv[0] : NULL, change, &changed);
	queue_unlock(&lock);
	if (ret == 0)
		printf("%zu recipient%s %s\n", changed, changed == 1 ? "" : "s", verbs[change]);
	if (ret == 0 && change != CHANGE_HOLD)
		queue_wake(cli->config);
	free(dir);
	return ret;
}

static int queue_flush_cmd(struct cli *cli, int argc, char **argv)
{
	return queue_change_cmd(cli, argc, argv, CHANGE_FLUSH, 0);
}

static int queue_hold_cmd(struct cli *cli, int argc, char **argv)
{
	return queue_change_cmd(cli, argc, argv, CHANGE_HOLD, 1);
}

static int queue_release_cmd(struct cli *cli, int argc, char **argv)
{
	return queue_change_cmd(cli, argc, argv, CHANGE_RELEASE, 1);
}

static int queue_delete_cmd(struct cli *cli, int argc, char **argv)
{
	char *dir;
	const char *error;
	struct queue_entry *e;
	int ret = cli_args(cli, &argc, argv, NULL, 1, 1);
	if (ret == 0)
		ret = check_id(cli, argv[0]);
	if (ret == 0)
		ret = queue_cli_open(cli, &dir);
	if (ret != 0)
		return ret;
	int lock = queue_lock(dir, &error);
	ret = lock < 0 ? EX_TEMPFAIL : read_entry(dir, argv[0], &e);
	if (lock < 0)
		cli_error("%s: %s", dir, error);
	if (ret == 0) {
		queue_entry_free(&e);
		if (queue_entry_remove(dir, argv[0], &error) < 0) {
			cli_error("%s: %s", argv[0], error);
			ret = EX_TEMPFAIL;
		} else {
			printf("%s deleted\n", argv[0]);
		}
	}
	queue_unlock(&lock);
	free(dir);
	return ret;
}

static const struct cli_subcommand queue_subcommands[] = {
        {"list", queue_list_cmd},       {"show", queue_show_cmd},
        {"flush", queue_flush_cmd},     {"delete", queue_delete_cmd},
        {"hold", queue_hold_cmd},       {"release", queue_release_cmd},
        {NULL, NULL},
};

static int cmd_queue(struct cli *cli, int argc, char **argv)
{
	return cli_run_subcommand(cli, queue_subcommands, argc, argv);
}

const struct cli_command cli_cmd_queue = {
        .name = "queue",
        .run = cmd_queue,
        .summary = "List, show, flush, hold, release or delete queued mail",
        .usage = "usage: yubin [-c FILE] queue list\n"
                 "       yubin [-c FILE] queue show ID\n"
                 "       yubin [-c FILE] queue flush [ID]\n"
                 "       yubin [-c FILE] queue hold ID\n"
                 "       yubin [-c FILE] queue release ID\n"
                 "       yubin [-c FILE] queue delete ID\n",
        .help = "The outbound queue (<data>/queue) holds mail on its way to other\n"
                "servers, and local mail handed in by \"yubin send\", until the queue\n"
                "runner of \"yubin serve\" has delivered it, retried it, or bounced it.\n"
                "\n"
                "  list          every message: ID, size, arrival, sender, then each\n"
                "                recipient with its state (pending, held, delivered,\n"
                "                failed), attempts, next attempt and last reply\n"
                "  show ID       one message: the same, its envelope and its header\n"
                "  flush [ID]    try the pending recipients of ID (or of every\n"
                "                message) now instead of at their next retry time\n"
                "  hold ID       stop trying the pending recipients of ID (they\n"
                "                neither retry nor expire until released)\n"
                "  release ID    make held recipients of ID pending and try them now\n"
                "  delete ID     remove the message without a bounce\n"
                "\n"
                "A delivery already in progress when a message is held or deleted\n"
                "finishes; its outcome is then dropped.\n"
                "\n"
                "Exit status:\n"
                "  0   done\n"
                "  64  usage error (unknown sub-command, malformed ID)\n"
                "  66  no such message in the queue\n"
                "  75  the config, the directory or the queue folder cannot be used\n"
                "\n"
                "Examples:\n"
                "  yubin -c /srv/mail/yubin.conf queue list\n"
                "  yubin -c /srv/mail/yubin.conf queue flush\n"
                "  yubin -c /srv/mail/yubin.conf queue hold 0005c3a1b2c3d4-1f2e3d4c\n",
};

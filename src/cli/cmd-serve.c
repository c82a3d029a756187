/* yubin serve: run the server in the foreground (lib/server.h). */
#include "cli/cli.h"
#include "imap/imap.h"
#include "lib/server.h"
#include "managesieve/managesieve.h"
#include "pop3/pop3.h"
#include "smtp/queue.h"
#include "smtp/smtp.h"

static const struct protocol *const serve_protocols[] = {
        &pop3_protocol,
        &imap_protocol,
        &smtp_protocol,
        &submission_protocol,
        &managesieve_protocol,
        NULL,
};

static const struct server_service queue_runner_service = {
        .name = "queue",
        .run = queue_runner_run,
};

static const struct server_service *const serve_services[] = {
        &queue_runner_service,
        NULL,
};

static int cmd_serve(struct cli *cli, int argc, char **argv)
{
	int ret = cli_args(cli, &argc, argv, NULL, 0, 0);
	if (ret != 0)
		return ret;
	return server_run(cli->config_path, serve_protocols, serve_services);
}

const struct cli_command cli_cmd_serve = {
        .name = "serve",
        .run = cmd_serve,
        .summary = "Run the mail server in the foreground",
        .usage = "usage: yubin [-c FILE] serve\n",
        .help = "Starts the master process: it reads the config, opens every listener\n"
                "and loads the TLS certificates, drops to [server] user when started as\n"
                "root, and runs the workers and the queue runner (which delivers the\n"
                "outbound queue, see \"yubin help queue\"). It stays in the foreground\n"
                "and logs where [log] target says (run it under systemd or a terminal).\n"
                "\n"
                "Signals:\n"
                "  SIGTERM, SIGINT  stop accepting, let sessions finish within\n"
                "                   [server] shutdown_grace, then exit 0\n"
                "  SIGHUP           reload the config and certificates; open\n"
                "                   connections stay\n"
                "\n"
                "Exit status:\n"
                "  0   stopped by a signal after a clean shutdown\n"
                "  1   the config is invalid, a port cannot be opened, or a\n"
                "      certificate cannot be loaded (the log says which)\n"
                "  64  usage error\n"
                "\n"
                "Example:\n"
                "  yubin -c /srv/mail/yubin.conf serve\n",
};

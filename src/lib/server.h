/* `yubin serve`: the master process and its workers (DESIGN.md, process
 * model). The master opens every listener and loads TLS keys, drops
 * privileges, forks one worker per core and each service (the queue
 * runner), and restarts a child that dies.
 * SIGTERM/SIGINT: stop accepting, let sessions finish within
 * server.shutdown_grace, exit. SIGHUP: reload config and certificates; open
 * connections stay. */
#ifndef YUBIN_SERVER_H
#define YUBIN_SERVER_H

#include "lib/conn.h"

struct event_base;
struct yubin_config;

/* A process besides the workers (the queue runner): forked by the master
 * after it dropped privileges, restarted when it dies, stopped with
 * SIGTERM on shutdown and on SIGHUP (then started again with the new
 * config). It holds no listener. */
struct server_service {
	const char *name;
	/* Runs in the child on a fresh loop on which SIGTERM and SIGINT break
	 * the loop: registers its events, dispatches base until the loop
	 * ends, cleans up and returns the exit code. */
	int (*run)(struct event_base *base, const struct yubin_config *config);
};

/* protocols: NULL-terminated table of the protocols listeners may name;
 * services: NULL-terminated, or NULL for none. Returns the process exit
 * code. */
int server_run(const char *config_path, const struct protocol *const *protocols,
	       const struct server_service *const *services);

#endif

/* `yubin serve`: the master process and its workers (DESIGN.md, process
 * model). The master opens every listener and loads TLS keys, drops
 * privileges, forks one worker per core and restarts a worker that dies.
 * SIGTERM/SIGINT: stop accepting, let sessions finish within
 * server.shutdown_grace, exit. SIGHUP: reload config and certificates; open
 * connections stay. */
#ifndef YUBIN_SERVER_H
#define YUBIN_SERVER_H

#include "lib/conn.h"

/* protocols: NULL-terminated table of the protocols listeners may name.
 * Returns the process exit code. */
int server_run(const char *config_path, const struct protocol *const *protocols);

#endif

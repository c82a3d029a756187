/* The master process of `yubin serve`: loads the config, opens listeners and
 * TLS keys, drops privileges, forks the workers and supervises them
 * (restart on death, graceful stop on SIGTERM, reload on SIGHUP). It never
 * parses network input. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/log.h"
#include "lib/net-private.h"
#include "lib/server.h"
#include "lib/privs.h"
#include "lib/xmalloc.h"

/* More than BURST restarts of one worker within WINDOW: pause between. */
#define MASTER_RESTART_BURST 5
#define MASTER_RESTART_WINDOW_MS 10000
#define MASTER_RESTART_DELAY_MS 1000
/* Workers that outlive their grace by this much are killed. */
#define MASTER_KILL_AFTER_GRACE_MS 5000
#define MASTER_CONFIG_ERRORS_MAX (64 * 1024)

struct master;

/* One of the current config's workers. pid 0 = not running. */
struct worker_proc {
	struct master *m;
	unsigned index;
	pid_t pid;
	unsigned slot;
	uint64_t restarts[MASTER_RESTART_BURST + 1]; /* ms, a ring */
	size_t restart_count;
	struct event *restart_timer;
	bool waiting_slot;
};

/* A service process (lib/server.h). pid 0 = not running. */
struct service_proc {
	struct master *m;
	const struct server_service *svc;
	pid_t pid;
	uint64_t restarts[MASTER_RESTART_BURST + 1]; /* ms, a ring */
	size_t restart_count;
	struct event *restart_timer;
	bool replacing; /* stopped by a reload: start again at once */
};

/* A worker of an older config, finishing its connections. */
struct retired_proc {
	pid_t pid;
	unsigned slot;
};

struct master {
	char *config_path;
	const struct protocol *const *protocols;
	struct yubin_config *config;
	struct tls_server *tls;
	struct net_listeners listeners;
	struct connlimit *limits;
	bool *slot_used;

	struct event_base *base;
	struct event *sig_term, *sig_int, *sig_hup, *sig_chld, *kill_timer;

	struct worker_proc *workers;
	unsigned worker_count;
	struct retired_proc *retired;
	size_t retired_count;
	struct service_proc *services;
	unsigned service_count;

	uint32_t next_serial, run_random;
	pid_t pid;
	bool stopping;
};

static void master_fork(struct master *m, struct worker_proc *wp);
static void service_fork(struct master *m, struct service_proc *sp);

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct timeval ms_tv(uint64_t ms)
{
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000),
			      .tv_usec = (suseconds_t)((ms % 1000) * 1000) };
	return tv;
}

/* ---- config, log, TLS ---- */

static void print_errors(const struct buf *errors)
{
	const char *text = buf_str(errors);
	size_t len = strlen(text);
	fputs(text, stderr);
	if (len > 0 && text[len - 1] != '\n')
		fputc('\n', stderr);
}

static void log_errors(const struct buf *errors)
{
	const char *p = buf_str(errors);
	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		if (len > 0)
			log_error("config: %.*s", (int)len, p);
		p += len + (nl != NULL ? 1 : 0);
	}
}

static int master_open_log(const struct yubin_config *config)
{
	enum log_level level = LOG_LEVEL_INFO;
	const char *error;
	if (config->log.level != NULL && log_level_parse(config->log.level, &level) < 0)
		level = LOG_LEVEL_INFO;
	if (log_open(config->log.target, level, "yubin", &error) < 0) {
		log_error("log: cannot open %s: %s", config->log.target, error);
		return -1;
	}
	return 0;
}

static bool config_needs_tls(const struct yubin_config *config)
{
	for (const struct config_listener *l = config->listeners; l != NULL; l = l->next) {
		if (l->tls != TLS_MODE_NONE)
			return true;
	}
	return false;
}

/* Startup errors go to the log and, when the log is elsewhere, to the
 * terminal too: the operator who ran the command must see them. */
static void master_startup_error(const struct yubin_config *config,
				 const char *msg)
{
	log_error("%s", msg);
	if (config->log.target != NULL && strcmp(config->log.target, "stderr") != 0)
		fprintf(stderr, "yubin: %s\n", msg);
}

static unsigned config_worker_count(const struct yubin_config *config)
{
	if (config->server.workers > 0)
		return config->server.workers;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

/* ---- children ---- */

static int master_take_slot(struct master *m)
{
	for (unsigned i = 0; i < connlimit_slot_count(m->limits); i++) {
		if (!m->slot_used[i]) {
			m->slot_used[i] = true;
			connlimit_clear_slot(m->limits, i);
			return (int)i;
		}
	}
	return -1;
}

static void master_free_slot(struct master *m, unsigned slot)
{
	connlimit_clear_slot(m->limits, slot);
	m->slot_used[slot] = false;
}

static void master_free_events(struct master *m)
{
	for (unsigned i = 0; i < m->worker_count; i++)
		event_free(m->workers[i].restart_timer);
	for (unsigned i = 0; i < m->service_count; i++)
		event_free(m->services[i].restart_timer);
	event_free(m->sig_term);
	event_free(m->sig_int);
	event_free(m->sig_hup);
	event_free(m->sig_chld);
	event_free(m->kill_timer);
	event_base_free(m->base);
	m->base = NULL;
}

/* In a new worker: the master's loop, signal handlers and bookkeeping go;
 * the config, TLS contexts, listeners and the connection table stay. */
static void master_child(struct master *m, struct worker_proc *wp,
			 const sigset_t *sigmask)
{
	struct net_listeners listeners = m->listeners;
	struct worker_params params = {
		.config = m->config,
		.protocols = m->protocols,
		.tls = m->tls,
		.listeners = &listeners,
		.limits = m->limits,
		.limit_slot = wp->slot,
		.serial = m->next_serial,
		.run_random = m->run_random,
		.master_pid = m->pid,
		.sigmask = sigmask,
	};
	/* The parent's epoll instance is shared: reinit before freeing. */
	event_reinit(m->base);
	master_free_events(m);
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1 };
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
	free(m->workers);
	free(m->retired);
	free(m->services);
	free(m->slot_used);
	free(m->config_path);
	int code = worker_run(&params);
	net_listeners_close(&listeners);
	tls_server_destroy(&m->tls);
	config_free(&m->config);
	connlimit_destroy(&m->limits);
	free(m);
	log_close();
	exit(code);
}

static void master_fork(struct master *m, struct worker_proc *wp)
{
	int slot = master_take_slot(m);
	if (slot < 0) {
		log_warn("worker index=%u waits for a free connection-table slot",
			 wp->index);
		wp->waiting_slot = true;
		return;
	}
	wp->waiting_slot = false;
	wp->slot = (unsigned)slot;
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid_t pid = fork();
	if (pid == 0)
		master_child(m, wp, &old);
	sigprocmask(SIG_SETMASK, &old, NULL);
	m->next_serial++;
	if (pid < 0) {
		log_error("worker index=%u: fork failed: %m", wp->index);
		master_free_slot(m, wp->slot);
		struct timeval tv = ms_tv(MASTER_RESTART_DELAY_MS);
		evtimer_add(wp->restart_timer, &tv);
		return;
	}
	wp->pid = pid;
}

static void master_restart_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker_proc *wp = arg;
	if (!wp->m->stopping && wp->pid == 0)
		master_fork(wp->m, wp);
}

/* Records a restart; true when there were too many of late. */
static bool restart_too_fast(uint64_t *restarts, size_t *count)
{
	uint64_t now = now_ms();
	size_t ring = MASTER_RESTART_BURST + 1;
	restarts[*count % ring] = now;
	(*count)++;
	uint64_t oldest = restarts[*count % ring];
	return *count >= ring && now - oldest < MASTER_RESTART_WINDOW_MS;
}

/* Restarts a dead worker at once, or after a pause when it keeps dying. */
static void master_restart(struct master *m, struct worker_proc *wp)
{
	if (restart_too_fast(wp->restarts, &wp->restart_count)) {
		log_warn("worker index=%u restarted more than %d times in %d s: "
			 "waiting %d ms", wp->index, MASTER_RESTART_BURST,
			 MASTER_RESTART_WINDOW_MS / 1000, MASTER_RESTART_DELAY_MS);
		struct timeval tv = ms_tv(MASTER_RESTART_DELAY_MS);
		evtimer_add(wp->restart_timer, &tv);
		return;
	}
	master_fork(m, wp);
}

static void master_create_workers(struct master *m)
{
	m->worker_count = config_worker_count(m->config);
	m->workers = xcalloc(m->worker_count, sizeof(*m->workers));
	for (unsigned i = 0; i < m->worker_count; i++) {
		struct worker_proc *wp = &m->workers[i];
		wp->m = m;
		wp->index = i;
		wp->restart_timer = evtimer_new(m->base, master_restart_cb, wp);
	}
	/* Only now: a child frees every worker's timer. */
	for (unsigned i = 0; i < m->worker_count; i++)
		master_fork(m, &m->workers[i]);
}

static void master_start_waiting(struct master *m)
{
	for (unsigned i = 0; i < m->worker_count && !m->stopping; i++) {
		if (m->workers[i].pid == 0 && m->workers[i].waiting_slot)
			master_fork(m, &m->workers[i]);
	}
}

static unsigned master_children(const struct master *m)
{
	unsigned n = (unsigned)m->retired_count;
	for (unsigned i = 0; i < m->worker_count; i++) {
		if (m->workers[i].pid > 0)
			n++;
	}
	for (unsigned i = 0; i < m->service_count; i++) {
		if (m->services[i].pid > 0)
			n++;
	}
	return n;
}

static void master_signal_children(struct master *m, int sig)
{
	for (unsigned i = 0; i < m->worker_count; i++) {
		if (m->workers[i].pid > 0)
			kill(m->workers[i].pid, sig);
	}
	for (size_t i = 0; i < m->retired_count; i++)
		kill(m->retired[i].pid, sig);
	for (unsigned i = 0; i < m->service_count; i++) {
		if (m->services[i].pid > 0)
			kill(m->services[i].pid, sig);
	}
}

/* ---- services ---- */

static void service_stop_cb(evutil_socket_t sig, short what, void *arg)
{
	event_base_loopbreak(arg);
}

/* In a new service process: like a worker's start, but the listeners, TLS
 * contexts and the connection table go too; the service gets a fresh
 * loop on which SIGTERM and SIGINT end it. */
static void service_child(struct master *m, struct service_proc *sp, const sigset_t *sigmask)
{
	const struct server_service *svc = sp->svc;
	event_reinit(m->base);
	master_free_events(m);
	net_listeners_close(&m->listeners);
	tls_server_destroy(&m->tls);
	connlimit_destroy(&m->limits);
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1 };
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
	signal(SIGHUP, SIG_IGN);
	free(m->workers);
	free(m->retired);
	free(m->services);
	free(m->slot_used);
	free(m->config_path);
	log_set_role(svc->name);
	/* "yubin-queue" in ps and /proc/PID/comm: tests and operators tell
	 * it from the workers. */
	char title[16];
	snprintf(title, sizeof(title), "yubin-%s", svc->name);
	prctl(PR_SET_NAME, title, 0, 0, 0);
	/* The master is gone: stop like on SIGTERM (SIGTERM is still blocked
	 * until the loop below handles it). */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	pid_t master_pid = m->pid;
	struct event_base *base = event_base_new();
	if (base == NULL)
		fatal("service %s: cannot create an event base", svc->name);
	struct event *term = evsignal_new(base, SIGTERM, service_stop_cb, base);
	struct event *intr = evsignal_new(base, SIGINT, service_stop_cb, base);
	event_add(term, NULL);
	event_add(intr, NULL);
	sigprocmask(SIG_SETMASK, sigmask, NULL);
	int code = getppid() == master_pid ? svc->run(base, m->config) : 0;
	event_free(term);
	event_free(intr);
	event_base_free(base);
	config_free(&m->config);
	free(m);
	log_close();
	exit(code);
}

static void service_fork(struct master *m, struct service_proc *sp)
{
	sp->replacing = false;
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid_t pid = fork();
	if (pid == 0)
		service_child(m, sp, &old);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		log_error("service %s: fork failed: %m", sp->svc->name);
		struct timeval tv = ms_tv(MASTER_RESTART_DELAY_MS);
		evtimer_add(sp->restart_timer, &tv);
		return;
	}
	sp->pid = pid;
	log_info("service %s started pid=%ld", sp->svc->name, (long)pid);
}

static void service_restart_cb(evutil_socket_t fd, short what, void *arg)
{
	struct service_proc *sp = arg;
	if (!sp->m->stopping && sp->pid == 0)
		service_fork(sp->m, sp);
}

static void master_create_services(struct master *m, const struct server_service *const *services)
{
	for (size_t i = 0; services != NULL && services[i] != NULL; i++)
		m->service_count++;
	m->services = xcalloc(m->service_count + 1, sizeof(*m->services));
	for (unsigned i = 0; i < m->service_count; i++) {
		struct service_proc *sp = &m->services[i];
		sp->m = m;
		sp->svc = services[i];
		sp->restart_timer = evtimer_new(m->base, service_restart_cb, sp);
	}
	for (unsigned i = 0; i < m->service_count; i++)
		service_fork(m, &m->services[i]);
}

/* ---- reaping ---- */

static const char *status_text(int status, char *out, size_t outsize)
{
	if (WIFEXITED(status))
		snprintf(out, outsize, "%d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, outsize, "signal-%d", WTERMSIG(status));
	else
		snprintf(out, outsize, "unknown");
	return out;
}

static bool master_reap_retired(struct master *m, pid_t pid, const char *status)
{
	for (size_t i = 0; i < m->retired_count; i++) {
		if (m->retired[i].pid != pid)
			continue;
		log_info("worker pid=%ld exited status=%s (previous configuration)",
			 (long)pid, status);
		master_free_slot(m, m->retired[i].slot);
		m->retired[i] = m->retired[--m->retired_count];
		master_start_waiting(m);
		return true;
	}
	return false;
}

static void service_restart(struct master *m, struct service_proc *sp)
{
	if (restart_too_fast(sp->restarts, &sp->restart_count)) {
		log_warn("service %s restarted more than %d times in %d s: waiting %d ms",
			 sp->svc->name, MASTER_RESTART_BURST, MASTER_RESTART_WINDOW_MS / 1000,
			 MASTER_RESTART_DELAY_MS);
		struct timeval tv = ms_tv(MASTER_RESTART_DELAY_MS);
		evtimer_add(sp->restart_timer, &tv);
		return;
	}
	service_fork(m, sp);
}

static bool master_reap_service(struct master *m, pid_t pid, const char *status)
{
	for (unsigned i = 0; i < m->service_count; i++) {
		struct service_proc *sp = &m->services[i];
		if (sp->pid != pid)
			continue;
		sp->pid = 0;
		if (m->stopping || sp->replacing) {
			log_info("service %s pid=%ld exited status=%s", sp->svc->name, (long)pid,
				 status);
			if (!m->stopping)
				service_fork(m, sp);
			return true;
		}
		log_warn("service %s pid=%ld exited status=%s restarting", sp->svc->name,
			 (long)pid, status);
		service_restart(m, sp);
		return true;
	}
	return false;
}

static void master_reaped(struct master *m, pid_t pid, int status)
{
	char text[32];
	status_text(status, text, sizeof(text));
	if (master_reap_retired(m, pid, text) || master_reap_service(m, pid, text))
		return;
	for (unsigned i = 0; i < m->worker_count; i++) {
		struct worker_proc *wp = &m->workers[i];
		if (wp->pid != pid)
			continue;
		wp->pid = 0;
		master_free_slot(m, wp->slot);
		if (m->stopping) {
			log_info("worker pid=%ld exited status=%s", (long)pid, text);
			return;
		}
		log_warn("worker pid=%ld exited status=%s restarting", (long)pid, text);
		master_restart(m, wp);
		return;
	}
}

static void master_sigchld(evutil_socket_t sig, short what, void *arg)
{
	struct master *m = arg;
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		master_reaped(m, pid, status);
	if (m->stopping && master_children(m) == 0)
		event_base_loopbreak(m->base);
}

/* ---- stopping ---- */

static void master_kill_cb(evutil_socket_t fd, short what, void *arg)
{
	struct master *m = arg;
	log_warn("master: workers=%u still running after the grace: killing",
		 master_children(m));
	master_signal_children(m, SIGKILL);
}

static void master_sigterm(evutil_socket_t sig, short what, void *arg)
{
	struct master *m = arg;
	if (m->stopping) {
		log_warn("master signal=%d again: exiting now", (int)sig);
		master_signal_children(m, SIGKILL);
		event_base_loopbreak(m->base);
		return;
	}
	m->stopping = true;
	log_info("master stopping signal=%d workers=%u", (int)sig, master_children(m));
	for (unsigned i = 0; i < m->worker_count; i++)
		evtimer_del(m->workers[i].restart_timer);
	for (unsigned i = 0; i < m->service_count; i++)
		evtimer_del(m->services[i].restart_timer);
	/* With every copy closed the kernel refuses new connections. */
	net_listeners_close(&m->listeners);
	master_signal_children(m, SIGTERM);
	struct timeval tv = ms_tv(m->config->server.shutdown_grace +
				  MASTER_KILL_AFTER_GRACE_MS);
	evtimer_add(m->kill_timer, &tv);
	if (master_children(m) == 0)
		event_base_loopbreak(m->base);
}

/* ---- reload ---- */

static void master_retire_workers(struct master *m)
{
	m->retired = xreallocarray(m->retired, m->retired_count + m->worker_count,
				   sizeof(*m->retired));
	for (unsigned i = 0; i < m->worker_count; i++) {
		struct worker_proc *wp = &m->workers[i];
		event_free(wp->restart_timer);
		if (wp->pid <= 0)
			continue;
		kill(wp->pid, SIGUSR1);
		m->retired[m->retired_count].pid = wp->pid;
		m->retired[m->retired_count++].slot = wp->slot;
	}
	xfree(m->workers);
	m->worker_count = 0;
}

/* A service is stopped and, once it has exited, started with the new
 * config: two runners never share the queue. */
static void master_replace_services(struct master *m)
{
	for (unsigned i = 0; i < m->service_count; i++) {
		struct service_proc *sp = &m->services[i];
		if (sp->pid > 0) {
			sp->replacing = true;
			kill(sp->pid, SIGTERM);
		} else if (!evtimer_pending(sp->restart_timer, NULL)) {
			service_fork(m, sp);
		}
	}
}

static void master_log_closed(const struct net_listeners *old)
{
	for (size_t i = 0; i < old->count; i++) {
		const struct config_listener *set = old->items[i].set;
		if (old->items[i].fd >= 0)
			log_info("listener %s closed on %s port %u", set->name,
				 set->address, set->port);
	}
}

static struct yubin_config *master_load_new(struct master *m,
					    struct tls_server **tls_r)
{
	struct buf errors = BUF_INIT(MASTER_CONFIG_ERRORS_MAX);
	struct yubin_config *config = NULL;
	const char *error;
	*tls_r = NULL;
	if (config_load(m->config_path, &config, &errors) < 0) {
		log_errors(&errors);
		buf_free(&errors);
		return NULL;
	}
	buf_free(&errors);
	if (config_needs_tls(config)) {
		*tls_r = tls_server_create(config, &error);
		if (*tls_r == NULL) {
			log_error("%s", error);
			config_free(&config);
		}
	}
	return config;
}

static void master_reload(struct master *m)
{
	struct tls_server *tls;
	struct yubin_config *config = master_load_new(m, &tls);
	if (config == NULL) {
		log_error("master reload failed: keeping the running configuration");
		return;
	}
	master_open_log(config);
	struct net_listeners listeners;
	net_listeners_reopen(&listeners, &m->listeners, config, m->protocols);
	master_log_closed(&m->listeners);
	net_listeners_close(&m->listeners);
	m->listeners = listeners;
	master_retire_workers(m);
	tls_server_destroy(&m->tls);
	config_free(&m->config);
	m->config = config;
	m->tls = tls;
	master_create_workers(m);
	master_replace_services(m);
	struct buf desc = BUF_INIT(0);
	net_listeners_describe(&m->listeners, &desc);
	log_info("master reloaded workers=%u listeners=%s", m->worker_count,
		 buf_str(&desc));
	buf_free(&desc);
}

static void master_sighup(evutil_socket_t sig, short what, void *arg)
{
	struct master *m = arg;
	if (m->stopping)
		return;
	log_info("master reloading config=%s", m->config_path);
	master_reload(m);
}

/* ---- startup ---- */

static void master_events(struct master *m)
{
	m->base = event_base_new();
	if (m->base == NULL)
		fatal("master: cannot create an event base");
	m->sig_term = evsignal_new(m->base, SIGTERM, master_sigterm, m);
	m->sig_int = evsignal_new(m->base, SIGINT, master_sigterm, m);
	m->sig_hup = evsignal_new(m->base, SIGHUP, master_sighup, m);
	m->sig_chld = evsignal_new(m->base, SIGCHLD, master_sigchld, m);
	m->kill_timer = evtimer_new(m->base, master_kill_cb, m);
	event_add(m->sig_term, NULL);
	event_add(m->sig_int, NULL);
	event_add(m->sig_hup, NULL);
	event_add(m->sig_chld, NULL);
}

/* Each IMAP session holds its socket and its account's index (three more
 * files): the usual soft limit of 1,024 would stop a worker at about 250
 * sessions. The soft limit goes up to the hard one, which workers inherit. */
static void master_raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("master event=fd_limit error=\"%s\"", strerror(errno));
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		log_info("master event=fd_limit open_files=%llu", (unsigned long long)rl.rlim_cur);
}

/* TLS, sockets, privileges: everything that may need root. */
static int master_prepare(struct master *m)
{
	const char *error;
	master_raise_fd_limit();
	if (config_needs_tls(m->config)) {
		m->tls = tls_server_create(m->config, &error);
		if (m->tls == NULL)
			goto fail;
	}
	if (net_listeners_open(&m->listeners, m->config, m->protocols, &error) < 0)
		goto fail;
	if (privs_drop(m->config, &error) < 0)
		goto fail;
	return 0;
fail:
	master_startup_error(m->config, error);
	return -1;
}

static uint32_t run_random(void)
{
	uint32_t r = 0;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)getpid() ^ (uint32_t)time(NULL);
	return r;
}

static void master_started(struct master *m)
{
	struct buf desc = BUF_INIT(0);
	net_listeners_describe(&m->listeners, &desc);
	log_info("master started workers=%u listeners=%s", m->worker_count,
		 buf_str(&desc));
	buf_free(&desc);
}

static void master_free(struct master *m)
{
	for (unsigned i = 0; i < m->worker_count; i++)
		event_free(m->workers[i].restart_timer);
	m->worker_count = 0;
	for (unsigned i = 0; i < m->service_count; i++)
		event_free(m->services[i].restart_timer);
	m->service_count = 0;
	free(m->services);
	if (m->base != NULL)
		master_free_events(m);
	net_listeners_close(&m->listeners);
	tls_server_destroy(&m->tls);
	connlimit_destroy(&m->limits);
	config_free(&m->config);
	free(m->workers);
	free(m->retired);
	free(m->slot_used);
	free(m->config_path);
	free(m);
}

static int master_load(struct master *m)
{
	struct buf errors = BUF_INIT(MASTER_CONFIG_ERRORS_MAX);
	if (config_load(m->config_path, &m->config, &errors) < 0) {
		print_errors(&errors);
		buf_free(&errors);
		return -1;
	}
	buf_free(&errors);
	if (master_open_log(m->config) < 0)
		fprintf(stderr, "yubin: cannot open log %s\n", m->config->log.target);
	log_set_role("master");
	return 0;
}

int server_run(const char *config_path, const struct protocol *const *protocols,
	       const struct server_service *const *services)
{
	struct master *m = xcalloc(1, sizeof(*m));
	m->config_path = xstrdup(config_path);
	m->protocols = protocols;
	m->pid = getpid();
	m->run_random = run_random();
	if (master_load(m) < 0 || master_prepare(m) < 0) {
		master_free(m);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	unsigned n = config_worker_count(m->config);
	unsigned slots = n * 4 < 16 ? 16 : n * 4;
	m->limits = connlimit_create(slots);
	m->slot_used = xcalloc(slots, sizeof(*m->slot_used));
	master_events(m);
	master_create_services(m, services);
	master_create_workers(m);
	master_started(m);
	event_base_dispatch(m->base);
	log_info("master stopped");
	master_free(m);
	return 0;
}

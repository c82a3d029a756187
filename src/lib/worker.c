/* A worker process: one single-threaded event loop that accepts on every
 * inherited listener (several workers accept on the same socket; the
 * kernel hands each connection to one of them, the others see EAGAIN) and
 * serves each connection with its protocol. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/log.h"
#include "lib/net-private.h"
#include "lib/xmalloc.h"

/* Connections taken per wakeup, so one busy listener cannot starve the
 * connections already open. */
#define WORKER_ACCEPT_BATCH 64
/* Out of descriptors: stop accepting for a moment instead of spinning. */
#define WORKER_ACCEPT_PAUSE_MS 1000

struct worker;

struct worker_listener {
	struct worker *worker;
	const struct net_listener *l;
	struct event *ev;
};

struct worker {
	const struct worker_params *p;
	struct event_base *base;
	struct worker_listener *wl;
	size_t wl_count;
	struct event *sig_term, *sig_int, *sig_usr1;
	struct event *grace_timer, *accept_timer;
	bool stopping, retiring;
};

static struct timeval worker_tv(uint64_t ms)
{
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000),
			      .tv_usec = (suseconds_t)((ms % 1000) * 1000) };
	return tv;
}

/* ---- accepting ---- */

static void worker_refuse(struct worker_listener *wl, int fd,
			  const struct sockaddr_storage *ss, const char *reason)
{
	char ip[INET6_ADDRSTRLEN];
	uint16_t port;
	net_sockaddr_format(ss, ip, sizeof(ip), &port);
	log_info("conn ip=%s port=%u listener=%s refused=%s", ip, port,
		 wl->l->set->name, reason);
	const char *reply = wl->l->protocol->too_many_reply;
	if (reply != NULL && wl->l->set->tls != TLS_MODE_IMPLICIT) {
		/* Best effort: a fresh socket's send buffer takes a line. */
		if (send(fd, reply, strlen(reply), MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			log_debug("conn ip=%s refusal reply not sent: %m", ip);
	}
	close(fd);
}

static void worker_admit(struct worker_listener *wl, int fd,
			 const struct sockaddr_storage *ss)
{
	const struct worker_params *p = wl->worker->p;
	struct conn_params params = {
		.base = wl->worker->base,
		.fd = fd,
		.listener = wl->l->set,
		.config = p->config,
		.protocol = wl->l->protocol,
		.tls = p->tls,
		.limits = p->limits,
		.limit_slot = p->limit_slot,
	};
	if (p->limits != NULL) {
		struct in6_addr ip;
		const char *reason;
		connlimit_addr_from_sockaddr((const struct sockaddr *)ss, &ip);
		enum connlimit_result res = connlimit_acquire(
			p->limits, p->limit_slot, &ip,
			p->config->server.max_connections,
			p->config->server.max_connections_per_ip, &reason);
		if (res == CONNLIMIT_REFUSED) {
			worker_refuse(wl, fd, ss, reason);
			return;
		}
		params.limit_tracked = res == CONNLIMIT_TRACKED;
	}
	conn_create(&params);
}

static void worker_accept_pause(struct worker *w)
{
	for (size_t i = 0; i < w->wl_count; i++) {
		if (w->wl[i].ev != NULL)
			event_del(w->wl[i].ev);
	}
	struct timeval tv = worker_tv(WORKER_ACCEPT_PAUSE_MS);
	evtimer_add(w->accept_timer, &tv);
}

static void worker_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	for (size_t i = 0; i < w->wl_count; i++) {
		if (w->wl[i].ev != NULL)
			event_add(w->wl[i].ev, NULL);
	}
}

/* Returns true when accepting should go on. */
static bool worker_accept_error(struct worker_listener *wl, int err)
{
	switch (err) {
	case EINTR:
	case ECONNABORTED:
	case EPROTO:
		return true;
	case EAGAIN:
		return false;
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
	case ENOMEM:
		log_warn("listener %s: accept: %s (pausing %d ms)",
			 wl->l->set->name, strerror(err), WORKER_ACCEPT_PAUSE_MS);
		worker_accept_pause(wl->worker);
		return false;
	default:
		log_error("listener %s: accept: %s", wl->l->set->name, strerror(err));
		return false;
	}
}

static void worker_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct worker_listener *wl = arg;
	for (int i = 0; i < WORKER_ACCEPT_BATCH && !wl->worker->stopping; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		memset(&ss, 0, sizeof(ss));
		int fd = accept4(lfd, (struct sockaddr *)&ss, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			/* Replies are whole once written: Nagle would hold the
			 * last segment of a response for the peer's delayed ACK
			 * (40 ms per RETR or FETCH). */
			int on = 1;
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
			worker_admit(wl, fd, &ss);
		}
		else if (!worker_accept_error(wl, errno))
			return;
	}
}

static void worker_listen(struct worker *w)
{
	const struct net_listeners *ls = w->p->listeners;
	w->wl = xcalloc(ls->count, sizeof(*w->wl));
	w->wl_count = ls->count;
	for (size_t i = 0; i < ls->count; i++) {
		struct worker_listener *wl = &w->wl[i];
		wl->worker = w;
		wl->l = &ls->items[i];
		wl->ev = event_new(w->base, wl->l->fd, EV_READ | EV_PERSIST,
				   worker_accept_cb, wl);
		event_add(wl->ev, NULL);
	}
}

/* Our copies of the listening sockets go: once every process has closed
 * them, the kernel refuses new connections. */
static void worker_stop_accepting(struct worker *w)
{
	for (size_t i = 0; i < w->wl_count; i++) {
		if (w->wl[i].ev == NULL)
			continue;
		event_free(w->wl[i].ev);
		w->wl[i].ev = NULL;
		close(w->wl[i].l->fd);
	}
	evtimer_del(w->accept_timer);
}

/* ---- stopping ---- */

static void worker_check_done(void *ctx)
{
	struct worker *w = ctx;
	if (w->stopping && conn_count() == 0)
		event_base_loopbreak(w->base);
}

static void worker_grace_over(evutil_socket_t fd, short what, void *arg)
{
	log_info("worker shutdown grace over: closing connections=%u", conn_count());
	conn_abort_all("shutdown");
}

static void worker_shutdown(struct worker *w)
{
	if (w->stopping && !w->retiring)
		return;
	w->stopping = true;
	w->retiring = false;
	log_info("worker stopping connections=%u", conn_count());
	worker_stop_accepting(w);
	conn_shutdown_all();
	struct timeval tv = worker_tv(w->p->config->server.shutdown_grace);
	evtimer_add(w->grace_timer, &tv);
	worker_check_done(w);
}

static void worker_sigterm(evutil_socket_t sig, short what, void *arg)
{
	worker_shutdown(arg);
}

static void worker_sigusr1(evutil_socket_t sig, short what, void *arg)
{
	struct worker *w = arg;
	if (w->stopping)
		return;
	w->stopping = true;
	w->retiring = true;
	log_info("worker retiring connections=%u", conn_count());
	worker_stop_accepting(w);
	worker_check_done(w);
}

/* ---- setup ---- */

static void worker_signals(struct worker *w)
{
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN); /* the master reloads; a terminal's hangup too */
	w->sig_term = evsignal_new(w->base, SIGTERM, worker_sigterm, w);
	w->sig_int = evsignal_new(w->base, SIGINT, worker_sigterm, w);
	w->sig_usr1 = evsignal_new(w->base, SIGUSR1, worker_sigusr1, w);
	event_add(w->sig_term, NULL);
	event_add(w->sig_int, NULL);
	event_add(w->sig_usr1, NULL);
	if (w->p->sigmask != NULL)
		sigprocmask(SIG_SETMASK, w->p->sigmask, NULL);
}

static void worker_free(struct worker *w)
{
	worker_stop_accepting(w);
	free(w->wl);
	event_free(w->sig_term);
	event_free(w->sig_int);
	event_free(w->sig_usr1);
	event_free(w->grace_timer);
	event_free(w->accept_timer);
	conn_set_empty_callback(NULL, NULL);
	event_base_free(w->base);
}

int worker_run(const struct worker_params *params)
{
	struct worker w = { .p = params };
	log_set_role("worker");
	/* The master is gone: stop like on SIGTERM. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (params->master_pid != 0 && getppid() != params->master_pid)
		return 0;
	w.base = event_base_new();
	if (w.base == NULL)
		fatal("worker: cannot create an event base");
	conn_set_id_base(params->serial, params->run_random);
	conn_set_empty_callback(worker_check_done, &w);
	w.grace_timer = evtimer_new(w.base, worker_grace_over, &w);
	w.accept_timer = evtimer_new(w.base, worker_accept_resume, &w);
	worker_listen(&w);
	worker_signals(&w);
	log_info("worker started slot=%u", params->limit_slot);
	event_base_dispatch(w.base);
	log_info("worker stopped");
	worker_free(&w);
	return 0;
}

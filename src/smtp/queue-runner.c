/* The queue runner (DESIGN.md: one process, owned by the master): scans
 * <data>/queue at start and whenever woken (queue_wake() through notify, or
 * its retry timer), and for each message delivers its due recipients, one
 * delivery per destination domain: hosted domains through deliver (never
 * over SMTP to itself), the others through smtpc, at most [queue]
 * max_parallel at once. Each outcome is written back to the envelope under
 * the queue lock, after any notice it causes is queued: a crash repeats an
 * attempt or a notice, it never loses one. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "deliver/deliver.h"
#include "dir/dir.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "notify/notify.h"
#include "smtp/queue-private.h"
#include "smtp/queue-runner-private.h"
#include "smtp/smtpc.h"

/* Messages looked at per turn of the loop, so that signals and finished
 * deliveries are not kept waiting by a long queue. */
#define RUNNER_BATCH 64
/* A scan now and then even when nothing woke us. */
#define RUNNER_RESCAN_SECS 300
/* Crash leftovers are removed when older than this: a message being
 * written by a worker is never that old. */
#define RUNNER_LEFTOVER_SECS 86400

struct runner_job {
	struct runner *r;
	struct runner_job *next;
	char *id;
	size_t *idx;           /* recipient indexes in the envelope */
	size_t count;
	int fd;
	struct smtpc *client;
};

struct runner {
	struct event_base *base;
	const struct yubin_config *config;
	char *dir;
	struct dir *db;
	struct notify *notify;
	struct notify_watch *watch;
	struct event *timer, *pump_ev;
	time_t timer_at;
	time_t cleaned_at;
	char **work;
	size_t work_count, work_pos;
	bool rescan;
	struct runner_job *jobs;
	unsigned job_count;
};

/* ---- outcomes ---- */

static void outcome_set(struct runner_outcome *o, enum runner_result result, const char *status,
			const char *diagnostic, const char *remote)
{
	o->result = result;
	snprintf(o->status, sizeof(o->status), "%s", status);
	o->diagnostic = diagnostic != NULL ? xstrdup(diagnostic) : NULL;
	o->remote = remote != NULL ? xstrdup(remote) : NULL;
}

void runner_outcomes_free(struct runner_outcome *o, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(o[i].diagnostic);
		free(o[i].remote);
	}
	free(o);
}

static void outcome_from_smtpc(struct runner_outcome *o, const struct smtpc_rcpt_result *res)
{
	enum runner_result result = res->code >= 200 && res->code < 300 ? RUNNER_OK
				    : res->permanent                    ? RUNNER_PERMFAIL
									  : RUNNER_TEMPFAIL;
	const char *status = res->enhanced[0] != '\0' ? res->enhanced
			     : result == RUNNER_OK       ? "2.0.0"
			     : result == RUNNER_PERMFAIL ? (res->code == 0 ? "5.4.4" : "5.0.0")
							 : (res->code == 0 ? "4.4.1" : "4.0.0");
	char *diag = res->code != 0 ? xasprintf("%u %s%s%s", res->code, res->enhanced,
						 res->enhanced[0] != '\0' ? " " : "",
						 res->text != NULL ? res->text : "")
				    : xstrdup(res->text != NULL ? res->text : "no answer");
	outcome_set(o, result, status, diag, res->remote_host);
	free(diag);
}

static void outcome_from_deliver(struct runner_outcome *o, const struct deliver_result *res)
{
	static const struct {
		enum runner_result result;
		const char *status, *text;
	} map[] = {
		[DELIVER_OK] = { RUNNER_OK, "2.0.0", "250 2.0.0 delivered" },
		[DELIVER_UNKNOWN_USER] = { RUNNER_PERMFAIL, "5.1.1", "550 5.1.1 User unknown" },
		[DELIVER_TEMPFAIL] = { RUNNER_TEMPFAIL, "4.2.0", "451 4.2.0" },
		[DELIVER_PERMFAIL] = { RUNNER_PERMFAIL, "5.2.0", "552 5.2.0" },
	};
	char code[12];
	const char *text;
	const char *status = map[res->status].status;
	char *diag;
	/* a reason with its own code of the right class ("5.7.1 rejected by
	 * the recipient's filter") names the failure exactly */
	if (res->status != DELIVER_OK && deliver_reason_code(res->reason, code, &text) &&
	    code[0] == status[0]) {
		diag = xasprintf("%s %s %s", status[0] == '5' ? "550" : "451", code, text);
		status = code;
	} else if (res->reason != NULL && res->status != DELIVER_OK &&
	           res->status != DELIVER_UNKNOWN_USER) {
		diag = xasprintf("%s %s", map[res->status].text, res->reason);
	} else {
		diag = xstrdup(map[res->status].text);
	}
	outcome_set(o, map[res->status].result, status, diag, NULL);
	o->local = true;
	free(diag);
}

/* ---- applying outcomes to the envelope ---- */

struct notices {
	struct dsn_rcpt *list[3]; /* failed, delayed, success */
	size_t count[3];
};

static void notice_add(struct notices *n, int kind, const struct queue_rcpt *rcpt,
		       enum dsn_action action, const struct runner_outcome *o)
{
	struct dsn_rcpt *d;
	n->list[kind] = xreallocarray(n->list[kind], n->count[kind] + 1, sizeof(*d));
	d = &n->list[kind][n->count[kind]++];
	*d = (struct dsn_rcpt){ .address = rcpt->address, .orcpt = rcpt->orcpt,
				.action = action, .status = o->status,
				.remote_mta = o->remote, .diagnostic = o->diagnostic };
}

static void apply_success(struct queue_entry *e, size_t i, const struct runner_outcome *o,
			  struct notices *n)
{
	e->status[i].state = QUEUE_RCPT_DELIVERED;
	if (queue_notify_wants(e->env.rcpts[i].notify, QUEUE_NOTIFY_SUCCESS))
		notice_add(n, 2, &e->env.rcpts[i],
			   o->local ? DSN_ACTION_DELIVERED : DSN_ACTION_RELAYED, o);
}

static void apply_failure(struct queue_entry *e, size_t i, const struct runner_outcome *o,
			  struct notices *n)
{
	e->status[i].state = QUEUE_RCPT_FAILED;
	if (queue_notify_wants(e->env.rcpts[i].notify, QUEUE_NOTIFY_FAILURE))
		notice_add(n, 0, &e->env.rcpts[i], DSN_ACTION_FAILED, o);
}

/* Returns the time of the next attempt, 0 when given up. */
static time_t apply_tempfail(const struct yubin_config *config, struct queue_entry *e, size_t i,
			     struct runner_outcome *o, time_t now, struct notices *n)
{
	struct queue_rcpt_status *st = &e->status[i];
	st->attempts++;
	if ((uint64_t)(now - e->arrival) * 1000 >= config->queue.lifetime) {
		/* RFC 3463: 4.4.7, delivery time expired. */
		snprintf(o->status, sizeof(o->status), "4.4.7");
		apply_failure(e, i, o, n);
		return 0;
	}
	st->next_attempt = now + (time_t)queue_retry_delay(config, st->attempts);
	uint64_t warn = config->queue.delay_warning;
	if (warn > 0 && !e->warned && (uint64_t)(now - e->arrival) * 1000 >= warn &&
	    queue_notify_wants(e->env.rcpts[i].notify, QUEUE_NOTIFY_DELAY))
		notice_add(n, 1, &e->env.rcpts[i], DSN_ACTION_DELAYED, o);
	return st->next_attempt;
}

static void queue_notices(const struct yubin_config *config, const struct queue_entry *e,
			  struct notices *n, time_t now, int fd)
{
	for (int kind = 0; kind < 3; kind++) {
		if (n->count[kind] == 0)
			continue;
		struct dsn_report report = {
			.reporting_mta = config->server.hostname, .entry = e, .now = now,
			.retry_until = e->arrival + (time_t)(config->queue.lifetime / 1000),
			.rcpts = n->list[kind], .count = n->count[kind],
		};
		const char *error;
		if (dsn_queue(config, &report, fd, &error) < 0)
			log_error("queue id=%s event=dsn_failed error=\"%s\"", e->id, error);
		free(n->list[kind]);
	}
}

static void log_outcome(const struct queue_entry *e, size_t i, const struct runner_outcome *o)
{
	static const char *const names[] = { "delivered", "deferred", "bounced" };
	char diag[256], rcpt[256];
	const char *d = o->diagnostic != NULL ? o->diagnostic : "";
	const char *a = e->env.rcpts[i].address;
	const char *result = e->status[i].state == QUEUE_RCPT_FAILED ? names[2] : names[o->result];
	log_info("queue id=%s event=%s rcpt=%s relay=%s status=%s attempts=%u reply=\"%s\"", e->id,
		 result, log_escape(a, strlen(a), rcpt, sizeof(rcpt)),
		 o->local ? "local" : (o->remote != NULL ? o->remote : "none"), o->status,
		 e->status[i].attempts, log_escape(d, strlen(d), diag, sizeof(diag)));
}

/* Applies one delivery's outcomes to the envelope on disk. Returns the
 * earliest next attempt it set (0 = none). */
time_t runner_apply(const struct yubin_config *config, const char *dir, const char *id,
		    const size_t *idx, struct runner_outcome *o, size_t count, time_t now, int fd)
{
	const char *error;
	struct queue_entry *e = NULL;
	time_t next = 0;
	int lock = queue_lock(dir, &error);
	if (lock < 0 || queue_entry_read(dir, id, &e, &error) <= 0) {
		if (lock < 0 || e == NULL)
			log_warn("queue id=%s event=outcome_dropped error=\"%s\"", id,
				 lock < 0 ? error : "gone or unreadable");
		queue_unlock(&lock);
		return 0;
	}
	struct notices n = { 0 };
	for (size_t k = 0; k < count; k++) {
		size_t i = idx[k];
		if (i >= e->env.rcpt_count || e->status[i].state != QUEUE_RCPT_PENDING)
			continue;
		if (o[k].result == RUNNER_OK) {
			apply_success(e, i, &o[k], &n);
		} else if (o[k].result == RUNNER_PERMFAIL) {
			e->status[i].attempts++;
			apply_failure(e, i, &o[k], &n);
		} else {
			time_t t = apply_tempfail(config, e, i, &o[k], now, &n);
			if (t != 0 && (next == 0 || t < next))
				next = t;
		}
		free(e->status[i].last_reply);
		e->status[i].last_reply = o[k].diagnostic != NULL ? xstrdup(o[k].diagnostic) : NULL;
		log_outcome(e, i, &o[k]);
	}
	queue_notices(config, e, &n, now, fd);
	if (n.count[1] > 0)
		e->warned = true;
	int ret = queue_entry_finished(e) ? queue_entry_remove(dir, id, &error)
					  : queue_entry_write(dir, e, &error);
	if (ret < 0)
		log_error("queue id=%s event=state_write_failed error=\"%s\"", id, error);
	else if (queue_entry_finished(e))
		log_info("queue id=%s event=removed", id);
	queue_entry_free(&e);
	queue_unlock(&lock);
	return next;
}

/* ---- scheduling ---- */

static void runner_pump(struct runner *r);

static void runner_schedule(struct runner *r, time_t at)
{
	time_t now = time(NULL);
	if (at == 0 || (r->timer_at != 0 && r->timer_at <= at))
		return;
	r->timer_at = at;
	struct timeval tv = { .tv_sec = at > now ? at - now : 0 };
	evtimer_add(r->timer, &tv);
}

/* At most once an hour: a scan of the folder with a stat per file. */
static void runner_cleanup(struct runner *r)
{
	time_t now = time(NULL);
	if (r->cleaned_at != 0 && now - r->cleaned_at < 3600)
		return;
	r->cleaned_at = now;
	size_t n = queue_cleanup(r->dir, now, RUNNER_LEFTOVER_SECS);
	if (n > 0)
		log_info("queue event=cleanup removed=%zu", n);
}

static void runner_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct runner *r = arg;
	r->timer_at = 0;
	r->rescan = true;
	runner_cleanup(r);
	runner_schedule(r, time(NULL) + RUNNER_RESCAN_SECS);
	runner_pump(r);
}

static void runner_wake_cb(void *ctx)
{
	struct runner *r = ctx;
	r->rescan = true;
	runner_pump(r);
}

static void runner_pump_cb(evutil_socket_t fd, short what, void *arg)
{
	runner_pump(arg);
}

/* ---- deliveries ---- */

static void job_free(struct runner_job *job)
{
	struct runner *r = job->r;
	for (struct runner_job **p = &r->jobs; *p != NULL; p = &(*p)->next) {
		if (*p == job) {
			*p = job->next;
			r->job_count--;
			break;
		}
	}
	if (job->fd >= 0)
		close(job->fd);
	free(job->idx);
	free(job->id);
	free(job);
}

static void job_done(void *context, struct smtpc_rcpt_result *results, size_t count)
{
	struct runner_job *job = context;
	struct runner *r = job->r;
	size_t n = count < job->count ? count : job->count;
	struct runner_outcome *o = xcalloc(job->count, sizeof(*o));
	for (size_t i = 0; i < job->count; i++) {
		if (i < n)
			outcome_from_smtpc(&o[i], &results[i]);
		else
			outcome_set(&o[i], RUNNER_TEMPFAIL, "4.4.0", "no result", NULL);
	}
	smtpc_results_free(results, count);
	time_t next = runner_apply(r->config, r->dir, job->id, job->idx, o, job->count,
				   time(NULL), job->fd);
	runner_outcomes_free(o, job->count);
	job_free(job);
	runner_schedule(r, next);
	runner_pump(r);
}

static bool runner_busy(const struct runner *r, const char *id)
{
	for (const struct runner_job *j = r->jobs; j != NULL; j = j->next) {
		if (strcmp(j->id, id) == 0)
			return true;
	}
	return false;
}

static const char *rcpt_domain(const char *address)
{
	const char *at = strrchr(address, '@');
	return at != NULL ? at + 1 : "";
}

static bool runner_is_local(struct runner *r, const char *domain)
{
	const char *error;
	return r->db != NULL && dir_domain_exists(r->db, domain, &error) > 0;
}

static void runner_local(struct runner *r, const struct queue_entry *e, const size_t *idx,
			 size_t count, int fd)
{
	const char **rcpts = xcalloc(count, sizeof(*rcpts));
	for (size_t i = 0; i < count; i++)
		rcpts[i] = e->env.rcpts[idx[i]].address;
	struct deliver_result *res = xcalloc(count, sizeof(*res));
	struct deliver_envelope env = {.from = e->env.sender};
	/* redirects and vacation replies go to the queue of this config */
	queue_register_outbox(r->config);
	deliver_message_env(r->config, r->db, fd, &env, rcpts, count, res);
	struct runner_outcome *o = xcalloc(count, sizeof(*o));
	for (size_t i = 0; i < count; i++)
		outcome_from_deliver(&o[i], &res[i]);
	deliver_results_free(res, count);
	time_t next = runner_apply(r->config, r->dir, e->id, idx, o, count, time(NULL), fd);
	runner_schedule(r, next);
	runner_outcomes_free(o, count);
	free(res);
	free(rcpts);
}

static void runner_remote(struct runner *r, const struct queue_entry *e, const char *domain,
			  const size_t *idx, size_t count, int fd)
{
	struct runner_job *job = xcalloc(1, sizeof(*job));
	job->r = r;
	job->id = xstrdup(e->id);
	job->count = count;
	job->idx = xcalloc(count, sizeof(*job->idx));
	const char **rcpts = xcalloc(count, sizeof(*rcpts));
	struct queue_rcpt *dsn = xcalloc(count, sizeof(*dsn));
	for (size_t i = 0; i < count; i++) {
		job->idx[i] = idx[i];
		rcpts[i] = e->env.rcpts[idx[i]].address;
		dsn[i] = e->env.rcpts[idx[i]];
	}
	/* Its own descriptor: smtpc reads it until the callback. */
	job->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	struct smtpc_request req = {
		.domain = domain, .sender = e->env.sender, .rcpts = rcpts, .dsn = dsn,
		.rcpt_count = count, .envid = e->env.envid, .ret = e->env.ret,
		.body = e->env.body, .smtputf8 = e->env.smtputf8, .fd = job->fd, .size = e->size,
	};
	job->next = r->jobs;
	r->jobs = job;
	r->job_count++;
	/* smtpc copies the request: the entry may go when this returns. */
	job->client = smtpc_deliver(r->base, r->config, &req, job_done, job);
	free(dsn);
	free(rcpts);
}

/* The due recipients of one domain: indexes into the entry. */
static size_t due_in_domain(const struct queue_entry *e, const char *domain, bool *taken,
			    time_t now, size_t *idx)
{
	size_t n = 0;
	for (size_t i = 0; i < e->env.rcpt_count; i++) {
		const struct queue_rcpt_status *st = &e->status[i];
		if (taken[i] || st->state != QUEUE_RCPT_PENDING || st->next_attempt > now)
			continue;
		if (strcasecmp(rcpt_domain(e->env.rcpts[i].address), domain) != 0)
			continue;
		taken[i] = true;
		idx[n++] = i;
	}
	return n;
}

static void runner_start(struct runner *r, const struct queue_entry *e, time_t now)
{
	size_t count = e->env.rcpt_count;
	bool *taken = xcalloc(count, sizeof(*taken));
	size_t *idx = xcalloc(count, sizeof(*idx));
	int fd = queue_message_open(r->dir, e->id);
	if (fd < 0) {
		log_error("queue id=%s event=message_unreadable error=\"%s\"", e->id,
			  strerror(errno));
		count = 0;
	}
	for (size_t i = 0; i < count; i++) {
		const struct queue_rcpt_status *st = &e->status[i];
		if (st->state == QUEUE_RCPT_PENDING && st->next_attempt > now)
			runner_schedule(r, st->next_attempt);
		if (taken[i] || st->state != QUEUE_RCPT_PENDING || st->next_attempt > now)
			continue;
		char *domain = xstrdup(rcpt_domain(e->env.rcpts[i].address));
		size_t n = due_in_domain(e, domain, taken, now, idx);
		if (runner_is_local(r, domain))
			runner_local(r, e, idx, n, fd);
		else
			runner_remote(r, e, domain, idx, n, fd);
		free(domain);
	}
	if (fd >= 0)
		close(fd);
	free(taken);
	free(idx);
}

static void runner_process(struct runner *r, const char *id)
{
	const char *error;
	struct queue_entry *e = NULL;
	if (runner_busy(r, id))
		return;
	int ret = queue_entry_read(r->dir, id, &e, &error);
	if (ret < 0)
		log_error("queue id=%s event=unreadable error=\"%s\"", id, error);
	if (ret <= 0)
		return;
	if (queue_entry_finished(e)) {
		if (queue_entry_remove(r->dir, id, &error) == 0)
			log_info("queue id=%s event=removed", id);
	} else {
		runner_start(r, e, time(NULL));
	}
	queue_entry_free(&e);
}

static void runner_scan(struct runner *r)
{
	const char *error;
	queue_list_free(r->work, r->work_count);
	r->work = NULL;
	r->work_count = r->work_pos = 0;
	r->rescan = false;
	if (queue_list(r->dir, &r->work, &r->work_count, &error) < 0)
		log_error("queue event=scan_failed dir=%s error=\"%s\"", r->dir, error);
}

static void runner_pump(struct runner *r)
{
	unsigned batch = 0;
	while (r->job_count < r->config->queue.max_parallel) {
		if (r->work_pos == r->work_count) {
			if (!r->rescan)
				return;
			runner_scan(r);
			if (r->work_count == 0)
				return;
		}
		if (batch++ == RUNNER_BATCH) {
			event_active(r->pump_ev, EV_TIMEOUT, 0);
			return;
		}
		runner_process(r, r->work[r->work_pos++]);
	}
}

/* ---- the service ---- */

static int runner_open(struct runner *r)
{
	const char *error;
	char *db = config_data_path(r->config, "yubin.db");
	if (dir_open(db, &r->db, &error) < 0)
		log_error("queue event=dir_open_failed error=\"%s\"", error);
	free(db);
	if (mkdir(r->dir, 0700) < 0 && errno != EEXIST) {
		log_error("queue event=mkdir_failed dir=%s error=\"%s\"", r->dir, strerror(errno));
		return -1;
	}
	r->notify = notify_create(r->base, &error);
	if (r->notify == NULL) {
		log_error("queue event=notify_failed error=\"%s\"", error);
		return -1;
	}
	r->watch = notify_watch_add(r->notify, r->dir, runner_wake_cb, r);
	r->timer = evtimer_new(r->base, runner_timer_cb, r);
	r->pump_ev = event_new(r->base, -1, 0, runner_pump_cb, r);
	return 0;
}

static void runner_close(struct runner *r)
{
	while (r->jobs != NULL) {
		struct runner_job *job = r->jobs;
		smtpc_cancel(&job->client);
		log_info("queue id=%s event=abandoned rcpts=%zu", job->id, job->count);
		job_free(job);
	}
	smtpc_shutdown();
	if (r->timer != NULL)
		event_free(r->timer);
	if (r->pump_ev != NULL)
		event_free(r->pump_ev);
	notify_watch_remove(&r->watch);
	notify_destroy(&r->notify);
	if (r->db != NULL)
		dir_close(&r->db);
	queue_list_free(r->work, r->work_count);
	free(r->dir);
}

int queue_runner_run(struct event_base *base, const struct yubin_config *config)
{
	struct runner r = { .base = base, .config = config, .dir = queue_dir_path(config) };
	int code = 0;
	if (runner_open(&r) == 0) {
		log_info("queue event=runner_started dir=%s max_parallel=%u", r.dir,
			 config->queue.max_parallel);
		r.rescan = true;
		runner_cleanup(&r);
		runner_schedule(&r, time(NULL) + RUNNER_RESCAN_SECS);
		runner_pump(&r);
		event_base_dispatch(base);
		log_info("queue event=runner_stopped in_flight=%u", r.job_count);
	} else {
		code = 1;
	}
	runner_close(&r);
	return code;
}

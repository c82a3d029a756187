/* notify across processes: a forked child plays `yubin deliver` and calls
 * notify_account_changed(); this process plays a worker whose sessions
 * watch accounts on an event_base. Fan-out with latency, coalescing,
 * removal from inside callbacks, shared kernel watches (counted in
 * /proc/self/fdinfo), missing accounts, a deleted or renamed signal file,
 * the polling fallback, queue overflow and the writer's cost. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/xmalloc.h"
#include "notify/notify-private.h"
#include "notify/notify.h"
#include "test.h"

#define MAX_WATCHERS 64

static struct event_base *base;
static struct notify *nt;
static char tmpdir[] = "/tmp/yubin-test-notify-XXXXXX";

enum action {
	ACT_NONE,
	ACT_REMOVE_SELF,
	ACT_REMOVE_TARGET, /* removes watchers[target] of the same group */
	ACT_REMOVE_OTHER,  /* removes every watcher of the other group */
	ACT_REMOVE_ALL,    /* removes every watcher of its own group, itself too */
	ACT_ADD,           /* adds watchers[target] on the same account */
};

struct watcher {
	struct watchers *group;
	struct notify_watch *w;
	int calls;
	uint64_t first_ns;
	enum action act;
	int target;
};

struct watchers {
	const char *root;
	int count;
	struct watcher v[MAX_WATCHERS];
	struct watchers *other;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static char *make_account(const char *name)
{
	char *root = xasprintf("%s/%s", tmpdir, name);
	if (mkdir(root, 0700) < 0 && errno != EEXIST) {
		perror(root);
		exit(2);
	}
	return root;
}

static int kernel_watches(void)
{
	if (nt->fd < 0)
		return -1;
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", nt->fd);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	char line[512];
	int count = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "inotify wd:", 11) == 0)
			count++;
	}
	fclose(f);
	return count;
}

static size_t accounts(void)
{
	return nt->tables[NOTIFY_BY_ROOT].count;
}

/* ---- watchers ---- */

static void never_called(void *ctx)
{
	abort();
}

static void watcher_remove(struct watcher *x)
{
	notify_watch_remove(&x->w);
}

static void group_remove_all(struct watchers *g)
{
	for (int i = 0; i < g->count; i++)
		watcher_remove(&g->v[i]);
}

static void watcher_cb(void *ctx);

static void watcher_add(struct watchers *g, int i)
{
	struct watcher *x = &g->v[i];
	x->group = g;
	x->w = notify_watch_add(nt, g->root, watcher_cb, x);
	if (x->w == NULL) {
		fprintf(stderr, "notify_watch_add(%s) failed\n", g->root);
		exit(2);
	}
}

static void watcher_act(struct watcher *x)
{
	struct watchers *g = x->group;
	switch (x->act) {
	case ACT_NONE:
		break;
	case ACT_REMOVE_SELF:
		watcher_remove(x);
		break;
	case ACT_REMOVE_TARGET:
		watcher_remove(&g->v[x->target]);
		break;
	case ACT_REMOVE_OTHER:
		group_remove_all(g->other);
		break;
	case ACT_REMOVE_ALL:
		group_remove_all(g);
		break;
	case ACT_ADD:
		watcher_add(g, x->target);
		break;
	}
	x->act = ACT_NONE;
}

static void watcher_cb(void *ctx)
{
	struct watcher *x = ctx;
	if (x->calls++ == 0)
		x->first_ns = now_ns();
	watcher_act(x);
}

static void group_init(struct watchers *g, const char *root, int count)
{
	memset(g, 0, sizeof(*g));
	g->root = root;
	g->count = count;
	for (int i = 0; i < count; i++)
		watcher_add(g, i);
}

static int group_calls_equal(const struct watchers *g, int want)
{
	for (int i = 0; i < g->count; i++) {
		if (g->v[i].calls != want)
			return 0;
	}
	return 1;
}

static int group_calls_total(const struct watchers *g)
{
	int total = 0;
	for (int i = 0; i < g->count; i++)
		total += g->v[i].calls;
	return total;
}

/* ---- the loop and the child ---- */

static void run_ms(int ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

/* Runs the loop until g's watchers were called `want` times in all. */
static void run_until(const struct watchers *g, int want, int max_ms)
{
	uint64_t deadline = now_ns() + (uint64_t)max_ms * 1000000u;
	while (group_calls_total(g) < want && now_ns() < deadline)
		run_ms(5);
}

struct writes {
	const char *roots[2];
	int rounds;
	int delay_ms;
	int ts_fd; /* the child sends the time of its first write here */
};

static void child_writes(const struct writes *wr)
{
	if (wr->delay_ms > 0)
		usleep((useconds_t)wr->delay_ms * 1000);
	uint64_t t = now_ns();
	if (wr->ts_fd >= 0 && write(wr->ts_fd, &t, sizeof(t)) != (ssize_t)sizeof(t))
		_exit(3);
	for (int i = 0; i < wr->rounds; i++) {
		for (int r = 0; r < 2; r++) {
			if (wr->roots[r] != NULL)
				notify_account_changed(wr->roots[r]);
		}
	}
}

static pid_t child_start(const struct writes *wr)
{
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(2);
	}
	if (pid == 0) {
		child_writes(wr);
		_exit(0);
	}
	return pid;
}

static void child_wait(pid_t pid)
{
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* The child writes; this process waits for it to finish before running the
 * loop, so every change is queued when the loop looks. */
static void write_and_wait(const char *root1, const char *root2, int rounds)
{
	struct writes wr = {.roots = {root1, root2}, .rounds = rounds, .ts_fd = -1};
	child_wait(child_start(&wr));
}

/* ---- tests ---- */

static struct watchers ga, gb, gc;

static void test_fanout_latency(const char *a, const char *b)
{
	group_init(&ga, a, 50);
	group_init(&gb, b, 5);
	int fds[2];
	if (pipe(fds) < 0) {
		perror("pipe");
		exit(2);
	}
	struct writes wr = {.roots = {a, NULL}, .rounds = 1, .delay_ms = 30, .ts_fd = fds[1]};
	pid_t pid = child_start(&wr);
	close(fds[1]);
	run_until(&ga, 50, 2000);
	uint64_t sent = 0;
	CHECK(read(fds[0], &sent, sizeof(sent)) == (ssize_t)sizeof(sent));
	close(fds[0]);
	child_wait(pid);
	run_ms(50);
	CHECK(group_calls_equal(&ga, 1));
	CHECK(group_calls_equal(&gb, 0));
	uint64_t first = UINT64_MAX, last = 0;
	for (int i = 0; i < ga.count; i++) {
		first = ga.v[i].first_ns < first ? ga.v[i].first_ns : first;
		last = ga.v[i].first_ns > last ? ga.v[i].first_ns : last;
	}
	CHECK(sent != 0 && first >= sent);
	double first_ms = (double)(first - sent) / 1e6, all_ms = (double)(last - sent) / 1e6;
	printf("fan-out: 50 watchers, first called after %.3f ms, all after %.3f ms\n", first_ms,
	       all_ms);
	CHECK(all_ms < 250.0);
	group_remove_all(&ga);
	group_remove_all(&gb);
	CHECK_INT(accounts(), 0);
	CHECK_INT(kernel_watches(), 0);
}

static void test_coalesce(const char *a, const char *b, const char *c)
{
	group_init(&ga, a, 50);
	group_init(&gb, b, 5);
	group_init(&gc, c, 5);
	write_and_wait(a, NULL, 200);
	write_and_wait(b, NULL, 3);
	write_and_wait(a, b, 20);
	run_ms(100);
	CHECK(group_calls_equal(&ga, 1));
	CHECK(group_calls_equal(&gb, 1));
	CHECK(group_calls_equal(&gc, 0));
	/* A second change later is a second call. */
	write_and_wait(c, NULL, 1);
	run_ms(50);
	CHECK(group_calls_equal(&ga, 1));
	CHECK(group_calls_equal(&gc, 1));
	group_remove_all(&ga);
	group_remove_all(&gb);
	group_remove_all(&gc);
}

static const struct {
	enum action act;
	int target;
	int round1, round2; /* calls expected after each round */
} remove_cases[] = {
        /* Added in this order; called newest first (7, 6, ... 0). */
        [0] = {ACT_NONE, 0, 0, 0},          /* removed by 1 before its turn */
        [1] = {ACT_REMOVE_TARGET, 0, 1, 2}, /* removes the last one */
        [2] = {ACT_REMOVE_OTHER, 0, 1, 2},  /* removes all of B, pending */
        [3] = {ACT_NONE, 0, 0, 0},          /* removed by 4, the next one */
        [4] = {ACT_REMOVE_TARGET, 3, 1, 2}, [5] = {ACT_REMOVE_SELF, 0, 1, 1},
        [6] = {ACT_ADD, 7 + 1, 1, 2}, /* its new watch waits a round */
        [7] = {ACT_NONE, 0, 1, 2},
};
#define REMOVE_CASES (int)(sizeof(remove_cases) / sizeof(remove_cases[0]))

static void test_remove_in_callback(const char *a, const char *b, const char *c)
{
	memset(&ga, 0, sizeof(ga));
	ga.root = a;
	ga.count = REMOVE_CASES;
	for (int i = 0; i < REMOVE_CASES; i++) {
		ga.v[i].act = remove_cases[i].act;
		ga.v[i].target = remove_cases[i].target;
		watcher_add(&ga, i);
	}
	ga.count = REMOVE_CASES + 1; /* the slot ACT_ADD fills */
	group_init(&gb, b, 3);
	group_init(&gc, c, 3);
	ga.other = &gb;
	gc.v[2].act = ACT_REMOVE_ALL; /* the first called empties its account */
	CHECK_INT(accounts(), 3);

	write_and_wait(a, b, 1);
	write_and_wait(c, NULL, 1);
	run_ms(50);
	for (int i = 0; i < REMOVE_CASES; i++)
		CHECK_INT(ga.v[i].calls, remove_cases[i].round1);
	CHECK_INT(ga.v[REMOVE_CASES].calls, 0);
	CHECK(ga.v[REMOVE_CASES].w != NULL);
	CHECK(group_calls_equal(&gb, 0));
	CHECK_INT(gc.v[2].calls, 1);
	CHECK_INT(gc.v[0].calls + gc.v[1].calls, 0);
	CHECK_INT(accounts(), 1);
	CHECK_INT(kernel_watches(), 1);

	write_and_wait(a, NULL, 1);
	run_ms(50);
	for (int i = 0; i < REMOVE_CASES; i++)
		CHECK_INT(ga.v[i].calls, remove_cases[i].round2);
	CHECK_INT(ga.v[REMOVE_CASES].calls, 1);
	group_remove_all(&ga);
	CHECK_INT(accounts(), 0);
	CHECK_INT(kernel_watches(), 0);
}

static void test_refcount(const char *a, const char *b)
{
	group_init(&ga, a, 3);
	CHECK_INT(accounts(), 1);
	CHECK_INT(kernel_watches(), 1);
	group_init(&gb, b, 2);
	CHECK_INT(kernel_watches(), 2);
	/* Another spelling of A is another account on the same kernel watch. */
	char *a_slash = xasprintf("%s/", a);
	group_init(&gc, a_slash, 1);
	CHECK_INT(accounts(), 3);
	CHECK_INT(kernel_watches(), 2);
	group_remove_all(&ga);
	CHECK_INT(accounts(), 2);
	CHECK_INT(kernel_watches(), 2);
	write_and_wait(a, NULL, 1);
	run_ms(50);
	CHECK_INT(gc.v[0].calls, 1);
	group_remove_all(&gc);
	CHECK_INT(kernel_watches(), 1);
	watcher_remove(&gb.v[0]);
	CHECK_INT(kernel_watches(), 1);
	watcher_remove(&gb.v[1]);
	CHECK_INT(accounts(), 0);
	CHECK_INT(kernel_watches(), 0);
	free(a_slash);
}

/* 10,000 sessions on 200 accounts hold 200 kernel watches. */
static void test_scale(void)
{
	enum { ACCOUNTS = 200, PER = 50 };
	static struct notify_watch *w[ACCOUNTS * PER];
	static int dummy;
	for (int i = 0; i < ACCOUNTS; i++) {
		char name[32];
		snprintf(name, sizeof(name), "scale%d", i);
		char *root = make_account(name);
		for (int j = 0; j < PER; j++)
			w[i * PER + j] = notify_watch_add(nt, root, never_called, &dummy);
		free(root);
	}
	CHECK_INT(accounts(), ACCOUNTS);
	CHECK_INT(kernel_watches(), ACCOUNTS);
	for (int i = 0; i < ACCOUNTS * PER; i++)
		notify_watch_remove(&w[i]);
	CHECK_INT(accounts(), 0);
	CHECK_INT(kernel_watches(), 0);
}

static void test_missing(const char *a)
{
	char *missing = xasprintf("%s/no-such-account", tmpdir);
	char *file = xasprintf("%s/plain-file", tmpdir);
	int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	close(fd);
	static int dummy;
	CHECK(notify_watch_add(nt, missing, never_called, &dummy) == NULL);
	CHECK(notify_watch_add(nt, file, never_called, &dummy) == NULL);
	CHECK(notify_watch_add(nt, "", never_called, &dummy) == NULL);
	CHECK_INT(accounts(), 0);
	notify_account_changed(missing);
	notify_account_changed(file);
	struct stat st;
	CHECK(stat(missing, &st) < 0 && errno == ENOENT);
	/* The writer creates the file on first use and keeps it at one byte. */
	char *sig = xasprintf("%s/%s", a, NOTIFY_FILE_NAME);
	unlink(sig);
	notify_account_changed(a);
	notify_account_changed(a);
	CHECK(stat(sig, &st) == 0 && st.st_size == 1 && (st.st_mode & 0777) == 0600);
	struct notify_watch *none = NULL;
	notify_watch_remove(&none);
	free(sig);
	free(missing);
	free(file);
}

/* The signal file deleted or renamed under a watch: a hint, then a new file
 * and a new kernel watch that sees the next change. */
static void test_file_replaced(const char *a)
{
	char *sig = xasprintf("%s/%s", a, NOTIFY_FILE_NAME);
	char *old = xasprintf("%s/old-signal", a);
	group_init(&ga, a, 2);
	CHECK_INT(unlink(sig), 0);
	run_until(&ga, 2, 1000);
	CHECK(group_calls_equal(&ga, 1));
	struct stat st;
	CHECK(stat(sig, &st) == 0);
	CHECK_INT(kernel_watches(), 1);
	write_and_wait(a, NULL, 1);
	run_until(&ga, 4, 1000);
	CHECK(group_calls_equal(&ga, 2));

	CHECK_INT(rename(sig, old), 0);
	run_until(&ga, 6, 1000);
	run_ms(20);
	CHECK(group_calls_equal(&ga, 3));
	CHECK_INT(kernel_watches(), 1);
	notify_account_changed(old); /* not the account's file any more */
	write_and_wait(a, NULL, 1);
	run_until(&ga, 8, 1000);
	run_ms(20);
	CHECK(group_calls_equal(&ga, 4));
	group_remove_all(&ga);
	CHECK_INT(kernel_watches(), 0);
	free(sig);
	free(old);
}

/* As if fs.inotify.max_user_watches were reached: the account is checked on
 * a timer, and moves to a kernel watch once one can be had. */
static void test_poll_fallback(const char *d)
{
	nt->force_poll = true;
	nt->poll_msecs = 50;
	group_init(&ga, d, 3);
	CHECK_INT(kernel_watches(), 0);
	run_ms(120);
	CHECK(group_calls_equal(&ga, 0));
	usleep(20000); /* a write in the same clock tick would keep the mtime */
	uint64_t sent = now_ns();
	write_and_wait(d, NULL, 5);
	run_until(&ga, 3, 1000);
	CHECK(group_calls_equal(&ga, 1));
	printf("polling fallback: called after %.1f ms (interval 50 ms)\n",
	       (double)(ga.v[0].first_ns - sent) / 1e6);
	run_ms(120);
	CHECK(group_calls_equal(&ga, 1));

	nt->force_poll = false;
	run_until(&ga, 6, 1000);
	CHECK(group_calls_equal(&ga, 2)); /* the spare hint of the move */
	CHECK_INT(kernel_watches(), 1);
	write_and_wait(d, NULL, 1);
	run_until(&ga, 9, 1000);
	CHECK(group_calls_equal(&ga, 3));
	group_remove_all(&ga);
	nt->poll_msecs = NOTIFY_POLL_MSECS;
}

static long read_sysctl(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;
	if (f != NULL) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* More queued events than the kernel keeps: IN_Q_OVERFLOW calls every
 * watch, also those of accounts that did not change. */
static void test_overflow(const char *e, const char *f, const char *g)
{
	long max = read_sysctl("/proc/sys/fs/inotify/max_queued_events");
	if (max < 0 || max > 100000) {
		printf("overflow: skipped (max_queued_events=%ld)\n", max);
		return;
	}
	group_init(&ga, e, 1);
	group_init(&gb, f, 1);
	group_init(&gc, g, 2);
	/* Alternating files, so the kernel cannot merge neighbouring events. */
	write_and_wait(e, f, (int)max / 2 + 100);
	run_ms(100);
	CHECK(group_calls_equal(&ga, 1));
	CHECK(group_calls_equal(&gb, 1));
	CHECK(group_calls_equal(&gc, 1));
	group_remove_all(&ga);
	group_remove_all(&gb);
	group_remove_all(&gc);
}

static void test_writer_cost(const char *h)
{
	enum { N = 5000 };
	uint64_t t0 = now_ns();
	for (int i = 0; i < N; i++)
		notify_account_changed(h);
	double us = (double)(now_ns() - t0) / 1e3 / N;
	printf("notify_account_changed: %.2f us per call\n", us);
	CHECK(us < 1000.0);
}

static void test_destroy_with_watches(const char *a, const char *b)
{
	const char *error = NULL;
	struct notify *other = notify_create(base, &error);
	CHECK(other != NULL);
	static int dummy;
	for (int i = 0; i < 5; i++) {
		CHECK(notify_watch_add(other, a, never_called, &dummy) != NULL);
		CHECK(notify_watch_add(other, b, never_called, &dummy) != NULL);
	}
	notify_account_changed(a);
	notify_destroy(&other);
	CHECK(other == NULL);
	notify_destroy(&other);
	run_ms(20); /* nothing of the destroyed instance may fire */
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

int main(void)
{
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	base = event_base_new();
	const char *error = NULL;
	nt = notify_create(base, &error);
	if (nt == NULL) {
		fprintf(stderr, "notify_create: %s\n", error);
		return 2;
	}
	char *roots[8];
	static const char *const names[8] = {"a", "b", "c", "d", "e", "f", "g", "h"};
	for (int i = 0; i < 8; i++)
		roots[i] = make_account(names[i]);

	test_fanout_latency(roots[0], roots[1]);
	test_coalesce(roots[0], roots[1], roots[2]);
	test_remove_in_callback(roots[0], roots[1], roots[2]);
	test_refcount(roots[0], roots[1]);
	test_scale();
	test_missing(roots[0]);
	test_file_replaced(roots[0]);
	test_poll_fallback(roots[3]);
	test_overflow(roots[4], roots[5], roots[6]);
	test_writer_cost(roots[7]);
	test_destroy_with_watches(roots[0], roots[1]);
	CHECK_INT(accounts(), 0);

	notify_destroy(&nt);
	CHECK(nt == NULL);
	event_base_free(base);
	for (int i = 0; i < 8; i++)
		free(roots[i]);
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return test_report();
}

#include "lib/config.h"
#include "lib/xmalloc.h"
#include "test.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BASE "/etc/yubin"

static struct yubin_config *parse(const char *text, struct buf *errors)
{
	struct yubin_config *config = NULL;
	buf_reset(errors);
	config_parse(text, strlen(text), "test.conf", BASE, &config, errors);
	return config;
}

static const struct config_setting *setting(const char *section, const char *key)
{
	for (size_t i = 0; i < config_settings_count; i++) {
		if (strcmp(config_settings[i].section, section) == 0 &&
		    strcmp(config_settings[i].key, key) == 0)
			return &config_settings[i];
	}
	return NULL;
}

static const void *section_base(const struct yubin_config *c, const char *section,
				const char *arg)
{
	if (strcmp(section, "listener") == 0) {
		for (const struct config_listener *l = c->listeners; l != NULL; l = l->next)
			if (strcmp(l->name, arg) == 0)
				return l;
		return NULL;
	}
	if (strcmp(section, "certificate") == 0) {
		for (const struct config_certificate *t = c->tls.certificates; t != NULL; t = t->next)
			if (strcmp(t->hostname, arg) == 0)
				return t;
		return NULL;
	}
	return c;
}

/* A parsed value as text, read through the table's offsets. */
static const char *get(const struct yubin_config *c, const char *section,
		       const char *arg, const char *key, char *buf, size_t size)
{
	const struct config_setting *s = setting(section, key);
	const char *base = section_base(c, section, arg);
	uint64_t n64 = 0;
	uint32_t n32 = 0;
	int id;
	if (s == NULL || base == NULL)
		return "(no such setting)";
	base += s->offset;
	switch (s->type) {
	case CONFIG_TYPE_STRING:
	case CONFIG_TYPE_PATH:
	case CONFIG_TYPE_ENUM:
		return *(char *const *)(const void *)base;
	case CONFIG_TYPE_BOOL:
		return *(const bool *)(const void *)base ? "yes" : "no";
	case CONFIG_TYPE_ENUM_ID:
		memcpy(&id, base, sizeof(id));
		return s->words[id];
	default:
		if (s->size == sizeof(n32)) {
			memcpy(&n32, base, sizeof(n32));
			n64 = n32;
		} else {
			memcpy(&n64, base, sizeof(n64));
		}
		snprintf(buf, size, "%" PRIu64, n64);
		return buf;
	}
}

static void test_table(void)
{
	for (size_t i = 0; i < config_settings_count; i++) {
		const struct config_setting *s = &config_settings[i];
		bool section_known = false;
		for (size_t j = 0; j < config_sections_count; j++)
			section_known |= strcmp(config_sections[j].name, s->section) == 0;
		CHECK(section_known);
		CHECK(s->explanation != NULL && strchr(s->explanation, '\n') == NULL);
		CHECK(setting(s->section, s->key) == s);   /* no key twice */
		if ((s->flags & CONFIG_FLAG_REQUIRED) != 0)
			CHECK(s->def == NULL && s->compute_default == NULL);
		else
			CHECK(s->def != NULL);
		if (s->type == CONFIG_TYPE_ENUM || s->type == CONFIG_TYPE_ENUM_ID)
			CHECK(s->words != NULL && s->words[0] != NULL);
		if (s->type == CONFIG_TYPE_ENUM_ID)
			CHECK_INT(s->size, sizeof(int));
		if (s->type == CONFIG_TYPE_UINT && s->size == sizeof(uint32_t))
			CHECK(s->max != 0 && s->max <= UINT32_MAX);
		if (s->type == CONFIG_TYPE_SIZE || s->type == CONFIG_TYPE_DURATION)
			CHECK_INT(s->size, sizeof(uint64_t));
	}
}

static void test_defaults(void)
{
	struct buf errors = BUF_INIT(0);
	struct yubin_config *c = parse("", &errors);
	CHECK(c != NULL);
	CHECK_STR(buf_str(&errors), "");
	if (c == NULL)
		return;
	CHECK(c->server.hostname != NULL && c->server.hostname[0] != '\0');
	CHECK_STR(c->server.data_dir, BASE "/data");
	CHECK_STR(c->server.user, "");
	CHECK_INT(c->server.workers, 0);
	CHECK_INT(c->server.shutdown_grace, 30000);
	CHECK_INT(c->server.max_connections, 10000);
	CHECK_INT(c->server.max_connections_per_ip, 50);
	CHECK_STR(c->log.level, "info");
	CHECK_STR(c->log.target, "stderr");
	CHECK_STR(c->tls.cert_file, BASE "/data/tls/cert.pem");
	CHECK_STR(c->tls.key_file, BASE "/data/tls/key.pem");
	CHECK_STR(c->tls.min_version, "1.2");
	CHECK_STR(c->tls.ciphers, "");
	CHECK(!c->auth.allow_plaintext);
	CHECK_INT(c->auth.failure_delay, 2000);
	CHECK_INT(c->mail.quota_bytes, 0);
	CHECK(!c->mail.quota_tempfail);
	CHECK_INT(c->mail.max_message_size, 35 << 20);
	CHECK_INT(c->pop3.login_delay, 0);
	CHECK_INT(c->pop3.idle_timeout, 600000);
	CHECK_INT(c->pop3.max_bad_commands, 10);
	CHECK(c->listeners == NULL && c->tls.certificates == NULL);
	CHECK_STR(c->path, "test.conf");
	CHECK_STR(c->base_dir, BASE);
	char *p = config_data_path(c, "tls/cert.pem");
	CHECK_STR(p, BASE "/data/tls/cert.pem");
	free(p);
	config_free(&c);
	CHECK(c == NULL);
	config_free(&c);   /* accepts NULL */
	/* a config in / gives /data, not //data */
	CHECK_INT(config_parse("", 0, "root.conf", "/", &c, &errors), 0);
	CHECK_STR(c != NULL ? c->server.data_dir : NULL, "/data");
	config_free(&c);
	buf_free(&errors);
}

static const struct {
	const char *text;
	const char *section, *arg, *key;
	const char *want;
} good[] = {
	{ "[pop3]\nidle_timeout = 30s\n", "pop3", NULL, "idle_timeout", "30000" },
	{ "[pop3]\nidle_timeout = 1s", "pop3", NULL, "idle_timeout", "1000" },
	{ "[pop3]\nlogin_delay = 10m\n", "pop3", NULL, "login_delay", "600000" },
	{ "[server]\nshutdown_grace = 500ms\n", "server", NULL, "shutdown_grace", "500" },
	{ "[server]\nworkers = 256\n", "server", NULL, "workers", "256" },
	{ "[server]\nhostname = mx1.example.ac.jp\n", "server", NULL, "hostname", "mx1.example.ac.jp" },
	{ "[mail]\nquota = 1G\n", "mail", NULL, "quota", "1073741824" },
	{ "[mail]\nquota_messages = 4294967295\n", "mail", NULL, "quota_messages", "4294967295" },
	{ "[mail]\nmax_message_size = 0\n", "mail", NULL, "max_message_size", "0" },
	{ "[mail]\nmax_message_size = 512k\n", "mail", NULL, "max_message_size", "524288" },
	{ "[mail]\nquota_tempfail = yes\n", "mail", NULL, "quota_tempfail", "yes" },
	{ "[auth]\nallow_plaintext = On\n", "auth", NULL, "allow_plaintext", "yes" },
	{ "[auth]\nfailure_delay = 60s\n", "auth", NULL, "failure_delay", "60000" },
	{ "[log]\nlevel = DEBUG\n", "log", NULL, "level", "debug" },
	{ "[tls]\nmin_version = 1.3\n", "tls", NULL, "min_version", "1.3" },
	/* paths: relative ones start at the config's folder */
	{ "[log]\ntarget = syslog\n", "log", NULL, "target", "syslog" },
	{ "[log]\ntarget = yubin.log\n", "log", NULL, "target", BASE "/yubin.log" },
	{ "[log]\ntarget = /var/log/yubin.log\n", "log", NULL, "target", "/var/log/yubin.log" },
	{ "[server]\ndata_dir = /srv/mail\n", "server", NULL, "data_dir", "/srv/mail" },
	{ "[server]\ndata_dir = ../spool\n", "server", NULL, "data_dir", BASE "/../spool" },
	{ "[tls]\ncert = certs/a.pem\n", "tls", NULL, "cert", BASE "/certs/a.pem" },
	/* quoting and comments */
	{ "[tls]\nciphers = \"HIGH:!aNULL # kept\"\n", "tls", NULL, "ciphers", "HIGH:!aNULL # kept" },
	{ "[server]\nuser = \"a \\\"b\\\" \\\\c\" # comment\n", "server", NULL, "user", "a \"b\" \\c" },
	{ "[server]\nuser = \"\"\n", "server", NULL, "user", "" },
	{ "[server]\nuser = mail # the user\n", "server", NULL, "user", "mail" },
	{ "[server]\nuser = mail\t# tab, then comment\n", "server", NULL, "user", "mail" },
	{ "[server]\nuser = a#b\n", "server", NULL, "user", "a#b" },
	{ "[server]\nuser = # empty\n", "server", NULL, "user", "" },
	{ "# top\n  # indented\n\n[server] # here\n  user\t=\t x y  \n", "server", NULL, "user", "x y" },
	{ "[server]\r\nuser = crlf\r\n", "server", NULL, "user", "crlf" },
	{ "[ server ]\nuser=tight", "server", NULL, "user", "tight" },
	/* listeners and certificates */
	{ "[listener a]\nprotocol = pop3\nport = 110\n", "listener", "a", "tls", "starttls" },
	{ "[listener a]\nprotocol = pop3\nport = 110\n", "listener", "a", "address", "*" },
	{ "[listener a]\nprotocol = POP3\nport = 995\ntls = implicit\n",
	  "listener", "a", "protocol", "pop3" },
	{ "[listener a]\nprotocol = pop3\nport = 65535\ntls = none\naddress = ::1\n",
	  "listener", "a", "address", "::1" },
	{ "[certificate *.example.org]\ncert = c.pem\nkey = /k.pem\n",
	  "certificate", "*.example.org", "cert", BASE "/c.pem" },
};

static void test_good(void)
{
	struct buf errors = BUF_INIT(0);
	char buf[64];
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct yubin_config *c = parse(good[i].text, &errors);
		CHECK_STR(buf_str(&errors), "");
		if (c == NULL) {
			fprintf(stderr, "  in good[%zu]\n", i);
			continue;
		}
		CHECK_STR(get(c, good[i].section, good[i].arg, good[i].key, buf, sizeof(buf)),
			  good[i].want);
		config_free(&c);
	}
	buf_free(&errors);
}

static void test_lists(void)
{
	static const char text[] =
		"[listener pop3]\nprotocol = pop3\nport = 110\n"
		"[certificate b.example]\ncert = b.crt\nkey = b.key\n"
		"[listener pop3s]\nprotocol = pop3\nport = 995\ntls = implicit\n"
		"[listener local]\nprotocol = pop3\naddress = 127.0.0.1\nport = 1110\ntls = none\n"
		"[listener v6]\nprotocol = pop3\naddress = ::1\nport = 1110\n"
		"[certificate a.example]\ncert = /a.crt\nkey = /a.key\n";
	static const struct { const char *name; uint32_t port; enum tls_mode tls; } want[] = {
		{ "pop3", 110, TLS_MODE_STARTTLS }, { "pop3s", 995, TLS_MODE_IMPLICIT },
		{ "local", 1110, TLS_MODE_NONE }, { "v6", 1110, TLS_MODE_STARTTLS },
	};
	struct buf errors = BUF_INIT(0);
	struct yubin_config *c = parse(text, &errors);
	CHECK_STR(buf_str(&errors), "");
	if (c == NULL)
		return;
	const struct config_listener *l = c->listeners;
	for (size_t i = 0; i < 4; i++, l = l->next) {
		CHECK(l != NULL);
		if (l == NULL)
			break;
		CHECK_STR(l->name, want[i].name);
		CHECK_STR(l->protocol, "pop3");
		CHECK_INT(l->port, want[i].port);
		CHECK_INT(l->tls, want[i].tls);
	}
	CHECK(l == NULL);
	const struct config_certificate *t = c->tls.certificates;
	CHECK_STR(t->hostname, "b.example");
	CHECK_STR(t->cert_file, BASE "/b.crt");
	CHECK_STR(t->key_file, BASE "/b.key");
	CHECK_STR(t->next->hostname, "a.example");
	CHECK_STR(t->next->key_file, "/a.key");
	CHECK(t->next->next == NULL);
	config_free(&c);
	buf_free(&errors);
}

/* The text after "test.conf:LINE: " in the error line with that number. */
static const char *find_error(const char *errors, unsigned line)
{
	char prefix[64];
	size_t len = (size_t)snprintf(prefix, sizeof(prefix), "test.conf:%u: ", line);
	for (const char *s = errors; *s != '\0'; s = strchr(s, '\n') + 1) {
		if (strncmp(s, prefix, len) == 0)
			return s + len;
	}
	return NULL;
}

/* Every error is reported, each on its own line with the right number. */
static void test_errors(void)
{
	static const char text[] =
		"user = root\n"                            /* 1 */
		"[server]\n"
		"workers = 300\n"                          /* 3 */
		"workers = 2\n"                            /* 4 */
		"colour = blue\n"                          /* 5 */
		"[pop3]\n"
		"idle_timeout = ten\n"                     /* 7 */
		"[bogus]\n"                                /* 8 */
		"key = ignored under a bad header\n"
		"[mail extra]\n"                           /* 10 */
		"[listener]\n"                             /* 11 */
		"[listener pop3]\n"                        /* 12: port missing */
		"protocol = imap4\n"                       /* 13 */
		"address = 300.1.2.3\n"                    /* 14 */
		"[listener pop3]\n"                        /* 15 */
		"[listener other]\n"
		"protocol = pop3\n"
		"port = 70000\n"                           /* 18 */
		"[certificate mail.example.org]\n"         /* 19: key missing */
		"cert = a.pem\n"
		"[auth]\n"
		"failure_delay = 2m\n"                     /* 22 */
		"allow_plaintext = maybe\n"                /* 23 */
		"this is not a setting\n"                  /* 24 */
		"[log\n"                                   /* 25 */
		"[tls]\n"
		"ciphers = \"unterminated\n"               /* 27 */
		"key = \"a\" b\n"                          /* 28 */
		"[listener x1]\nprotocol = pop3\nport = 110\n"
		"[listener x2]\n"                          /* 32: clashes with x1 */
		"protocol = pop3\naddress = 127.0.0.1\nport = 110\n"
		"[server]\n"                               /* 36 */
		"[pop3]\nmax_bad_commands = 0\n"           /* 37, 38 */
		"[listener bad/name]\n"                    /* 39 */
		"[certificate a.example b]\n"              /* 40 */
		"= 3\n"                                    /* 41 */
		"[log]\nlevel = loud\n";                   /* 42, 43 */
	static const struct { unsigned line; const char *what; } want[] = {
		{ 1, "key 'user' outside any section" },
		{ 3, "bad value '300' for server.workers: must be at most 256" },
		{ 4, "server.workers given twice (first on line 3)" },
		{ 5, "unknown key 'colour' in [server] (known: hostname, data_dir, user, group, workers," },
		{ 7, "bad value 'ten' for pop3.idle_timeout: a duration like 30s, 10m, 1h, 30d" },
		{ 8, "unknown section [bogus] (known: server, log, tls, auth, mail, pop3, imap, "
		     "smtp, queue, dns, smtp_client, relay, transport, forward, virus, sieve, vacation, listener, certificate)" },
		{ 10, "[mail] takes no argument, found 'extra'" },
		{ 11, "[listener] needs a NAME" },
		{ 12, "missing required key 'port' in [listener pop3]" },
		{ 13, "bad value 'imap4' for [listener pop3] protocol: one of pop3" },
		{ 14, "bad value '300.1.2.3' for [listener pop3] address: an IPv4 or IPv6" },
		{ 15, "[listener pop3] given twice (first on line 12)" },
		{ 18, "bad value '70000' for [listener other] port: must be from 1 to 65535" },
		{ 19, "missing required key 'key' in [certificate mail.example.org]" },
		{ 22, "bad value '2m' for auth.failure_delay: must be at most 1m" },
		{ 23, "bad value 'maybe' for auth.allow_plaintext: yes or no" },
		{ 24, "expected 'key = value'" },
		{ 25, "section header without its closing ']'" },
		{ 27, "bad value for tls.ciphers: a quoted value without its closing" },
		{ 28, "bad value for tls.key: unexpected text after the closing" },
		{ 32, "[listener x2] listens on 127.0.0.1 port 110, which [listener x1] (line 29)" },
		{ 36, "[server] given twice (first on line 2)" },
		{ 37, "[pop3] given twice (first on line 6)" },
		{ 38, "bad value '0' for pop3.max_bad_commands: must be from 1 to 1000" },
		{ 39, "bad NAME 'bad/name' for [listener]" },
		{ 40, "a section header takes one word after its name" },
		{ 41, "a key is missing before '='" },
		{ 43, "bad value 'loud' for log.level: one of debug, info, warn, error" },
	};
	size_t n = sizeof(want) / sizeof(want[0]);
	struct buf errors = BUF_INIT(0);
	struct yubin_config *c = parse(text, &errors);
	CHECK(c == NULL);
	const char *e = buf_str(&errors);
	size_t lines = 0;
	for (const char *s = e; (s = strchr(s, '\n')) != NULL; s++)
		lines++;
	CHECK_INT(lines, n);
	/* sorted by line, whatever check found them */
	unsigned prev = 0;
	for (const char *s = e; *s != '\0'; s = strchr(s, '\n') + 1) {
		unsigned line = (unsigned)strtoul(s + strlen("test.conf:"), NULL, 10);
		CHECK(line >= prev);
		prev = line;
	}
	for (size_t i = 0; i < n; i++) {
		const char *at = find_error(e, want[i].line);
		if (at == NULL || strncmp(at, want[i].what, strlen(want[i].what)) != 0) {
			CHECK(!"error line missing or wrong");
			fprintf(stderr, "  want line %u: %s\nerrors were:\n%s",
				want[i].line, want[i].what, e);
		} else {
			CHECK(true);
		}
	}
	buf_free(&errors);
}

static void test_bad_lines(void)
{
	struct buf errors = BUF_INIT(0);
	struct buf text = BUF_INIT(0);
	struct yubin_config *c = NULL;
	buf_append_str(&text, "[server]\nuser = ");
	for (int i = 0; i < 5000; i++)
		buf_append_char(&text, 'x');
	buf_append_str(&text, "\nuser = ok\ngroup = a");
	buf_append_char(&text, '\0');
	buf_append_str(&text, "b\n");
	CHECK_INT(config_parse(text.data, text.len, "t", "/", &c, &errors), -1);
	CHECK(c == NULL);
	CHECK_STR(buf_str(&errors),
		  "t:2: line longer than 4096 bytes\n"
		  "t:4: line contains a NUL byte\n");
	/* exactly 4096 bytes is fine */
	buf_reset(&text);
	buf_reset(&errors);
	buf_append_str(&text, "[server]\nuser = ");
	while (text.len < 9 + 4096)
		buf_append_char(&text, 'y');
	CHECK_INT(config_parse(text.data, text.len, "t", "/", &c, &errors), 0);
	CHECK_INT(c != NULL ? strlen(c->server.user) : 0, 4096 - 7);
	config_free(&c);
	/* a caller's buffer that is full gets whole lines, never half ones */
	struct buf small = BUF_INIT(40);
	CHECK_INT(config_parse("x\ny\n", 4, "t", "/", &c, &small), -1);
	CHECK(small.len == 0 || small.data[small.len - 1] == '\n');
	buf_free(&small);
	buf_free(&text);
	buf_free(&errors);
}

static char *read_source_file(const char *relative)
{
	const char *root = getenv("YUBIN_SOURCE_ROOT");
	char *path = xasprintf("%s/%s", root != NULL ? root : "../../..", relative);
	FILE *f = fopen(path, "r");
	struct buf b = BUF_INIT(0);
	char chunk[4096];
	size_t n;
	free(path);
	if (f == NULL)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	return buf_steal(&b);
}

static void test_example(void)
{
	char *generated = NULL, *file = read_source_file("etc/yubin.conf.example");
	size_t len = 0;
	FILE *out = open_memstream(&generated, &len);
	struct buf errors = BUF_INIT(0);
	struct yubin_config *c = NULL;

	config_write_example(out);
	fclose(out);
	CHECK(file != NULL);
	CHECK(file != NULL && strcmp(file, generated) == 0);
	if (file == NULL || strcmp(file, generated) != 0) {
		/* What the table says the file must be: copy it over when the
		 * change was meant (cp yubin.conf.example.new etc/...). */
		FILE *f = fopen("yubin.conf.example.new", "w");
		if (f != NULL) {
			fputs(generated, f);
			fclose(f);
			printf("etc/yubin.conf.example differs from the settings table: "
			       "the table's version is in ./yubin.conf.example.new\n");
		}
	}
	CHECK_INT(config_parse(generated, len, "example", "/etc/yubin", &c, &errors), 0);
	CHECK_STR(buf_str(&errors), "");
	if (c != NULL) {
		CHECK_STR(c->listeners->name, "pop3");
		CHECK_INT(c->listeners->port, 110);
		CHECK_INT(c->listeners->tls, TLS_MODE_STARTTLS);
		CHECK_STR(c->listeners->next->name, "pop3s");
		CHECK_INT(c->listeners->next->port, 995);
		CHECK_INT(c->listeners->next->tls, TLS_MODE_IMPLICIT);
		CHECK(c->listeners->next->next == NULL);
	}
	config_free(&c);
	free(generated);
	free(file);
	buf_free(&errors);
}

static void test_docs(void)
{
	char *docs = read_source_file("docs/config.md");
	CHECK(docs != NULL);
	if (docs == NULL)
		return;
	for (size_t i = 0; i < config_settings_count; i++) {
		char *key = xasprintf("`%s`", config_settings[i].key);
		if (strstr(docs, key) == NULL) {
			CHECK(!"key missing from docs/config.md");
			fprintf(stderr, "  %s\n", key);
		}
		free(key);
	}
	for (size_t i = 0; i < config_sections_count; i++) {
		char *section = xasprintf("[%s", config_sections[i].name);
		CHECK(strstr(docs, section) != NULL);
		free(section);
	}
	CHECK(strstr(docs, "yubin check") != NULL);
	free(docs);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f != NULL) {
		fputs(text, f);
		fclose(f);
	}
}

/* config_load reads the file, resolves paths against its folder and checks
 * that the TLS files a TLS listener needs are readable. */
static void test_load(void)
{
	char dir[] = "/tmp/yubin-test-config-XXXXXX";
	struct buf errors = BUF_INIT(0);
	struct yubin_config *c = NULL;
	CHECK(mkdtemp(dir) != NULL);
	char *conf = xasprintf("%s/yubin.conf", dir);
	write_file(conf, "[listener p]\nprotocol = pop3\nport = 1110\n"
			 "[certificate x.example]\nkey = x.key\ncert = /dev/null\n");
	CHECK_INT(config_load(conf, &c, &errors), -1);
	char *want[] = {
		xasprintf("%s/yubin.conf:1: cannot read tls.cert '%s/data/tls/cert.pem' "
			  "(the default; [listener p] uses TLS): No such file or directory\n",
			  dir, dir),
		xasprintf("%s/yubin.conf:1: cannot read tls.key '%s/data/tls/key.pem' "
			  "(the default; [listener p] uses TLS): No such file or directory\n",
			  dir, dir),
		xasprintf("%s/yubin.conf:5: cannot read [certificate x.example] key '%s/x.key': "
			  "No such file or directory\n", dir, dir),
		xasprintf("%s/yubin.conf:6: cannot read [certificate x.example] cert "
			  "'/dev/null': not a regular file\n", dir),
	};
	size_t want_len = 0;
	for (size_t i = 0; i < 4; i++) {
		CHECK(strstr(buf_str(&errors), want[i]) != NULL);
		want_len += strlen(want[i]);
		free(want[i]);
	}
	CHECK_INT(errors.len, want_len);
	if (errors.len != want_len)
		fprintf(stderr, "errors were:\n%s", buf_str(&errors));

	/* the same files, now present, or no TLS listener at all: fine */
	char *tls = xasprintf("%s/data/tls", dir);
	char *data = xasprintf("%s/data", dir);
	char *files[] = {
		xasprintf("%s/cert.pem", tls), xasprintf("%s/key.pem", tls),
		xasprintf("%s/x.key", dir),
	};
	CHECK_INT(mkdir(data, 0700), 0);
	CHECK_INT(mkdir(tls, 0700), 0);
	for (size_t i = 0; i < 3; i++)
		write_file(files[i], "pem\n");
	buf_reset(&errors);
	CHECK_INT(config_load(conf, &c, &errors), -1);   /* /dev/null: not a file */
	CHECK(strstr(buf_str(&errors), "'/dev/null': not a regular file\n") != NULL);
	CHECK(strchr(buf_str(&errors), '\n') == buf_str(&errors) + errors.len - 1);
	write_file(conf, "[listener p]\nprotocol = pop3\nport = 1110\n"
			 "[certificate x.example]\nkey = x.key\ncert = x.key\n");
	buf_reset(&errors);
	CHECK_INT(config_load(conf, &c, &errors), 0);
	CHECK_STR(buf_str(&errors), "");
	if (c != NULL) {
		CHECK_STR(c->path, conf);
		CHECK_STR(c->base_dir, dir);
		CHECK_STR(c->tls.key_file, files[1]);
	}
	config_free(&c);
	for (size_t i = 0; i < 3; i++) {
		unlink(files[i]);
		free(files[i]);
	}
	write_file(conf, "[listener p]\nprotocol = pop3\nport = 1110\ntls = none\n");
	CHECK_INT(config_load(conf, &c, &errors), 0);
	config_free(&c);

	buf_reset(&errors);
	unlink(conf);
	CHECK_INT(config_load(conf, &c, &errors), -1);
	CHECK(strstr(buf_str(&errors), ": cannot read: No such file or directory") != NULL);
	rmdir(tls);
	rmdir(data);
	rmdir(dir);
	free(tls);
	free(data);
	free(conf);
	buf_free(&errors);
}

int main(void)
{
	test_table();
	test_defaults();
	test_good();
	test_lists();
	test_errors();
	test_bad_lines();
	test_example();
	test_docs();
	test_load();
	return test_report();
}

/* yubin send: a sendmail-like command for scripts. The message on standard
 * input goes into the outbound queue (smtp/queue.h), which the queue
 * runner delivers: local recipients into their mailboxes, others over SMTP.
 * It exits 0 only when the message is durably queued. */
#include <errno.h>
#include <pwd.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "mime/mime.h"
#include "smtp/queue.h"

#define SEND_CHUNK 65536
#define SEND_MAX_RCPTS 1000

struct send_args {
	const char *sender;     /* -f, or NULL */
	bool from_headers;      /* -t */
	char **rcpts;
	size_t rcpt_count;
};

struct send_msg {
	struct buf text;        /* CRLF line ends */
	size_t header_len;      /* up to and with the empty line's CRLF */
};

/* sendmail's options (-f SENDER, -fSENDER, -t, and -i/-oi, which change
 * nothing here) come out of argv; the rest is left for cli_args(). */
static int send_options(struct cli *cli, int *argc, char **argv, struct send_args *a)
{
	int out = 0;
	for (int i = 0; i < *argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "--") == 0) {
			while (i < *argc)
				argv[out++] = argv[i++];
			break;
		}
		if (strcmp(arg, "-t") == 0) {
			a->from_headers = true;
		} else if (strcmp(arg, "-i") == 0 || strcmp(arg, "-oi") == 0) {
			continue;
		} else if (strncmp(arg, "-f", 2) == 0) {
			if (arg[2] == '\0' && i + 1 >= *argc)
				return cli_usage_error(cli, "option -f needs a sender");
			a->sender = arg[2] != '\0' ? arg + 2 : argv[++i];
		} else {
			argv[out++] = argv[i];
		}
	}
	*argc = out;
	return 0;
}

/* Standard input with every line end made CRLF. */
static int send_read(struct send_msg *m, uint64_t max)
{
	static char chunk[SEND_CHUNK];
	ssize_t n;
	char prev = '\0';
	while ((n = read(STDIN_FILENO, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			cli_error("cannot read the message: %s", strerror(errno));
			return EX_IOERR;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (chunk[i] == '\n' && prev != '\r')
				buf_append_char(&m->text, '\r');
			if (buf_append_char(&m->text, chunk[i]) < 0 ||
			    (max != 0 && m->text.len > max)) {
				cli_error("the message is larger than %llu bytes",
				          (unsigned long long)max);
				return EX_NOPERM;
			}
			prev = chunk[i];
		}
	}
	if (m->text.len == 0) {
		cli_error("empty message");
		return EX_DATAERR;
	}
	if (prev != '\n')
		buf_append_str(&m->text, "\r\n");
	return 0;
}

static void find_header_end(struct send_msg *m)
{
	const char *t = buf_str(&m->text);
	if (strncmp(t, "\r\n", 2) == 0) {
		m->header_len = 2;
		return;
	}
	const char *end = strstr(t, "\r\n\r\n");
	m->header_len = end != NULL ? (size_t)(end - t) + 4 : m->text.len;
}

static bool address_ok(const char *a)
{
	const char *at = strrchr(a, '@');
	if (at == NULL || at == a || at[1] == '\0' || strlen(a) > 254)
		return false;
	for (const unsigned char *p = (const unsigned char *)a; *p != '\0'; p++) {
		if (*p <= ' ' || *p == 0x7f || *p == '<' || *p == '>')
			return false;
	}
	return true;
}

static int add_rcpt(struct send_args *a, const char *address)
{
	char esc[128];
	if (!address_ok(address)) {
		cli_error("\"%s\" is not a full address (user@domain)",
		          log_escape(address, strlen(address), esc, sizeof(esc)));
		return EX_DATAERR;
	}
	if (a->rcpt_count == SEND_MAX_RCPTS) {
		cli_error("more than %d recipients", SEND_MAX_RCPTS);
		return EX_DATAERR;
	}
	a->rcpts = xreallocarray(a->rcpts, a->rcpt_count + 1, sizeof(*a->rcpts));
	a->rcpts[a->rcpt_count++] = xstrdup(address);
	return 0;
}

/* Each header field named `name` (several may exist): its value. */
static int header_rcpts(struct send_args *a, const char *header, size_t len, const char *name)
{
	size_t nlen = strlen(name);
	for (size_t pos = 0; pos < len;) {
		const char *line = header + pos;
		size_t end = pos;
		/* The field runs to a CRLF not followed by white space. */
		do {
			const char *nl = memchr(header + end, '\n', len - end);
			end = nl != NULL ? (size_t)(nl - header) + 1 : len;
		} while (end < len && (header[end] == ' ' || header[end] == '\t'));
		if (end - pos > nlen && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
			struct mime_address *list = mime_address_parse(line + nlen + 1,
			                                               end - pos - nlen - 1, 1000);
			for (struct mime_address *ad = list; ad != NULL; ad = ad->next) {
				if (ad->mailbox == NULL || ad->host == NULL)
					continue;
				char *addr = xasprintf("%s@%s", ad->mailbox, ad->host);
				int ret = add_rcpt(a, addr);
				free(addr);
				if (ret != 0) {
					mime_address_free(&list);
					return ret;
				}
			}
			mime_address_free(&list);
		}
		pos = end;
	}
	return 0;
}

/* Removes every Bcc field (with its continuation lines) from the header. */
static void remove_bcc(struct send_msg *m)
{
	struct buf out = BUF_INIT(0);
	const char *t = buf_str(&m->text);
	bool skipping = false;
	size_t pos = 0;
	while (pos < m->header_len) {
		const char *nl = memchr(t + pos, '\n', m->header_len - pos);
		size_t end = nl != NULL ? (size_t)(nl - t) + 1 : m->header_len;
		bool cont = t[pos] == ' ' || t[pos] == '\t';
		if (!cont)
			skipping = strncasecmp(t + pos, "Bcc:", 4) == 0;
		if (!skipping)
			buf_append(&out, t + pos, end - pos);
		pos = end;
	}
	size_t header_len = out.len;
	buf_append(&out, t + m->header_len, m->text.len - m->header_len);
	buf_free(&m->text);
	m->text = out;
	m->header_len = header_len;
}

static bool has_field(const struct send_msg *m, const char *name)
{
	char *v = mime_header_get(buf_str(&m->text), m->header_len, name);
	free(v);
	return v != NULL;
}

/* Date, Message-ID and From, when the message lacks them (RFC 5322 3.6). */
static void add_missing_fields(struct send_msg *m, const struct cli *cli, const char *sender)
{
	struct buf add = BUF_INIT(0);
	time_t now = time(NULL);
	struct tm tm;
	char date[64];
	if (!has_field(m, "Date")) {
		localtime_r(&now, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
		buf_printf(&add, "Date: %s\r\n", date);
	}
	if (!has_field(m, "Message-ID"))
		buf_printf(&add, "Message-ID: <%lld.%ld.send@%s>\r\n", (long long)now, (long)getpid(),
		           cli->config->server.hostname);
	if (!has_field(m, "From") && sender[0] != '\0')
		buf_printf(&add, "From: <%s>\r\n", sender);
	m->header_len += add.len;
	buf_append(&add, buf_str(&m->text), m->text.len);
	buf_free(&m->text);
	m->text = add;
}

static char *default_sender(const struct cli *cli)
{
	struct passwd *pw = getpwuid(getuid());
	return xasprintf("%s@%s", pw != NULL ? pw->pw_name : "nobody", cli->config->server.hostname);
}

static bool has_8bit(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] >= 0x80)
			return true;
	}
	return false;
}

static int send_queue(struct cli *cli, const struct send_args *a, const struct send_msg *m,
                      const char *sender, uid_t uid)
{
	const char *error;
	struct queue_rcpt *rcpts = xcalloc(a->rcpt_count, sizeof(*rcpts));
	bool utf8 = has_8bit(sender, strlen(sender));
	for (size_t i = 0; i < a->rcpt_count; i++) {
		rcpts[i].address = a->rcpts[i];
		utf8 = utf8 || has_8bit(a->rcpts[i], strlen(a->rcpts[i]));
	}
	char *origin = xasprintf("send uid=%ld", (long)uid);
	struct queue_envelope env = {
	        .sender = (char *)sender,
	        .body = has_8bit(buf_str(&m->text), m->text.len) ? QUEUE_BODY_8BITMIME
	                                                         : QUEUE_BODY_7BIT,
	        .smtputf8 = utf8, .rcpts = rcpts, .rcpt_count = a->rcpt_count, .origin = origin,
	};
	char *id = NULL;
	struct queue_msg *msg = queue_create(cli->config, &env, &error);
	int ret = msg == NULL ? -1 : queue_write(msg, buf_str(&m->text), m->text.len, &error);
	if (ret == 0)
		ret = queue_commit(&msg, &id, &error);
	queue_abort(&msg);
	if (ret == 0)
		printf("queued as %s\n", id);
	else
		cli_error("cannot queue the message: %s", error);
	free(id);
	free(origin);
	free(rcpts);
	return ret == 0 ? 0 : EX_TEMPFAIL;
}

static int send_run(struct cli *cli, struct send_args *a, uid_t uid)
{
	struct send_msg m = { .text = BUF_INIT(0) };
	char *sender = a->sender != NULL ? xstrdup(a->sender) : default_sender(cli);
	int ret = send_read(&m, cli->config->mail.max_message_size);
	if (ret == 0) {
		find_header_end(&m);
		if (a->from_headers) {
			const char *h = buf_str(&m.text);
			static const char *const fields[] = { "To", "Cc", "Bcc" };
			for (size_t i = 0; i < 3 && ret == 0; i++)
				ret = header_rcpts(a, h, m.header_len, fields[i]);
			remove_bcc(&m);
		}
	}
	if (ret == 0 && a->rcpt_count == 0)
		ret = cli_usage_error(cli, "no recipients");
	if (ret == 0 && sender[0] != '\0' && !address_ok(sender))
		ret = cli_usage_error(cli, "the sender must be a full address (user@domain)");
	if (ret == 0) {
		add_missing_fields(&m, cli, sender);
		ret = send_queue(cli, a, &m, sender, uid);
	}
	free(sender);
	buf_free(&m.text);
	return ret;
}

static int cmd_send(struct cli *cli, int argc, char **argv)
{
	struct send_args a = { 0 };
	uid_t uid = getuid();
	int ret = send_options(cli, &argc, argv, &a);
	if (ret == 0)
		ret = cli_args(cli, &argc, argv, NULL, 0, -1);
	for (int i = 0; ret == 0 && i < argc; i++)
		ret = add_rcpt(&a, argv[i]);
	if (ret == 0)
		ret = cli_open_dir(cli, EX_TEMPFAIL);
	if (ret == 0)
		ret = send_run(cli, &a, uid);
	for (size_t i = 0; i < a.rcpt_count; i++)
		free(a.rcpts[i]);
	free(a.rcpts);
	return ret;
}

const struct cli_command cli_cmd_send = {
        .name = "send",
        .run = cmd_send,
        .summary = "Queue a message from standard input for delivery (sendmail-like)",
        .usage = "usage: yubin [-c FILE] send [-f SENDER] [-t] [-i] [--] [RECIPIENT...]\n",
        .help = "Reads one message from standard input and puts it into the outbound\n"
                "queue; the queue runner of \"yubin serve\" delivers it: to mailboxes\n"
                "of hosted domains directly, to other domains over SMTP, with retries\n"
                "and a bounce to the sender when it fails. Line ends are made CRLF.\n"
                "Date, Message-ID and From are added when the message has none.\n"
                "\n"
                "Options:\n"
                "  -f SENDER   the envelope sender (bounces go there); \"\" for the null\n"
                "              sender. Default: the invoking user @ [server] hostname\n"
                "  -t          also take recipients from the To, Cc and Bcc fields,\n"
                "              and remove the Bcc fields from the message\n"
                "  -i, -oi     accepted for sendmail compatibility (a line with a\n"
                "              single dot never ends the message here)\n"
                "\n"
                "Exit status:\n"
                "  0   the message is durably in the queue (printed: its queue ID)\n"
                "  64  usage error (no recipients, unknown option, bad sender)\n"
                "  65  the message is empty or a recipient is not user@domain\n"
                "  74  standard input could not be read\n"
                "  75  the config, the directory or the queue cannot be used: retry\n"
                "  77  larger than [mail] max_message_size\n"
                "\n"
                "Examples:\n"
                "  yubin -c /srv/mail/yubin.conf send bob@example.org < message.eml\n"
                "  printf 'To: bob@example.org\\nSubject: hi\\n\\nhello\\n' |\n"
                "    yubin -c /srv/mail/yubin.conf send -t -f alice@example.ac.jp\n",
};

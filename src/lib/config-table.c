/* The settings table: every key of yubin.conf, its type, default, bounds and
 * place in the structs of config.h. The parser (config.c), the example file
 * (config_write_example below) and the docs test all read this one table. */
#include "lib/config.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#define SECONDS(n) ((uint64_t)(n) * 1000)

static const char *const log_levels[] = { "debug", "info", "warn", "error", NULL };
static const char *const log_words[] = { "stderr", "syslog", NULL };
static const char *const tls_versions[] = { "1.2", "1.3", NULL };
/* Indexed by enum tls_mode. */
static const char *const tls_modes[] = { "none", "starttls", "implicit", NULL };
static const char *const smtp_tls_policies[] = { "none", "may", "encrypt", "verify", NULL };
static const char *const ca_words[] = { "system", NULL };
static const char *const virus_failure_words[] = { "tempfail", "accept", NULL };

/* A later protocol adds its name here and nowhere else in the config. */
const char *const config_protocols[] = { "pop3", "imap", "smtp", "submission", "managesieve",
					  NULL };

static bool is_host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static int check_hostname(const char *value, const char **error_r)
{
	size_t len = strlen(value);
	if (len == 0 || len > 253 || value[0] == '.' || value[0] == '-') {
		*error_r = "a host name like mail.example.edu";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		if (!is_host_char(value[i])) {
			*error_r = "a host name like mail.example.edu";
			return -1;
		}
	}
	return 0;
}

/* gethostname() may give a name the check refuses (an underscore, say):
 * then "localhost", and the operator sets hostname. */
static const char *machine_hostname(char *buf, size_t size)
{
	const char *error;
	if (gethostname(buf, size) < 0)
		return "localhost";
	buf[size - 1] = '\0';
	return check_hostname(buf, &error) == 0 ? buf : "localhost";
}

static int check_address(const char *value, const char **error_r)
{
	unsigned char addr[sizeof(struct in6_addr)];
	if (strcmp(value, "*") == 0 || inet_pton(AF_INET, value, addr) == 1 ||
	    inet_pton(AF_INET6, value, addr) == 1)
		return 0;
	*error_r = "an IPv4 or IPv6 address like 192.0.2.1 or ::1, or * for all";
	return -1;
}

static int check_listener_name(const char *arg, const char **error_r)
{
	size_t len = strlen(arg);
	if (len == 0 || len > 64 ||
	    strspn(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			"0123456789._-") != len) {
		*error_r = "a listener name is 1-64 letters, digits, '.', '_' or '-'";
		return -1;
	}
	return 0;
}

static int check_certificate_host(const char *arg, const char **error_r)
{
	const char *host = strncmp(arg, "*.", 2) == 0 ? arg + 2 : arg;
	if (check_hostname(host, error_r) < 0) {
		*error_r = "a certificate host name like mail.example.edu or *.example.edu";
		return -1;
	}
	return 0;
}

/* "key=value" entries separated by commas or spaces ([transport] routes,
 * [smtp_client] tls_policy_map); the SMTP client parses the values. */
static int check_domain_map(const char *value, const char **error_r)
{
	const char *p = value;
	while (*p != '\0') {
		size_t len = strcspn(p, ", \t");
		const char *eq = memchr(p, '=', len);
		if (len > 0 && (eq == NULL || eq == p || eq == p + len - 1)) {
			*error_r = "entries like example.org=value, separated by commas";
			return -1;
		}
		p += len;
		p += strspn(p, ", \t");
	}
	return 0;
}

/* "80,95": whole percentages from 1 to 100 ([mail] quota_warnings). */
static int check_percentages(const char *value, const char **error_r)
{
	const char *p = value + strspn(value, ", ");
	while (*p != '\0') {
		size_t len = strspn(p, "0123456789");
		unsigned n = 0;
		for (size_t i = 0; i < len && i < 4; i++)
			n = n * 10 + (unsigned)(p[i] - '0');
		if (len == 0 || len > 3 || n < 1 || n > 100 ||
		    (p[len] != '\0' && p[len] != ',' && p[len] != ' ')) {
			*error_r = "percentages from 1 to 100 separated by commas, like 80,95";
			return -1;
		}
		p += len;
		p += strspn(p, ", ");
	}
	return 0;
}

static int check_dns_servers(const char *value, const char **error_r)
{
	if (strspn(value, "0123456789abcdefABCDEF.:[], ") != strlen(value)) {
		*error_r = "IP addresses with optional ports, like 127.0.0.1:5353,[::1]:53";
		return -1;
	}
	return 0;
}

const struct config_section_def config_sections[] = {
	{ "server", CONFIG_SECTION_SINGLE, NULL, NULL,
	  "The server as a whole: its name, data folder, user, processes and limits." },
	{ "log", CONFIG_SECTION_SINGLE, NULL, NULL,
	  "Where log lines go and how many." },
	{ "tls", CONFIG_SECTION_SINGLE, NULL, NULL,
	  "The default certificate and the TLS versions and ciphers offered." },
	{ "auth", CONFIG_SECTION_SINGLE, NULL, NULL,
	  "Logins, for every protocol." },
	{ "mail", CONFIG_SECTION_SINGLE, NULL, NULL,
	  "Limits on messages and mailboxes." },
	{ "pop3", CONFIG_SECTION_SINGLE, NULL, NULL,
	  "The POP3 server (RFC 1939)." },
	{ "imap", CONFIG_SECTION_SINGLE, NULL, NULL,
	  "The IMAP server (RFC 9051, RFC 3501)." },
	{ "smtp", CONFIG_SECTION_SINGLE, NULL, NULL,
	  "The SMTP server: MX (RFC 5321) and submission (RFC 6409)." },
	{ "queue", CONFIG_SECTION_SINGLE, NULL, NULL,
	  "The outbound queue: retries, delay warnings and bounces (RFC 3464)." },
	{ "dns", CONFIG_SECTION_SINGLE, NULL, NULL,
	  "The resolver of the SMTP client (MX, A and AAAA lookups)." },
	{ "smtp_client", CONFIG_SECTION_SINGLE, NULL, NULL,
	  "The outbound SMTP client: TLS policy, timeouts, connection reuse." },
	{ "relay", CONFIG_SECTION_SINGLE, NULL, NULL,
	  "A smarthost that takes all outbound mail instead of MX lookups." },
	{ "transport", CONFIG_SECTION_SINGLE, NULL, NULL,
	  "Per-domain next hops that override the relay and MX lookups." },
	{ "forward", CONFIG_SECTION_SINGLE, NULL, NULL,
	  "Forwarding set per account (docs/forwarding.md): limits and sender rewriting (SRS)." },
	{ "virus", CONFIG_SECTION_SINGLE, NULL, NULL,
	  "Virus scanning of every message before it is stored or relayed (docs/virus.md)." },
	{ "sieve", CONFIG_SECTION_SINGLE, NULL, NULL,
	  "Sieve filters run at delivery (docs/sieve.md): limits on scripts and their actions." },
	{ "vacation", CONFIG_SECTION_SINGLE, NULL, NULL,
	  "Vacation auto-replies (RFC 5230, RFC 3834; docs/vacation.md)." },
	{ "listener", CONFIG_SECTION_LISTENER, "NAME", check_listener_name,
	  "is one listening socket; repeat the section for each port. Ports below "
	  "1024 are opened by the master before it drops its privileges." },
	{ "certificate", CONFIG_SECTION_CERTIFICATE, "HOSTNAME",
	  check_certificate_host,
	  "is the certificate for clients that ask for HOSTNAME (SNI); others get [tls] cert." },
};
const size_t config_sections_count = sizeof(config_sections) / sizeof(config_sections[0]);

#define FIELD(type_, field_) \
	.offset = offsetof(type_, field_), .size = sizeof(((type_ *)0)->field_)
#define MAIN(section_, key_, type_, field_) \
	.section = section_, .key = key_, .type = CONFIG_TYPE_##type_, \
	FIELD(struct yubin_config, field_)
#define LISTENER(key_, type_, field_) \
	.section = "listener", .key = key_, .type = CONFIG_TYPE_##type_, \
	FIELD(struct config_listener, field_)
#define CERTIFICATE(key_, field_) \
	.section = "certificate", .key = key_, .type = CONFIG_TYPE_PATH, \
	FIELD(struct config_certificate, field_)

const struct config_setting config_settings[] = {
	{ MAIN("server", "hostname", STRING, server.hostname),
	  .def = "mail.example.edu", .compute_default = machine_hostname,
	  .check = check_hostname,
	  .explanation = "The name in greetings and Received: lines (default: this machine's name)." },
	{ MAIN("server", "data_dir", PATH, server.data_dir), .def = "data",
	  .explanation = "The folder that holds mail, the directory database and the queue." },
	{ MAIN("server", "user", STRING, server.user), .def = "",
	  .explanation = "The user to run as; empty keeps the starting user "
			 "(must be set when started as root)." },
	{ MAIN("server", "group", STRING, server.group), .def = "",
	  .explanation = "The group to run as; empty means the user's own group." },
	{ MAIN("server", "workers", UINT, server.workers), .def = "0", .max = 256,
	  .explanation = "Worker processes serving connections; 0 means one per CPU core." },
	{ MAIN("server", "shutdown_grace", DURATION, server.shutdown_grace), .def = "30s",
	  .explanation = "On shutdown, how long open sessions may finish before they are closed." },
	{ MAIN("server", "max_connections", UINT, server.max_connections), .def = "10000",
	  .min = 1, .max = 1000000,
	  .explanation = "Connections open at once, over all listeners and workers." },
	{ MAIN("server", "max_connections_per_ip", UINT, server.max_connections_per_ip),
	  .def = "50", .min = 1, .max = 1000000,
	  .explanation = "Connections open at once from one client address." },

	{ MAIN("log", "level", ENUM, log.level), .def = "info", .words = log_levels,
	  .explanation = "The least important kind of line that is written." },
	{ MAIN("log", "target", PATH, log.target), .def = "stderr", .words = log_words,
	  .explanation = "stderr, syslog (facility mail) or a file that lines are appended to." },

	{ MAIN("tls", "cert", PATH, tls.cert_file), .def = "data/tls/cert.pem",
	  .explanation = "The certificate chain (PEM), server certificate first." },
	{ MAIN("tls", "key", PATH, tls.key_file), .def = "data/tls/key.pem",
	  .explanation = "The private key (PEM) of that certificate." },
	{ MAIN("tls", "min_version", ENUM, tls.min_version), .def = "1.2",
	  .words = tls_versions,
	  .explanation = "The oldest TLS version accepted." },
	{ MAIN("tls", "ciphers", STRING, tls.ciphers), .def = "",
	  .explanation = "TLS 1.2 cipher list in OpenSSL syntax; empty keeps OpenSSL's default." },
	{ MAIN("tls", "ciphersuites", STRING, tls.ciphersuites), .def = "",
	  .explanation = "TLS 1.3 cipher suites in OpenSSL syntax; empty keeps OpenSSL's default." },

	{ MAIN("auth", "allow_plaintext", BOOL, auth.allow_plaintext), .def = "no",
	  .explanation = "Allow logins on connections without TLS (no: clients must use TLS first)." },
	{ MAIN("auth", "failure_delay", DURATION, auth.failure_delay), .def = "2s",
	  .max = SECONDS(60),
	  .explanation = "How long a failed login waits before it is answered." },

	{ MAIN("mail", "quota", SIZE, mail.quota_bytes), .def = "0",
	  .explanation = "Mailbox size for new accounts; 0 means unlimited." },
	{ MAIN("mail", "quota_messages", UINT, mail.quota_messages), .def = "0",
	  .max = UINT32_MAX,
	  .explanation = "Number of messages for new accounts; 0 means unlimited." },
	{ MAIN("mail", "quota_tempfail", BOOL, mail.quota_tempfail), .def = "no",
	  .explanation = "Over quota: yes = temporary failure (exit 75, retried), no = permanent (77)." },
	{ MAIN("mail", "max_message_size", SIZE, mail.max_message_size), .def = "35M",
	  .explanation = "The largest message accepted; 0 means no limit." },
	{ MAIN("mail", "quota_warnings", STRING, mail.quota_warnings), .def = "80,95",
	  .check = check_percentages,
	  .explanation = "Quota use (percent) at which the account gets a notice, once per crossing; empty = none." },

	{ MAIN("pop3", "login_delay", DURATION, pop3.login_delay), .def = "0",
	  .explanation = "Least time between two logins of one account; 0 = off (campus rule: 10m)." },
	{ MAIN("pop3", "idle_timeout", DURATION, pop3.idle_timeout), .def = "10m",
	  .min = SECONDS(1),
	  .explanation = "An idle session is closed after this long (RFC 1939 asks for 10m)." },
	{ MAIN("pop3", "max_bad_commands", UINT, pop3.max_bad_commands), .def = "10",
	  .min = 1, .max = 1000,
	  .explanation = "A session is closed after this many bad commands." },

	{ MAIN("imap", "idle_timeout", DURATION, imap.idle_timeout), .def = "30m",
	  .min = SECONDS(60),
	  .explanation = "An idle session is logged out after this long (RFC 9051 asks for 30m)." },
	{ MAIN("imap", "max_bad_commands", UINT, imap.max_bad_commands), .def = "20",
	  .min = 1, .max = 1000,
	  .explanation = "A session is closed after this many bad commands." },
	{ MAIN("imap", "max_line_length", SIZE, imap.max_line_length), .def = "64k",
	  .min = 8192, .max = 16 * 1024 * 1024,
	  .explanation = "The longest command line after login (before it: 8k)." },

	{ MAIN("smtp", "max_message_size", SIZE, smtp.max_message_size), .def = "35M",
	  .explanation = "The largest message taken by SMTP (SIZE, RFC 1870); 0 = no limit." },
	{ MAIN("smtp", "max_recipients", UINT, smtp.max_recipients), .def = "1000",
	  .min = 1, .max = 100000,
	  .explanation = "Recipients per message; more get 452 4.5.3 (RFC 5321 4.5.3.1.8)." },
	{ MAIN("smtp", "max_messages", UINT, smtp.max_messages), .def = "100",
	  .min = 1, .max = 100000,
	  .explanation = "Messages per connection; after that MAIL gets 421 and the connection closes." },
	{ MAIN("smtp", "max_errors", UINT, smtp.max_errors), .def = "20",
	  .min = 1, .max = 1000,
	  .explanation = "Error replies in one session before 421 4.7.0 and disconnect." },
	{ MAIN("smtp", "command_timeout", DURATION, smtp.command_timeout), .def = "5m",
	  .min = SECONDS(1),
	  .explanation = "Idle time allowed between commands (RFC 5321 4.5.3.2: 5m)." },
	{ MAIN("smtp", "data_timeout", DURATION, smtp.data_timeout), .def = "10m",
	  .min = SECONDS(1),
	  .explanation = "Idle time allowed inside DATA or BDAT (RFC 5321 4.5.3.2: 3m per block, 10m)." },
	{ MAIN("smtp", "any_sender_accounts", STRING, smtp.any_sender_accounts), .def = "",
	  .explanation = "Accounts (a@x, b@y) whose submitted mail may use any sender and From." },

	{ MAIN("queue", "retry_first", DURATION, queue.retry_first), .def = "5m",
	  .min = SECONDS(1),
	  .explanation = "Wait after the first failed attempt; each further failure doubles it." },
	{ MAIN("queue", "retry_max", DURATION, queue.retry_max), .def = "1h",
	  .min = SECONDS(1),
	  .explanation = "The longest wait between two attempts (the doubling stops here)." },
	{ MAIN("queue", "lifetime", DURATION, queue.lifetime), .def = "5d",
	  .min = SECONDS(1),
	  .explanation = "A message not delivered this long after arrival is bounced." },
	{ MAIN("queue", "delay_warning", DURATION, queue.delay_warning), .def = "4h",
	  .explanation = "After this long undelivered the sender gets one delay notice; 0 = never." },
	{ MAIN("queue", "max_parallel", UINT, queue.max_parallel), .def = "20",
	  .min = 1, .max = 1000,
	  .explanation = "Deliveries (one connection each) in progress at once." },

	{ MAIN("dns", "servers", STRING, dns.servers), .def = "", .check = check_dns_servers,
	  .explanation = "Resolvers as ip[:port],...; empty uses /etc/resolv.conf." },
	{ MAIN("dns", "timeout", DURATION, dns.timeout), .def = "5s",
	  .min = 100, .max = SECONDS(60),
	  .explanation = "How long one try of a query waits for an answer." },
	{ MAIN("dns", "tries", UINT, dns.tries), .def = "3", .min = 1, .max = 10,
	  .explanation = "Tries per query and server before the lookup fails temporarily." },

	{ MAIN("smtp_client", "helo_name", STRING, smtp_client.helo_name), .def = "",
	  .explanation = "The name sent in EHLO; empty uses [server] hostname." },
	{ MAIN("smtp_client", "tls_policy", ENUM, smtp_client.tls_policy), .def = "may",
	  .words = smtp_tls_policies,
	  .explanation = "STARTTLS: none, may (if offered, unverified), encrypt (required), verify (required and verified)." },
	{ MAIN("smtp_client", "tls_policy_map", STRING, smtp_client.tls_policy_map), .def = "",
	  .check = check_domain_map,
	  .explanation = "Per-domain policies, like example.org=verify, other.org=encrypt." },
	{ MAIN("smtp_client", "ca_file", PATH, smtp_client.ca_file), .def = "system",
	  .words = ca_words,
	  .explanation = "CA certificates (PEM) for verify and the relay; system uses the system's." },
	{ MAIN("smtp_client", "connect_timeout", DURATION, smtp_client.connect_timeout),
	  .def = "30s", .min = 100,
	  .explanation = "How long a TCP connection may take to open." },
	{ MAIN("smtp_client", "greeting_timeout", DURATION, smtp_client.greeting_timeout),
	  .def = "5m", .min = 100,
	  .explanation = "Wait for the 220 greeting (RFC 5321 4.5.3.2: 5m)." },
	{ MAIN("smtp_client", "command_timeout", DURATION, smtp_client.command_timeout),
	  .def = "5m", .min = 100,
	  .explanation = "Wait for the reply to EHLO, MAIL, RCPT and others (RFC 5321: 5m)." },
	{ MAIN("smtp_client", "data_timeout", DURATION, smtp_client.data_timeout),
	  .def = "3m", .min = 100,
	  .explanation = "Wait for 354, and for each block of message bytes to be taken (RFC 5321: 2m, 3m)." },
	{ MAIN("smtp_client", "data_done_timeout", DURATION, smtp_client.data_done_timeout),
	  .def = "10m", .min = 100,
	  .explanation = "Wait for the reply after the final dot (RFC 5321: 10m)." },
	{ MAIN("smtp_client", "reuse_time", DURATION, smtp_client.reuse_time), .def = "5s",
	  .max = SECONDS(300),
	  .explanation = "An idle connection is kept this long for the next message to that host; 0 = never." },
	{ MAIN("smtp_client", "reuse_limit", UINT, smtp_client.reuse_limit), .def = "100",
	  .min = 1, .max = 100000,
	  .explanation = "Messages sent over one connection before it is closed." },
	{ MAIN("smtp_client", "max_idle", UINT, smtp_client.max_idle), .def = "20",
	  .max = 10000,
	  .explanation = "Idle connections kept at once, over all hosts." },

	{ MAIN("relay", "host", STRING, relay.host), .def = "",
	  .explanation = "The smarthost (name or IP; no MX lookup); empty sends by MX." },
	{ MAIN("relay", "port", UINT, relay.port), .def = "587", .min = 1, .max = 65535,
	  .explanation = "Its port (587 submission, 465 with tls = implicit, 25)." },
	{ MAIN("relay", "username", STRING, relay.username), .def = "",
	  .explanation = "AUTH PLAIN/LOGIN user at the smarthost; empty means no AUTH." },
	{ MAIN("relay", "password", STRING, relay.password), .def = "",
	  .flags = CONFIG_FLAG_SECRET,
	  .explanation = "AUTH password at the smarthost." },
	{ MAIN("relay", "tls", ENUM_ID, relay.tls), .def = "starttls", .words = tls_modes,
	  .explanation = "starttls = required STARTTLS, implicit = TLS at once, none = plaintext." },
	{ MAIN("relay", "verify", BOOL, relay.verify), .def = "yes",
	  .explanation = "Verify the smarthost's certificate and name (ca_file or the system's CAs)." },

	{ MAIN("transport", "routes", STRING, transport.routes), .def = "",
	  .check = check_domain_map,
	  .explanation = "domain=nexthop entries: [host]:port (no MX lookup) or host:port (its MX)." },

	{ MAIN("forward", "max_addresses", UINT, forward.max_addresses), .def = "5",
	  .min = 1, .max = 100,
	  .explanation = "Addresses one account may forward its mail to." },
	{ MAIN("forward", "srs", BOOL, forward.srs), .def = "yes",
	  .explanation = "Rewrite the envelope sender of forwarded mail (SRS) so SPF passes at the target." },
	{ MAIN("forward", "srs_secret_file", STRING, forward.srs_secret_file), .def = "",
	  .explanation = "The SRS key (32 random bytes, made on first use, mode 0600); empty = data_dir/srs.key." },
	{ MAIN("forward", "srs_max_age", DURATION, forward.srs_max_age), .def = "21d",
	  .min = SECONDS(86400), .max = SECONDS(86400) * 1000,
	  .explanation = "How long a bounce to an SRS address is still taken and passed back." },

	{ MAIN("virus", "enabled", BOOL, virus.enabled), .def = "yes",
	  .explanation = "Scan every message: the built-in EICAR check always, clamd when set." },
	{ MAIN("virus", "clamd", STRING, virus.clamd), .def = "",
	  .explanation = "clamd to send each decoded part to: a unix socket path or host:port; empty = none." },
	{ MAIN("virus", "timeout", DURATION, virus.timeout), .def = "30s",
	  .min = 100, .max = SECONDS(600),
	  .explanation = "Wait for clamd to connect, take each chunk and answer." },
	{ MAIN("virus", "on_failure", ENUM, virus.on_failure), .def = "tempfail",
	  .words = virus_failure_words,
	  .explanation = "clamd down or erring: tempfail (try again later) or accept (deliver unscanned)." },
	{ MAIN("virus", "max_scan_size", SIZE, virus.max_scan_size), .def = "25M",
	  .min = 1024,
	  .explanation = "A larger decoded part is not sent to clamd (keep at most its StreamMaxLength)." },

	{ MAIN("sieve", "max_actions", UINT, sieve.max_actions), .def = "32", .min = 1, .max = 1000,
	  .explanation = "Actions (keep, fileinto, redirect...) one message may collect; more is a script error." },
	{ MAIN("sieve", "max_redirects", UINT, sieve.max_redirects), .def = "4", .max = 100,
	  .explanation = "Redirects one message may collect over the routing and user scripts." },
	{ MAIN("sieve", "max_run_time", DURATION, sieve.max_run_time), .def = "1s",
	  .min = 10, .max = SECONDS(60),
	  .explanation = "Time one script may run on one message; then it stops and the mail is kept." },
	{ MAIN("sieve", "max_script_size", SIZE, sieve.max_script_size), .def = "64k",
	  .min = 1024, .max = 16 * 1024 * 1024,
	  .explanation = "Bytes of one script; a larger one is refused." },
	{ MAIN("sieve", "global_dir", STRING, sieve.global_dir), .def = "",
	  .explanation = "Folder of NAME.sieve scripts for include :global (relative: in data_dir); empty = none." },
	{ MAIN("sieve", "max_scripts", UINT, sieve.max_scripts), .def = "20", .max = 10000,
	  .explanation = "Scripts one account may store (ManageSieve, yubin sieve); 0 = no limit." },
	{ MAIN("sieve", "max_storage", SIZE, sieve.max_storage), .def = "1M",
	  .explanation = "Bytes all scripts of one account may take together; 0 = no limit." },

	{ MAIN("vacation", "min_period", DURATION, vacation.min_period), .def = "1d",
	  .explanation = "A script's shorter :days/:seconds is raised to this (RFC 5230 4.1)." },
	{ MAIN("vacation", "max_period", DURATION, vacation.max_period), .def = "30d",
	  .min = SECONDS(1),
	  .explanation = "A script's longer :days/:seconds is lowered to this." },
	{ MAIN("vacation", "max_reason_size", SIZE, vacation.max_reason_size), .def = "16k",
	  .min = 256, .max = 1024 * 1024,
	  .explanation = "Bytes of a reply's text; a longer vacation reason is cut there." },

	{ LISTENER("protocol", ENUM, protocol), .flags = CONFIG_FLAG_REQUIRED,
	  .words = config_protocols,
	  .explanation = "The protocol spoken on this socket." },
	{ LISTENER("address", STRING, address), .def = "*", .check = check_address,
	  .explanation = "The address to listen on: an IPv4 or IPv6 address, or * for all." },
	{ LISTENER("port", UINT, port), .flags = CONFIG_FLAG_REQUIRED, .min = 1, .max = 65535,
	  .explanation = "The TCP port." },
	{ LISTENER("tls", ENUM_ID, tls), .def = "starttls", .words = tls_modes,
	  .explanation = "implicit = TLS at once, starttls = plaintext until STARTTLS, none = no TLS." },
	{ LISTENER("max_message_size", SIZE, max_message_size), .def = "0",
	  .explanation = "SMTP listeners: the SIZE limit here (RFC 1870); 0 = [smtp] max_message_size." },

	{ CERTIFICATE("cert", cert_file), .flags = CONFIG_FLAG_REQUIRED,
	  .explanation = "The certificate chain (PEM) for this host name." },
	{ CERTIFICATE("key", key_file), .flags = CONFIG_FLAG_REQUIRED,
	  .explanation = "The private key (PEM) of that certificate." },
};
const size_t config_settings_count = sizeof(config_settings) / sizeof(config_settings[0]);

/* The largest unit that divides n exactly, so 60000 ms reads "1m". */
static void format_with_units(uint64_t n, const char *const *names,
			      const uint64_t *units, size_t count,
			      char *buf, size_t size)
{
	for (size_t i = 0; i < count; i++) {
		if (n != 0 && n % units[i] == 0) {
			snprintf(buf, size, "%" PRIu64 "%s", n / units[i], names[i]);
			return;
		}
	}
	snprintf(buf, size, "%" PRIu64, n);
}

static void format_number(const struct config_setting *s, uint64_t n,
			  char *buf, size_t size)
{
	static const char *const dur_names[] = { "w", "d", "h", "m", "s", "ms" };
	static const uint64_t dur_units[] = {
		604800000ULL, 86400000ULL, 3600000ULL, 60000, 1000, 1,
	};
	static const char *const size_names[] = { "T", "G", "M", "k", "" };
	static const uint64_t size_units[] = {
		1ULL << 40, 1ULL << 30, 1ULL << 20, 1ULL << 10, 1,
	};
	if (s->type == CONFIG_TYPE_DURATION)
		format_with_units(n, dur_names, dur_units, 6, buf, size);
	else if (s->type == CONFIG_TYPE_SIZE)
		format_with_units(n, size_names, size_units, 5, buf, size);
	else
		snprintf(buf, size, "%" PRIu64, n);
}

const char *config_setting_range(const struct config_setting *s,
				 char *buf, size_t size)
{
	char min[32], max[32];
	buf[0] = '\0';
	format_number(s, s->min, min, sizeof(min));
	format_number(s, s->max, max, sizeof(max));
	if (s->min != 0 && s->max != 0)
		snprintf(buf, size, "from %s to %s", min, max);
	else if (s->min != 0)
		snprintf(buf, size, "at least %s", min);
	else if (s->max != 0)
		snprintf(buf, size, "at most %s", max);
	return buf;
}

/* The example file: every section, every key with its default, and example
 * sections for the repeatable ones. Overrides are key/value pairs. */
struct config_example {
	const char *section;
	const char *arg;
	const char *const *values;
	bool commented;
};

static const char *const example_pop3[] = {
	"protocol", "pop3", "port", "110", "tls", "starttls", NULL,
};
static const char *const example_pop3s[] = {
	"protocol", "pop3", "port", "995", "tls", "implicit", NULL,
};
static const char *const example_imap[] = {
	"protocol", "imap", "port", "143", "tls", "starttls", NULL,
};
static const char *const example_imaps[] = {
	"protocol", "imap", "port", "993", "tls", "implicit", NULL,
};
static const char *const example_smtp[] = {
	"protocol", "smtp", "port", "25", "tls", "starttls", NULL,
};
static const char *const example_submission[] = {
	"protocol", "submission", "port", "587", "tls", "starttls", NULL,
};
static const char *const example_submissions[] = {
	"protocol", "submission", "port", "465", "tls", "implicit", NULL,
};
static const char *const example_managesieve[] = {
	"protocol", "managesieve", "port", "4190", "tls", "starttls", NULL,
};
static const char *const example_cert[] = {
	"cert", "/etc/ssl/mail.example.org/fullchain.pem",
	"key", "/etc/ssl/mail.example.org/privkey.pem", NULL,
};
static const struct config_example config_examples[] = {
	{ "listener", "pop3", example_pop3, false },
	{ "listener", "pop3s", example_pop3s, false },
	{ "listener", "imap", example_imap, true },
	{ "listener", "imaps", example_imaps, true },
	{ "listener", "smtp", example_smtp, true },
	{ "listener", "submission", example_submission, true },
	{ "listener", "submissions", example_submissions, true },
	{ "listener", "managesieve", example_managesieve, true },
	{ "certificate", "mail.example.org", example_cert, true },
};

static const char example_intro[] =
	"# yubin.conf: the configuration of the yubin mail server.\n"
	"#\n"
	"# Generated from the settings table (src/lib/config-table.c): every\n"
	"# setting is shown with its default, and a setting left out keeps it.\n"
	"#\n"
	"# Format: [section] headers, then `key = value` lines. A '#' starts a\n"
	"# comment at the start of a line or after a space; put a value in double\n"
	"# quotes to keep spaces or '#' (escapes: \\\" and \\\\). Relative paths are\n"
	"# resolved against the folder that holds this file. Sizes: 512k, 35M, 1G.\n"
	"# Durations: 500ms, 30s, 10m, 1h, 30d. Check a config with `yubin check`.\n";

/* Writes text as '#' comment lines of at most ~78 columns. */
static void write_comment(FILE *out, const char *text)
{
	size_t col = 0;
	while (*text != '\0') {
		size_t word = strcspn(text, " ");
		if (col > 0 && col + 1 + word > 78) {
			fputc('\n', out);
			col = 0;
		}
		if (col == 0) {
			fputc('#', out);
			col = 1;
		}
		col += (size_t)fprintf(out, " %.*s", (int)word, text);
		text += word;
		text += strspn(text, " ");
	}
	if (col > 0)
		fputc('\n', out);
}

static bool needs_quotes(const char *value)
{
	return value[0] == '\0' || strpbrk(value, " \t#\"\\") != NULL;
}

static void write_value(FILE *out, const char *value)
{
	if (!needs_quotes(value)) {
		fputs(value, out);
		return;
	}
	fputc('"', out);
	for (; *value != '\0'; value++) {
		if (*value == '"' || *value == '\\')
			fputc('\\', out);
		fputc(*value, out);
	}
	fputc('"', out);
}

static void write_hint(FILE *out, const struct config_setting *s)
{
	char range[96], hint[256] = "";
	size_t len = 0;
	if ((s->flags & CONFIG_FLAG_REQUIRED) != 0)
		len += (size_t)snprintf(hint + len, sizeof(hint) - len, " Required.");
	if ((s->type == CONFIG_TYPE_ENUM || s->type == CONFIG_TYPE_ENUM_ID) &&
	    s->words[1] != NULL) {
		len += (size_t)snprintf(hint + len, sizeof(hint) - len, " One of:");
		for (size_t i = 0; s->words[i] != NULL && len < sizeof(hint); i++)
			len += (size_t)snprintf(hint + len, sizeof(hint) - len, " %s%s",
						s->words[i], s->words[i + 1] ? "," : ".");
	}
	config_setting_range(s, range, sizeof(range));
	if (range[0] != '\0' && len < sizeof(hint)) {
		range[0] = (char)(range[0] - 'a' + 'A');
		snprintf(hint + len, sizeof(hint) - len, " %s.", range);
	}
	if (hint[0] != '\0')
		fprintf(out, "#%s\n", hint);
}

static const char *example_override(const struct config_example *ex,
				    const char *key)
{
	for (size_t i = 0; ex != NULL && ex->values[i] != NULL; i += 2) {
		if (strcmp(ex->values[i], key) == 0)
			return ex->values[i + 1];
	}
	return NULL;
}

/* One `key = value` line, with its explanation when `explain`. */
static void write_setting(FILE *out, const struct config_setting *s,
			  const struct config_example *ex, bool explain)
{
	const char *value = example_override(ex, s->key);
	bool commented = ex != NULL && ex->commented;
	if (value == NULL) {
		value = (s->flags & CONFIG_FLAG_SECRET) != 0 ? "" : s->def;
		commented = commented || s->compute_default != NULL;
	}
	if (explain) {
		fputc('\n', out);
		write_comment(out, s->explanation);
		write_hint(out, s);
	}
	fprintf(out, "%s%s = ", commented ? "# " : "", s->key);
	write_value(out, value != NULL ? value : "");
	fputc('\n', out);
}

static void write_section(FILE *out, const struct config_section_def *sec,
			  const struct config_example *ex, bool explain)
{
	const char *prefix = ex != NULL && ex->commented ? "# " : "";
	if (ex == NULL)
		fprintf(out, "[%s]\n", sec->name);
	else
		fprintf(out, "%s[%s %s]\n", prefix, sec->name, ex->arg);
	for (size_t i = 0; i < config_settings_count; i++) {
		if (strcmp(config_settings[i].section, sec->name) == 0)
			write_setting(out, &config_settings[i], ex, explain);
	}
}

static void write_repeatable(FILE *out, const struct config_section_def *sec)
{
	bool first = true;
	for (size_t i = 0; i < sizeof(config_examples) / sizeof(config_examples[0]); i++) {
		const struct config_example *ex = &config_examples[i];
		if (strcmp(ex->section, sec->name) != 0)
			continue;
		if (!first)
			fputc('\n', out);
		write_section(out, sec, ex, first);
		first = false;
	}
}

void config_write_example(FILE *out)
{
	fputs(example_intro, out);
	for (size_t i = 0; i < config_sections_count; i++) {
		const struct config_section_def *sec = &config_sections[i];
		char text[512];
		fputs("\n\n", out);
		if (sec->arg_name != NULL)
			snprintf(text, sizeof(text), "[%s %s] %s", sec->name,
				 sec->arg_name, sec->explanation);
		else
			snprintf(text, sizeof(text), "%s", sec->explanation);
		write_comment(out, text);
		if (sec->kind == CONFIG_SECTION_SINGLE)
			write_section(out, sec, NULL, true);
		else
			write_repeatable(out, sec);
	}
}

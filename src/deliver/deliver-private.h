/* What the files of the deliver module share. deliver.c resolves
 * recipients and stores; deliver-sieve.c runs the routing and user scripts
 * and carries out their actions; deliver-routing.c turns an account's
 * routing settings (forwarding, closed account) into the system script;
 * deliver-srs.c rewrites envelope senders of forwarded mail (SRS);
 * deliver-virus.c scans messages. */
#ifndef YUBIN_DELIVER_PRIVATE_H
#define YUBIN_DELIVER_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "deliver/deliver.h"

struct dir;
struct dir_account;
struct yubin_config;

/* deliver-routing.c: the Sieve source (malloc'd, NUL-terminated) of the
 * system script for the account's routing settings, run before the user's
 * own script; NULL when the account receives normally. */
char *deliver_routing_script(const struct yubin_config *config, struct dir *dir,
                             const struct dir_account *account);

/* deliver-srs.c: the envelope sender to use when the account forwards mail
 * that came from env_from: an SRS address in the forwarding domain (SRS0,
 * or SRS1 when env_from is already SRS), or a copy of env_from when SRS is
 * off; "" stays "" (a bounce is never forwarded with a sender). malloc'd. */
char *deliver_srs_forward(const struct yubin_config *config, const char *env_from,
                          const char *forwarder_domain);
/* The original sender encoded in an SRS address of ours (hash and
 * timestamp checked): 1 with a malloc'd address, 0 when address is not a
 * valid SRS address of ours. */
int deliver_srs_reverse(const struct yubin_config *config, const char *address,
                        char **original_r);
/* The same at a given time (the day stamp and its age), for tests. */
char *deliver_srs_forward_at(const struct yubin_config *config, const char *env_from,
                             const char *forwarder_domain, time_t now);
int deliver_srs_reverse_at(const struct yubin_config *config, const char *address,
                           char **original_r, time_t now);
/* A recipient that is no account or alias but a valid SRS address of
 * ours (a bounce to forwarded mail): the message goes on through the
 * outbox to the original sender, with the null sender. 1 sent, 0 not SRS
 * (the recipient is unknown), -1 the outbox failed (*reason_r, static). */
int deliver_srs_pass_back(const struct yubin_config *config, const char *address, int fd,
                          const char **reason_r);

/* deliver-quota-warn.c: after a message was stored into the account,
 * stores a notice in its INBOX when its quota usage passed a threshold of
 * [mail] quota_warnings (once per crossing; the last one warned about is
 * remembered in the account's folder). Failures are logged only. */
void deliver_quota_warn(const struct yubin_config *config, const struct dir_account *account);

/* deliver-routing.c: true when the message's header already has
 * "Delivered-To: <account>" (any case): it went round a forwarding loop
 * and must not be delivered (or forwarded) to that account again. */
bool deliver_routing_loop(int fd, const char *account);

/* deliver-virus.c: the built-in check. True when a decoded part is the
 * EICAR test file: the 68-byte string at its start, then only whitespace,
 * at most 128 bytes in all. head is the part's first bytes (up to 129),
 * total its whole decoded size. */
#define DELIVER_EICAR_MAX 128
bool deliver_virus_is_eicar(const void *head, size_t head_len, uint64_t total);

/* deliver-clamd.c: one INSTREAM scan. address is a unix socket path (it
 * contains '/') or host:port ([v6]:port); timeout_ms bounds the connect and
 * each write and read. */
struct deliver_clamd;
struct deliver_clamd *deliver_clamd_open(const char *address, uint64_t timeout_ms,
                                         const char **error_r);
/* Sends bytes (buffered into chunks). -1 with *error_r (static) on failure. */
int deliver_clamd_write(struct deliver_clamd *clamd, const void *data, size_t len,
                        const char **error_r);
/* Ends the stream, reads the answer and frees clamd: 0 clean, 1 found
 * (*virus_r the malloc'd name), -1 error (*error_r static). */
int deliver_clamd_finish(struct deliver_clamd **clamd, char **virus_r, const char **error_r);
/* Drops an unfinished scan; accepts NULL. */
void deliver_clamd_abort(struct deliver_clamd **clamd);

/* deliver-strip.c: writes the message of in_fd to out_fd with each of the
 * count infected leaf parts replaced by a text/plain notice naming its file
 * name, type and virus, and the Subject prefixed. root is in_fd's tree. */
struct mime_part;
struct deliver_virus_hit {
	const struct mime_part *part;
	char *virus;
};
#define DELIVER_VIRUS_SUBJECT_PREFIX "[WARNING: VIRUS REMOVED] "
int deliver_strip_write(int in_fd, const struct mime_part *root,
                        const struct deliver_virus_hit *hits, size_t count, int out_fd,
                        const char **error_r);

/* ---- deliver-sieve.c, deliver-actions.c, deliver-vacation.c,
 * deliver-notice.c: the per-account step (scripts and their actions) ---- */

/* The message as deliver.c read it. */
struct deliver_input {
	const struct yubin_config *config;
	struct dir *dir;
	int fd;                 /* the message file (pread only) */
	const char *data;       /* all of it, mapped read-only */
	size_t size;
	const char *env_from;   /* reverse path; "" null sender; NULL unknown */
};

/* One account's delivery of the message. */
struct deliver_account_ctx {
	const struct deliver_input *in;
	const char *rcpt;       /* the address as given (RCPT TO) */
	const struct dir_account *account;
	struct store *store;
	time_t now;
};

/* What the scripts decided, and what failed. */
struct sieve_result;
struct deliver_plan {
	struct sieve_result *result;
	size_t action_count;    /* actions to carry out: those of scripts that did not fail */
	bool force_keep;        /* a script failed: keep in INBOX regardless */
	char *failed_script;    /* the user's script that failed (for the notice), or NULL */
	unsigned int failed_line;
	char *failed_why;
};

/* deliver-sieve.c: stores the message for the account after running its
 * routing and user scripts. *reason_r: malloc'd or NULL. */
enum deliver_status deliver_sieve_account(const struct deliver_input *in, const char *rcpt,
                                          const struct dir_account *account, char **reason_r);
/* deliver-actions.c: carries out plan; the store is open. */
enum deliver_status deliver_actions_apply(struct deliver_account_ctx *ctx,
                                          const struct deliver_plan *plan, char **reason_r);
/* Queues a message through the registered outbox; -1 when there is none
 * or it failed (*error_r static or the outbox's). */
int deliver_outbox_send(const char *env_from, const char *const *rcpts, size_t rcpt_count,
                        const void *prefix, size_t prefix_len, int body_fd,
                        uint64_t body_offset, const char **error_r);
/* deliver-vacation.c: answers per RFC 5230/3834 unless a rule forbids it;
 * failures are logged only (the message is delivered). */
struct sieve_vacation;
void deliver_vacation(struct deliver_account_ctx *ctx, const struct sieve_vacation *vacation);
/* deliver-notice.c: stores a notice in the INBOX that a script failed
 * (at most once per hour per script); logged only on failure. */
void deliver_notice_script_failed(struct deliver_account_ctx *ctx, const char *script,
                                  unsigned int line, const char *why);
/* Helpers for the mail deliver composes: "Date: ...\r\n", "Message-ID:
 * <...>\r\n" appended to out; a header value as RFC 2047 encoded words
 * when it is not ASCII. */
struct buf;
void deliver_mail_date_id(struct buf *out, const struct yubin_config *config, time_t now);
void deliver_mail_encode_word(struct buf *out, const char *text);
/* The domain of an address ("" when none). */
const char *deliver_address_domain(const char *address);

#endif

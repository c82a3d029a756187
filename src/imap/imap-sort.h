/* SORT and THREAD (RFC 5256, RFC 5957 SORT=DISPLAY): the per-message keys,
 * base subject extraction, the sort itself and the two threading
 * algorithms. Everything here except imap_sort_msg_load works on plain
 * data, so the unit tests drive it without a session. */
#ifndef YUBIN_IMAP_SORT_H
#define YUBIN_IMAP_SORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lib/buf.h"

struct imap_session;
struct store_msg;

enum imap_sort_key {
	IMAP_SORT_END = 0,
	IMAP_SORT_ARRIVAL,
	IMAP_SORT_CC,
	IMAP_SORT_DATE,
	IMAP_SORT_FROM,
	IMAP_SORT_SIZE,
	IMAP_SORT_SUBJECT,
	IMAP_SORT_TO,
	IMAP_SORT_DISPLAYFROM,
	IMAP_SORT_DISPLAYTO,
};

/* Criteria are at most this many keys (each may be REVERSEd). */
#define IMAP_SORT_MAX_KEYS 16

struct imap_sort_criterion {
	enum imap_sort_key key;
	bool reverse;
};

/* What SORT and THREAD know of one message. Strings are malloc'd, UTF-8
 * and, for the sort keys, already folded for i;ascii-casemap (ASCII
 * letters in upper case); "" when the field is missing. */
struct imap_sort_msg {
	uint32_t seq; /* message sequence number */
	uint32_t uid;
	uint64_t size;        /* RFC822.SIZE */
	time_t arrival;       /* INTERNALDATE */
	time_t sent;          /* the Date: field in UTC, else INTERNALDATE (RFC 5256 2.2) */
	char *subject;        /* base subject (RFC 5256 2.1) */
	bool reply;           /* the extraction removed a Re:/Fwd:/(fwd)/[fwd: ...] */
	char *from, *to, *cc; /* addr-mailbox of the first address */
	char *display_from, *display_to; /* RFC 5957: display-name, else addr-spec */
	char *message_id;                /* normalized msg-id; NULL when none is valid */
	char **refs;                     /* References (or In-Reply-To's first), in order */
	size_t ref_count;
};

/* Which header data a command needs (bits). */
#define IMAP_SORT_NEED_SUBJECT 0x01
#define IMAP_SORT_NEED_DATE 0x02
#define IMAP_SORT_NEED_ADDR 0x04
#define IMAP_SORT_NEED_REFS 0x08

/* ---- imap-sort.c ---- */

/* RFC 5256 2.1 on a raw Subject value (RFC 2047 words are decoded first);
 * malloc'd, folded for i;ascii-casemap. reply_r (may be NULL) tells
 * whether the subject was a reply or forward. */
char *imap_base_subject(const char *raw, bool *reply_r);
/* An RFC 5322 date-time ("Tue, 1 Jul 2003 10:52:37 +0200", obsolete forms
 * too) to UTC; -1 when it is not one. */
int imap_sort_date_parse(const char *value, time_t *t_r);
/* The msg-ids of a References / In-Reply-To / Message-ID value,
 * normalized (quoting and comments removed) and malloc'd; at most max. */
size_t imap_msgid_list(const char *value, char ***ids_r, size_t max);
/* Parses the criteria list; -1 on a bad list (*error_r static). display:
 * DISPLAYFROM and DISPLAYTO are accepted. */
int imap_sort_parse_criteria(const char *const *names, unsigned int count, bool display,
                             struct imap_sort_criterion *crit, const char **error_r);
/* The header data the criteria need (IMAP_SORT_NEED_*). */
unsigned int imap_sort_needs(const struct imap_sort_criterion *crit);
/* Fills msg's header fields from a header block. */
void imap_sort_msg_fill(struct imap_sort_msg *msg, const char *header, size_t len,
                        unsigned int needs);
/* Reads the header of message idx of the view and fills msg (a message
 * that cannot be read sorts with empty fields and its INTERNALDATE). */
void imap_sort_msg_load(struct imap_session *sess, size_t idx, unsigned int needs,
                        struct imap_sort_msg *msg);
void imap_sort_msg_clear(struct imap_sort_msg *msg);
/* Sorts the pointers by the criteria, then by sequence number. */
void imap_sort_msgs(struct imap_sort_msg **msgs, size_t count,
                    const struct imap_sort_criterion *crit);

/* ---- imap-thread.c ---- */

enum imap_thread_algorithm {
	IMAP_THREAD_ORDEREDSUBJECT,
	IMAP_THREAD_REFERENCES,
};

/* Appends the THREAD response's thread lists ("(1 2)(3 (4)(5))") for the
 * messages (in sequence order) to out; numbers are UIDs when uid. */
void imap_thread_build(const struct imap_sort_msg *msgs, size_t count,
                       enum imap_thread_algorithm algorithm, bool uid, struct buf *out);

#endif

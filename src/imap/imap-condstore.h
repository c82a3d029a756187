/* CONDSTORE and QRESYNC (RFC 7162) inside the IMAP server: what SELECT,
 * FETCH, STORE, STATUS, EXPUNGE, MOVE and the mailbox sync share. */
#ifndef YUBIN_IMAP_CONDSTORE_H
#define YUBIN_IMAP_CONDSTORE_H

#include "imap/imap-private.h"

/* The largest mod-sequence RFC 7162 allows (63 bits). */
#define IMAP_MODSEQ_MAX ((uint64_t)INT64_MAX)

/* A mod-sequence argument (an atom of digits); 0 only with allow_zero
 * (mod-sequence-valzer, UNCHANGEDSINCE). */
bool imap_modseq_parse(const struct imap_arg *arg, bool allow_zero, uint64_t *modseq_r);

/* A CONDSTORE enabling command ran (RFC 7162 3.1): from now on every FETCH
 * for a flag change carries UID and MODSEQ. When this turns it on while a
 * mailbox is selected, the client gets that mailbox's HIGHESTMODSEQ. */
void imap_condstore_enable(struct imap_session *sess);

/* The selected mailbox's HIGHESTMODSEQ; 0 after a store error (logged). */
uint64_t imap_condstore_highest(struct imap_session *sess);

/* "* n FETCH (...)" for view message idx after its flags changed: FLAGS
 * (unless !with_flags: STORE .SILENT), UID for UID commands, and with
 * CONDSTORE always UID and MODSEQ. */
void imap_flags_fetch_send(struct imap_session *sess, size_t idx, bool with_flags);

/* Removes view messages idx[0..n) (ascending) and tells the client: one
 * EXPUNGE each, highest first, or with QRESYNC "* VANISHED uid-set". */
void imap_mailbox_expunged(struct imap_session *sess, const size_t *idx, size_t n);

/* Appends first:last to a set built in ascending order (merging with the
 * last range), without the cost of normalizing each time. */
void imap_condstore_set_push(struct imap_seqset *set, uint32_t first, uint32_t last);

/* "* VANISHED [(EARLIER) ]uid-set" for a normalized set, in as many lines
 * as keep each one short. Nothing for an empty set. */
void imap_vanished_send(struct imap_session *sess, bool earlier, const struct imap_seqset *set);

/* UIDs expunged since modseq that the client may still know, into out
 * (initialized here; free it): within known (NULL: all), above floor,
 * below the view's UIDNEXT and not in the view. When the store's expunge
 * log does not reach back to modseq, every such UID the mailbox does not
 * hold (RFC 7162 allows the superset). -1 after logging a store error. */
int imap_vanished_since(struct imap_session *sess, uint64_t modseq, const struct imap_seqset *known,
                        uint32_t floor, struct imap_seqset *out);

/* SELECT/EXAMINE (QRESYNC (uidvalidity modseq [known-uids
 * [(known-sequence-set known-uid-set)]])) */
struct imap_qresync {
	uint32_t uidvalidity;
	uint64_t modseq;
	bool has_known;
	struct imap_seqset known;
	bool has_match;
	struct imap_seqset match_seqs, match_uids;
};
/* Parses the list after "QRESYNC"; -1 with a client text (static). */
int imap_qresync_parse(const struct imap_arg *arg, struct imap_qresync *q, const char **error_r);
void imap_qresync_free(struct imap_qresync *q);
/* After the SELECT responses: VANISHED (EARLIER) for what the client
 * knew and is gone, FETCH (UID FLAGS MODSEQ) for what changed since
 * q->modseq (RFC 7162 3.2.5). Nothing when UIDVALIDITY differs. */
void imap_qresync_report(struct imap_session *sess, const struct imap_qresync *q);

#endif

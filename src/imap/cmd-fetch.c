/* FETCH and UID FETCH (RFC 9051 6.4.5, RFC 3516 BINARY): the items are
 * parsed here into struct imap_fetch_item, then imap-fetch.c streams the
 * reply. The modifiers CHANGEDSINCE and VANISHED are RFC 7162's. */
#include "imap/imap-fetch.h"

#include "imap/imap-condstore.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/xmalloc.h"

/* Simple items and the RFC822 forms, which are sections under other names. */
static const struct {
	const char *name;
	enum imap_fetch_kind kind;
	enum mime_section_kind section;
	bool peek;
} imap_fetch_atoms[] = {
        {"FLAGS", IMAP_FETCH_FLAGS, MIME_SECTION_ALL, true},
        {"UID", IMAP_FETCH_UID, MIME_SECTION_ALL, true},
        {"INTERNALDATE", IMAP_FETCH_INTERNALDATE, MIME_SECTION_ALL, true},
        {"RFC822.SIZE", IMAP_FETCH_RFC822_SIZE, MIME_SECTION_ALL, true},
        {"EMAILID", IMAP_FETCH_EMAILID, MIME_SECTION_ALL, true},
        {"THREADID", IMAP_FETCH_THREADID, MIME_SECTION_ALL, true},
        {"SAVEDATE", IMAP_FETCH_SAVEDATE, MIME_SECTION_ALL, true},
        {"MODSEQ", IMAP_FETCH_MODSEQ, MIME_SECTION_ALL, true},
        {"ENVELOPE", IMAP_FETCH_ENVELOPE, MIME_SECTION_ALL, true},
        {"BODYSTRUCTURE", IMAP_FETCH_BODYSTRUCTURE, MIME_SECTION_ALL, true},
        {"BODY", IMAP_FETCH_BODY, MIME_SECTION_ALL, true},
        {"RFC822", IMAP_FETCH_SECTION, MIME_SECTION_ALL, false},
        {"RFC822.HEADER", IMAP_FETCH_SECTION, MIME_SECTION_HEADER, true},
        {"RFC822.TEXT", IMAP_FETCH_SECTION, MIME_SECTION_TEXT, false},
};

static const struct {
	const char *name;
	const char *const *items;
} imap_fetch_macros[] = {
        {"ALL", (const char *const[]){"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", NULL}},
        {"FAST", (const char *const[]){"FLAGS", "INTERNALDATE", "RFC822.SIZE", NULL}},
        {"FULL",
         (const char *const[]){"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY", NULL}},
};

static const enum mime_section_kind imap_section_kinds[] = {
        [IMAP_SECTION_NONE] = MIME_SECTION_ALL,
        [IMAP_SECTION_HEADER] = MIME_SECTION_HEADER,
        [IMAP_SECTION_HEADER_FIELDS] = MIME_SECTION_HEADER_FIELDS,
        [IMAP_SECTION_HEADER_FIELDS_NOT] = MIME_SECTION_HEADER_FIELDS_NOT,
        [IMAP_SECTION_TEXT] = MIME_SECTION_TEXT,
        [IMAP_SECTION_MIME] = MIME_SECTION_MIME,
};

static struct imap_fetch_item *imap_fetch_item_new(struct imap_fetch *f, enum imap_fetch_kind kind)
{
	f->items = xreallocarray(f->items, f->item_count + 1, sizeof(f->items[0]));
	struct imap_fetch_item *item = &f->items[f->item_count++];
	memset(item, 0, sizeof(*item));
	item->kind = kind;
	item->peek = true;
	return item;
}

static bool imap_fetch_has(const struct imap_fetch *f, enum imap_fetch_kind kind)
{
	for (unsigned int i = 0; i < f->item_count; i++) {
		if (f->items[i].kind == kind)
			return true;
	}
	return false;
}

static int imap_fetch_atom(struct imap_fetch *f, const char *name)
{
	for (size_t i = 0; i < sizeof(imap_fetch_atoms) / sizeof(imap_fetch_atoms[0]); i++) {
		if (strcasecmp(name, imap_fetch_atoms[i].name) != 0)
			continue;
		struct imap_fetch_item *item = imap_fetch_item_new(f, imap_fetch_atoms[i].kind);
		item->peek = imap_fetch_atoms[i].peek;
		item->section.kind = imap_fetch_atoms[i].section;
		item->name = xstrdup(imap_fetch_atoms[i].name);
		return 0;
	}
	return -1;
}

static int imap_fetch_section_item(struct imap_fetch *f, const struct imap_arg *arg)
{
	const struct imap_section *sec = arg->section;
	const char *name = arg->str;
	enum imap_fetch_kind kind = IMAP_FETCH_SECTION;
	if (strncasecmp(name, "BINARY.SIZE", 11) == 0)
		kind = IMAP_FETCH_BINARY_SIZE;
	else if (strncasecmp(name, "BINARY", 6) == 0)
		kind = IMAP_FETCH_BINARY;
	struct imap_fetch_item *item = imap_fetch_item_new(f, kind);
	item->peek = strcasecmp(name, "BODY.PEEK") == 0 || strcasecmp(name, "BINARY.PEEK") == 0 ||
	             kind == IMAP_FETCH_BINARY_SIZE;
	for (unsigned int i = 0; i < sec->part_count; i++)
		item->section.path[i] = sec->parts[i];
	item->section.path_len = sec->part_count;
	item->section.kind = imap_section_kinds[sec->text];
	item->section.fields = xcalloc(sec->field_count + 1, sizeof(char *));
	for (unsigned int i = 0; i < sec->field_count; i++)
		item->section.fields[i] = xstrdup(sec->fields[i]);
	item->section.field_count = sec->field_count;
	item->has_partial = sec->has_partial;
	item->partial_offset = sec->partial_offset;
	item->partial_length = sec->partial_length;
	struct buf out = BUF_INIT(0);
	imap_write_section(&out,
	                   kind == IMAP_FETCH_SECTION  ? "BODY"
	                   : kind == IMAP_FETCH_BINARY ? "BINARY"
	                                               : "BINARY.SIZE",
	                   sec, true);
	item->name = buf_steal(&out);
	return 0;
}

static int imap_fetch_parse_one(struct imap_fetch *f, const struct imap_arg *arg, bool in_list)
{
	const char *name;
	if (arg->type == IMAP_ARG_SECTION)
		return imap_fetch_section_item(f, arg);
	if (!imap_arg_get_atom(arg, &name))
		return -1;
	for (size_t i = 0; !in_list && i < sizeof(imap_fetch_macros) / sizeof(imap_fetch_macros[0]);
	     i++) {
		if (strcasecmp(name, imap_fetch_macros[i].name) != 0)
			continue;
		for (const char *const *m = imap_fetch_macros[i].items; *m != NULL; m++)
			imap_fetch_atom(f, *m);
		return 0;
	}
	return imap_fetch_atom(f, name);
}

static int imap_fetch_parse(struct imap_fetch *f, const struct imap_arg *arg)
{
	const struct imap_arg *list;
	unsigned int n;
	if (arg->type != IMAP_ARG_LIST)
		return imap_fetch_parse_one(f, arg, false);
	if (!imap_arg_get_list(arg, &list, &n) || n == 0)
		return -1;
	for (unsigned int i = 0; i < n; i++) {
		if (imap_fetch_parse_one(f, &list[i], true) < 0)
			return -1;
	}
	return 0;
}

static bool imap_fetch_item_cached(const struct imap_fetch_item *item)
{
	return item->kind == IMAP_FETCH_SECTION && item->section.path_len == 0 &&
	       item->section.kind == MIME_SECTION_HEADER_FIELDS &&
	       mime_fields_cached(item->section.fields, item->section.field_count);
}

/* What the items need from each message. */
static void imap_fetch_needs(struct imap_fetch *f)
{
	for (unsigned int i = 0; i < f->item_count; i++) {
		struct imap_fetch_item *item = &f->items[i];
		bool whole = item->kind == IMAP_FETCH_SECTION && item->section.path_len == 0 &&
		             item->section.kind == MIME_SECTION_ALL;
		if (item->kind >= IMAP_FETCH_ENVELOPE && !whole)
			f->need_parts = true;
		item->cached_fields = imap_fetch_item_cached(item);
		if (item->cached_fields)
			f->need_cached_header = true;
		else if (item->kind >= IMAP_FETCH_SECTION)
			f->need_file = true;
		if (item->kind >= IMAP_FETCH_SECTION && !item->peek)
			f->sets_seen = true;
		if (item->kind == IMAP_FETCH_FLAGS)
			f->has_flags = true;
		if (item->kind == IMAP_FETCH_UID)
			f->has_uid = true;
		if (item->kind == IMAP_FETCH_MODSEQ)
			f->has_modseq = true;
	}
}

/* UID FETCH always returns the UID, first. */
static void imap_fetch_add_uid(struct imap_fetch *f)
{
	if (imap_fetch_has(f, IMAP_FETCH_UID))
		return;
	imap_fetch_item_new(f, IMAP_FETCH_UID);
	struct imap_fetch_item uid = f->items[f->item_count - 1];
	memmove(&f->items[1], &f->items[0], (f->item_count - 1) * sizeof(f->items[0]));
	f->items[0] = uid;
}

/* FETCH modifiers (RFC 4466): CHANGEDSINCE and VANISHED (RFC 7162). */
struct imap_fetch_mods {
	bool changedsince;
	uint64_t modseq;
	bool vanished;
};

static int imap_fetch_mod(struct imap_session *sess, const struct imap_arg *list, unsigned int n,
                          unsigned int *i, struct imap_fetch_mods *mods)
{
	if (imap_arg_atom_equals(&list[*i], "CHANGEDSINCE") && !mods->changedsince && *i + 1 < n) {
		mods->changedsince = true;
		return imap_modseq_parse(&list[++*i], false, &mods->modseq) ? 0 : -1;
	}
	/* VANISHED only in UID FETCH after ENABLE QRESYNC (RFC 7162 3.2.6) */
	if (imap_arg_atom_equals(&list[*i], "VANISHED") && !mods->vanished && sess->uid &&
	    sess->qresync) {
		mods->vanished = true;
		return 0;
	}
	return -1;
}

static int imap_fetch_mods_parse(struct imap_session *sess, const struct imap_arg *arg,
                                 struct imap_fetch_mods *mods)
{
	const struct imap_arg *list;
	unsigned int n;
	if (!imap_arg_get_list(arg, &list, &n) || n == 0)
		return -1;
	for (unsigned int i = 0; i < n; i++) {
		if (imap_fetch_mod(sess, list, n, &i, mods) < 0)
			return -1;
	}
	/* VANISHED needs CHANGEDSINCE */
	return mods->vanished && !mods->changedsince ? -1 : 0;
}

/* CHANGEDSINCE: only the messages whose MODSEQ is above it, as the view
 * knows them (changes it has not seen yet come with the sync). */
static void imap_fetch_changedsince(struct imap_session *sess, struct imap_fetch *f,
                                    uint64_t modseq)
{
	size_t n = 0;
	for (size_t i = 0; i < f->idx_count; i++) {
		if (sess->mbox->msgs[f->idx[i]].modseq > modseq)
			f->idx[n++] = f->idx[i];
	}
	f->idx_count = n;
	if (!imap_fetch_has(f, IMAP_FETCH_MODSEQ))
		imap_fetch_atom(f, "MODSEQ");
}

/* UID FETCH ... (CHANGEDSINCE n VANISHED): the UIDs of the set expunged
 * since n, before the FETCH lines. "*" reaches up to UIDNEXT - 1 here, so
 * that expunged messages after the last one left are reported too. */
static void imap_fetch_vanished(struct imap_session *sess, const struct imap_arg *arg,
                                uint64_t modseq)
{
	struct imap_seqset set, gone;
	const char *error;
	if (imap_arg_get_seqset(arg, &set, &error) < 0) {
		imap_seqset_free(&set);
		return;
	}
	/* "$": the saved UIDs, expunged ones too (resolve sorts the set) */
	for (size_t i = 0; set.saved && i < sess->searchres_count; i++)
		imap_condstore_set_push(&set, sess->searchres[i], sess->searchres[i]);
	imap_seqset_resolve(&set, sess->mbox->uidnext > 1 ? sess->mbox->uidnext - 1 : 0);
	if (imap_vanished_since(sess, modseq, &set, 0, &gone) == 0)
		imap_vanished_send(sess, true, &gone);
	imap_seqset_free(&gone);
	imap_seqset_free(&set);
}

static void imap_fetch_fail(struct imap_fetch *f)
{
	imap_fetch_items_free(f);
	free(f->idx);
	free(f);
}

IMAP_HANDLER(imap_cmd_fetch)
{
	struct imap_fetch *f = xcalloc(1, sizeof(*f));
	struct imap_fetch_mods mods = {0};
	if (count < 2 || count > 3 || imap_fetch_parse(f, &args[1]) < 0 ||
	    (count == 3 && imap_fetch_mods_parse(sess, &args[2], &mods) < 0)) {
		imap_fetch_fail(f);
		imap_bad(sess, "Invalid FETCH arguments");
		return;
	}
	if (imap_mailbox_seqset(sess, &args[0], &f->idx, &f->idx_count) < 0) {
		imap_fetch_fail(f);
		return;
	}
	if (sess->uid)
		imap_fetch_add_uid(f);
	if (mods.changedsince)
		imap_fetch_changedsince(sess, f, mods.modseq);
	imap_fetch_needs(f);
	/* a CONDSTORE enabling command (RFC 7162 3.1) */
	if (f->has_modseq)
		imap_condstore_enable(sess);
	if (mods.vanished)
		imap_fetch_vanished(sess, &args[0], mods.modseq);
	imap_fetch_start(sess, f);
}

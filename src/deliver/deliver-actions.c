/* Carrying out what the Sieve scripts decided for one account: each
 * mailbox gets the message at most once (all saves in one store
 * transaction), redirects go to the outbox with the SRS sender and a
 * Delivered-To line (the loop check reads it), reject refuses the
 * recipient permanently, vacation may answer, and duplicate keys are
 * remembered once the message is delivered. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "deliver/deliver-private.h"
#include "dir/dir.h"
#include "fts/fts.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "sieve/sieve.h"
#include "store/store.h"

#define DELIVER_TEMP_REASON "temporary local problem, try again later"

static const struct deliver_outbox *deliver_outbox;

void deliver_set_outbox(const struct deliver_outbox *outbox)
{
	deliver_outbox = outbox;
}

int deliver_outbox_send(const char *env_from, const char *const *rcpts, size_t rcpt_count,
                        const void *prefix, size_t prefix_len, int body_fd,
                        uint64_t body_offset, const char **error_r)
{
	if (deliver_outbox == NULL) {
		*error_r = "no outbound queue in this program";
		return -1;
	}
	return deliver_outbox->send(deliver_outbox->context, env_from, rcpts, rcpt_count, prefix,
	                            prefix_len, body_fd, body_offset, error_r);
}

/* The bytes to store and send: the edited header (editheader) and the
 * original body, or the original message. */
struct deliver_bytes {
	const char *head;
	size_t head_len;
	const char *body;
	size_t body_len;
	uint64_t body_offset;
	bool edited;
};

static void bytes_from(const struct deliver_account_ctx *ctx, const struct deliver_plan *plan,
                       struct deliver_bytes *b)
{
	const struct sieve_result *r = plan->result;
	memset(b, 0, sizeof(*b));
	if (r->edited_header != NULL && !plan->force_keep && r->body_offset <= ctx->in->size) {
		b->head = r->edited_header;
		b->head_len = r->edited_header_len;
		b->body = ctx->in->data + r->body_offset;
		b->body_len = ctx->in->size - r->body_offset;
		b->body_offset = r->body_offset;
		b->edited = true;
		return;
	}
	b->head = ctx->in->data;
	b->head_len = ctx->in->size;
}

/* ---- mailboxes ---- */

struct deliver_target {
	char *mailbox;
	unsigned int flags;      /* enum store_flag */
	char **keywords;
	size_t keyword_count;
};

struct deliver_targets {
	struct deliver_target *items;
	size_t count;
};

static const struct {
	const char *name;
	unsigned int flag;
} deliver_system_flags[] = {
        {"\\Seen", STORE_FLAG_SEEN},       {"\\Answered", STORE_FLAG_ANSWERED},
        {"\\Flagged", STORE_FLAG_FLAGGED}, {"\\Deleted", STORE_FLAG_DELETED},
        {"\\Draft", STORE_FLAG_DRAFT},
};

static void target_add_flag(struct deliver_target *t, const char *flag)
{
	for (size_t i = 0; i < sizeof(deliver_system_flags) / sizeof(deliver_system_flags[0]); i++) {
		if (strcasecmp(flag, deliver_system_flags[i].name) == 0) {
			t->flags |= deliver_system_flags[i].flag;
			return;
		}
	}
	if (flag[0] == '\\' || flag[0] == '\0')
		return; /* \Recent and unknown system flags cannot be set */
	for (size_t i = 0; i < t->keyword_count; i++) {
		if (strcasecmp(t->keywords[i], flag) == 0)
			return;
	}
	t->keywords = xreallocarray(t->keywords, t->keyword_count + 1, sizeof(*t->keywords));
	t->keywords[t->keyword_count++] = xstrdup(flag);
}

/* The target for mailbox, merged with an earlier one of the same name. */
static void targets_add(struct deliver_targets *ts, const char *mailbox, char *const *flags,
                        size_t flag_count)
{
	struct deliver_target *t = NULL;
	for (size_t i = 0; i < ts->count && t == NULL; i++) {
		if (strcmp(ts->items[i].mailbox, mailbox) == 0)
			t = &ts->items[i];
	}
	if (t == NULL) {
		ts->items = xreallocarray(ts->items, ts->count + 1, sizeof(*ts->items));
		t = &ts->items[ts->count++];
		memset(t, 0, sizeof(*t));
		t->mailbox = xstrdup(mailbox);
	}
	for (size_t i = 0; i < flag_count; i++)
		target_add_flag(t, flags[i]);
}

static void targets_free(struct deliver_targets *ts)
{
	for (size_t i = 0; i < ts->count; i++) {
		free(ts->items[i].mailbox);
		for (size_t j = 0; j < ts->items[i].keyword_count; j++)
			free(ts->items[i].keywords[j]);
		free(ts->items[i].keywords);
	}
	free(ts->items);
}

/* The mailbox a fileinto really goes to: the named one (created with
 * :create), or INBOX when it is missing or cannot be made. */
static const char *target_mailbox(struct deliver_account_ctx *ctx, const struct sieve_action *a)
{
	struct store_mailbox_info info;
	enum store_error err;
	const char *error;
	if (strcasecmp(a->mailbox, "INBOX") == 0)
		return "INBOX";
	if (store_mailbox_info(ctx->store, a->mailbox, &info, &err, &error) == 0)
		return a->mailbox;
	if (a->create && (store_mailbox_create(ctx->store, a->mailbox, &err, &error) == 0 ||
	                  err == STORE_ERR_EXISTS)) {
		log_info("deliver to=%s event=mailbox_created line=%u", ctx->account->address,
		         a->line);
		return a->mailbox;
	}
	char esc[300];
	log_info("deliver to=%s event=fileinto_fallback mailbox=\"%s\" line=%u error=\"%s\"",
	         ctx->account->address, log_escape(a->mailbox, strlen(a->mailbox), esc, sizeof(esc)),
	         a->line, a->create ? error : "no such mailbox");
	return "INBOX";
}

static void targets_collect(struct deliver_account_ctx *ctx, const struct deliver_plan *plan,
                            struct deliver_targets *ts)
{
	const struct sieve_result *r = plan->result;
	for (size_t i = 0; i < plan->action_count; i++) {
		const struct sieve_action *a = &r->actions[i];
		if (a->type == SIEVE_ACTION_KEEP)
			targets_add(ts, "INBOX", a->flags, a->flag_count);
		else if (a->type == SIEVE_ACTION_FILEINTO)
			targets_add(ts, target_mailbox(ctx, a), a->flags, a->flag_count);
	}
	if (plan->force_keep)
		targets_add(ts, "INBOX", NULL, 0);
	else if (r->implicit_keep)
		targets_add(ts, "INBOX", r->keep_flags, r->keep_flag_count);
}

/* ---- storing ---- */

static struct store_save *target_begin(struct deliver_account_ctx *ctx,
                                       const struct deliver_target *t,
                                       const struct deliver_bytes *b, bool keywords,
                                       enum store_error *err_r, const char **error_r)
{
	struct store_save *save = store_save_begin(ctx->store, t->mailbox, err_r, error_r);
	if (save == NULL)
		return NULL;
	if (store_save_write(save, b->head, b->head_len) < 0 ||
	    (b->body_len > 0 && store_save_write(save, b->body, b->body_len) < 0)) {
		store_save_abort(&save);
		*err_r = STORE_ERR_TEMP;
		*error_r = "writing the message failed";
		return NULL;
	}
	store_save_set_flags(save, t->flags);
	if (keywords && t->keyword_count > 0 &&
	    store_save_set_keywords(save, (const char *const *)t->keywords, t->keyword_count) < 0)
		log_info("deliver to=%s event=keywords_dropped reason=invalid",
		         ctx->account->address);
	return save;
}

/* Saves into every target in one transaction. */
static int targets_save(struct deliver_account_ctx *ctx, const struct deliver_targets *ts,
                        const struct deliver_bytes *b, bool keywords, uint32_t *uids,
                        enum store_error *err_r, const char **error_r)
{
	struct store_save **saves = xcalloc(ts->count, sizeof(*saves));
	int ret = 0;
	for (size_t i = 0; i < ts->count && ret == 0; i++) {
		saves[i] = target_begin(ctx, &ts->items[i], b, keywords, err_r, error_r);
		if (saves[i] == NULL)
			ret = -1;
	}
	if (ret == 0)
		ret = store_save_finish_all(saves, ts->count, uids, err_r, error_r);
	for (size_t i = 0; i < ts->count; i++)
		store_save_abort(&saves[i]);
	free(saves);
	return ret;
}

static enum deliver_status save_error(struct deliver_account_ctx *ctx, enum store_error err,
                                      const char *error, char **reason_r)
{
	const char *account = ctx->account->address;
	if (err == STORE_ERR_QUOTA) {
		log_info("deliver to=%s status=over_quota", account);
		*reason_r = xstrdup("mailbox full");
		return ctx->in->config->mail.quota_tempfail ? DELIVER_TEMPFAIL : DELIVER_PERMFAIL;
	}
	log_error("deliver to=%s status=failed error=\"%s\"", account, error);
	*reason_r = xstrdup(DELIVER_TEMP_REASON);
	return DELIVER_TEMPFAIL;
}

static enum deliver_status targets_store(struct deliver_account_ctx *ctx,
                                         const struct deliver_targets *ts,
                                         const struct deliver_bytes *b, char **reason_r)
{
	if (ts->count == 0)
		return DELIVER_OK;
	uint32_t *uids = xcalloc(ts->count, sizeof(*uids));
	enum store_error err = STORE_ERR_TEMP;
	const char *error = "saving failed";
	int ret = targets_save(ctx, ts, b, true, uids, &err, &error);
	if (ret < 0 && err == STORE_ERR_LIMIT) /* too many keywords: keep the mail */
		ret = targets_save(ctx, ts, b, false, uids, &err, &error);
	if (ret < 0) {
		free(uids);
		return save_error(ctx, err, error, reason_r);
	}
	for (size_t i = 0; i < ts->count; i++) {
		char esc[300];
		const char *name = ts->items[i].mailbox;
		log_info("deliver to=%s uid=%u mailbox=%s size=%llu", ctx->account->address, uids[i],
		         log_escape(name, strlen(name), esc, sizeof(esc)),
		         (unsigned long long)(b->head_len + b->body_len));
		if (fts_index_message(ctx->store, name, uids[i], &error) < 0)
			log_warn("deliver to=%s uid=%u event=fts_index_failed error=\"%s\"",
			         ctx->account->address, uids[i], error);
	}
	free(uids);
	return DELIVER_OK;
}

/* ---- redirect ---- */

static int redirect_one(struct deliver_account_ctx *ctx, const struct sieve_action *a,
                        const struct deliver_bytes *b)
{
	const struct deliver_input *in = ctx->in;
	const char *account = ctx->account->address;
	char *sender = deliver_srs_forward(in->config, in->env_from != NULL ? in->env_from : "",
	                                   deliver_address_domain(account));
	struct buf prefix = BUF_INIT(0);
	buf_printf(&prefix, "Delivered-To: %s\r\n", account);
	if (b->edited)
		buf_append(&prefix, b->head, b->head_len);
	const char *rcpts[1] = {a->address};
	const char *error;
	int ret = deliver_outbox_send(sender, rcpts, 1, prefix.data, prefix.len, in->fd,
	                              b->edited ? b->body_offset : 0, &error);
	char esc[300];
	const char *to = log_escape(a->address, strlen(a->address), esc, sizeof(esc));
	if (ret < 0)
		log_error("deliver to=%s event=redirect_failed target=%s error=\"%s\"", account, to,
		          error);
	else
		log_info("deliver to=%s event=redirected target=%s line=%u", account, to, a->line);
	buf_free(&prefix);
	free(sender);
	return ret;
}

/* ---- the whole ---- */

static const struct sieve_action *find_reject(const struct deliver_plan *plan)
{
	for (size_t i = 0; i < plan->action_count; i++) {
		enum sieve_action_type t = plan->result->actions[i].type;
		if (t == SIEVE_ACTION_REJECT || t == SIEVE_ACTION_EREJECT)
			return &plan->result->actions[i];
	}
	return NULL;
}

/* RFC 5429: the refusal goes back through the MTA (SMTP 550 when the
 * session is still open, else a bounce from the queue), never as a mail
 * of our own: a bounce is never sent to the null sender. */
static enum deliver_status do_reject(struct deliver_account_ctx *ctx,
                                     const struct sieve_action *a, char **reason_r)
{
	const char *reason = a->reason != NULL && a->reason[0] != '\0' ? a->reason : "rejected";
	log_info("deliver to=%s status=rejected line=%u", ctx->account->address, a->line);
	/* the code first: SMTP replies 550 with it (smtp-message.c) */
	char *text = xasprintf("5.7.1 %s", reason);
	for (char *p = text; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' '; /* one line: an SMTP reply, a bounce's Diagnostic-Code */
	}
	*reason_r = text;
	return DELIVER_PERMFAIL;
}

static void remember_duplicates(struct deliver_account_ctx *ctx, const struct sieve_result *r)
{
	const char *error;
	for (size_t i = 0; i < r->duplicate_count; i++) {
		if (store_memory_record(ctx->store, "duplicate", r->duplicates[i],
		                        r->duplicate_seconds[i], ctx->now, &error) < 0)
			log_warn("deliver to=%s event=duplicate_record_failed error=\"%s\"",
			         ctx->account->address, error);
	}
}

static enum deliver_status do_redirects(struct deliver_account_ctx *ctx,
                                        const struct deliver_plan *plan,
                                        const struct deliver_bytes *b, char **reason_r)
{
	for (size_t i = 0; i < plan->action_count; i++) {
		const struct sieve_action *a = &plan->result->actions[i];
		if (a->type == SIEVE_ACTION_REDIRECT && redirect_one(ctx, a, b) < 0) {
			*reason_r = xstrdup(DELIVER_TEMP_REASON);
			return DELIVER_TEMPFAIL;
		}
	}
	return DELIVER_OK;
}

enum deliver_status deliver_actions_apply(struct deliver_account_ctx *ctx,
                                          const struct deliver_plan *plan, char **reason_r)
{
	const struct sieve_action *reject = find_reject(plan);
	if (reject != NULL && !plan->force_keep)
		return do_reject(ctx, reject, reason_r);
	struct deliver_bytes b;
	bytes_from(ctx, plan, &b);
	struct deliver_targets ts = {0};
	targets_collect(ctx, plan, &ts);
	enum deliver_status status = targets_store(ctx, &ts, &b, reason_r);
	size_t stored = ts.count;
	targets_free(&ts);
	if (status == DELIVER_OK)
		status = do_redirects(ctx, plan, &b, reason_r);
	if (status != DELIVER_OK)
		return status;
	if (stored == 0) /* discard, or redirect without :copy */
		log_info("deliver to=%s event=not_stored", ctx->account->address);
	for (size_t i = 0; i < plan->action_count; i++) {
		if (plan->result->actions[i].type == SIEVE_ACTION_VACATION)
			deliver_vacation(ctx, plan->result->actions[i].vacation);
	}
	remember_duplicates(ctx, plan->result);
	return DELIVER_OK;
}

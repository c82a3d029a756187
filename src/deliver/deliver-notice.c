/* Mail that deliver writes itself: the notice that a script failed (the
 * message was kept in INBOX instead), and the header helpers it shares
 * with vacation replies. */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "deliver/deliver-private.h"
#include "dir/dir.h"
#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "store/store.h"

#define NOTICE_PERIOD 3600 /* seconds: one notice per script per hour */
#define ENCODED_WORD_MAX 45 /* bytes of text per encoded word (60 base64) */

const char *deliver_address_domain(const char *address)
{
	const char *at = strrchr(address, '@');
	return at != NULL ? at + 1 : "";
}


void deliver_mail_date_id(struct buf *out, const struct yubin_config *config, time_t now)
{
	struct tm tm;
	char date[64];
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	uint64_t r = 0;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint64_t)now ^ ((uint64_t)getpid() << 32);
	buf_printf(out, "Date: %s\r\nMessage-ID: <%llx.%016llx@%s>\r\n", date,
	           (unsigned long long)now, (unsigned long long)r, config->server.hostname);
}

static bool is_plain_ascii(const char *text)
{
	for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
		if (*p >= 0x80 || *p < 0x20)
			return false;
	}
	return true;
}

/* UTF-8 length of the character starting with byte c. */
static size_t utf8_char_len(unsigned char c)
{
	return c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
}

/* RFC 2047 B words, each a whole number of UTF-8 characters, folded. */
void deliver_mail_encode_word(struct buf *out, const char *text)
{
	if (is_plain_ascii(text)) {
		buf_append_str(out, text);
		return;
	}
	size_t len = strlen(text), i = 0;
	while (i < len) {
		size_t n = 0;
		while (i + n < len) {
			size_t c = utf8_char_len((unsigned char)text[i + n]);
			if (n > 0 && n + c > ENCODED_WORD_MAX)
				break;
			n += c;
		}
		if (i + n > len)
			n = len - i;
		buf_append_str(out, i > 0 ? "\r\n =?UTF-8?B?" : "=?UTF-8?B?");
		base64_encode(text + i, n, out);
		buf_append_str(out, "?=");
		i += n;
	}
}

static void notice_compose(struct buf *out, struct deliver_account_ctx *ctx, const char *script,
                           unsigned int line, const char *why)
{
	const char *account = ctx->account->address;
	buf_printf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\nTo: <%s>\r\nSubject: ",
	           deliver_address_domain(account), account);
	char *subject = xasprintf("Your mail filter \"%s\" failed", script);
	deliver_mail_encode_word(out, subject);
	free(subject);
	buf_append_str(out, "\r\n");
	deliver_mail_date_id(out, ctx->in->config, ctx->now);
	buf_append_str(out, "Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
	                    "Content-Type: text/plain; charset=utf-8\r\n"
	                    "Content-Transfer-Encoding: 8bit\r\n\r\n");
	buf_printf(out, "Your mail filter script \"%s\" could not be run on a message that\r\n"
	                "arrived just now.\r\n\r\n", script);
	if (line > 0)
		buf_printf(out, "  line %u: %s\r\n\r\n", line, why);
	else
		buf_printf(out, "  %s\r\n\r\n", why);
	buf_append_str(out, "The message was kept in your INBOX, so nothing was lost. Until the\r\n"
	                    "script is fixed, every message is kept in the INBOX this way; this\r\n"
	                    "notice is sent at most once an hour.\r\n");
}

static int notice_store(struct deliver_account_ctx *ctx, const struct buf *msg,
                        const char **error_r)
{
	enum store_error err;
	uint32_t uid;
	struct store_save *save = store_save_begin(ctx->store, "INBOX", &err, error_r);
	if (save == NULL)
		return -1;
	if (store_save_write(save, msg->data, msg->len) < 0) {
		store_save_abort(&save);
		*error_r = "writing the notice failed";
		return -1;
	}
	return store_save_finish(&save, &uid, &err, error_r);
}

void deliver_notice_script_failed(struct deliver_account_ctx *ctx, const char *script,
                                  unsigned int line, const char *why)
{
	const char *account = ctx->account->address, *error;
	int seen = store_memory_seen(ctx->store, "notice", script, NOTICE_PERIOD, ctx->now, &error);
	if (seen != 0) {
		if (seen < 0)
			log_warn("deliver to=%s event=notice_failed error=\"%s\"", account, error);
		return;
	}
	struct buf msg = BUF_INIT(0);
	notice_compose(&msg, ctx, script, line, why);
	if (notice_store(ctx, &msg, &error) < 0 ||
	    store_memory_record(ctx->store, "notice", script, NOTICE_PERIOD, ctx->now, &error) < 0)
		log_warn("deliver to=%s event=notice_failed error=\"%s\"", account, error);
	else
		log_info("deliver to=%s event=script_failure_notice line=%u", account, line);
	buf_free(&msg);
}

/* Quota warnings: when a delivery takes an account with a quota past a
 * percentage of [mail] quota_warnings, a short notice from the domain's
 * postmaster lands in its INBOX. The highest threshold warned about is
 * kept in <account root>/quota-warned, so each crossing is told once;
 * when usage falls under it again the file follows it down and the next
 * crossing is told again. */
#include "deliver/deliver-private.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dir/dir.h"
#include "lib/address.h"
#include "lib/config.h"
#include "lib/fdio.h"
#include "lib/log.h"
#include "lib/strnum.h"
#include "lib/xmalloc.h"
#include "store/store.h"

#define QUOTA_WARN_FILE "quota-warned"
#define QUOTA_WARN_MAX 16

/* The thresholds of "80, 95" in ascending order; the config check made
 * sure each is 1-100. */
static size_t quota_warn_thresholds(const char *text, unsigned int *out)
{
	size_t n = 0;
	const char *p = text != NULL ? text : "";
	while (*p != '\0' && n < QUOTA_WARN_MAX) {
		p += strspn(p, ", ");
		size_t len = strspn(p, "0123456789");
		char num[8];
		uint32_t value;
		if (len == 0 || len >= sizeof(num))
			break;
		memcpy(num, p, len);
		num[len] = '\0';
		if (str_to_uint32(num, &value) == 0 && value >= 1 && value <= 100) {
			size_t i = n++;
			for (; i > 0 && out[i - 1] > value; i--)
				out[i] = out[i - 1];
			out[i] = value;
		}
		p += len;
	}
	return n;
}

/* Percent used of the tighter limit (bytes or messages). */
static unsigned int quota_warn_percent(const struct dir_account *a, uint64_t bytes,
                                       uint64_t messages)
{
	uint64_t pct = 0, m;
	if (a->quota_bytes != 0)
		pct = bytes / a->quota_bytes >= 2 ? 200 : bytes * 100 / a->quota_bytes;
	if (a->quota_messages != 0) {
		m = messages >= a->quota_messages * 2 ? 200 : messages * 100 / a->quota_messages;
		pct = m > pct ? m : pct;
	}
	return (unsigned int)pct;
}

static unsigned int quota_warn_last(const char *path)
{
	char text[16] = "";
	uint32_t value = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n > 0) {
		text[n] = '\0';
		text[strcspn(text, "\r\n")] = '\0';
		if (str_to_uint32(text, &value) < 0)
			value = 0;
	}
	return value;
}

/* Replaces the file through a temporary one (a crash leaves old or new). */
static void quota_warn_remember(const char *path, unsigned int value)
{
	char text[16];
	int len = snprintf(text, sizeof(text), "%u\n", value);
	char *tmp = xasprintf("%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || fd_write_all(fd, text, (size_t)len) < 0 || rename(tmp, path) < 0) {
		log_warn("deliver event=quota_warn_state_unwritable file=%s error=\"%s\"", path,
		         strerror(errno));
		unlink(tmp);
	}
	if (fd >= 0)
		close(fd);
	free(tmp);
}

static char *quota_warn_size(uint64_t bytes)
{
	if (bytes >= 1024ULL * 1024 * 1024)
		return xasprintf("%.1f GB", (double)bytes / (1024.0 * 1024.0 * 1024.0));
	if (bytes >= 1024 * 1024)
		return xasprintf("%.1f MB", (double)bytes / (1024.0 * 1024.0));
	if (bytes >= 1024)
		return xasprintf("%.1f KB", (double)bytes / 1024.0);
	return xasprintf("%" PRIu64 " bytes", bytes);
}

static char *quota_warn_usage(const struct dir_account *a, uint64_t bytes, uint64_t messages)
{
	char *used = quota_warn_size(bytes), *limit = quota_warn_size(a->quota_bytes);
	char *text;
	if (a->quota_bytes != 0 && a->quota_messages != 0)
		text = xasprintf("%s of %s, %" PRIu64 " of %" PRIu64 " messages", used, limit,
		                 messages, a->quota_messages);
	else if (a->quota_bytes != 0)
		text = xasprintf("%s of %s", used, limit);
	else
		text = xasprintf("%" PRIu64 " of %" PRIu64 " messages", messages,
		                 a->quota_messages);
	free(used);
	free(limit);
	return text;
}

static char *quota_warn_message(const struct dir_account *a, unsigned int threshold,
                                const char *usage, time_t now)
{
	char date[64];
	struct tm tm;
	const char *domain = address_domain(a->address);
	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	return xasprintf("From: Mail system <postmaster@%s>\r\n"
	                 "To: <%s>\r\n"
	                 "Subject: Your mailbox is %u%% full\r\n"
	                 "Date: %s\r\n"
	                 "Message-ID: <quota-%u-%lld-%ld@%s>\r\n"
	                 "Auto-Submitted: auto-generated\r\n"
	                 "MIME-Version: 1.0\r\n"
	                 "Content-Type: text/plain; charset=utf-8\r\n"
	                 "Content-Transfer-Encoding: 8bit\r\n"
	                 "\r\n"
	                 "Your mailbox %s has reached %u%% of its quota: it now holds %s.\r\n"
	                 "\r\n"
	                 "When it is full, new mail to you is returned to its senders.\r\n"
	                 "Please delete mail you no longer need (and empty the Trash), or ask\r\n"
	                 "your administrator for more space.\r\n"
	                 "\r\n"
	                 "\xe2\x80\x94 the mail system of %s\r\n",
	                 domain, a->address, threshold, date, threshold, (long long)now,
	                 (long)getpid(), domain, a->address, threshold, usage, domain);
}

/* The notice goes in even when the box is nearly full: the byte quota is
 * lifted for this one small message. A message-count quota is exact and
 * stays: at the count's last slot there is no room for a notice (the
 * threshold is still remembered, so it is not tried again). */
static int quota_warn_store(struct store *store, const struct dir_account *a, const char *text,
                            const char **error_r)
{
	enum store_error err;
	uint32_t uid;
	store_set_quota(store, 0, a->quota_messages);
	struct store_save *save = store_save_begin(store, "INBOX", &err, error_r);
	int ret = save != NULL ? 0 : -1;
	if (ret == 0 && store_save_write(save, text, strlen(text)) < 0) {
		store_save_abort(&save);
		*error_r = "writing the notice failed";
		ret = -1;
	}
	if (ret == 0)
		ret = store_save_finish(&save, &uid, &err, error_r);
	store_set_quota(store, a->quota_bytes, a->quota_messages);
	return ret;
}

static void quota_warn_send(struct store *store, const struct dir_account *a,
                            unsigned int threshold, uint64_t bytes, uint64_t messages)
{
	const char *error;
	char *usage = quota_warn_usage(a, bytes, messages);
	char *text = quota_warn_message(a, threshold, usage, time(NULL));
	if (quota_warn_store(store, a, text, &error) < 0)
		log_warn("deliver to=%s event=quota_warning_failed threshold=%u error=\"%s\"",
		         a->address, threshold, error);
	else
		log_info("deliver to=%s event=quota_warning threshold=%u usage=\"%s\"", a->address,
		         threshold, usage);
	free(text);
	free(usage);
}

/* Compares usage with the thresholds and tells the account once. */
static void quota_warn_check(const struct yubin_config *config, struct store *store,
                             const struct dir_account *account, const unsigned int *thresholds,
                             size_t count)
{
	uint64_t bytes, messages;
	const char *error;
	if (store_quota_usage(store, &bytes, &messages, &error) < 0) {
		log_warn("deliver to=%s event=quota_usage_failed error=\"%s\"", account->address,
		         error);
		return;
	}
	unsigned int pct = quota_warn_percent(account, bytes, messages), reached = 0;
	for (size_t i = 0; i < count; i++)
		reached = pct >= thresholds[i] ? thresholds[i] : reached;
	char *root = store_account_root(config->server.data_dir, account->address);
	char *path = xasprintf("%s/%s", root, QUOTA_WARN_FILE);
	unsigned int last = quota_warn_last(path);
	if (reached > last)
		quota_warn_send(store, account, reached, bytes, messages);
	if (reached != last)
		quota_warn_remember(path, reached);
	free(path);
	free(root);
}

void deliver_quota_warn(const struct yubin_config *config, const struct dir_account *account)
{
	unsigned int thresholds[QUOTA_WARN_MAX];
	struct store *store = NULL;
	const char *error;
	size_t count = quota_warn_thresholds(config->mail.quota_warnings, thresholds);
	if (count == 0 || (account->quota_bytes == 0 && account->quota_messages == 0))
		return;
	char *root = store_account_root(config->server.data_dir, account->address);
	if (root != NULL && store_open(root, &store, &error) == 0) {
		store_set_quota(store, account->quota_bytes, account->quota_messages);
		quota_warn_check(config, store, account, thresholds, count);
		store_close(&store);
	} else if (root != NULL) {
		log_warn("deliver to=%s event=quota_warn_failed error=\"%s\"", account->address,
		         error);
	}
	free(root);
}

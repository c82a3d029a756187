/* The trace header (RFC 5321 4.4) with the RFC 3848 / RFC 6531 protocol
 * names and the TLS parameters as a comment, and the Message-ID and Date
 * that submission adds (RFC 6409 8.2, 8.3). */
#include "smtp/smtp-private.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "lib/config.h"
#include "lib/conn.h"
#include "lib/xmalloc.h"

/* RFC 5322 3.3 date-time, independent of the locale. */
static void smtp_date(char *buf, size_t size)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	long off = tm.tm_gmtoff / 60;
	char sign = off < 0 ? '-' : '+';
	if (off < 0)
		off = -off;
	snprintf(buf, size, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld", days[tm.tm_wday],
		 tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		 tm.tm_sec, sign, off / 60, off % 60);
}

/* RFC 3848 and RFC 6531 4.3: ESMTP, then S for TLS, A for AUTH. */
static const char *smtp_with(const struct smtp_session *sess)
{
	static const char *const names[2][4] = {
		{ "ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA" },
		{ "UTF8SMTP", "UTF8SMTPS", "UTF8SMTPA", "UTF8SMTPSA" },
	};
	if (!sess->esmtp)
		return "SMTP";
	int idx = (conn_is_tls(sess->conn) ? 1 : 0) + (sess->auth_user != NULL ? 2 : 0);
	return names[sess->mail.smtputf8 ? 1 : 0][idx];
}

/* The TLS description "TLSv1.3 TLS_AES_256_GCM_SHA384" as Postfix words
 * it: "(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)". */
static char *smtp_tls_comment(const struct smtp_session *sess)
{
	const char *desc = conn_tls_description(sess->conn);
	if (desc == NULL)
		return xstrdup("");
	const char *space = strchr(desc, ' ');
	if (space == NULL)
		return xasprintf("\r\n\t(using %s)", desc);
	return xasprintf("\r\n\t(using %.*s with cipher %s)", (int)(space - desc), desc,
			 space + 1);
}

char *smtp_received_header(const struct smtp_session *sess)
{
	char date[64];
	smtp_date(date, sizeof(date));
	char *tls = smtp_tls_comment(sess);
	char *for_clause = sess->rcpt_count == 1 ?
		xasprintf("\r\n\tfor <%s>", sess->rcpts[0].address) : xstrdup("");
	char *hdr = xasprintf("Received: from %s ([%s])%s\r\n\tby %s (yubin) with %s id %s.%u%s;"
			      "\r\n\t%s\r\n",
			      sess->helo, conn_remote_ip(sess->conn), tls,
			      smtp_session_hostname(sess), smtp_with(sess), conn_id(sess->conn),
			      sess->messages + 1, for_clause, date);
	free(tls);
	free(for_clause);
	return hdr;
}

char *smtp_date_header(void)
{
	char date[64];
	smtp_date(date, sizeof(date));
	return xasprintf("Date: %s\r\n", date);
}

char *smtp_message_id_header(const struct smtp_session *sess)
{
	uint8_t rnd[12];
	char hex[sizeof(rnd) * 2 + 1];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		memset(rnd, 0, sizeof(rnd));
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	return xasprintf("Message-ID: <%" PRIx64 ".%s@%s>\r\n", (uint64_t)time(NULL), hex,
			 smtp_session_hostname(sess));
}

/* The Sieve interpreter through sieve_compile: a table of (script, message)
 * -> the actions collected (type, mailbox, flags, address, :create) and
 * the implicit keep, or the runtime error; then the checks that need more
 * than one table row (editheader output, several scripts on one result,
 * duplicate records, vacation fields, include, the time budget). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "sieve/sieve.h"
#include "test.h"

#define NOW 1700000000 /* 2023-11-14 22:13:20 UTC, a Tuesday */

static const char default_msg[] =
        "Return-Path: <alice@example.org>\r\n"
        "Received: from mx.example.org by mail.example.com;\r\n"
        "\tMon, 21 May 2018 12:34:56 +0900\r\n"
        "Date: Mon, 21 May 2018 12:34:56 +0900\r\n"
        "From: \"Alice\" <alice+lists@Example.ORG>\r\n"
        "To: bob@example.com, Carol <carol@example.net>\r\n"
        "Cc: dave+work@example.com\r\n"
        "Subject: =?ISO-2022-JP?B?GyRCRnxLXDhsJE4lRiU5JUgbKEI=?= report\r\n"
        "Message-ID: <m1@example.org>\r\n"
        "X-Spam-Score: 12\r\n"
        "X-Priority: 3\r\n"
        "X-Priority: 1\r\n"
        "X-Latin: =?ISO-8859-1?B?xFJHRVIg/GJlciBHcvbfZQ==?=\r\n"
        "X-Greek: \xce\x9a\xce\xb1\xce\xbb\xce\xb7\xce\xbc\xce\xad\xcf\x81\xce\xb1\r\n"
        "X-Wide: \xef\xbc\xb9\xef\xbd\x95\xef\xbd\x82\xef\xbd\x89\xef\xbd\x8e\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
        "\r\n"
        "--b1\r\n"
        "Content-Type: text/plain; charset=ISO-2022-JP\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        "GyRCRnxLXDhsJE4lRiU5JUgkRyQ5ISMycTVEJE9MQEZ8ISMbKEI=\r\n"
        "--b1\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        "\r\n"
        "<p>Hello <b>World</b></p>\r\n"
        "--b1\r\n"
        "Content-Type: application/octet-stream\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        "YmluYXJ5IHNlY3JldA==\r\n"
        "--b1--\r\n";

static const char *include_sources[][2] = {
        {"lists", "require [\"fileinto\", \"include\"];\r\n"
                  "if address :domain \"from\" \"example.org\" { fileinto \"Lists\"; return; }\r\n"
                  "fileinto \"NotReached\";\r\n"},
        {"flagger", "require [\"imap4flags\"];\r\naddflag \"$Included\";\r\n"},
        {"stopper", "stop;\r\n"},
        {"self", "require \"include\";\r\ninclude \"self\";\r\n"},
        {"setglobal", "require [\"include\", \"variables\"];\r\nglobal \"g\";\r\n"
                      "set \"g\" \"from-include\";\r\n"},
};

static unsigned int include_calls;

static struct sieve_script *cb_include(void *context, bool global, const char *name,
                                       struct sieve_error *err)
{
	(void)context;
	include_calls++;
	for (size_t i = 0; i < sizeof(include_sources) / sizeof(include_sources[0]); i++) {
		if (!global && strcmp(include_sources[i][0], name) == 0)
			return sieve_compile(name, include_sources[i][1],
			                     strlen(include_sources[i][1]), NULL, err);
	}
	snprintf(err->message, sizeof(err->message), "no script \"%s\"", name);
	return NULL;
}

static bool cb_mailbox_exists(void *context, const char *mailbox)
{
	(void)context;
	return strcmp(mailbox, "INBOX") == 0 || strcmp(mailbox, "Work") == 0;
}

static bool cb_duplicate_seen(void *context, const char *key, uint64_t seconds)
{
	(void)context;
	(void)seconds;
	return strstr(key, "<seen@example.org>") != NULL || strstr(key, "tracked-id") != NULL;
}

static const struct sieve_callbacks callbacks = {
        NULL,
        cb_mailbox_exists,
        cb_duplicate_seen,
        cb_include,
};

static void describe_flags(struct buf *b, char *const *flags, size_t count)
{
	if (count == 0)
		return;
	buf_append_char(b, '[');
	for (size_t i = 0; i < count; i++)
		buf_printf(b, "%s%s", i > 0 ? " " : "", flags[i]);
	buf_append_char(b, ']');
}

static const char *const type_names[] = {
        "keep", "fileinto", "redirect", "reject", "ereject", "discard", "vacation",
};

/* "fileinto:Work+create[\\Seen] | redirect:x@y | implicit[\\Flagged]" */
static char *describe(const struct sieve_result *r)
{
	struct buf b = BUF_INIT(0);

	buf_append_str(&b, "");
	for (size_t i = 0; i < r->action_count; i++) {
		const struct sieve_action *a = &r->actions[i];
		if (i > 0)
			buf_append_str(&b, " | ");
		buf_append_str(&b, type_names[a->type]);
		if (a->mailbox != NULL)
			buf_printf(&b, ":%s", a->mailbox);
		if (a->address != NULL)
			buf_printf(&b, ":%s", a->address);
		if (a->reason != NULL)
			buf_printf(&b, ":%s", a->reason);
		if (a->create)
			buf_append_str(&b, "+create");
		describe_flags(&b, a->flags, a->flag_count);
	}
	if (r->implicit_keep) {
		buf_append_str(&b, r->action_count > 0 ? " | implicit" : "implicit");
		describe_flags(&b, r->keep_flags, r->keep_flag_count);
	}
	return buf_steal(&b);
}

static struct sieve_message make_msg(const char *data)
{
	struct sieve_message msg = {
	        data, strlen(data), "alice+lists@example.org", "bob+tag@example.com", "bob", NOW,
	};
	return msg;
}

/* Compiles and runs; returns 0/-1 from sieve_execute, -2 on a compile error. */
static int run_script(const char *src, const char *data, const struct sieve_limits *limits,
                      struct sieve_result *r)
{
	struct sieve_error err;
	struct sieve_script *s = sieve_compile("test", src, strlen(src), NULL, &err);

	if (s == NULL) {
		fprintf(stderr, "compile error %u:%u %s in:\n%s\n", err.line, err.column,
		        err.message, src);
		return -2;
	}
	struct sieve_message msg = make_msg(data);
	int ret = sieve_execute(s, &msg, &callbacks, limits, r);
	sieve_script_free(&s);
	return ret;
}

struct run_case {
	const char *script;
	const char *want;  /* describe() of the result */
	const char *error; /* substring of result->error; NULL when none */
};

static const struct run_case cases[] = {
        /* actions and the implicit keep */
        {"keep;", "keep", NULL},
        {"discard;", "discard", NULL},
        {"", "implicit", NULL},
        {"require \"fileinto\"; fileinto \"Work\";", "fileinto:Work", NULL},
        {"require [\"fileinto\",\"copy\"]; fileinto :copy \"Work\";", "fileinto:Work | implicit",
         NULL},
        {"require \"fileinto\"; fileinto \"A\"; fileinto \"A\"; fileinto \"B\";",
         "fileinto:A | fileinto:B", NULL},
        {"require \"fileinto\"; keep; fileinto \"inbox\"; fileinto \"INBOX\";", "keep", NULL},
        {"require [\"fileinto\",\"mailbox\"]; fileinto :create \"New/Sub\";",
         "fileinto:New/Sub+create", NULL},
        {"redirect \"x@example.net\";", "redirect:x@example.net", NULL},
        {"require \"copy\"; redirect :copy \"x@example.net\"; redirect \"x@example.net\";",
         "redirect:x@example.net", NULL},
        {"redirect \"not an address\";", "implicit", "invalid address"},
        {"require \"reject\"; reject \"go away\";", "reject:go away", NULL},
        {"require \"ereject\"; ereject \"no\";", "ereject:no", NULL},
        {"require \"reject\"; reject \"r\"; discard;", "reject:r | discard", NULL},
        {"require [\"reject\",\"fileinto\"];\nfileinto \"A\";\nreject \"r\";", "fileinto:A",
         "reject cannot be combined with fileinto"},
        {"require [\"reject\"];\nreject \"r\";\nkeep;", "reject:r", "keep cannot be combined"},
        {"redirect \"a@x.org\"; redirect \"b@x.org\"; redirect \"c@x.org\";\n"
         "redirect \"d@x.org\";\nredirect \"e@x.org\";",
         "redirect:a@x.org | redirect:b@x.org | redirect:c@x.org | redirect:d@x.org",
         "too many redirects"},
        {"keep; stop; discard;", "keep", NULL},
        /* control flow */
        {"if false { discard; } elsif true { keep; } else { redirect \"a@b.c\"; }", "keep", NULL},
        {"if true { keep; } elsif true { discard; } else { discard; }", "keep", NULL},
        {"if false { keep; } elsif false { keep; } else { discard; }", "discard", NULL},
        {"if allof(true, not false) { discard; }", "discard", NULL},
        {"if anyof(false, false) { discard; }", "implicit", NULL},
        {"if not exists \"X-Nope\" { discard; }", "discard", NULL},
        {"if exists [\"From\", \"X-Nope\"] { discard; }", "implicit", NULL},
        {"if size :over 100 { discard; }", "discard", NULL},
        {"if size :under 10 { discard; }", "implicit", NULL},
        /* header: RFC 2047 decoded, comparators, match types */
        {"if header :contains \"subject\" \"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\" { discard; }",
         "discard", NULL},
        {"if header :is \"subject\" \"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae"
         "\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88 REPORT\" { discard; }",
         "discard", NULL},
        {"if header :comparator \"i;octet\" :contains \"subject\" \"REPORT\" { discard; }",
         "implicit", NULL},
        {"if header :matches \"subject\" \"*\xe3\x81\xae????*\" { discard; }", "discard", NULL},
        {"if header :matches \"x-spam-score\" \"1?\" { discard; }", "discard", NULL},
        {"if header :matches \"x-greek\" \"????????\" { discard; }", "discard", NULL},
        {"if header :matches \"x-greek\" \"?????????\" { discard; }", "implicit", NULL},
        {"if header :comparator \"i;octet\" :matches \"x-greek\" \"????????\" { discard; }",
         "implicit", NULL},
        {"if header :matches \"x-spam-score\" \"1\\\\?\" { discard; }", "implicit", NULL},
        {"if header :matches \"from\" \"*\\\\*\" { discard; }", "implicit", NULL},
        /* i;unicode-casemap folds Latin-1, Greek, fullwidth; i;ascii-casemap does not */
        {"require \"comparator-i;unicode-casemap\";\n"
         "if header :comparator \"i;unicode-casemap\" :is \"x-latin\" "
         "\"\xc3\xa4rger \xc3\x9c"
         "BER GR\xc3\x96\xc3\x9f"
         "E\" { discard; }",
         "discard", NULL},
        {"if header :is \"x-latin\" \"\xc3\xa4rger \xc3\x9c"
         "BER GR\xc3\x96\xc3\x9f"
         "E\" "
         "{ discard; }",
         "implicit", NULL},
        {"require \"comparator-i;unicode-casemap\";\n"
         "if header :comparator \"i;unicode-casemap\" :is \"x-greek\" "
         "\"\xce\xba\xce\x91\xce\x9b\xce\x97\xce\x9c\xce\x88\xce\xa1\xce\x91\" { discard; }",
         "discard", NULL},
        {"require \"comparator-i;unicode-casemap\";\n"
         "if header :comparator \"i;unicode-casemap\" :is \"x-wide\" "
         "\"\xef\xbd\x99\xef\xbc\xb5\xef\xbc\xa2\xef\xbc\xa9\xef\xbc\xae\" { discard; }",
         "discard", NULL},
        {"require [\"comparator-i;unicode-casemap\", \"variables\"];\n"
         "if string :comparator \"i;unicode-casemap\" \"\xd0\x9f\xd0\xa0\xd0\x98\xd0\x92\xd0\x95"
         "\xd0\xa2 \xd0\x81\xd0\xb6\" \"\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 "
         "\xd1\x91\xd0\x96\" { discard; }",
         "discard", NULL},
        {"require [\"comparator-i;unicode-casemap\", \"variables\"];\n"
         "if string :comparator \"i;unicode-casemap\" :matches \"\xc3\x85sa\" \"?SA\" "
         "{ discard; }",
         "discard", NULL},
        /* relational and i;ascii-numeric */
        {"require [\"relational\", \"comparator-i;ascii-numeric\"];\n"
         "if header :value \"ge\" :comparator \"i;ascii-numeric\" \"x-spam-score\" \"9\" "
         "{ discard; }",
         "discard", NULL},
        {"require [\"relational\"];\n"
         "if header :value \"ge\" \"x-spam-score\" \"9\" { discard; }",
         "implicit", NULL},
        {"require [\"relational\", \"comparator-i;ascii-numeric\"];\n"
         "if header :is :comparator \"i;ascii-numeric\" \"x-spam-score\" \"012\" { discard; }",
         "discard", NULL},
        {"require [\"relational\", \"comparator-i;ascii-numeric\"];\n"
         "if address :count \"eq\" :comparator \"i;ascii-numeric\" [\"to\", \"cc\"] \"3\" "
         "{ discard; }",
         "discard", NULL},
        {"require [\"relational\", \"comparator-i;ascii-numeric\"];\n"
         "if header :count \"gt\" :comparator \"i;ascii-numeric\" \"x-priority\" \"1\" "
         "{ discard; }",
         "discard", NULL},
        {"require [\"relational\", \"comparator-i;ascii-numeric\"];\n"
         "if header :value \"lt\" :comparator \"i;ascii-numeric\" \"subject\" \"5\" "
         "{ discard; }",
         "implicit", NULL},
        /* address parts, subaddress, envelope */
        {"if address :is :domain \"from\" \"example.org\" { discard; }", "discard", NULL},
        {"if address :localpart \"from\" \"alice+lists\" { discard; }", "discard", NULL},
        {"if address :all \"to\" \"carol@example.net\" { discard; }", "discard", NULL},
        {"require \"subaddress\"; if address :user \"cc\" \"dave\" { discard; }", "discard", NULL},
        {"require \"subaddress\"; if address :detail \"cc\" \"work\" { discard; }", "discard",
         NULL},
        {"require \"subaddress\"; if address :detail \"to\" \"\" { discard; }", "implicit", NULL},
        {"require [\"envelope\", \"subaddress\"];\n"
         "if envelope :detail \"to\" \"tag\" { discard; }",
         "discard", NULL},
        {"require [\"envelope\"]; if envelope :domain \"from\" \"EXAMPLE.org\" { discard; }",
         "discard", NULL},
        /* index */
        {"require \"index\"; if header :index 1 \"x-priority\" \"3\" { discard; }", "discard",
         NULL},
        {"require \"index\"; if header :index 1 :last \"x-priority\" \"1\" { discard; }", "discard",
         NULL},
        {"require \"index\"; if header :index 2 :last \"x-priority\" \"1\" { discard; }",
         "implicit", NULL},
        /* variables: captures, every set modifier, expansion everywhere */
        {"require [\"variables\", \"fileinto\"];\n"
         "if header :matches \"from\" \"*<*+*@*>\" { fileinto \"${2}/${3}/${4}\"; }",
         "fileinto:alice/lists/Example.ORG", NULL},
        {"require [\"variables\", \"fileinto\"];\n"
         "if address :matches :all \"to\" \"?ar*@*\" { fileinto \"${0}-${1}-${2}-${3}\"; }",
         "fileinto:carol@example.net-c-ol-example.net", NULL},
        {"require [\"variables\", \"fileinto\"];\n"
         "set :lower :upperfirst \"a\" \"hELLO\"; set :upper :lowerfirst \"b\" \"wOrld\";\n"
         "set :length \"c\" \"\xe6\x97\xa5\xe6\x9c\xac\"; set :quotewildcard \"d\" \"a*b?\\\\\";\n"
         "fileinto \"${a}.${b}.${c}.${d}\";",
         "fileinto:Hello.wORLD.2.a\\*b\\?\\\\", NULL},
        {"require [\"variables\", \"fileinto\"];\n"
         "set :length :upper \"n\" \"abc\"; fileinto \"${n}${unset}${}${ns.x}\";",
         "fileinto:3${}${ns.x}", NULL},
        {"require [\"variables\"];\n"
         "set \"pat\" \"*example*\"; if string :matches \"x-example-y\" \"${pat}\" { discard; }",
         "discard", NULL},
        {"require [\"variables\", \"relational\", \"comparator-i;ascii-numeric\"];\n"
         "if string :count \"eq\" :comparator \"i;ascii-numeric\" [\"a\", \"\", \"b\"] \"2\" "
         "{ discard; }",
         "discard", NULL},
        {"require [\"variables\"];\n"
         "set \"Mixed\" \"v\"; if string :is \"${mixed}\" \"v\" { discard; }",
         "discard", NULL},
        /* imap4flags */
        {"require \"imap4flags\";\n"
         "setflag \"\\\\Seen\"; addflag [\"$Work\", \"\\\\Flagged \\\\Seen\"];\n"
         "removeflag \"\\\\Flagged\";",
         "implicit[\\Seen $Work]", NULL},
        {"require [\"imap4flags\", \"fileinto\"];\n"
         "addflag \"\\\\Flagged\"; fileinto \"A\"; fileinto :flags \"$X\" \"B\";\n"
         "keep :flags [\"\\\\Answered\"];",
         "fileinto:A[\\Flagged] | fileinto:B[$X] | keep[\\Answered]", NULL},
        {"require [\"imap4flags\", \"variables\"];\n"
         "addflag \"v\" [\"a\", \"b\"]; removeflag \"v\" \"a\";\n"
         "if allof(hasflag \"v\" \"b\", not hasflag \"v\" \"a\", not hasflag \"b\") { discard; }",
         "discard", NULL},
        {"require [\"imap4flags\"]; setflag \"\\\\Seen\";\n"
         "if hasflag :contains \"see\" { discard; }",
         "discard", NULL},
        /* body */
        {"require \"body\"; if body :contains \"\xe4\xbc\x9a\xe8\xad\xb0\" { discard; }", "discard",
         NULL},
        {"require \"body\"; if body :text :contains \"secret\" { discard; }", "implicit", NULL},
        {"require \"body\"; if body :content \"application\" :contains \"secret\" { discard; }",
         "discard", NULL},
        {"require \"body\"; if body :content \"text/html\" :contains \"<b>World\" { discard; }",
         "discard", NULL},
        {"require \"body\"; if body :content \"\" :contains \"binary\" { discard; }", "discard",
         NULL},
        {"require \"body\"; if body :raw :contains \"YmluYXJ5\" { discard; }", "discard", NULL},
        /* date, currentdate */
        {"require \"date\"; if date :originalzone \"date\" \"hour\" \"12\" { discard; }", "discard",
         NULL},
        {"require \"date\"; if date :zone \"+0000\" \"date\" \"iso8601\" "
         "\"2018-05-21T03:34:56+00:00\" { discard; }",
         "discard", NULL},
        {"require \"date\"; if date :zone \"-0500\" \"date\" \"std11\" "
         "\"Sun, 20 May 2018 22:34:56 -0500\" { discard; }",
         "discard", NULL},
        {"require \"date\"; if date :zone \"+0000\" \"received\" \"weekday\" \"1\" { discard; }",
         "discard", NULL},
        {"require \"date\"; if date :originalzone \"date\" \"julian\" \"58259\" { discard; }",
         "discard", NULL},
        {"require [\"date\", \"relational\"];\n"
         "if currentdate :zone \"+0000\" :value \"ge\" \"date\" \"2023-11-14\" { discard; }",
         "discard", NULL},
        {"require [\"date\", \"variables\", \"fileinto\"];\n"
         "if currentdate :zone \"+0900\" :matches \"time\" \"*\" { fileinto \"${1}\"; }",
         "fileinto:07:13:20", NULL},
        /* mailboxexists, duplicate */
        {"require \"mailbox\"; if mailboxexists [\"INBOX\", \"Work\"] { discard; }", "discard",
         NULL},
        {"require \"mailbox\"; if mailboxexists [\"INBOX\", \"Nope\"] { discard; }", "implicit",
         NULL},
        {"require \"duplicate\"; if duplicate { discard; }", "implicit", NULL},
        {"require \"duplicate\"; if duplicate :uniqueid \"tracked-id\" { discard; }", "discard",
         NULL},
        /* include */
        {"require [\"include\", \"fileinto\"]; include \"lists\"; fileinto \"After\";",
         "fileinto:Lists | fileinto:After", NULL},
        {"require [\"include\", \"imap4flags\"];\n"
         "include :once \"flagger\"; include :once \"flagger\"; addflag \"$Mine\";",
         "implicit[$Included $Mine]", NULL},
        {"require [\"include\"]; include \"stopper\"; discard;", "implicit", NULL},
        {"require [\"include\"];\ninclude \"missing\";", "implicit", "missing"},
        {"require [\"include\"]; include :optional \"missing\"; discard;", "discard", NULL},
        {"require [\"include\"];\ninclude \"self\";", "implicit", "deeper"},
        {"require [\"include\", \"variables\", \"fileinto\"];\n"
         "global \"g\"; include \"setglobal\"; fileinto \"${g}\";",
         "fileinto:from-include", NULL},
        /* editheader: later tests see the edit */
        {"require [\"editheader\"];\n"
         "addheader \"X-Tag\" \"tagged\"; if header :is \"x-tag\" \"tagged\" { discard; }",
         "discard", NULL},
        {"require [\"editheader\"];\n"
         "deleteheader \"x-spam-score\"; if not exists \"x-spam-score\" { discard; }",
         "discard", NULL},
        {"require [\"editheader\"];\n"
         "deleteheader \"received\"; if exists \"received\" { discard; }",
         "discard", NULL},
        {"require [\"editheader\", \"index\"];\n"
         "deleteheader :index 1 :last \"x-priority\";\n"
         "if header :is \"x-priority\" \"3\" { if not header :is \"x-priority\" \"1\" "
         "{ discard; } }",
         "discard", NULL},
        {"require [\"editheader\"];\n"
         "deleteheader :matches \"x-priority\" \"3\";\n"
         "if not header :is \"x-priority\" \"3\" { discard; }",
         "discard", NULL},
        /* vacation (more checks below) */
        {"require \"vacation\"; vacation \"away\";", "vacation | implicit", NULL},
        {"require [\"vacation\", \"reject\"]; vacation \"away\";\nreject \"no\";",
         "vacation | implicit", "cannot be combined"},
};

static void test_table(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sieve_result r;

		sieve_result_init(&r);
		int ret = run_script(cases[i].script, default_msg, NULL, &r);
		char *got = describe(&r);
		CHECK_INT(ret, cases[i].error != NULL ? -1 : 0);
		if (strcmp(got, cases[i].want) != 0)
			fprintf(stderr, "case %zu: %s\n", i, cases[i].script);
		CHECK_STR(got, cases[i].want);
		if (cases[i].error != NULL) {
			CHECK(r.error != NULL && strstr(r.error, cases[i].error) != NULL);
			if (r.error == NULL || strstr(r.error, cases[i].error) == NULL)
				fprintf(stderr, "case %zu: error \"%s\"\n", i, r.error);
		} else if (r.error != NULL) {
			fprintf(stderr, "case %zu: unexpected error \"%s\"\n", i, r.error);
		}
		free(got);
		sieve_result_free(&r);
	}
}

/* The error names the line of the command that failed. */
/* The examples of RFC 5229 3 and 4 (match variables, set modifiers). */
static void test_rfc5229_examples(void)
{
	const char *msg =
	        "Subject: [acme-users] [fwd] version 1.0 is out\r\n"
	        "List-Id: Dovecot Mailing List <dovecot@dovecot.example.net>\r\n\r\nb\r\n";
	struct sieve_result r;

	sieve_result_init(&r);
	CHECK_INT(run_script("require [\"variables\", \"fileinto\"];\n"
	                     "if header :matches \"Subject\" \"[*] *\" {\n"
	                     "  fileinto \"${1}|${2}\"; }\n"
	                     "if header :matches \"List-ID\" \"*<*@*\" {\n"
	                     "  fileinto \"INBOX.lists.${2}\"; stop; }",
	                     msg, NULL, &r),
	          0);
	char *got = describe(&r);
	CHECK_STR(got,
	          "fileinto:acme-users|[fwd] version 1.0 is out | fileinto:INBOX.lists.dovecot");
	free(got);
	sieve_result_free(&r);

	sieve_result_init(&r);
	CHECK_INT(run_script("require [\"variables\", \"fileinto\"];\n"
	                     "set \"a\" \"juMBlEd lETteRS\";\n"
	                     "set :length \"b\" \"${a}\"; fileinto \"${b}\";\n"
	                     "set :lower \"b\" \"${a}\"; fileinto \"${b}\";\n"
	                     "set :upperfirst \"b\" \"${a}\"; fileinto \"${b}\";\n"
	                     "set :upperfirst :lower \"b\" \"${a}\"; fileinto \"${b}\";\n"
	                     "set :quotewildcard \"b\" \"Rock*\"; fileinto \"${b}\";\n",
	                     msg, NULL, &r),
	          0);
	got = describe(&r);
	CHECK_STR(got, "fileinto:15 | fileinto:jumbled letters | fileinto:JuMBlEd lETteRS | "
	               "fileinto:Jumbled letters | fileinto:Rock\\*");
	free(got);
	sieve_result_free(&r);
}

/* RFC 5228 5.4: the null reverse path is "" whatever the address part */
static void test_null_sender(void)
{
	const char *src = "require \"envelope\";\n"
	                  "if envelope :domain \"from\" \"\" { discard; }";
	struct sieve_error err;
	struct sieve_script *s = sieve_compile("t", src, strlen(src), NULL, &err);
	struct sieve_message msg = make_msg(default_msg);
	struct sieve_result r;

	CHECK(s != NULL);
	if (s == NULL)
		return;
	msg.envelope_from = "";
	sieve_result_init(&r);
	CHECK_INT(sieve_execute(s, &msg, NULL, NULL, &r), 0);
	CHECK(!r.implicit_keep);
	sieve_result_free(&r);
	sieve_script_free(&s);
}

static void test_error_line(void)
{
	struct sieve_result r;

	sieve_result_init(&r);
	CHECK_INT(run_script("require [\"reject\",\"fileinto\"];\r\nfileinto \"A\";\r\n\r\n"
	                     "reject \"r\";\r\n",
	                     default_msg, NULL, &r),
	          -1);
	CHECK_INT(r.error_line, 4);
	sieve_result_free(&r);
}

static void test_time_budget(void)
{
	struct sieve_limits limits = sieve_default_limits;
	struct sieve_result r;

	limits.max_run_ms = 0;
	sieve_result_init(&r);
	CHECK_INT(run_script("discard;", default_msg, &limits, &r), -1);
	CHECK(r.error != NULL && strstr(r.error, "time budget") != NULL);
	CHECK(r.implicit_keep);
	sieve_result_free(&r);
}

/* A big value against a long key is quadratic work: the budget holds
 * inside one match too (found by fuzz-sieve-run: minutes for 1 MB). */
static void test_time_budget_long_match(void)
{
	static const char *const tests[] = {
	        "if header :contains \"subject\" \"%sb\" { discard; }",
	        "if header :matches \"subject\" \"*%sb\" { discard; }",
	        "require \"editheader\";\ndeleteheader :contains \"subject\" \"%sb\";",
	};
	struct sieve_limits limits = sieve_default_limits;
	struct buf key = BUF_INIT(0), msg = BUF_INIT(0);

	limits.max_run_ms = 20;
	for (int i = 0; i < 4000; i++)
		buf_append_char(&key, 'a');
	buf_append_str(&msg, "Subject: ");
	for (int i = 0; i < 100000; i++)
		buf_append_char(&msg, 'a');
	buf_append_str(&msg, "\r\n\r\nbody\r\n");
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		struct sieve_result r;
		char *src = xasprintf(tests[i], key.data);

		sieve_result_init(&r);
		CHECK_INT(run_script(src, msg.data, &limits, &r), -1);
		CHECK(r.error != NULL && strstr(r.error, "time budget") != NULL);
		CHECK_INT(r.error_line, i == 2 ? 2 : 1);
		CHECK(r.implicit_keep && r.edited_header == NULL);
		sieve_result_free(&r);
		free(src);
	}
	buf_free(&key);
	buf_free(&msg);
}

static void test_max_actions(void)
{
	struct sieve_limits limits = sieve_default_limits;
	struct sieve_result r;

	limits.max_actions = 2;
	sieve_result_init(&r);
	CHECK_INT(run_script("require \"fileinto\"; fileinto \"a\"; fileinto \"b\"; "
	                     "fileinto \"c\";",
	                     default_msg, &limits, &r),
	          -1);
	CHECK(r.error != NULL && strstr(r.error, "too many actions") != NULL);
	sieve_result_free(&r);
}

/* The edited header is what deliver stores: added fields first (or last
 * with :last), deleted ones gone, non-ASCII values encoded. */
static void test_editheader_output(void)
{
	struct sieve_result r;
	const char *msg = "Subject: hi\r\nX-A: 1\r\nX-B: 2\r\n\r\nbody\r\n";

	sieve_result_init(&r);
	CHECK_INT(run_script("require \"editheader\";\n"
	                     "addheader \"X-First\" \"1\"; addheader :last \"X-Last\" \"z\";\n"
	                     "addheader \"X-Utf\" \"\xe6\x97\xa5\xe6\x9c\xac\";\n"
	                     "deleteheader \"x-a\";",
	                     msg, NULL, &r),
	          0);
	CHECK_STR(r.edited_header, "X-Utf: =?UTF-8?B?5pel5pys?=\r\nX-First: 1\r\nSubject: hi\r\n"
	                           "X-B: 2\r\nX-Last: z\r\n\r\n");
	CHECK_INT(r.edited_header_len, strlen(r.edited_header));
	CHECK_STR(msg + r.body_offset, "body\r\n");
	/* a later script on the same result sees the edits */
	CHECK_INT(run_script("if header :is \"X-Utf\" \"\xe6\x97\xa5\xe6\x9c\xac\" { discard; }",
	                     msg, NULL, &r),
	          0);
	CHECK(!r.implicit_keep);
	sieve_result_free(&r);
}

/* A value of stray UTF-8 continuation octets (no place to cut between
 * encoded-words) still ends: found by fuzz-sieve-run, it looped. */
static void test_editheader_stray_utf8(void)
{
	struct sieve_result r;
	char src[200];

	snprintf(src, sizeof(src), "require \"editheader\";\naddheader \"X-Bad\" \"%s\";",
	         "\xb4\xb4\xb4\xb4\xb4\xb4\xb4\xb4\xb4\xb4\xb4\xb4\xb4\xb4\xb4\xb4"
	         "\xb4\xb4\xb4\xb4\xb4\xb4\xb4\xb4\xb4\xb4\xb4\xb4\xb4\xb4\xb4\xb4"
	         "\xb4\xb4\xb4\xb4\xb4\xb4\xb4\xb4\xb4\xb4\xb4\xb4\xb4\xb4");
	sieve_result_init(&r);
	CHECK_INT(run_script(src, "Subject: s\r\n\r\nb\r\n", NULL, &r), 0);
	const char *want = "X-Bad: =?UTF-8?B?tA==?=\r\n =?UTF-8?B?tLS0";
	CHECK(r.edited_header != NULL && strncmp(r.edited_header, want, strlen(want)) == 0);
	sieve_result_free(&r);
}

/* addheader on header blocks with and without their blank line: the new
 * field is a line of its own and the block ends with one blank line. */
static void test_addheader_header_shapes(void)
{
	static const struct {
		const char *msg, *last, *first;
	} shapes[] = {
	        {"Subject: hi\r\n\r\nbody\r\n", "Subject: hi\r\nX-A: z\r\n\r\n",
	         "X-A: z\r\nSubject: hi\r\n\r\n"},
	        {"Subject: hi\r\n", "Subject: hi\r\nX-A: z\r\n\r\n",
	         "X-A: z\r\nSubject: hi\r\n\r\n"},
	        {"Subject: hi\n\nbody\n", "Subject: hi\nX-A: z\n\n", "X-A: z\nSubject: hi\n\n"},
	        {"Subject: hi", "Subject: hi\nX-A: z\n\n", "X-A: z\nSubject: hi\n\n"},
	};
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		struct sieve_result r;
		sieve_result_init(&r);
		CHECK_INT(run_script("require \"editheader\"; addheader :last \"X-A\" \"z\";",
		                     shapes[i].msg, NULL, &r),
		          0);
		if (r.edited_header == NULL || strcmp(r.edited_header, shapes[i].last) != 0) {
			fprintf(stderr, "case %zu :last: %s\n", i,
			        r.edited_header != NULL ? r.edited_header : "(none)");
			CHECK(false);
		}
		sieve_result_free(&r);
		sieve_result_init(&r);
		CHECK_INT(run_script("require \"editheader\"; addheader \"X-A\" \"z\";",
		                     shapes[i].msg, NULL, &r),
		          0);
		if (r.edited_header == NULL || strcmp(r.edited_header, shapes[i].first) != 0) {
			fprintf(stderr, "case %zu first: %s\n", i,
			        r.edited_header != NULL ? r.edited_header : "(none)");
			CHECK(false);
		}
		sieve_result_free(&r);
	}
}

/* Several scripts on one result: flags carry over, stop is reported. */
static void test_two_scripts(void)
{
	struct sieve_result r;

	sieve_result_init(&r);
	CHECK_INT(run_script("require \"imap4flags\"; addflag \"$Routed\"; stop;", default_msg,
	                     NULL, &r),
	          0);
	CHECK(r.stopped);
	r.stopped = false;
	CHECK_INT(run_script("require [\"imap4flags\", \"fileinto\"];\n"
	                     "if hasflag \"$Routed\" { fileinto \"R\"; }",
	                     default_msg, NULL, &r),
	          0);
	char *got = describe(&r);
	CHECK_STR(got, "fileinto:R[$Routed]");
	free(got);
	sieve_result_free(&r);
}

static void test_duplicate_records(void)
{
	struct sieve_result r;

	sieve_result_init(&r);
	CHECK_INT(run_script("require \"duplicate\";\n"
	                     "if duplicate :seconds 60 { discard; }\n"
	                     "if duplicate :handle \"h\" :header \"x-priority\" { discard; }",
	                     default_msg, NULL, &r),
	          0);
	CHECK_INT(r.duplicate_count, 2);
	if (r.duplicate_count == 2) {
		CHECK_STR(r.duplicates[0], "\n<m1@example.org>");
		CHECK_INT(r.duplicate_seconds[0], 60);
		CHECK_STR(r.duplicates[1], "h\n3");
	}
	sieve_result_free(&r);
}

static void test_vacation_fields(void)
{
	struct sieve_result r;

	sieve_result_init(&r);
	CHECK_INT(run_script("require \"vacation\";\n"
	                     "vacation :days 0 :addresses [\"b@x.org\"] \"I am away\";",
	                     default_msg, NULL, &r),
	          0);
	CHECK_INT(r.action_count, 1);
	const struct sieve_vacation *v = r.action_count == 1 ? r.actions[0].vacation : NULL;
	CHECK(v != NULL);
	if (v != NULL) {
		CHECK_INT(v->seconds, 86400);
		CHECK_STR(v->reason, "I am away");
		CHECK_STR(v->subject, "Auto: \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae"
		                      "\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88 report");
		CHECK_INT(v->address_count, 1);
		CHECK(v->handle != NULL && strlen(v->handle) == 16);
	}
	char *first = v != NULL ? xstrdup(v->handle) : NULL;
	sieve_result_free(&r);

	/* the same arguments give the same handle, others another one */
	sieve_result_init(&r);
	CHECK_INT(run_script("require [\"vacation\", \"vacation-seconds\"];\n"
	                     "vacation :seconds 0 :subject \"S\" \"I am away\";",
	                     default_msg, NULL, &r),
	          0);
	v = r.action_count == 1 ? r.actions[0].vacation : NULL;
	CHECK(v != NULL && v->seconds == 0 && strcmp(v->subject, "S") == 0);
	CHECK(v != NULL && first != NULL && strcmp(v->handle, first) != 0);
	sieve_result_free(&r);
	sieve_result_init(&r);
	CHECK_INT(run_script("require \"vacation\";\nvacation :handle \"mine\" \"I am away\";",
	                     default_msg, NULL, &r),
	          0);
	CHECK_STR(r.actions[0].vacation->handle, "mine");
	CHECK_INT(r.actions[0].vacation->seconds, 7 * 86400);
	sieve_result_free(&r);
	free(first);
}

/* include :once asks the callback once */
static void test_include_once(void)
{
	struct sieve_result r;

	include_calls = 0;
	sieve_result_init(&r);
	CHECK_INT(run_script("require \"include\";\n"
	                     "include :once \"flagger\"; include :once \"flagger\";",
	                     default_msg, NULL, &r),
	          0);
	CHECK_INT(include_calls, 1);
	sieve_result_free(&r);
}

/* A huge header: every test still ends, the budget is checked. */
static void test_big_header(void)
{
	struct buf b = BUF_INIT(0);
	struct sieve_result r;

	for (int i = 0; i < 20000; i++)
		buf_printf(&b, "X-Many: value number %d\r\n", i);
	buf_append_str(&b, "Subject: last\r\n\r\nbody\r\n");
	sieve_result_init(&r);
	CHECK_INT(run_script("if header :matches \"x-many\" \"*19999\" { discard; }", b.data, NULL,
	                     &r),
	          0);
	CHECK(!r.implicit_keep);
	sieve_result_free(&r);
	buf_free(&b);
}

/* A real Japanese message from the corpus: the From display name is an
 * ISO-2022-JP encoded-word, the Received date has a comment. */
static void test_corpus_message(void)
{
	const char *src = getenv("YUBIN_SOURCE_ROOT");
	char path[4096];

	snprintf(path, sizeof(path), "%s/../shared/corpus/deco-mail-filter/3-1-03.txt",
	         src != NULL ? src : ".");
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		printf("corpus message not found at %s: skipped\n", path);
		return;
	}
	struct buf b = BUF_INIT(0);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);

	struct sieve_result r;
	sieve_result_init(&r);
	CHECK_INT(run_script("require [\"date\", \"body\", \"fileinto\", \"variables\"];\n"
	                     "if allof(header :contains \"from\" \"\xe3\x81\xa7\xe3\x81\x93\",\n"
	                     "  date :originalzone \"received\" \"zone\" \"+0900\",\n"
	                     "  body :content \"text\" :is \"test\") {\n"
	                     "  if header :matches \"from\" \"* <*>\" { fileinto \"${1}\"; } }",
	                     b.data, NULL, &r),
	          0);
	char *got = describe(&r);
	CHECK_STR(got, "fileinto:\xe3\x81\xa7\xe3\x81\x93\xe7\xac\x91\xe3\x82\x80"
	               "\xe3\x82\xa8\xe3\x83\x95");
	free(got);
	sieve_result_free(&r);
	buf_free(&b);
}

int main(void)
{
	test_table();
	test_rfc5229_examples();
	test_null_sender();
	test_error_line();
	test_time_budget();
	test_time_budget_long_match();
	test_max_actions();
	test_editheader_output();
	test_editheader_stray_utf8();
	test_addheader_header_shapes();
	test_two_scripts();
	test_duplicate_records();
	test_vacation_fields();
	test_include_once();
	test_big_header();
	test_corpus_message();
	return test_report();
}

/* SORT and THREAD (RFC 5256): base subject extraction, sent dates,
 * msg-ids, criteria, the sort order, and threads built on synthetic
 * message sets. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "imap/imap-sort.h"
#include "lib/xmalloc.h"
#include "test.h"

#define ALL_NEEDS \
	(IMAP_SORT_NEED_SUBJECT | IMAP_SORT_NEED_DATE | IMAP_SORT_NEED_ADDR | IMAP_SORT_NEED_REFS)

static void test_base_subject(void)
{
	static const struct {
		const char *raw, *want;
		bool reply;
	} cases[] = {
	        {"test", "TEST", false},
	        {"Re: test", "TEST", true},
	        {"re: Re: RE:test", "TEST", true},
	        {"Fwd: test", "TEST", true},
	        {"Fw: test", "TEST", true},
	        {"FWD:test", "TEST", true},
	        {"Re [list]: test", "TEST", true},
	        {"[list] Re: test", "TEST", true},
	        {"[a][b] Re: [c] Fwd: x", "X", true},
	        {"[list] test", "TEST", false},
	        {"[list]", "[LIST]", false},
	        {"[list]   ", "[LIST]", false},
	        {"Re: [list] x", "X", true},
	        {"test (fwd)", "TEST", true},
	        {"test(FWD) (fwd)   ", "TEST", true},
	        {"[fwd: test]", "TEST", true},
	        {"[Fwd: Re: test (fwd)]", "TEST", true},
	        {"Re: [fwd: [fwd: test]]", "TEST", true},
	        {"[fwd: test", "[FWD: TEST", false},
	        {"  multiple   spaces\t\ttab  ", "MULTIPLE SPACES TAB", false},
	        {"Rex: test", "REX: TEST", false},
	        {"Re test", "RE TEST", false},
	        {"Re:", "", true},
	        {"", "", false},
	        {"Re: Re: ", "", true},
	        {"=?UTF-8?B?UmU6IOaXpeacrOiqng==?=", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", true},
	        {"=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?= (fwd)", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	         true},
	        {"=?utf-8?q?caf=C3=A9?=", "CAF\xc3\xa9", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool reply = !cases[i].reply;
		char *got = imap_base_subject(cases[i].raw, &reply);
		CHECK_STR(got, cases[i].want);
		if (reply != cases[i].reply)
			fprintf(stderr, "reply flag wrong for \"%s\"\n", cases[i].raw);
		CHECK(reply == cases[i].reply);
		free(got);
	}
	char *none = imap_base_subject(NULL, NULL);
	CHECK_STR(none, "");
	free(none);
}

static time_t utc(int y, int mon, int d, int h, int m, int s)
{
	struct tm tm = {.tm_year = y - 1900,
	                .tm_mon = mon - 1,
	                .tm_mday = d,
	                .tm_hour = h,
	                .tm_min = m,
	                .tm_sec = s};
	return timegm(&tm);
}

static void test_dates(void)
{
	static const struct {
		const char *value;
		int ok;
		int y, mon, d, h, m, s;
	} cases[] = {
	        {"Tue, 1 Jul 2003 10:52:37 +0200", 1, 2003, 7, 1, 8, 52, 37},
	        {"1 Jul 2003 10:52:37 -0130", 1, 2003, 7, 1, 12, 22, 37},
	        {"Tue,  01 jul 03 10:52 GMT", 1, 2003, 7, 1, 10, 52, 0},
	        {"Mon, 5 Feb 99 23:00:00 EST", 1, 1999, 2, 6, 4, 0, 0},
	        {"5 February 2024 01:02:03 +0000 (UTC)", 1, 2024, 2, 5, 1, 2, 3},
	        {"(comment) Fri 29 Feb 2008 12:00:00 PDT", 1, 2008, 2, 29, 19, 0, 0},
	        {"31 Dec 1999 23:59:60 +0000", 1, 2000, 1, 1, 0, 0, 0},
	        {"garbage", 0, 0, 0, 0, 0, 0, 0},
	        {"", 0, 0, 0, 0, 0, 0, 0},
	        {"32 Jul 2003 10:00:00 +0000", 0, 0, 0, 0, 0, 0, 0},
	        {"1 Foo 2003 10:00:00 +0000", 0, 0, 0, 0, 0, 0, 0},
	        {"1 Jul 2003", 0, 0, 0, 0, 0, 0, 0},
	        {"1 Jul 2003 25:00:00 +0000", 0, 0, 0, 0, 0, 0, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		time_t t = 0;
		int ret = imap_sort_date_parse(cases[i].value, &t);
		CHECK_INT(ret, cases[i].ok ? 0 : -1);
		if (cases[i].ok) {
			CHECK_INT(t, utc(cases[i].y, cases[i].mon, cases[i].d, cases[i].h,
			                 cases[i].m, cases[i].s));
		}
	}
}

static void test_msgids(void)
{
	static const struct {
		const char *value;
		const char *want; /* space-separated */
	} cases[] = {
	        {"<a@b> <c@d>", "a@b c@d"},
	        {"<a@b><c@d>", "a@b c@d"},
	        {"<\"a b\"@x>", "ab@x"},
	        {"<\"abc\"@x.y>", "abc@x.y"},
	        {"(comment <x@y>) <a@b>", "a@b"},
	        {"\"quoted <x@y>\" <a@b>", "a@b"},
	        {"<no-at> <@x> <x@> <ok@x>", "ok@x"},
	        {"Your message of Mon <a@b>", "a@b"},
	        {"<a@b", ""},
	        {"", ""},
	        {"< a@b >", "a@b"},
	        {"<A@B> <a@b>", "A@B a@b"}, /* msg-id comparison is case-sensitive */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char **ids;
		size_t n = imap_msgid_list(cases[i].value, &ids, 100);
		struct buf got = BUF_INIT(0);
		for (size_t k = 0; k < n; k++) {
			buf_printf(&got, "%s%s", k > 0 ? " " : "", ids[k]);
			free(ids[k]);
		}
		free(ids);
		CHECK_STR(buf_str(&got), cases[i].want);
		buf_free(&got);
	}
	char **ids;
	CHECK_INT(imap_msgid_list("<a@b> <c@d> <e@f>", &ids, 2), 2);
	free(ids[0]);
	free(ids[1]);
	free(ids);
}

static void test_criteria(void)
{
	static const struct {
		const char *list[4];
		unsigned int count;
		bool display;
		int ret;
	} cases[] = {
	        {{"ARRIVAL"}, 1, false, 0},
	        {{"reverse", "date", "Subject"}, 3, false, 0},
	        {{"REVERSE"}, 1, false, -1},
	        {{"REVERSE", "REVERSE", "DATE"}, 3, false, -1},
	        {{"DATE", "REVERSE"}, 2, false, -1},
	        {{"FOO"}, 1, false, -1},
	        {{"DISPLAYFROM"}, 1, false, -1},
	        {{"DISPLAYFROM", "REVERSE", "DISPLAYTO"}, 3, true, 0},
	        {{NULL}, 0, false, -1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct imap_sort_criterion crit[IMAP_SORT_MAX_KEYS + 1];
		const char *error = NULL;
		int ret = imap_sort_parse_criteria(cases[i].list, cases[i].count, cases[i].display,
		                                   crit, &error);
		CHECK_INT(ret, cases[i].ret);
		CHECK(ret == 0 || error != NULL);
	}
	struct imap_sort_criterion crit[IMAP_SORT_MAX_KEYS + 1];
	const char *error, *names[] = {"REVERSE", "DATE", "SUBJECT"};
	CHECK_INT(imap_sort_parse_criteria(names, 3, false, crit, &error), 0);
	CHECK(crit[0].key == IMAP_SORT_DATE && crit[0].reverse);
	CHECK(crit[1].key == IMAP_SORT_SUBJECT && !crit[1].reverse);
	CHECK(crit[2].key == IMAP_SORT_END);
	CHECK_INT(imap_sort_needs(crit), IMAP_SORT_NEED_DATE | IMAP_SORT_NEED_SUBJECT);
}

/* A message from header lines; seq from 1, uid = seq * 10. */
static void mk(struct imap_sort_msg *m, uint32_t seq, const char *header)
{
	memset(m, 0, sizeof(*m));
	m->seq = seq;
	m->uid = seq * 10;
	m->arrival = m->sent = 1000000 + seq;
	imap_sort_msg_fill(m, header, strlen(header), ALL_NEEDS);
}

static void free_msgs(struct imap_sort_msg *msgs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		imap_sort_msg_clear(&msgs[i]);
}

static void test_fill(void)
{
	struct imap_sort_msg m;
	mk(&m, 1,
	   "From: \"Ann =?UTF-8?Q?B=C3=A9?=\" <Ann.X@Example.ORG>\n"
	   "To: undisclosed:;, bob@example.org\n"
	   "Subject: Re: =?UTF-8?B?5pel5pys6Kqe?=\n"
	   "Date: Tue, 1 Jul 2003 10:52:37 +0200\n"
	   "Message-ID: <id1@x>\n"
	   "In-Reply-To: <parent@x>\n"
	   "\n");
	CHECK_STR(m.from, "ANN.X");
	CHECK_STR(m.display_from, "ANN B\xc3\xa9");
	CHECK_STR(m.to, "BOB");
	CHECK_STR(m.display_to, "BOB@EXAMPLE.ORG");
	CHECK_STR(m.cc, "");
	CHECK_STR(m.subject, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e");
	CHECK(m.reply);
	CHECK_INT(m.sent, utc(2003, 7, 1, 8, 52, 37));
	CHECK_STR(m.message_id, "id1@x");
	CHECK_INT(m.ref_count, 1);
	CHECK_STR(m.ref_count > 0 ? m.refs[0] : NULL, "parent@x");
	imap_sort_msg_clear(&m);

	/* References wins over In-Reply-To; a bad Date keeps INTERNALDATE */
	mk(&m, 2, "References: <a@x> <b@x>\nIn-Reply-To: <c@x>\nDate: yesterday\n\n");
	CHECK_INT(m.ref_count, 2);
	CHECK_INT(m.sent, 1000002);
	CHECK(m.message_id == NULL);
	CHECK_STR(m.subject, "");
	imap_sort_msg_clear(&m);
}

static void sort_case(struct imap_sort_msg *msgs, size_t n, const char *const *names,
                      unsigned int count, const char *want)
{
	struct imap_sort_criterion crit[IMAP_SORT_MAX_KEYS + 1];
	const char *error;
	struct imap_sort_msg *order[16];
	CHECK_INT(imap_sort_parse_criteria(names, count, true, crit, &error), 0);
	for (size_t i = 0; i < n; i++)
		order[i] = &msgs[i];
	imap_sort_msgs(order, n, crit);
	struct buf got = BUF_INIT(0);
	for (size_t i = 0; i < n; i++)
		buf_printf(&got, "%s%u", i > 0 ? " " : "", (unsigned int)order[i]->seq);
	CHECK_STR(buf_str(&got), want);
	buf_free(&got);
}

static void test_sort(void)
{
	struct imap_sort_msg msgs[5];
	mk(&msgs[0], 1, "Subject: b\nFrom: zed@x\nDate: 3 Jan 2020 00:00:00 +0000\n\n");
	mk(&msgs[1], 2, "Subject: Re: a\nFrom: Amy <amy@x>\nDate: 1 Jan 2020 00:00:00 +0000\n\n");
	mk(&msgs[2], 3, "Subject: A\nFrom: bob@x\nDate: 2 Jan 2020 00:00:00 +0000\n\n");
	mk(&msgs[3], 4, "Subject: [fwd: B]\nFrom: Zoe <AMY@x>\n\n");
	mk(&msgs[4], 5, "Subject: c\nDate: 2 Jan 2020 00:00:00 +0000\n\n");
	msgs[0].size = 300;
	msgs[1].size = 100;
	msgs[2].size = 300;
	msgs[3].size = 50;
	msgs[4].size = 100;
	msgs[0].arrival = 5;
	msgs[1].arrival = 4;
	msgs[2].arrival = 3;
	msgs[3].arrival = 2;
	msgs[4].arrival = 1;
	const char *subject[] = {"SUBJECT"}, *rsubject[] = {"REVERSE", "SUBJECT"};
	const char *size[] = {"SIZE"}, *rsize[] = {"REVERSE", "SIZE"};
	const char *date[] = {"DATE"}, *arrival[] = {"ARRIVAL"}, *from[] = {"FROM"};
	const char *dfrom[] = {"DISPLAYFROM"}, *size_date[] = {"SIZE", "REVERSE", "DATE"};
	sort_case(msgs, 5, subject, 1, "2 3 1 4 5");
	/* REVERSE does not reverse the implicit sequence order of ties */
	sort_case(msgs, 5, rsubject, 2, "5 1 4 2 3");
	sort_case(msgs, 5, size, 1, "4 2 5 1 3");
	sort_case(msgs, 5, rsize, 2, "1 3 2 5 4");
	/* message 4 has no Date: its INTERNALDATE (1000004) is in 1970 */
	sort_case(msgs, 5, date, 1, "4 2 3 5 1");
	sort_case(msgs, 5, arrival, 1, "5 4 3 2 1");
	/* no From sorts as "" first; AMY and amy are equal (casemap) */
	sort_case(msgs, 5, from, 1, "5 2 4 3 1");
	sort_case(msgs, 5, dfrom, 1, "5 2 3 1 4");
	sort_case(msgs, 5, size_date, 3, "4 5 2 1 3");
	free_msgs(msgs, 5);
}

static void thread_case(const char *const *headers, size_t n, enum imap_thread_algorithm alg,
                        bool uid, const char *want)
{
	struct imap_sort_msg *msgs = xcalloc(n + 1, sizeof(*msgs));
	for (size_t i = 0; i < n; i++)
		mk(&msgs[i], (uint32_t)(i + 1), headers[i]);
	struct buf got = BUF_INIT(0);
	imap_thread_build(msgs, n, alg, uid, &got);
	CHECK_STR(buf_str(&got), want);
	buf_free(&got);
	free_msgs(msgs, n);
	free(msgs);
}

#define D(day) "Date: " #day " Jan 2020 00:00:00 +0000\n"

static void test_thread_references(void)
{
	const enum imap_thread_algorithm R = IMAP_THREAD_REFERENCES;
	const char *chain[] = {
	        "Message-ID: <a@x>\nSubject: s\n" D(1) "\n",
	        "Message-ID: <b@x>\nReferences: <a@x>\nSubject: Re: s\n" D(2) "\n",
	        "Message-ID: <c@x>\nReferences: <a@x> <b@x>\nSubject: Re: s\n" D(3) "\n",
	};
	thread_case(chain, 3, R, false, "(1 2 3)");
	thread_case(chain, 3, R, true, "(10 20 30)");
	thread_case(chain, 0, R, false, "");
	const char *branch[] = {
	        "Message-ID: <a@x>\nSubject: s\n" D(1) "\n",
	        "Message-ID: <b@x>\nIn-Reply-To: <a@x>\nSubject: t\n" D(3) "\n",
	        "Message-ID: <c@x>\nIn-Reply-To: <a@x>\nSubject: u\n" D(2) "\n",
	        "Message-ID: <d@x>\nReferences: <a@x> <b@x>\nSubject: v\n" D(4) "\n",
	};
	/* siblings by date: 3 before 2; 2 continues with 4 */
	thread_case(branch, 4, R, false, "(1 (3)(2 4))");
	/* a missing parent of two: a dummy kept at the top */
	const char *dummy[] = {
	        "Message-ID: <b@x>\nReferences: <gone@x>\nSubject: one\n" D(2) "\n",
	        "Message-ID: <c@x>\nReferences: <gone@x>\nSubject: two\n" D(1) "\n",
	        "Message-ID: <d@x>\nSubject: three\n" D(3) "\n",
	};
	thread_case(dummy, 3, R, false, "((2)(1))(3)");
	/* a missing parent of one: promoted; a missing middle: promoted */
	const char *promote[] = {
	        "Message-ID: <a@x>\nSubject: one\n" D(5) "\n",
	        "Message-ID: <c@x>\nReferences: <a@x> <gone@x>\nSubject: two\n" D(6) "\n",
	        "Message-ID: <e@x>\nReferences: <gone2@x>\nSubject: three\n" D(1) "\n",
	};
	thread_case(promote, 3, R, false, "(3)(1 2)");
	/* References that loop: a names b, b names a */
	const char *loop[] = {
	        "Message-ID: <a@x>\nReferences: <b@x>\nSubject: one\n" D(1) "\n",
	        "Message-ID: <b@x>\nReferences: <a@x>\nSubject: two\n" D(2) "\n",
	        "Message-ID: <c@x>\nReferences: <c@x>\nSubject: three\n" D(3) "\n",
	        "Message-ID: <d@x>\nReferences: <e@x> <d@x> <e@x>\nSubject: four\n" D(4) "\n",
	};
	thread_case(loop, 4, R, false, "(2 1)(3)(4)");
	/* no Message-ID: each message stands alone; duplicates: the first
	 * one keeps the ID, the second is alone */
	const char *ids[] = {
	        "Subject: one\n" D(1) "\n",
	        "Subject: two\n" D(2) "\n",
	        "Message-ID: <a@x>\nSubject: three\n" D(3) "\n",
	        "Message-ID: <a@x>\nSubject: four\n" D(4) "\n",
	        "Message-ID: <z@x>\nIn-Reply-To: <a@x>\nSubject: five\n" D(5) "\n",
	};
	thread_case(ids, 5, R, false, "(1)(2)(3 5)(4)");
	/* a truncated References elsewhere is corrected by the message's own */
	const char *relink[] = {
	        "Message-ID: <d@x>\nReferences: <a@x> <c@x>\nSubject: s\n" D(4) "\n",
	        "Message-ID: <c@x>\nReferences: <a@x> <b@x>\nSubject: s\n" D(3) "\n",
	        "Message-ID: <a@x>\nSubject: s\n" D(1) "\n",
	        "Message-ID: <b@x>\nReferences: <a@x>\nSubject: s\n" D(2) "\n",
	};
	thread_case(relink, 4, R, false, "(3 4 2 1)");
	/* a message without references has no parent, whatever others said
	 * (1B): b leaves a; a and b then share a subject under a dummy */
	relink[3] = "Message-ID: <b@x>\nSubject: s\n" D(2) "\n";
	thread_case(relink, 4, R, false, "((3)(4 2 1))");
	/* subjects: a reply joins the non-reply; two non-replies get a dummy */
	const char *subjects[] = {
	        "Message-ID: <a@x>\nSubject: Hello\n" D(1) "\n",
	        "Message-ID: <b@x>\nSubject: Re: hello\n" D(2) "\n",
	        "Message-ID: <c@x>\nSubject: other\n" D(3) "\n",
	        "Message-ID: <d@x>\nSubject: OTHER\n" D(4) "\n",
	        "Message-ID: <e@x>\nSubject: Re: other\n" D(5) "\n",
	        "Message-ID: <f@x>\nSubject: \n" D(6) "\n",
	        "Message-ID: <g@x>\n" D(7) "\n",
	};
	thread_case(subjects, 7, R, false, "(1 2)((3)(4)(5))(6)(7)");
	/* a dummy (missing parent) takes the messages of its subject */
	const char *dsubj[] = {
	        "Message-ID: <a@x>\nSubject: Re: topic\nReferences: <gone@x>\n" D(2) "\n",
	        "Message-ID: <b@x>\nSubject: Re: topic\nReferences: <gone@x>\n" D(3) "\n",
	        "Message-ID: <c@x>\nSubject: topic\n" D(1) "\n",
	};
	thread_case(dsubj, 3, R, false, "((3)(1)(2))");
	/* a reply thread joins the original's: the reply goes under it */
	const char *rsubj[] = {
	        "Message-ID: <a@x>\nSubject: Re: topic\n" D(1) "\n",
	        "Message-ID: <b@x>\nSubject: topic\n" D(2) "\n",
	        "Message-ID: <c@x>\nSubject: Fwd: topic\n" D(3) "\n",
	};
	thread_case(rsubj, 3, R, false, "(2 (1)(3))");
}

static void test_thread_ordered_subject(void)
{
	const enum imap_thread_algorithm O = IMAP_THREAD_ORDEREDSUBJECT;
	const char *msgs[] = {
	        "Subject: b\n" D(2) "\n",
	        "Subject: a\n" D(3) "\n",
	        "Subject: Re: a\n" D(1) "\n",
	        "Subject: A\n" D(4) "\n",
	        "Subject: Re: b\n" D(5) "\n",
	        "Subject: c\n" D(9) "\n",
	        "\n",
	};
	/* threads by their first message's date; (fwd)/Re: ignored */
	thread_case(msgs, 7, O, false, "(7)(3 (2)(4))(1 5)(6)");
	thread_case(msgs, 1, O, true, "(10)");
}

/* 100,000 messages in one reply chain, in order and reversed: nothing
 * here may recurse per level or be quadratic. */
static void test_thread_big(void)
{
	const size_t n = 100000;
	for (int reversed = 0; reversed < 2; reversed++) {
		struct imap_sort_msg *msgs = xcalloc(n, sizeof(*msgs));
		for (size_t i = 0; i < n; i++) {
			size_t k = reversed ? n - 1 - i : i;
			char header[200];
			int len = snprintf(
			        header, sizeof(header),
			        "Message-ID: <m%zu@x>\nIn-Reply-To: <m%zu@x>\nSubject: Re: big\n\n",
			        k, k > 0 ? k - 1 : n);
			memset(&msgs[i], 0, sizeof(msgs[i]));
			msgs[i].seq = (uint32_t)(i + 1);
			msgs[i].sent = (time_t)k;
			imap_sort_msg_fill(&msgs[i], header, (size_t)len, ALL_NEEDS);
		}
		struct buf got = BUF_INIT(0);
		imap_thread_build(msgs, n, IMAP_THREAD_REFERENCES, false, &got);
		CHECK(got.len > 0 && got.data[0] == '(' && got.data[got.len - 1] == ')');
		CHECK(strchr(got.data + 1, '(') == NULL);
		CHECK(strncmp(got.data, reversed ? "(100000 99999 " : "(1 2 3 ", 7) == 0);
		buf_reset(&got);
		imap_thread_build(msgs, n, IMAP_THREAD_ORDEREDSUBJECT, false, &got);
		CHECK(strncmp(got.data, reversed ? "(100000 (99999)(" : "(1 (2)(3)", 9) == 0);
		buf_free(&got);
		free_msgs(msgs, n);
		free(msgs);
	}
}

int main(void)
{
	test_base_subject();
	test_dates();
	test_msgids();
	test_criteria();
	test_fill();
	test_sort();
	test_thread_references();
	test_thread_ordered_subject();
	test_thread_big();
	return test_report();
}

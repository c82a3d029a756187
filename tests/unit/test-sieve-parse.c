/* Sieve parser and validator: the example scripts of RFC 5228 and of each
 * supported extension's RFC compile; bad scripts fail with the expected
 * line, column and message; the tree has the shape the interpreter relies
 * on (sieve-private.h). With a directory argument, every script of the
 * tables is also written there (the fuzzer's seed corpus). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "sieve/sieve-private.h"
#include "test.h"

struct good_script {
	const char *source;
	const char *name; /* "rfc5228-9": the RFC and the section it comes from */
};

static const struct good_script good_scripts[] = {
        {"# Example Sieve Filter\n"
         "# Declare any optional features or extension used by the script\n"
         "require [\"fileinto\"];\n"
         "\n"
         "# Handle messages from known mailing lists\n"
         "# Move messages from IETF filter discussion list to filter mailbox\n"
         "if header :is \"Sender\" \"owner-ietf-mta-filters@imc.org\"\n"
         "        {\n"
         "        fileinto \"filter\";  # move to \"filter\" mailbox\n"
         "        }\n"
         "#\n"
         "# Keep all messages to or from people in my company\n"
         "#\n"
         "elsif address :DOMAIN :is [\"From\", \"To\"] \"example.com\"\n"
         "        {\n"
         "        keep;               # keep in \"In\" mailbox\n"
         "        }\n"
         "\n"
         "#\n"
         "# Try and catch unsolicited email.  If a message is not to me,\n"
         "# or it contains a subject known to be spam, file it away.\n"
         "#\n"
         "elsif anyof (NOT address :all :contains\n"
         "               [\"To\", \"Cc\", \"Bcc\"] \"me@example.com\",\n"
         "             header :matches \"subject\"\n"
         "               [\"*make*money*fast*\", \"*university*dipl*mas*\"])\n"
         "        {\n"
         "        fileinto \"spam\";   # move to \"spam\" mailbox\n"
         "        }\n"
         "else\n"
         "        {\n"
         "        # Move all other (non-company) mail to \"personal\"\n"
         "        # mailbox.\n"
         "        fileinto \"personal\";\n"
         "        }\n",
         "rfc5228-9"},
        {"if size :over 100k { # this is a comment\n"
         "    discard;\n"
         "}\n",
         "rfc5228-2.3a"},
        {"if size :over 100K { /* this is a comment\n"
         "    this is still a comment */ discard /* this is a comment\n"
         "    */ ;\n"
         "}\n",
         "rfc5228-2.3b"},
        {"require \"fileinto\";\n"
         "if header :contains \"from\" \"coyote\" {\n"
         "   discard;\n"
         "} elsif header :contains [\"subject\"] [\"$$$\"] {\n"
         "   discard;\n"
         "} else {\n"
         "   fileinto \"INBOX\";\n"
         "}\n",
         "rfc5228-3.1a"},
        {"if header :contains [\"From\"] [\"coyote\"] {\n"
         "   redirect \"acm@example.com\";\n"
         "} elsif header :contains \"Subject\" \"$$$\" {\n"
         "   redirect \"postmaster@example.com\";\n"
         "} else {\n"
         "   redirect \"field@example.com\";\n"
         "}\n",
         "rfc5228-3.1b"},
        {"if header :contains \"subject\" \"money\" { stop; }\nkeep;\n", "rfc5228-3.3"},
        {"require \"fileinto\";\n"
         "if header :contains [\"from\"] \"coyote\" {\n"
         "   fileinto \"INBOX.harassment\";\n"
         "}\n",
         "rfc5228-4.1"},
        {"redirect \"bart@example.com\";\n", "rfc5228-4.2"},
        {"if header :contains [\"from\"] [\"idiot@example.com\"] {\n   discard;\n}\n",
         "rfc5228-4.4"},
        {"if address :is :all \"from\" \"tim@example.com\" {\n   discard;\n}\n", "rfc5228-5.1"},
        {"if anyof (not exists [\"From\", \"Date\"],\n"
         "          header :contains \"from\" \"fool@example.com\") {\n"
         "   discard;\n"
         "}\n",
         "rfc5228-5.3"},
        {"require \"envelope\";\n"
         "if envelope :all :is \"from\" \"tim@example.com\" {\n   discard;\n}\n",
         "rfc5228-5.4"},
        {"if not exists [\"From\",\"Date\"] {\n   discard;\n}\n", "rfc5228-5.5"},
        {"if header :is \"X-Caffeine\" \"\" { keep; }\n"
         "if header :contains :comparator \"i;octet\" \"Subject\" \"MAKE MONEY FAST\" {\n"
         "   discard;\n}\n",
         "rfc5228-5.7"},
        {"if allof (header :contains \"From\" \"coyote\", size :under 10K, true, not false)"
         " { keep; }\n",
         "rfc5228-5.2"},
        {"require \"encoded-character\";\n"
         "if header :contains \"Subject\" [\"$${hex:24 24}\", \"${unicode:40}\",\n"
         "    \"${ unicode:40}\", \"${Unicode:40}\", \"${Unicode:Cool}\", \"${hex:40\",\n"
         "    \"${hex:4${hex:30}}\"] { discard; }\n",
         "rfc5228-2.4.2.4"},
        {"require [\"reject\"];\n"
         "if size :over 100K {\n"
         "    reject text:\n"
         "Your message is too big.  If you want to send me a big attachment,\n"
         "put it on a public web site and send me a URL.\n"
         ".\n"
         "    ;\n"
         "}\n",
         "rfc5429-2.2"},
        {"require [\"ereject\"];\n"
         "if address :domain :is \"from\" \"example.com\" {\n"
         "    ereject \"I no longer accept mail from this domain\";\n"
         "}\n",
         "rfc5429-2.1"},
        {"require [\"fileinto\", \"variables\"];\n"
         "if header :matches \"List-ID\" \"*<*@*\" {\n"
         "    fileinto \"INBOX.lists.${2}\"; stop;\n"
         "}\n"
         "# Imagine the header\n"
         "# Subject: [acme-users] [fwd] version 1.0 is out\n"
         "if header :matches \"Subject\" \"[*] *\" {\n"
         "    # ${1} will hold \"acme-users\",\n"
         "    # ${2} will hold \"[fwd] version 1.0 is out\"\n"
         "    fileinto \"INBOX.lists.${1}\"; stop;\n"
         "}\n"
         "# Imagine the header\n"
         "# To: coyote@ACME.Example.COM\n"
         "if address :matches [\"To\", \"Cc\"] [\"coyote@**.com\",\n"
         "        \"wile@**.com\"] {\n"
         "    # ${0} is the matching address\n"
         "    # ${1} is always the empty string\n"
         "    # ${2} is part of the domain name (\"ACME.Example\")\n"
         "    fileinto \"INBOX.business.${2}\"; stop;\n"
         "} else {\n"
         "    # Control wouldn't reach this block if any match was\n"
         "    # successful, so no match variables are set at this\n"
         "    # point.\n"
         "}\n",
         "rfc5229-3.2"},
        {"require \"variables\";\n"
         "set \"honorific\"  \"Mr\";\n"
         "set \"first_name\" \"Wile\";\n"
         "set \"last_name\"  \"Coyote\";\n"
         "set \"vacation\" text:\n"
         "Dear ${HONORIFIC} ${last_name},\n"
         "I'm out, please leave a message after the meep.\n"
         ".\n"
         ";\n"
         "set \"a\" \"juMBlEd lETteRS\";\n"
         "set :length \"b\" \"${a}\";\n"
         "set :lower \"b\" \"${a}\";\n"
         "set :upperfirst \"b\" \"${a}\";\n"
         "set :upperfirst :lower \"b\" \"${a}\";\n"
         "set :quotewildcard \"b\" \"Rock*\";\n",
         "rfc5229-4"},
        {"require \"variables\";\n"
         "set \"state\" \"${state} pending\";\n"
         "if string :matches \" ${state} \" \"* pending *\" {\n"
         "    # the above test always succeeds\n"
         "}\n",
         "rfc5229-5"},
        {"require \"vacation\";\n"
         "if header :contains \"subject\" \"cyrus\" {\n"
         "    vacation \"I'm out -- send mail to cyrus-bugs\";\n"
         "} else {\n"
         "    vacation \"I'm out -- call me at 321-1234\";\n"
         "}\n",
         "rfc5230-3"},
        {"require \"vacation\";\n"
         "vacation :days 23 :addresses [\"tjs@example.edu\",\n"
         "                              \"ts4z@landru.example.edu\"]\n"
         "   \"I'm away until October 19.\n"
         "   If it's an emergency, call 911, I guess.\" ;\n",
         "rfc5230-4.4"},
        {"require \"vacation\";\n"
         "if header :contains \"from\" \"boss@example.edu\" {\n"
         "    redirect \"pleeb@isp.example.org\";\n"
         "} else {\n"
         "    vacation \"Sorry, I'm away, I'll read your\n"
         "    message when I get around to it.\";\n"
         "}\n",
         "rfc5230-4.6"},
        {"require \"vacation\";\n"
         "vacation :mime text:\n"
         "Content-Type: multipart/alternative; boundary=foo\n"
         "\n"
         "--foo\n"
         "\n"
         "I'm at the beach relaxing.  Mmmm, surf...\n"
         "\n"
         "--foo\n"
         "Content-Type: text/html; charset=us-ascii\n"
         "\n"
         "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.0//EN\"\n"
         " \"http://www.w3.org/TR/REC-html40/strict.dtd\">\n"
         "<HTML><HEAD><TITLE>How to relax</TITLE>\n"
         "<BASE HREF=\"http://home.example.com/pictures/\"></HEAD>\n"
         "<BODY><P>I'm at the <A HREF=\"beach.gif\">beach</A> relaxing.\n"
         "Mmmm, <A HREF=\"ocean.gif\">surf</A>...\n"
         "</BODY></HTML>\n"
         "\n"
         "--foo--\n"
         ".\n"
         ";\n",
         "rfc5230-4.7"},
        {"require \"vacation\";\n"
         "vacation :days 7 :from \"hemingway@example.com\" :subject \"Gone fishing\"\n"
         "  :handle \"ran-away\" \"Gone fishing\";\n",
         "rfc5230-4.5"},
        {"require [\"vacation-seconds\"];\n"
         "vacation :addresses [\"tjs@example.edu\", \"ts4z@landru.example.edu\"]\n"
         "         :seconds 1800\n"
         "         \"I am in a meeting, and do not have access to email.\";\n",
         "rfc6131-3a"},
        {"require [\"vacation-seconds\"];\n"
         "vacation :handle \"auto-resp\" :seconds 0\n"
         "  \"Your request has been received.  A service\n"
         "   representative will contact you as soon as\n"
         "   possible, usually within one business day.\";\n",
         "rfc6131-3b"},
        {"require [\"imap4flags\"];\n"
         "if size :over 500K {\n"
         "    setflag \"\\\\Deleted\";\n"
         "}\n",
         "rfc5232-3.1"},
        {"require [\"fileinto\", \"imap4flags\", \"variables\"];\n"
         "if header :contains \"from\" \"boss@frobnitzm.example.edu\" {\n"
         "    setflag \"flagvar\" \"\\\\Flagged\";\n"
         "    fileinto :flags \"${flagvar}\" \"INBOX.From Boss\";\n"
         "}\n",
         "rfc5232-3.1b"},
        {"require [\"imap4flags\", \"relational\", \"comparator-i;ascii-numeric\"];\n"
         "if hasflag :contains \"MyVar\" \"Junk\" { discard; }\n"
         "if hasflag :count \"ge\" :comparator \"i;ascii-numeric\" \"2\" { keep; }\n"
         "if hasflag :contains \"Junk\" { removeflag \"Junk\"; }\n",
         "rfc5232-4"},
        {"require [\"fileinto\", \"imap4flags\", \"variables\"];\n"
         "if size :over 1M {\n"
         "    addflag \"MyFlags\" \"Big\";\n"
         "    if header :is \"From\" \"boss@company.example.com\" {\n"
         "        # The message will be marked as \"\\Flagged Big\" when filed into\n"
         "        addflag \"MyFlags\" \"\\\\Flagged\";\n"
         "    }\n"
         "    fileinto :flags \"${MyFlags}\" \"Big messages\";\n"
         "}\n"
         "if header :is \"From\" \"grandma@example.net\" {\n"
         "    addflag \"MyFlags\" [\"\\\\Answered\", \"$MDNSent\"];\n"
         "    fileinto :flags \"${MyFlags}\" \"GrandMa\";\n"
         "}\n"
         "if header :is \"Sender\" \"owner-ietf-mta-filters@example.net\" {\n"
         "    set \"MyFlags\" \"\\\\Flagged $Work\";\n"
         "    keep :flags \"${MyFlags}\";\n"
         "}\n"
         "elsif anyof (address :domain :is [\"From\", \"To\"] \"company.example.com\") {\n"
         "    keep :flags \"${MyFlags}\"; # keep in \"In\" folder\n"
         "}\n"
         "elsif anyof (not address :all :contains\n"
         "        [\"To\", \"Cc\"] \"me@company.example.com\",\n"
         "        header :matches \"subject\"\n"
         "        [\"*make*money*fast*\", \"*university*dipl*mas*\"]) {\n"
         "    removeflag \"MyFlags\" \"\\\\Flagged\";\n"
         "    fileinto :flags \"${MyFlags}\" \"spam\";\n"
         "}\n"
         "else {\n"
         "    fileinto :flags \"${MyFlags}\" \"personal\";\n"
         "}\n",
         "rfc5232-6"},
        {"require [\"relational\", \"comparator-i;ascii-numeric\", \"fileinto\"];\n"
         "if header :value \"lt\" :comparator \"i;ascii-numeric\"\n"
         "              [\"x-priority\"] [\"3\"]\n"
         "{\n"
         "   fileinto \"Priority\";\n"
         "}\n"
         "elsif address :count \"gt\" :comparator \"i;ascii-numeric\"\n"
         "              [\"to\"] [\"5\"]\n"
         "{\n"
         "   # everything with more than 5 recipients in the \"to\" field\n"
         "   # is considered SPAM\n"
         "   fileinto \"SPAM\";\n"
         "}\n"
         "elsif address :value \"gt\" :all :comparator \"i;ascii-casemap\"\n"
         "              [\"from\"] [\"M\"]\n"
         "{\n"
         "   fileinto \"From N-Z\";\n"
         "} else {\n"
         "   fileinto \"From A-M\";\n"
         "}\n"
         "if allof ( address :count \"eq\" :comparator \"i;ascii-numeric\"\n"
         "                   [\"to\", \"cc\"] [\"1\"] ,\n"
         "           address :all :comparator \"i;ascii-casemap\"\n"
         "                   [\"to\", \"cc\"] [\"me@foo.example.com\"] )\n"
         "{\n"
         "   fileinto \"Only me\";\n"
         "}\n",
         "rfc5231-6"},
        {"require [\"envelope\", \"subaddress\", \"fileinto\"];\n"
         "# File all messages to postmaster into a single mailbox,\n"
         "# ignoring the :detail part.\n"
         "if envelope :user \"to\" \"postmaster\" {\n"
         "    fileinto \"inbox.postmaster\";\n"
         "    stop;\n"
         "}\n"
         "# File mailing list messages (subscribed as \"ken+mta-filters\").\n"
         "if envelope :detail \"to\" \"mta-filters\" {\n"
         "    fileinto \"inbox.ietf-mta-filters\";\n"
         "}\n"
         "# Redirect all mail sent to \"ken+foo\".\n"
         "if envelope :detail \"to\" \"foo\" {\n"
         "    redirect \"ken@example.net\";\n"
         "}\n",
         "rfc5233-5"},
        {"require \"body\";\n"
         "if body :raw :contains \"MAKE MONEY FAST\" {\n"
         "    discard;\n"
         "}\n",
         "rfc5173-5.1"},
        {"require [\"body\", \"fileinto\"];\n"
         "# Save any message with any text MIME part that contains the\n"
         "# words \"missile\" or \"coordinates\" in the \"secrets\" folder.\n"
         "if body :content \"text\" :contains [\"missile\", \"coordinates\"] {\n"
         "        fileinto \"secrets\";\n"
         "}\n"
         "# Save any message with an audio/mp3 MIME part in\n"
         "# the \"jukebox\" folder.\n"
         "if body :content \"audio/mp3\" :contains \"\" {\n"
         "        fileinto \"jukebox\";\n"
         "}\n",
         "rfc5173-7"},
        {"require \"body\";\n"
         "# Note: text is the default\n"
         "if body :text :contains \"project schedule\" { keep; }\n",
         "rfc5173-5.3"},
        {"require [\"copy\", \"fileinto\"];\n"
         "redirect :copy \"sysadmin@example.com\";\n"
         "fileinto :copy \"incoming\";\n",
         "rfc3894-4"},
        {"require [\"date\", \"relational\", \"fileinto\"];\n"
         "if allof(header :is \"from\" \"boss@example.com\",\n"
         "         date :value \"ge\" :originalzone \"date\" \"hour\" \"09\",\n"
         "         date :value \"lt\" :originalzone \"date\" \"hour\" \"17\")\n"
         "{ fileinto \"urgent\"; }\n",
         "rfc5260-7a"},
        {"require [\"date\", \"relational\", \"fileinto\"];\n"
         "if anyof(date :is \"received\" \"weekday\" \"0\",\n"
         "         date :is \"received\" \"weekday\" \"6\")\n"
         "{ fileinto \"weekend\"; }\n",
         "rfc5260-7b"},
        {"require [\"date\", \"relational\", \"vacation\"];\n"
         "if allof(currentdate :value \"ge\" \"date\" \"2007-06-30\",\n"
         "         currentdate :value \"le\" \"date\" \"2007-07-07\")\n"
         "{ vacation :days 7  \"I'm away during the first week in July.\"; }\n",
         "rfc5260-7c"},
        {"require [\"date\", \"variables\", \"fileinto\"];\n"
         "if currentdate :matches \"month\" \"*\" { set \"month\" \"${1}\"; }\n"
         "if currentdate :matches \"year\"  \"*\" { set \"year\"  \"${1}\"; }\n"
         "fileinto \"${month}-${year}\";\n",
         "rfc5260-7d"},
        {"require [\"variables\", \"date\", \"editheader\"];\n"
         "if currentdate :matches \"std11\" \"*\"\n"
         "  {addheader \"Processing-date\" \"${0}\";}\n",
         "rfc5260-7e"},
        {"require [\"date\", \"relational\", \"index\"];\n"
         "if date :value \"gt\" :index 1 :zone \"-0500\" \"received\"\n"
         "        \"iso8601\" \"2007-02-26T09:00:00-05:00\"\n"
         "{ redirect \"aftercutoff@example.org\"; }\n",
         "rfc5260-7f"},
        {"require [\"index\", \"fileinto\"];\n"
         "if header :index 2 :last :matches \"received\" \"*example.net*\" {\n"
         "  fileinto \"relayed\";\n"
         "}\n"
         "if address :index 1 :domain :is \"from\" \"example.com\" { keep; }\n",
         "rfc5260-6"},
        {"require [\"fileinto\", \"reject\", \"mailbox\"];\n"
         "if mailboxexists \"Fight Club\" {\n"
         "    fileinto \"Fight Club\";\n"
         "} else {\n"
         "    reject \"I am not a member of Fight Club\";\n"
         "}\n",
         "rfc5490-3.1"},
        {"require [\"fileinto\", \"mailbox\"];\n"
         "fileinto :create \"INBOX.boss\";\n",
         "rfc5490-3.2"},
        {"require [\"include\"];\n"
         "include :personal \"always_allow\";\n"
         "include :global \"spam_tests\";\n"
         "include :personal \"spam_tests\";\n"
         "include :personal \"mailing_lists\";\n",
         "rfc6609-4a"},
        {"require [\"include\"];\n"
         "if header :contains \"from\" \"boss@example.com\" {\n"
         "    keep;\n"
         "    return;\n"
         "}\n"
         "include :once :optional \"optional_rules\";\n",
         "rfc6609-3.2"},
        {"require [\"variables\", \"include\"];\n"
         "global \"test\";\n"
         "global \"test_mailbox\";\n"
         "\n"
         "set \"test\" \"$$\";\n"
         "include \"subscript1\";\n"
         "\n"
         "set \"test\" \"Make money\";\n"
         "include \"subscript2\";\n",
         "rfc6609-4b"},
        {"require [\"variables\", \"include\"];\n"
         "global [\"test\", \"test_mailbox\"];\n"
         "\n"
         "if header :contains \"Subject\" \"${test}\"\n"
         "{\n"
         "    set \"test_mailbox\" \"spam-${test}\";\n"
         "}\n",
         "rfc6609-4c"},
        {"require \"duplicate\";\n"
         "if duplicate {\n"
         "  discard;\n"
         "}\n",
         "rfc7352-3a"},
        {"require \"duplicate\";\n"
         "if duplicate :header \"message-id\" {\n"
         "  discard;\n"
         "}\n",
         "rfc7352-3b"},
        {"require [\"duplicate\", \"variables\"];\n"
         "if header :matches \"message-id\" \"*\" {\n"
         "  if duplicate :uniqueid \"${0}\" {\n"
         "    discard;\n"
         "  }\n"
         "}\n",
         "rfc7352-3c"},
        {"require [\"duplicate\", \"fileinto\", \"imap4flags\", \"variables\"];\n"
         "if header :matches \"subject\" \"ALERT: *\" {\n"
         "  if duplicate :seconds 60 :uniqueid \"${1}\" {\n"
         "    setflag \"\\\\seen\";\n"
         "  }\n"
         "  fileinto \"Alerts\";\n"
         "}\n"
         "if duplicate :handle \"notifier\" :header \"x-event-id\" :last { stop; }\n",
         "rfc7352-3d"},
        {"require [\"editheader\"];\n"
         "/* Don't redirect if we already have */\n"
         "if not header :contains \"X-Sieve-Filtered\"\n"
         "        [\"<kim@job.example.com>\", \"<kim@home.example.com>\"]\n"
         "{\n"
         "        addheader \"X-Sieve-Filtered\" \"<kim@job.example.com>\";\n"
         "        redirect \"kim@home.example.com\";\n"
         "}\n",
         "rfc5293-8"},
        {"require [\"editheader\"];\n"
         "addheader :last \"X-Filtered\" \"yes\";\n"
         "deleteheader \"X-Spam-Status\";\n"
         "deleteheader :index 1 :last \"Received\";\n"
         "deleteheader :matches \"X-Spam-Level\" \"*\";\n"
         "deleteheader :comparator \"i;octet\" :contains \"Comments\" [\"spam\", \"ad\"];\n"
         "deleteheader :index 1 :contains \"Delivered-To\" \"bob@example.com\";\n",
         "rfc5293-4"},
        {"require [\"comparator-i;unicode-casemap\", \"relational\",\n"
         "         \"comparator-i;ascii-numeric\"];\n"
         "if header :comparator \"i;unicode-casemap\" :contains \"subject\" \"caf\xc3\xa9\" {\n"
         "    keep;\n"
         "}\n"
         "if header :value \"ge\" :comparator \"i;ascii-numeric\" \"x-score\" \"10\" { discard; "
         "}\n",
         "rfc5051"},
        {"", "empty"},
        {"# only a comment", "comment-eof"},
        {"keep;\r\nif true {\r\n  stop;\r\n}\r\n", "crlf"},
};

struct bad_script {
	const char *source;
	size_t len; /* 0: strlen */
	unsigned int line, column;
	const char *message; /* a fragment of the message */
};

static const struct bad_script bad_scripts[] = {
        {"keep\nstop;", 0, 2, 1, "expected \";\" after \"keep\", found identifier \"stop\""},
        {"require \"fileinto;\nkeep;\n", 0, 1, 9, "unterminated string"},
        {"keep;\nfileinta \"x\";", 0, 2, 1, "unknown command \"fileinta\""},
        {"if header :foo \"a\" \"b\" {}", 0, 1, 11, "unknown tag \":foo\" for \"header\""},
        {"fileinto \"x\";", 0, 1, 1, "\"fileinto\" used without require \"fileinto\""},
        {"keep;\nrequire \"fileinto\";", 0, 2, 1, "require must come before"},
        {"if true { require \"fileinto\"; }", 0, 1, 11, "require must come before"},
        {"redirect 5;", 0, 1, 10, "argument 1 of \"redirect\" must be a string"},
        {"redirect [\"a\", \"b\"];", 0, 1, 10, "argument 1 of \"redirect\" must be a string"},
        {"if header \"a\" 3 {}", 0, 1, 15, "argument 2 of \"header\" must be a string list"},
        {"keep;\nelsif true {}", 0, 2, 1, "\"elsif\" without a preceding \"if\""},
        {"if true {} keep; else {}", 0, 1, 18, "\"else\" without a preceding"},
        {"if true { } else { } else { }", 0, 1, 22, "\"else\" without a preceding"},
        {"if size :over 18446744073709551616 {}", 0, 1, 15, "number too large"},
        {"if size :over 17179869184G {}", 0, 1, 15, "number too large"},
        {"keep;\n  \0keep;", 14, 2, 3, "NUL byte in script"},
        {"require \"foo\";", 0, 1, 9, "unsupported extension \"foo\""},
        {"require [\"fileinto\", \"vacation\", \"bogus\"];", 0, 1, 9,
         "unsupported extension \"bogus\""},
        {"if header :count \"gt\" \"a\" \"1\" {}", 0, 1, 11,
         "\":count\" used without require \"relational\""},
        {"require \"relational\";\nif header :value \"xx\" \"a\" \"1\" {}", 0, 2, 18,
         "unknown relational operator \"xx\""},
        {"require \"copy\";\nredirect :copy :copy \"a@b\";", 0, 2, 16, "tag \":copy\" given twice"},
        {"if header :is :contains \"a\" \"b\" {}", 0, 1, 15, "only one match type allowed"},
        {"if address :all :domain \"a\" \"b\" {}", 0, 1, 17, "only one address part"},
        {"if header :comparator \"i;foo\" \"a\" \"b\" {}", 0, 1, 23,
         "unknown comparator \"i;foo\""},
        {"if header :comparator \"i;ascii-numeric\" \"a\" \"b\" {}", 0, 1, 23,
         "used without require \"comparator-i;ascii-numeric\""},
        {"if header :comparator 5 \"a\" \"b\" {}", 0, 1, 23,
         "the value of \":comparator\" must be a string"},
        {"if header :comparator {}", 0, 1, 11, "\":comparator\" needs a string"},
        {"require \"vacation\";\nvacation :days \"3\" \"x\";", 0, 2, 16,
         "the value of \":days\" must be a number"},
        {"require \"vacation\";\nvacation :seconds 30 \"x\";", 0, 2, 10,
         "\":seconds\" used without require \"vacation-seconds\""},
        {"require \"vacation-seconds\";\nvacation :days 1 :seconds 30 \"x\";", 0, 2, 18,
         "only one of :days and :seconds"},
        {"if size 100 {}", 0, 1, 4, "\"size\" needs one of :over and :under"},
        {"if exists {}", 0, 1, 4, "\"exists\" takes 1 argument, not 0"},
        {"if exists \"a\" \"b\" {}", 0, 1, 15, "\"exists\" takes 1 argument, not 2"},
        {"keep \"x\";", 0, 1, 6, "\"keep\" takes 0 arguments, not 1"},
        {"require \"index\";\nif header :last \"a\" \"b\" {}", 0, 2, 11,
         "\":last\" needs \":index\""},
        {"require \"index\";\nif header :index 0 \"a\" \"b\" {}", 0, 2, 18,
         "\":index\" must be 1 or more"},
        {"require \"include\";\nglobal \"x\";", 0, 2, 1,
         "\"global\" used without require \"variables\""},
        {"require \"date\";\nif currentdate \"yearx\" \"1\" {}", 0, 2, 16,
         "unknown date part \"yearx\""},
        {"require \"variables\";\nset \"1a\" \"b\";", 0, 2, 5, "invalid variable name \"1a\""},
        {"require \"encoded-character\";\nkeep;\nif header \"a\" \"${unicode:D800}\" {}", 0, 3, 15,
         "encoded character out of range"},
        {"require \"encoded-character\";\nif header \"a\" \"${unicode:110000}\" {}", 0, 2, 15,
         "encoded character out of range"},
        {"keep; /* never closed\n", 0, 1, 7, "unterminated comment"},
        {"require \"reject\";\nreject text:\nno end\n", 0, 2, 8, "unterminated multi-line"},
        {"require \"reject\";\nreject text: x\n.\n;", 0, 2, 8, "must be followed by a line end"},
        {"stop { }", 0, 1, 6, "\"stop\" cannot have a block"},
        {"if true;", 0, 1, 8, "expected a block \"{\" after \"if\""},
        {"if true {", 0, 1, 10, "expected \"}\", found end of script"},
        {"keep;\n}", 0, 2, 1, "expected a command, found \"}\""},
        {"if anyof(true false) {}", 0, 1, 15,
         "expected \",\" or \")\", found identifier \"false\""},
        {"if anyof true {}", 0, 1, 10, "expected a test list"},
        {"if (true) {}", 0, 1, 4, "expected a test after \"if\""},
        {"if foo {}", 0, 1, 4, "unknown test \"foo\""},
        {"if header [] \"a\" {}", 0, 1, 12, "expected a string, found \"]\""},
        {"if header [\"a\" \"b\"] \"a\" {}", 0, 1, 16, "expected \",\" or \"]\""},
        {"keep;\n  @", 0, 2, 3, "unexpected character '@'"},
        {"require \"editheader\";\naddheader \"X Bad\" \"v\";", 0, 2, 11,
         "invalid header field name \"X Bad\""},
        {"require \"editheader\";\ndeleteheader \"X-A:\";", 0, 2, 14, "invalid header field name"},
        {"addheader \"X-A\" \"v\";", 0, 1, 1, "\"addheader\" used without require \"editheader\""},
        {"if header : \"a\" {}", 0, 1, 11, "\":\" must start a tag"},
        {"# caf\xc3\xa9\nkeep; \xc3\xa9", 0, 2, 7, "unexpected character (byte 0xc3)"},
        {"if true {} else { if true {} }\nelsif false {}", 0, 2, 1, "\"elsif\" without"},
};

/* ---- helpers ----------------------------------------------------------- */

static struct sieve_script *compile(const char *source, size_t len, struct sieve_error *err)
{
	return sieve_compile("test", source, len, NULL, err);
}

static void test_good_scripts(void)
{
	for (size_t i = 0; i < sizeof(good_scripts) / sizeof(good_scripts[0]); i++) {
		struct sieve_error err;
		struct sieve_script *s =
		        compile(good_scripts[i].source, strlen(good_scripts[i].source), &err);
		if (s == NULL)
			fprintf(stderr, "%s: %u:%u: %s\n", good_scripts[i].name, err.line,
			        err.column, err.message);
		CHECK(s != NULL);
		sieve_script_free(&s);
		CHECK(s == NULL);
	}
}

static void test_bad_scripts(void)
{
	for (size_t i = 0; i < sizeof(bad_scripts) / sizeof(bad_scripts[0]); i++) {
		const struct bad_script *b = &bad_scripts[i];
		struct sieve_error err;
		size_t len = b->len != 0 ? b->len : strlen(b->source);
		struct sieve_script *s = compile(b->source, len, &err);
		CHECK(s == NULL);
		sieve_script_free(&s);
		if (b->message == NULL)
			continue;
		bool ok = err.line == b->line && err.column == b->column &&
		          strstr(err.message, b->message) != NULL;
		if (!ok)
			fprintf(stderr, "bad script %zu: got %u:%u \"%s\", want %u:%u \"%s\"\n", i,
			        err.line, err.column, err.message, b->line, b->column, b->message);
		CHECK(ok);
	}
}

static void check_error(const char *source, size_t len, const struct sieve_limits *limits,
                        unsigned int line, unsigned int column, const char *message)
{
	struct sieve_error err;
	struct sieve_script *s = sieve_compile("t", source, len, limits, &err);

	CHECK(s == NULL);
	sieve_script_free(&s);
	CHECK_INT(err.line, line);
	CHECK_INT(err.column, column);
	if (strstr(err.message, message) == NULL)
		CHECK_STR(err.message, message);
}

/* 40 nested blocks: refused at the 33rd "{". */
static void test_nesting(void)
{
	struct buf b = BUF_INIT(0);

	for (int i = 0; i < 40; i++)
		buf_append_str(&b, "if true {\n");
	for (int i = 0; i < 40; i++)
		buf_append_str(&b, "}\n");
	check_error(b.data, b.len, NULL, 33, 9, "blocks nested too deep");
	buf_reset(&b);
	buf_append_str(&b, "if ");
	for (int i = 0; i < 40; i++)
		buf_append_str(&b, "not ");
	buf_append_str(&b, "true {}");
	check_error(b.data, b.len, NULL, 1, 4 + 32 * 4, "tests nested too deep");
	buf_reset(&b);
	/* 32 levels are fine */
	for (int i = 0; i < 32; i++)
		buf_append_str(&b, "if anyof(true) {\n");
	for (int i = 0; i < 32; i++)
		buf_append_str(&b, "}\n");
	struct sieve_error err;
	struct sieve_script *s = compile(b.data, b.len, &err);
	CHECK(s != NULL);
	sieve_script_free(&s);
	buf_free(&b);
}

static void test_size_limit(void)
{
	struct sieve_limits limits = sieve_default_limits;
	struct buf b = BUF_INIT(0);

	limits.max_script_size = 100;
	for (int i = 0; i < 30; i++)
		buf_append_str(&b, "keep;\n");
	/* byte 100 is on line 17 (6 bytes a line), column 5 */
	check_error(b.data, b.len, &limits, 17, 5, "script too large (180 bytes, at most 100)");
	struct sieve_error err;
	struct sieve_script *s = sieve_compile("t", b.data, 96, &limits, &err);
	CHECK(s != NULL);
	sieve_script_free(&s);
	/* an empty script, even without a buffer, is a script doing nothing */
	s = sieve_compile("t", NULL, 0, NULL, &err);
	CHECK(s != NULL && s->command_count == 0);
	sieve_script_free(&s);
	/* the default limit is 64 KiB */
	CHECK_INT(sieve_default_limits.max_script_size, 65536);
	CHECK_INT(sieve_default_limits.max_actions, 32);
	CHECK_INT(sieve_default_limits.max_redirects, 4);
	CHECK_INT(sieve_default_limits.max_include_depth, 5);
	CHECK_INT(sieve_default_limits.max_run_ms, 1000);
	buf_reset(&b);
	const char *line = "# padding padding padding padding padding padding\n";
	while (b.len <= 65536)
		buf_append_str(&b, line);
	check_error(b.data, b.len, NULL, 65536 / strlen(line) + 1, 65536 % strlen(line) + 1,
	            "script too large");
	buf_free(&b);
}

/* ---- the tree ---------------------------------------------------------- */

static const struct sieve_string *str_at(const struct sieve_arg *arg, size_t i)
{
	return i < arg->count ? &arg->strings[i] : NULL;
}

static void test_tree_if(void)
{
	struct sieve_error err;
	const char *src = good_scripts[0].source;
	struct sieve_script *s = compile(src, strlen(src), &err);

	CHECK(s != NULL);
	if (s == NULL)
		return;
	CHECK_STR(sieve_script_name(s), "test");
	CHECK_INT(s->extensions, SIEVE_EXT_FILEINTO);
	CHECK_INT(s->command_count, 5);
	CHECK_STR(s->commands[0].name, "require");
	CHECK_INT(s->commands[0].args[0].type, SIEVE_ARG_STRING_LIST);
	const struct sieve_node *n = &s->commands[1];
	CHECK_STR(n->name, "if");
	CHECK_INT(n->line, 7);
	CHECK_INT(n->column, 1);
	CHECK_INT(n->test_count, 1);
	CHECK_STR(n->tests[0].name, "header");
	CHECK(sieve_node_tag(&n->tests[0], ":is") != NULL);
	CHECK_INT(n->tests[0].arg_count, 2);
	CHECK_INT(n->tests[0].args[0].type, SIEVE_ARG_STRING_LIST);
	CHECK_STR(str_at(&n->tests[0].args[0], 0)->data, "Sender");
	CHECK_INT(n->block_count, 1);
	CHECK_STR(n->block[0].name, "fileinto");
	CHECK_INT(n->block[0].args[0].type, SIEVE_ARG_STRING);
	CHECK_STR(n->block[0].args[0].strings[0].data, "filter");
	n = &s->commands[2];
	CHECK_STR(n->name, "elsif");
	CHECK_STR(n->tests[0].name, "address");
	CHECK_STR(n->tests[0].tags[0].name, ":domain"); /* lower-cased */
	CHECK(n->tests[0].tags[0].value == NULL);
	CHECK_INT(n->tests[0].args[0].count, 2);
	n = &s->commands[3];
	CHECK_STR(n->tests[0].name, "anyof");
	CHECK_INT(n->tests[0].test_count, 2);
	CHECK_STR(n->tests[0].tests[0].name, "not");
	CHECK_STR(n->tests[0].tests[0].tests[0].name, "address");
	CHECK_INT(n->tests[0].tests[0].tests[0].args[0].count, 3);
	CHECK_STR(n->tests[0].tests[1].name, "header");
	CHECK_STR(s->commands[4].name, "else");
	CHECK_INT(s->commands[4].test_count, 0);
	CHECK_INT(s->commands[4].block_count, 1);
	sieve_script_free(&s);
}

static void test_tree_tags(void)
{
	const char *src =
	        "require [\"vacation-seconds\", \"relational\", \"comparator-i;ascii-numeric\","
	        " \"imap4flags\"];\n"
	        "vacation :SECONDS 2K :addresses \"a@b\" :mime \"reason\";\n"
	        "if header :value \"ge\" :comparator \"i;ascii-numeric\" \"x\" \"1\" {}\n"
	        "setflag \"\\\\Seen\";\naddflag \"v\" [\"a\", \"b\"];\n";
	struct sieve_error err;
	struct sieve_script *s = compile(src, strlen(src), &err);

	CHECK(s != NULL);
	if (s == NULL) {
		fprintf(stderr, "%u:%u: %s\n", err.line, err.column, err.message);
		return;
	}
	CHECK_INT(s->extensions, SIEVE_EXT_VACATION_SECONDS | SIEVE_EXT_VACATION |
	                                 SIEVE_EXT_RELATIONAL | SIEVE_EXT_COMPARATOR_NUMERIC |
	                                 SIEVE_EXT_IMAP4FLAGS);
	const struct sieve_node *v = &s->commands[1];
	CHECK_INT(v->tag_count, 3);
	const struct sieve_tag *t = sieve_node_tag(v, ":seconds");
	CHECK(t != NULL && t->value != NULL && t->value->type == SIEVE_ARG_NUMBER);
	CHECK(t != NULL && t->value->number == 2048);
	CHECK(t != NULL && t->line == 2 && t->column == 10);
	t = sieve_node_tag(v, ":addresses");
	CHECK(t != NULL && t->value->type == SIEVE_ARG_STRING_LIST && t->value->count == 1);
	CHECK(sieve_node_tag(v, ":mime") != NULL && sieve_node_tag(v, ":mime")->value == NULL);
	CHECK_INT(v->arg_count, 1);
	CHECK_STR(v->args[0].strings[0].data, "reason");
	const struct sieve_node *h = &s->commands[2].tests[0];
	t = sieve_node_tag(h, ":value");
	CHECK(t != NULL && t->value->type == SIEVE_ARG_STRING);
	CHECK_STR(t->value->strings[0].data, "ge");
	CHECK_STR(sieve_node_tag(h, ":comparator")->value->strings[0].data, "i;ascii-numeric");
	/* optional leading argument: one argument is the flag list */
	CHECK_INT(s->commands[3].arg_count, 1);
	CHECK_INT(s->commands[3].args[0].type, SIEVE_ARG_STRING_LIST);
	CHECK_STR(s->commands[3].args[0].strings[0].data, "\\Seen");
	CHECK_INT(s->commands[4].arg_count, 2);
	CHECK_INT(s->commands[4].args[0].type, SIEVE_ARG_STRING);
	CHECK_INT(s->commands[4].args[1].count, 2);
	sieve_script_free(&s);
}

/* ---- strings ----------------------------------------------------------- */

/* The decoded value of the key of `if header "h" <literal> {}`. */
static char *key_of(const char *require, const char *literal, size_t *len_r)
{
	char *src = xasprintf("%sif header \"h\" %s {}", require, literal);
	struct sieve_error err;
	struct sieve_script *s = compile(src, strlen(src), &err);
	char *ret = NULL;

	free(src);
	if (s == NULL) {
		fprintf(stderr, "%s: %u:%u: %s\n", literal, err.line, err.column, err.message);
		return xstrdup("(error)");
	}
	const struct sieve_node *n = &s->commands[s->command_count - 1];
	const struct sieve_string *str = &n->tests[0].args[1].strings[0];
	ret = xmalloc(str->len + 1);
	memcpy(ret, str->data, str->len + 1);
	if (len_r != NULL)
		*len_r = str->len;
	sieve_script_free(&s);
	return ret;
}

static void check_key(const char *require, const char *literal, const char *want)
{
	char *got = key_of(require, literal, NULL);

	CHECK_STR(got, want);
	free(got);
}

static void test_strings(void)
{
	static const struct {
		const char *literal, *want;
	} cases[] = {
	        {"\"a\\\\b\\\"c\\q\"", "a\\b\"cq"},
	        {"\"two\nlines\"", "two\r\nlines"},
	        {"\"two\r\nlines\"", "two\r\nlines"},
	        {"text:\r\nline 1\r\n..dot\r\n.\r\n", "line 1\r\n.dot\r\n"},
	        {"text: # comment\n.\n", ""},
	        {"text:\n..\n...x\nx.\n.\n", ".\r\n..x\r\nx.\r\n"},
	        {"TEXT:\t\nhi\n.\n", "hi\r\n"},
	        {"\"${hex:41}\"", "${hex:41}"}, /* no encoded-character: as written */
	};
	static const struct {
		const char *literal, *want;
	} encoded[] = {
	        {"\"$${hex:24 24}\"", "$$$"},
	        {"\"${unicode:40}\"", "@"},
	        {"\"${ unicode:40}\"", "${ unicode:40}"},
	        {"\"${UNICODE:40}\"", "@"},
	        {"\"${Unicode:Cool}\"", "${Unicode:Cool}"},
	        {"\"${hex:40\"", "${hex:40"},
	        {"\"${hex:4${hex:30}}\"", "${hex:40}"},
	        {"\"${hex: 41 42\t43 }\"", "ABC"},
	        {"\"${hex:414}\"", "${hex:414}"},
	        {"\"${hex:}\"", "${hex:}"},
	        {"\"${unicode:3042}\"", "\xe3\x81\x82"},
	        {"\"${unicode:1F600 0041}\"", "\xf0\x9f\x98\x80"
	                                      "A"},
	        {"\"${unicode:0000000041}\"", "A"},
	        {"\"a${hex:4G}b\"", "a${hex:4G}b"},
	};
	const char *req = "require \"encoded-character\";\n";

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_key("", cases[i].literal, cases[i].want);
	for (size_t i = 0; i < sizeof(encoded) / sizeof(encoded[0]); i++)
		check_key(req, encoded[i].literal, encoded[i].want);
	size_t len = 0;
	char *nul = key_of(req, "\"a${hex:00}b\"", &len);
	CHECK_INT(len, 3);
	CHECK(memcmp(nul, "a\0b", 3) == 0);
	free(nul);
}

static void test_numbers(void)
{
	static const struct {
		const char *literal;
		uint64_t want;
	} cases[] = {
	        {"0", 0},
	        {"100", 100},
	        {"100k", 102400},
	        {"2M", 2097152},
	        {"3g", 3221225472ull},
	        {"18446744073709551615", UINT64_MAX},
	        {"17179869183G", 17179869183ull << 30},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *src = xasprintf("if size :over %s {}", cases[i].literal);
		struct sieve_error err;
		struct sieve_script *s = compile(src, strlen(src), &err);
		CHECK(s != NULL);
		if (s != NULL)
			CHECK(s->commands[0].tests[0].args[0].number == cases[i].want);
		sieve_script_free(&s);
		free(src);
	}
}

static void test_extensions(void)
{
	const char *list = sieve_extensions();
	size_t n = 0;

	for (const char *w = list; *w != '\0'; n++) {
		size_t len = strcspn(w, " ");
		char *src = xasprintf("require \"%.*s\";", (int)len, w);
		struct sieve_error err;
		struct sieve_script *s = compile(src, strlen(src), &err);
		CHECK(s != NULL);
		sieve_script_free(&s);
		free(src);
		w += len + (w[len] == ' ');
	}
	CHECK_INT(n, 21);
	CHECK(strstr(list, "comparator-i;unicode-casemap") != NULL);
}

/* ---- seeds ------------------------------------------------------------- */

static void write_seed(const char *dir, const char *name, const char *data, size_t len)
{
	char *path = xasprintf("%s/%s.sieve", dir, name);
	FILE *f = fopen(path, "wb");

	if (f != NULL) {
		fwrite(data, 1, len, f);
		fclose(f);
	}
	free(path);
}

static void write_seeds(const char *dir)
{
	char name[32];

	for (size_t i = 0; i < sizeof(good_scripts) / sizeof(good_scripts[0]); i++)
		write_seed(dir, good_scripts[i].name, good_scripts[i].source,
		           strlen(good_scripts[i].source));
	for (size_t i = 0; i < sizeof(bad_scripts) / sizeof(bad_scripts[0]); i++) {
		snprintf(name, sizeof(name), "bad-%02zu", i);
		size_t len = bad_scripts[i].len != 0 ? bad_scripts[i].len
		                                     : strlen(bad_scripts[i].source);
		write_seed(dir, name, bad_scripts[i].source, len);
	}
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		write_seeds(argv[1]);
		return 0;
	}
	test_good_scripts();
	test_bad_scripts();
	test_nesting();
	test_size_limit();
	test_tree_if();
	test_tree_tags();
	test_strings();
	test_numbers();
	test_extensions();
	return test_report();
}

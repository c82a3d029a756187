/* yubin index rebuild: rebuild an account's index from its Maildir. */
#include <stdlib.h>

#include "cli/cli.h"
#include "dir/dir.h"
#include "fts/fts.h"
#include "store/store.h"

/* Search text and parsed structure for every message (what delivery does
 * for new mail), so that the first SEARCH or FETCH after a rebuild does not
 * do it; a failure leaves that to them. */
static void index_fill(const char *root, const char *address)
{
	struct store *store;
	char **names;
	size_t count;
	const char *error;
	if (store_open(root, &store, &error) < 0) {
		cli_error("%s: search index not filled: %s", address, error);
		return;
	}
	if (store_mailbox_list(store, &names, &count, &error) < 0) {
		cli_error("%s: search index not filled: %s", address, error);
		store_close(&store);
		return;
	}
	for (size_t i = 0; i < count; i++) {
		if (fts_index_missing(store, names[i], &error) < 0)
			cli_error("%s: search index of %s not filled: %s", address, names[i],
			          error);
	}
	store_names_free(&names, count);
	store_close(&store);
}

static int index_rebuild_one(struct cli *cli, const char *address)
{
	struct store_rebuild_report report = {0};
	const char *error;

	char *root = cli_account_root(cli, address);
	int ret = store_rebuild(root, &report, &error);
	if (ret == 0)
		index_fill(root, address);
	free(root);
	if (ret < 0) {
		cli_error("cannot rebuild the index of %s: %s", address, error);
		return CLI_EXIT_FAIL;
	}
	printf("%s: %zu mailbox%s, %zu message%s\n", address, report.mailboxes,
	       report.mailboxes == 1 ? "" : "es", report.messages, report.messages == 1 ? "" : "s");
	if (report.uidvalidity_changed > 0)
		printf("%s: UIDVALIDITY changed for %zu mailbox%s (clients will "
		       "download those mailboxes again)\n",
		       address, report.uidvalidity_changed,
		       report.uidvalidity_changed == 1 ? "" : "es");
	return 0;
}

/* Every account; a failure does not stop the others. */
static int index_rebuild_all(struct cli *cli)
{
	struct dir_account **accounts;
	size_t count;
	const char *error;
	int ret = 0;

	if (dir_account_list(cli->dir, NULL, &accounts, &count, &error) < 0) {
		cli_error("cannot list accounts: %s", error);
		return EX_TEMPFAIL;
	}
	for (size_t i = 0; i < count; i++) {
		if (index_rebuild_one(cli, accounts[i]->address) != 0)
			ret = CLI_EXIT_FAIL;
	}
	dir_account_list_free(&accounts, count);
	return ret;
}

static int index_rebuild(struct cli *cli, int argc, char **argv)
{
	bool all = false;
	const struct cli_option options[] = {
	        {"all", NULL, &all},
	        {NULL, NULL, NULL},
	};
	char *address = NULL;
	struct dir_account *account = NULL;

	int ret = cli_args(cli, &argc, argv, options, 0, 1);
	if (ret == 0 && all == (argc == 1))
		ret = cli_usage_error(cli, "give either an ADDRESS or --all");
	if (ret == 0 && !all)
		ret = cli_parse_address(argv[0], &address);
	if (ret == 0)
		ret = cli_open_dir(cli, CLI_EXIT_FAIL);
	if (ret == 0 && all)
		ret = index_rebuild_all(cli);
	else if (ret == 0 && (ret = cli_lookup_account(cli, address, &account)) == 0)
		ret = index_rebuild_one(cli, address);
	dir_account_free(&account);
	free(address);
	return ret;
}

static const struct cli_subcommand index_subcommands[] = {
        {"rebuild", index_rebuild},
        {NULL, NULL},
};

static int cmd_index(struct cli *cli, int argc, char **argv)
{
	return cli_run_subcommand(cli, index_subcommands, argc, argv);
}

const struct cli_command cli_cmd_index = {
        .name = "index",
        .run = cmd_index,
        .summary = "Rebuild an account's mail index from its Maildir",
        .usage = "usage: yubin [-c FILE] index rebuild ADDRESS\n"
                 "       yubin [-c FILE] index rebuild --all\n",
        .help = "The Maildir holds the truth for messages; the per-account index\n"
                "(index.db) can always be rebuilt from it, e.g. after it was lost or\n"
                "damaged, or after messages were copied into the Maildir by hand. UIDs\n"
                "are kept where the file names tell them; a mailbox whose UIDs cannot\n"
                "be known gets a new UIDVALIDITY, so that clients fetch it again. Then\n"
                "every message is indexed for search (as delivery does), which\n"
                "takes about a minute per 50,000 messages.\n"
                "Prints the mailboxes and messages found for each account.\n"
                "\n"
                "Options:\n"
                "  --all   rebuild every account (one failure does not stop the rest)\n"
                "\n"
                "Exit status:\n"
                "  0   rebuilt\n"
                "  1   a rebuild failed (the message says which), or the config is\n"
                "      invalid\n"
                "  64  usage error\n"
                "  65  invalid address\n"
                "  67  no such account\n"
                "  75  the directory database is unavailable; try again\n"
                "\n"
                "Example:\n"
                "  $ yubin index rebuild alice@example.ac.jp\n"
                "  alice@example.ac.jp: 6 mailboxes, 1520 messages\n",
};

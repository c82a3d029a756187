/* The per-account Sieve script storage (src/sieve/sieve-storage.c):
 * names, put/get/list, activation, rename, delete, quota. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/xmalloc.h"
#include "sieve/sieve.h"
#include "test.h"

static char root_template[] = "/tmp/test-sieve-storage-XXXXXX";

static void test_names(void)
{
	static const struct {
		const char *name;
		bool valid;
	} cases[] = {
		{ "main", true },
		{ "My Filters", true },
		{ "vacation.sieve", true },
		{ "日本語のフィルタ", true },
		{ "a..b", true },
		{ "", false },
		{ "../x", false },
		{ "..", false },
		{ ".", false },
		{ "a/b", false },
		{ "/etc/passwd", false },
		{ ".hidden", false },
		{ "tab\there", false },
		{ "new\nline", false },
		{ "del\x7f", false },
		{ "c1\xc2\x85", false },           /* U+0085 */
		{ "ls\xe2\x80\xa8", false },       /* U+2028 */
		{ "bad\xff", false },              /* not UTF-8 */
		{ "over\xc0\xaf", false },         /* overlong '/' */
		{ "cut\xe3\x81", false },          /* sequence cut short */
		{ "sur\xed\xa0\x80", false },      /* a surrogate */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (sieve_storage_name_valid(cases[i].name) != cases[i].valid)
			fprintf(stderr, "name case %zu\n", i);
		CHECK(sieve_storage_name_valid(cases[i].name) == cases[i].valid);
	}
	char name[300];
	memset(name, 'a', 128);
	name[128] = '\0';
	CHECK(sieve_storage_name_valid(name));
	name[128] = 'a';
	name[129] = '\0';
	CHECK(!sieve_storage_name_valid(name));
	/* 80 three-byte characters: 240 bytes, the most a file name holds */
	for (int i = 0; i < 80; i++)
		memcpy(name + 3 * i, "\xe3\x81\x82", 3);
	name[240] = '\0';
	CHECK(sieve_storage_name_valid(name));
	memcpy(name + 240, "\xe3\x81\x82", 4);
	CHECK(!sieve_storage_name_valid(name));
	CHECK(!sieve_storage_name_valid(NULL));
}

static struct sieve_storage *open_storage(const char *root, unsigned int max_scripts,
					  uint64_t max_bytes)
{
	struct sieve_storage_limits limits = { max_scripts, max_bytes };
	struct sieve_storage *storage = NULL;
	const char *error;
	CHECK_INT(sieve_storage_open(root, &limits, &storage, &error), 0);
	return storage;
}

static int put(struct sieve_storage *storage, const char *name, const char *text,
	       bool *quota_r)
{
	const char *error;
	bool quota;
	int ret = sieve_storage_put(storage, name, text, strlen(text), &quota, &error);
	if (quota_r != NULL)
		*quota_r = quota;
	return ret;
}

/* "a b* c": the listed names, the active one starred. */
static char *list_text(struct sieve_storage *storage)
{
	struct sieve_script_info *scripts;
	size_t count;
	const char *error;
	char buf[1024] = "";
	if (sieve_storage_list(storage, &scripts, &count, &error) < 0)
		return xstrdup("ERROR");
	for (size_t i = 0; i < count; i++) {
		size_t len = strlen(buf);
		snprintf(buf + len, sizeof(buf) - len, "%s%s%s", i > 0 ? " " : "",
			 scripts[i].name, scripts[i].active ? "*" : "");
	}
	sieve_storage_list_free(&scripts, count);
	return xstrdup(buf);
}

static void check_list(struct sieve_storage *storage, const char *want)
{
	char *got = list_text(storage);
	CHECK_STR(got, want);
	free(got);
}

static void check_get(struct sieve_storage *storage, const char *name, const char *want)
{
	char *source = NULL;
	size_t len = 0;
	const char *error;
	int ret = sieve_storage_get(storage, name, &source, &len, &error);
	if (want == NULL) {
		CHECK_INT(ret, 0);
		return;
	}
	CHECK_INT(ret, 1);
	if (ret == 1) {
		CHECK_INT(len, strlen(want));
		CHECK(memcmp(source, want, len) == 0);
	}
	free(source);
}

static void check_active(struct sieve_storage *storage, const char *want)
{
	char *name = NULL;
	const char *error;
	int ret = sieve_storage_active(storage, &name, &error);
	CHECK_INT(ret, want != NULL ? 1 : 0);
	if (ret == 1 && want != NULL)
		CHECK_STR(name, want);
	free(name);
}

/* No file but the scripts and "active" is left behind (no temporaries). */
static void check_folder_clean(const char *root)
{
	char *path = xasprintf("%s/sieve", root);
	DIR *dir = opendir(path);
	struct dirent *de;
	int strays = 0;
	CHECK(dir != NULL);
	while (dir != NULL && (de = readdir(dir)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
		    de->d_name[0] == '.')
			strays++;
	}
	if (dir != NULL)
		closedir(dir);
	CHECK_INT(strays, 0);
	free(path);
}

static void test_put_get_list(const char *root)
{
	struct sieve_storage *storage = open_storage(root, 0, 0);
	const char *error;
	bool quota;

	check_list(storage, "");
	check_active(storage, NULL);
	check_get(storage, "main", NULL);
	CHECK_INT(put(storage, "main", "keep;\r\n", NULL), 0);
	CHECK_INT(put(storage, "b-rules", "discard;\n", NULL), 0);
	check_get(storage, "main", "keep;\r\n");
	check_list(storage, "b-rules main");
	/* replace keeps one script */
	CHECK_INT(put(storage, "main", "stop;\n", NULL), 0);
	check_get(storage, "main", "stop;\n");
	check_list(storage, "b-rules main");
	/* empty scripts are stored as they are */
	CHECK_INT(put(storage, "empty", "", NULL), 0);
	check_get(storage, "empty", "");
	/* bad names never reach the file system */
	CHECK_INT(put(storage, "../x", "keep;", &quota), -1);
	CHECK(!quota);
	CHECK_INT(put(storage, "a/b", "keep;", NULL), -1);
	CHECK_INT(put(storage, ".hidden", "keep;", NULL), -1);
	CHECK_INT(put(storage, "c\001", "keep;", NULL), -1);
	check_get(storage, "../x", NULL);
	char *escaped = xasprintf("%s/x.sieve", root);
	CHECK(access(escaped, F_OK) != 0);
	free(escaped);
	check_list(storage, "b-rules empty main");
	CHECK_INT(sieve_storage_have_space(storage, "x", 100, &error), 1);
	check_folder_clean(root);
	sieve_storage_close(&storage);
	CHECK(storage == NULL);
	sieve_storage_close(&storage);
}

static void test_activate(const char *root)
{
	struct sieve_storage *storage = open_storage(root, 0, 0);
	const char *error;
	bool active;

	CHECK_INT(sieve_storage_activate(storage, "nope", &error), -1);
	CHECK(error == sieve_storage_error_nonexistent);
	CHECK_INT(sieve_storage_activate(storage, "main", &error), 0);
	check_active(storage, "main");
	check_list(storage, "b-rules empty main*");
	CHECK_INT(sieve_storage_activate(storage, "b-rules", &error), 0);
	check_list(storage, "b-rules* empty main");
	/* deleting the active script is refused; others go */
	CHECK_INT(sieve_storage_delete(storage, "b-rules", &active, &error), -1);
	CHECK(active);
	check_get(storage, "b-rules", "discard;\n");
	CHECK_INT(sieve_storage_delete(storage, "empty", &active, &error), 0);
	CHECK(!active);
	CHECK_INT(sieve_storage_delete(storage, "empty", &active, &error), -1);
	CHECK(!active && error == sieve_storage_error_nonexistent);
	CHECK_INT(sieve_storage_delete(storage, "../main", &active, &error), -1);
	check_list(storage, "b-rules* main");
	/* deactivate, twice (the second is no error) */
	CHECK_INT(sieve_storage_activate(storage, "", &error), 0);
	CHECK_INT(sieve_storage_activate(storage, NULL, &error), 0);
	check_active(storage, NULL);
	CHECK_INT(sieve_storage_delete(storage, "b-rules", &active, &error), 0);
	check_list(storage, "main");
	check_folder_clean(root);
	sieve_storage_close(&storage);
}

static void test_rename(const char *root)
{
	struct sieve_storage *storage = open_storage(root, 0, 0);
	const char *error;

	CHECK_INT(put(storage, "other", "keep;\n", NULL), 0);
	CHECK_INT(sieve_storage_activate(storage, "main", &error), 0);
	CHECK_INT(sieve_storage_rename(storage, "main", "other", &error), -1);
	CHECK(error == sieve_storage_error_exists);
	CHECK_INT(sieve_storage_rename(storage, "gone", "new", &error), -1);
	CHECK(error == sieve_storage_error_nonexistent);
	CHECK_INT(sieve_storage_rename(storage, "main", "../evil", &error), -1);
	/* the renamed active script stays active */
	CHECK_INT(sieve_storage_rename(storage, "main", "renamed", &error), 0);
	check_list(storage, "other renamed*");
	check_get(storage, "renamed", "stop;\n");
	check_get(storage, "main", NULL);
	CHECK_INT(sieve_storage_rename(storage, "other", "third", &error), 0);
	check_list(storage, "renamed* third");
	CHECK_INT(sieve_storage_rename(storage, "third", "third", &error), 0);
	check_folder_clean(root);
	sieve_storage_close(&storage);
}

static void test_quota(const char *root)
{
	/* two scripts, 20 bytes in all */
	struct sieve_storage *storage = open_storage(root, 2, 20);
	const char *error;
	bool quota;

	check_list(storage, "renamed* third");
	/* renamed (6) + third (6) = 12 bytes, 2 scripts */
	CHECK_INT(sieve_storage_have_space(storage, "new", 1, &error), 0);
	CHECK(error == sieve_storage_error_maxscripts);
	CHECK_INT(put(storage, "new", "k", &quota), -1);
	CHECK(quota);
	/* replacing one is no new script: size counts without the old one */
	CHECK_INT(sieve_storage_have_space(storage, "third", 14, &error), 1);
	CHECK_INT(sieve_storage_have_space(storage, "third", 15, &error), 0);
	CHECK(error == sieve_storage_error_maxsize);
	CHECK_INT(put(storage, "third", "0123456789abcde", &quota), -1);
	CHECK(quota);
	check_get(storage, "third", "keep;\n");
	CHECK_INT(put(storage, "third", "0123456789abcd", &quota), 0);
	CHECK_INT(sieve_storage_have_space(storage, "x", UINT64_MAX, &error), 0);
	sieve_storage_close(&storage);

	storage = open_storage(root, 3, 20);
	CHECK_INT(sieve_storage_have_space(storage, "new", 1, &error), 0);
	CHECK(error == sieve_storage_error_maxsize);
	CHECK_INT(sieve_storage_have_space(storage, "new", 0, &error), 1);
	check_folder_clean(root);
	sieve_storage_close(&storage);
}

/* A stray file in the folder (a name that is not valid, not a script)
 * is never listed; an active file naming a missing script is no active. */
static void test_strays(const char *root)
{
	struct sieve_storage *storage = open_storage(root, 0, 0);
	const char *error;
	char *path = xasprintf("%s/sieve/.hidden.sieve", root);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f != NULL)
		fclose(f);
	free(path);
	path = xasprintf("%s/sieve/active", root);
	f = fopen(path, "w");
	if (f != NULL) {
		fputs("missing\n", f);
		fclose(f);
	}
	free(path);
	check_active(storage, NULL);
	check_list(storage, "renamed third");
	CHECK_INT(sieve_storage_activate(storage, "", &error), 0);
	sieve_storage_close(&storage);
}

static void remove_tree(const char *root)
{
	char *cmd = xasprintf("rm -rf '%s'", root);
	CHECK_INT(system(cmd), 0);
	free(cmd);
}

int main(void)
{
	char *base = mkdtemp(root_template);
	CHECK(base != NULL);
	if (base == NULL)
		return test_report();
	/* the account root does not exist yet: the first write makes it */
	char *root = xasprintf("%s/mail/example.test/alice", base);
	char *parent = xasprintf("%s/mail/example.test", base);
	char *mail = xasprintf("%s/mail", base);
	mkdir(mail, 0700);
	mkdir(parent, 0700);

	test_names();
	test_put_get_list(root);
	test_activate(root);
	test_rename(root);
	test_quota(root);
	test_strays(root);

	remove_tree(base);
	free(root);
	free(parent);
	free(mail);
	return test_report();
}

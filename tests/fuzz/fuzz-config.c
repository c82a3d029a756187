/* libFuzzer target for the config parser: any bytes must give either a
 * config (and no error text) or -1 with one "fuzz:LINE: ..." line per error;
 * never a crash, a leak or a file-system access. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_errors(const struct buf *errors)
{
	const char *s = buf_str(errors);
	if (*s == '\0')
		abort();
	for (; *s != '\0'; s = strchr(s, '\n') + 1) {
		if (strncmp(s, "fuzz:", 5) != 0 || strchr(s, '\n') == NULL)
			abort();
	}
}

static void check_config(const struct yubin_config *config)
{
	for (const struct config_listener *l = config->listeners; l != NULL; l = l->next) {
		if (l->port == 0 || l->port > 65535 || l->protocol == NULL ||
		    l->address == NULL || l->name == NULL)
			abort();
	}
	for (const struct config_certificate *c = config->tls.certificates; c != NULL;
	     c = c->next) {
		if (c->cert_file == NULL || c->key_file == NULL)
			abort();
	}
	free(config_data_path(config, "yubin.db"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct yubin_config *config = NULL;
	struct buf errors = BUF_INIT(0);
	int ret = config_parse((const char *)data, size, "fuzz", "/nonexistent",
			       &config, &errors);
	if (ret == 0) {
		if (errors.len != 0 || config == NULL)
			abort();
		check_config(config);
	} else {
		if (ret != -1 || config != NULL)
			abort();
		check_errors(&errors);
	}
	config_free(&config);
	buf_free(&errors);
	return 0;
}

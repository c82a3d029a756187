/* Sieve (RFC 5228 and extensions): compiling a script (errors with line
 * and column), running it against one message for one recipient, and the
 * per-account script storage that ManageSieve and the CLI share. The
 * interpreter only decides: it returns a list of actions; `deliver` carries
 * them out (files, redirects, replies), so a script never touches the
 * store or the network itself. */
#ifndef YUBIN_SIEVE_H
#define YUBIN_SIEVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- limits ------------------------------------------------------------ */

struct sieve_limits {
	size_t max_script_size;     /* bytes of one script (compile refuses more) */
	unsigned int max_actions;   /* actions one message may collect */
	unsigned int max_redirects; /* redirect actions one message may collect */
	unsigned int max_include_depth;
	unsigned int max_run_ms;    /* wall-clock budget for one execution */
};

/* 64 KiB, 32 actions, 4 redirects, include depth 5, 1000 ms */
extern const struct sieve_limits sieve_default_limits;

/* ---- compiling --------------------------------------------------------- */

struct sieve_script;

struct sieve_error {
	unsigned int line, column; /* 1-based position of the error; 0 when none */
	char message[256];         /* "unknown command \"fileinta\"" */
};

/* Parses and validates source (not NUL-terminated) named name (for logs
 * and include). Returns NULL and fills *err on a syntax or validation error
 * (unknown command/test/tag, wrong argument types, extension used without
 * `require`, `require` of an unsupported extension, script too large). */
struct sieve_script *sieve_compile(const char *name, const char *source, size_t len,
				   const struct sieve_limits *limits, struct sieve_error *err);
void sieve_script_free(struct sieve_script **script);
const char *sieve_script_name(const struct sieve_script *script);

/* Space-separated list of supported extensions, for the ManageSieve
 * SIEVE capability ("fileinto reject ereject envelope ..."). Static. */
const char *sieve_extensions(void);

/* ---- running ----------------------------------------------------------- */

/* The message as the recipient's delivery sees it. */
struct sieve_message {
	const char *data;           /* the whole message (header and body) */
	size_t len;
	const char *envelope_from;  /* reverse path without <>; "" for the null sender */
	const char *envelope_to;    /* the recipient address as given in RCPT TO */
	const char *account;        /* the account the message is delivered to */
	time_t now;                 /* for currentdate, vacation and duplicate */
};

/* What the interpreter asks of the world. Every callback may be NULL: then
 * mailboxexists is false, duplicate never matches and include fails. */
struct sieve_callbacks {
	void *context;
	/* mailboxexists (RFC 5490): true when the account has this mailbox */
	bool (*mailbox_exists)(void *context, const char *mailbox);
	/* duplicate (RFC 7352): true when key was recorded less than seconds
	 * ago. Recording is the caller's job (from sieve_result.duplicates)
	 * once the message was delivered. */
	bool (*duplicate_seen)(void *context, const char *key, uint64_t seconds);
	/* include (RFC 6609): compiles the named script of the account
	 * (global = false) or of the system (global = true); NULL and *err
	 * filled when it does not exist or does not compile. */
	struct sieve_script *(*include)(void *context, bool global, const char *name,
					struct sieve_error *err);
};

enum sieve_action_type {
	SIEVE_ACTION_KEEP,     /* store into INBOX (explicit keep) */
	SIEVE_ACTION_FILEINTO, /* store into mailbox */
	SIEVE_ACTION_REDIRECT, /* send the message on to address */
	SIEVE_ACTION_REJECT,   /* refuse; tell the sender with reason (RFC 5429) */
	SIEVE_ACTION_EREJECT,  /* refuse at the protocol level if still possible */
	SIEVE_ACTION_DISCARD,
	SIEVE_ACTION_VACATION,
};

struct sieve_vacation {
	uint64_t seconds;    /* :days * 86400 or :seconds; default 7 days */
	char *subject;       /* NULL: "Auto: " + original subject (RFC 5230 4.5) */
	char *from;          /* NULL: the account */
	char **addresses;    /* :addresses, the account's other addresses */
	size_t address_count;
	bool mime;           /* reason is a MIME entity (headers + body) */
	char *handle;        /* :handle, or a hash of reason/subject/from/mime */
	char *reason;
};

struct sieve_action {
	enum sieve_action_type type;
	char *mailbox;       /* FILEINTO: UTF-8 name ("INBOX/Lists" style, '/' separated) */
	bool create;         /* FILEINTO :create (RFC 5490) */
	char **flags;        /* KEEP/FILEINTO: IMAP flags and keywords (imap4flags) */
	size_t flag_count;
	char *address;       /* REDIRECT: the target address */
	char *reason;        /* REJECT/EREJECT */
	struct sieve_vacation *vacation; /* VACATION */
	unsigned int line;   /* the command's line, for logs */
};

/* Collects the outcome of one or more executions on one message. */
struct sieve_result {
	struct sieve_action *actions;
	size_t action_count;
	bool implicit_keep;  /* true until an action cancels it (RFC 5228 2.10.2) */
	bool stopped;        /* `stop` ran: later scripts must not run */
	/* editheader (RFC 5293): the message's header block after the edits
	 * (ending with its blank line), or NULL when no edit was made; the
	 * body is data + body_offset of the original. */
	char *edited_header;
	size_t edited_header_len;
	size_t body_offset;
	/* duplicate keys to record once the message is delivered */
	char **duplicates;
	uint64_t *duplicate_seconds;
	size_t duplicate_count;
	/* runtime error: the caller keeps the message in INBOX (implicit keep
	 * regardless of actions) and tells the account why */
	char *error;
	unsigned int error_line;
	/* imap4flags: the internal flags variable after the last run; the
	 * flags of the implicit keep, and the start of the next script's */
	char **keep_flags;
	size_t keep_flag_count;
};

void sieve_result_init(struct sieve_result *result);
void sieve_result_free(struct sieve_result *result);

/* Runs script against msg and appends to result. Several scripts may run
 * on one result in turn (the routing script, then the user's): each starts
 * with fresh variables and sees the header edits and flags of the earlier
 * ones; the caller skips later scripts once result->stopped is set.
 * Returns 0, or -1 on a runtime error (result->error set; limits exceeded,
 * include failed, time budget spent). */
int sieve_execute(const struct sieve_script *script, const struct sieve_message *msg,
		  const struct sieve_callbacks *callbacks, const struct sieve_limits *limits,
		  struct sieve_result *result);

/* ---- per-account script storage (ManageSieve, CLI, deliver) ------------ */

/* Scripts live in <account root>/sieve/<name>.sieve; the active one is
 * named by <account root>/sieve/active (one line). Names: 1-128 UTF-8
 * characters, no '/', no control characters, not starting with '.'. Every
 * write goes through a temporary file, fsync and rename. */
struct sieve_storage;

struct sieve_storage_limits {
	unsigned int max_scripts;   /* 0 = no limit */
	uint64_t max_bytes;         /* all scripts together; 0 = no limit */
};

int sieve_storage_open(const char *account_root, const struct sieve_storage_limits *limits,
		       struct sieve_storage **storage_r, const char **error_r);
void sieve_storage_close(struct sieve_storage **storage);
bool sieve_storage_name_valid(const char *name);

struct sieve_script_info {
	char *name;
	bool active;
};
int sieve_storage_list(struct sieve_storage *storage, struct sieve_script_info **scripts_r,
		       size_t *count_r, const char **error_r);
void sieve_storage_list_free(struct sieve_script_info **scripts, size_t count);
/* 1 with the malloc'd source, 0 when there is no such script, -1 on error. */
int sieve_storage_get(struct sieve_storage *storage, const char *name, char **source_r,
		      size_t *len_r, const char **error_r);
/* Stores the script (replacing one of that name). The caller compiles it
 * first; storage does not. -1 with *quota_r true when over a limit. */
int sieve_storage_put(struct sieve_storage *storage, const char *name, const char *source,
		      size_t len, bool *quota_r, const char **error_r);
/* HAVESPACE: 1 when a script of this name and size would fit, else 0. */
int sieve_storage_have_space(struct sieve_storage *storage, const char *name, uint64_t size,
			     const char **error_r);
/* Deleting the active script is refused (RFC 5804 2.10): -1, *active_r. */
int sieve_storage_delete(struct sieve_storage *storage, const char *name, bool *active_r,
			 const char **error_r);
int sieve_storage_rename(struct sieve_storage *storage, const char *old_name,
			 const char *new_name, const char **error_r);
/* name NULL or "" deactivates. 0 ok, -1 error (no such script). */
int sieve_storage_activate(struct sieve_storage *storage, const char *name,
			   const char **error_r);
/* 1 with the malloc'd active name, 0 when none is active, -1 on error. */
int sieve_storage_active(struct sieve_storage *storage, char **name_r, const char **error_r);

/* Error strings the storage sets in *error_r for conditions a client may
 * act on (compare the pointers): NONEXISTENT (delete, rename, activate),
 * ALREADYEXISTS (rename), and the two quota reasons (put with *quota_r,
 * and have_space, which sets one of them when it returns 0). */
extern const char sieve_storage_error_nonexistent[];
extern const char sieve_storage_error_exists[];
extern const char sieve_storage_error_maxscripts[];
extern const char sieve_storage_error_maxsize[];

#endif

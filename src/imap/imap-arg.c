/* Typed access to parsed arguments: the lexer accepts the union of atom
 * shapes (flags, wildcards, "]"), each getter admits only its own. */
#include "imap/imap-parser.h"

#include <string.h>
#include <strings.h>

#include "imap/imap-seqset.h"

bool imap_arg_get_atom(const struct imap_arg *arg, const char **str_r)
{
	if (arg->type != IMAP_ARG_ATOM && arg->type != IMAP_ARG_NIL)
		return false;
	if ((arg->flags &
	     (IMAP_ARG_FLAG_WILDCARD | IMAP_ARG_FLAG_BACKSLASH | IMAP_ARG_FLAG_RBRACKET)) != 0)
		return false;
	*str_r = arg->str;
	return true;
}

bool imap_arg_get_string(const struct imap_arg *arg, const char **str_r)
{
	if (arg->type != IMAP_ARG_STRING && arg->type != IMAP_ARG_LITERAL)
		return false;
	/* Streamed literals have no text; literal8 may hold NULs. */
	if (arg->str == NULL || strlen(arg->str) != arg->len)
		return false;
	*str_r = arg->str;
	return true;
}

bool imap_arg_get_astring(const struct imap_arg *arg, const char **str_r)
{
	if (imap_arg_get_string(arg, str_r))
		return true;
	if (arg->type != IMAP_ARG_ATOM && arg->type != IMAP_ARG_NIL)
		return false;
	if ((arg->flags & (IMAP_ARG_FLAG_WILDCARD | IMAP_ARG_FLAG_BACKSLASH)) != 0)
		return false;
	*str_r = arg->str;
	return true;
}

bool imap_arg_get_nstring(const struct imap_arg *arg, const char **str_r)
{
	if (arg->type == IMAP_ARG_NIL) {
		*str_r = NULL;
		return true;
	}
	return imap_arg_get_astring(arg, str_r);
}

bool imap_arg_get_list_mailbox(const struct imap_arg *arg, const char **str_r)
{
	if (imap_arg_get_string(arg, str_r))
		return true;
	if (arg->type != IMAP_ARG_ATOM && arg->type != IMAP_ARG_NIL)
		return false;
	if ((arg->flags & IMAP_ARG_FLAG_BACKSLASH) != 0)
		return false;
	*str_r = arg->str;
	return true;
}

bool imap_arg_get_list(const struct imap_arg *arg, const struct imap_arg **args_r,
                       unsigned int *count_r)
{
	if (arg->type != IMAP_ARG_LIST)
		return false;
	*args_r = arg->list->args;
	*count_r = arg->list->count;
	return true;
}

bool imap_arg_get_flag(const struct imap_arg *arg, bool allow_star, const char **str_r)
{
	if (arg->type != IMAP_ARG_ATOM && arg->type != IMAP_ARG_NIL)
		return false;
	if ((arg->flags & IMAP_ARG_FLAG_RBRACKET) != 0)
		return false;
	if ((arg->flags & IMAP_ARG_FLAG_WILDCARD) != 0) {
		/* Only the whole atom "\*" may hold a wildcard. */
		if (!allow_star || strcmp(arg->str, "\\*") != 0)
			return false;
	} else if ((arg->flags & IMAP_ARG_FLAG_BACKSLASH) != 0 && arg->len < 2) {
		return false;
	}
	*str_r = arg->str;
	return true;
}

bool imap_arg_atom_equals(const struct imap_arg *arg, const char *atom)
{
	const char *str;
	return imap_arg_get_atom(arg, &str) && strcasecmp(str, atom) == 0;
}

int imap_arg_get_seqset(const struct imap_arg *arg, struct imap_seqset *set, const char **error_r)
{
	imap_seqset_init(set);
	if (arg->type != IMAP_ARG_ATOM ||
	    (arg->flags & (IMAP_ARG_FLAG_BACKSLASH | IMAP_ARG_FLAG_RBRACKET)) != 0) {
		*error_r = "Invalid sequence set";
		return -1;
	}
	return imap_seqset_parse(set, arg->str, error_r);
}

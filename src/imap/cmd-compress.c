/* COMPRESS (RFC 4978): DEFLATE for the rest of the session. Authenticated
 * and selected state only, as RFC 4978's grammar (command-auth) and
 * Dovecot have it; a second COMPRESS is NO [COMPRESSIONACTIVE]. */
#include "imap/imap-private.h"

#include <strings.h>

#include "lib/conn.h"
#include "lib/log.h"

IMAP_HANDLER(imap_cmd_compress)
{
	const char *mech, *error;
	if (count != 1 || !imap_arg_get_atom(&args[0], &mech)) {
		imap_bad(sess, "COMPRESS takes one mechanism name");
		return;
	}
	if (conn_is_compressed(sess->conn)) {
		imap_done(sess, "NO [COMPRESSIONACTIVE] DEFLATE is active already");
		return;
	}
	if (strcasecmp(mech, "DEFLATE") != 0) {
		imap_done(sess, "NO Unknown compression mechanism");
		return;
	}
	/* The OK goes out uncompressed; every byte after it is compressed. */
	imap_done(sess, "OK DEFLATE active");
	/* The client must wait for the OK, but what it sent after the
	 * command is compressed: back to the connection, to be inflated. */
	conn_unread(sess->conn, sess->inbuf + sess->in_pos, sess->in_len - sess->in_pos);
	sess->in_pos = sess->in_len = 0;
	if (conn_start_deflate(sess->conn, &error) < 0) {
		log_error("imap session=%s user=%s event=compress error=\"%s\"",
		          conn_id(sess->conn), imap_user(sess), error);
		imap_session_close(sess);
		return;
	}
	log_info("imap session=%s user=%s event=compress mechanism=deflate", conn_id(sess->conn),
	         imap_user(sess));
}

/* The connection layer every protocol shares: bounded line reading, byte
 * reading for literals, writes with back-pressure, TLS (implicit and the
 * in-place STARTTLS upgrade), idle timeouts and per-connection timers.
 *
 * A protocol gets a connection through its struct protocol start() hook and
 * installs callbacks. Input is pulled: on_input says bytes are buffered, the
 * protocol reads lines with conn_read_line() until it returns 0. A protocol
 * that is busy (waiting for a timer, streaming a message) calls
 * conn_pause_input() so that pipelined commands wait. */
#ifndef YUBIN_CONN_H
#define YUBIN_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct conn;
struct event_base;
struct config_listener;
struct yubin_config;

struct conn_callbacks {
	/* Bytes are buffered (also called again after conn_resume_input()). */
	void (*on_input)(struct conn *conn, void *ctx);
	/* Output fell below the low watermark (see conn_output_size). */
	void (*on_drain)(struct conn *conn, void *ctx);
	/* The idle timeout expired. The protocol may write a last reply; the
	 * connection is closed after the callback returns. */
	void (*on_timeout)(struct conn *conn, void *ctx);
	/* The connection is going away (peer closed, error, conn_close()
	 * finished, server shutdown). Free protocol state here; the conn is
	 * freed by the layer after this returns, never inside it. */
	void (*on_close)(struct conn *conn, void *ctx);
};

/* A protocol known to the server; the listener's `protocol` names it. */
struct protocol {
	const char *name;
	/* A new connection (for implicit TLS: after the handshake). */
	void (*start)(struct conn *conn);
	/* The worker is shutting down gracefully: stop reading new commands
	 * when convenient (may be NULL). */
	void (*shutdown)(struct conn *conn, void *ctx);
	/* Written (plaintext listeners only) before a connection refused by
	 * server.max_connections(_per_ip) is closed, e.g. POP3
	 * "-ERR [SYS/TEMP] Too many connections\r\n" (may be NULL). */
	const char *too_many_reply;
};

void conn_set_callbacks(struct conn *conn, const struct conn_callbacks *cb,
			void *ctx);

/* Identity and state */
const char *conn_id(const struct conn *conn);         /* short hex session id */
const char *conn_remote_ip(const struct conn *conn);
uint16_t conn_remote_port(const struct conn *conn);
const char *conn_local_ip(const struct conn *conn);
uint16_t conn_local_port(const struct conn *conn);
const struct config_listener *conn_listener(const struct conn *conn);
/* The configuration this worker runs with now (changes on SIGHUP). */
const struct yubin_config *conn_config(const struct conn *conn);
struct event_base *conn_event_base(const struct conn *conn);
bool conn_is_tls(const struct conn *conn);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" or NULL without TLS. */
const char *conn_tls_description(const struct conn *conn);
/* TLS can be started on this connection (listener has tls = starttls and
 * TLS is not active yet). */
bool conn_starttls_available(const struct conn *conn);

/* Reading */
/* Maximum line length (without CRLF); default 8192. */
void conn_set_max_line(struct conn *conn, size_t max);
/* Returns 1 with a line (CRLF or LF stripped, NUL-terminated; *len_r without
 * the terminator; valid until the next read call), 0 when no full line is
 * buffered, or -1 when the line was longer than the maximum: its bytes are
 * discarded up to and including the next LF (even if that arrives later) and
 * the protocol should answer with an error. */
int conn_read_line(struct conn *conn, char **line_r, size_t *len_r);
/* Copies up to max buffered bytes; returns how many (0 = none buffered). */
size_t conn_read(struct conn *conn, void *data, size_t max);
size_t conn_input_size(const struct conn *conn);
void conn_pause_input(struct conn *conn);
void conn_resume_input(struct conn *conn);

/* Writing: never blocks; data is queued. Protocols that produce much output
 * (a RETR, a FETCH) write while conn_output_size() is below
 * CONN_OUTPUT_HIGH_WATER and continue from on_drain. */
#define CONN_OUTPUT_HIGH_WATER (256 * 1024)
void conn_write(struct conn *conn, const void *data, size_t len);
void conn_write_str(struct conn *conn, const char *s);
void conn_printf(struct conn *conn, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
size_t conn_output_size(const struct conn *conn);

/* Starts TLS in place (STLS, STARTTLS). Write the "go ahead" reply first:
 * it is flushed in plaintext, then the handshake starts. Every byte the
 * client sent after the command line is discarded, never parsed (CVE-2011-0411).
 * on_input is called again once the handshake is done. Returns -1 when TLS is
 * not available on this connection. */
int conn_starttls(struct conn *conn);

/* COMPRESS=DEFLATE (RFC 4978): from the next byte on, everything written
 * is raw DEFLATE (RFC 1951, zlib windowBits -15) and everything read is
 * inflated; TLS, when active, stays below. Write the go-ahead reply first:
 * it is queued uncompressed. Output is sync-flushed once per pass of the
 * event loop, so no reply waits in zlib. Line and read limits, the read
 * watermark and conn_output_size() apply to the plain (inflated) bytes; a
 * corrupt stream closes the connection. Returns -1 (error static) when
 * compression is already active or the connection is closing. */
int conn_start_deflate(struct conn *conn, const char **error_r);
bool conn_is_compressed(const struct conn *conn);
/* Puts bytes back in front of the input (read with conn_read() but not
 * used), e.g. what a client pipelined after COMPRESS: given back before
 * conn_start_deflate(), they are inflated with the rest. */
void conn_unread(struct conn *conn, const void *data, size_t len);

/* Timers */
/* Close the connection (after on_timeout) when nothing is read for ms;
 * 0 disables. Reset by each read. */
void conn_set_idle_timeout(struct conn *conn, uint64_t ms);
/* Runs cb once after ms; one timer per connection (a new call replaces the
 * old one). Cancelled when the connection closes. */
void conn_set_timer(struct conn *conn, uint64_t ms,
		    void (*cb)(struct conn *conn, void *ctx));
void conn_cancel_timer(struct conn *conn);

/* Flushes queued output, then closes. on_close follows. Safe to call from
 * any callback, more than once. */
void conn_close(struct conn *conn);
bool conn_is_closing(const struct conn *conn);

#endif

/* The DATA reader: a byte-at-a-time state machine, so that any split of
 * the input gives the same result. Only the five bytes CR LF . CR LF end
 * the data; a bare CR or LF never starts a line, so "\n.\n", "\r.\r" and
 * their mixtures cannot end a message early (SMTP smuggling,
 * CVE-2023-51764) — they mark it bad instead. */
#include "smtp/smtp.h"

void smtp_data_init(struct smtp_data *data, uint64_t max)
{
	data->state = SMTP_DATA_LINE_START;
	data->bare_cr = false;
	data->bare_lf = false;
	data->too_big = false;
	data->size = 0;
	data->max = max;
}

static void data_emit(struct smtp_data *data, char c, char *out, size_t *n)
{
	data->size++;
	if (data->max != 0 && data->size > data->max)
		data->too_big = true;
	if (data->too_big || data->bare_cr || data->bare_lf)
		return;
	out[(*n)++] = c;
}

/* A byte in the middle of a line (also the first byte of a line that is
 * not a dot). */
static void data_text(struct smtp_data *data, char c, char *out, size_t *n)
{
	if (c == '\r') {
		data->state = SMTP_DATA_CR;
		return;
	}
	if (c == '\n')
		data->bare_lf = true;
	data->state = SMTP_DATA_TEXT;
	data_emit(data, c, out, n);
}

/* After a CR: only LF completes the line. */
static void data_after_cr(struct smtp_data *data, char c, char *out, size_t *n)
{
	if (c == '\n') {
		data_emit(data, '\r', out, n);
		data_emit(data, '\n', out, n);
		data->state = SMTP_DATA_LINE_START;
		return;
	}
	data->bare_cr = true;
	data_emit(data, '\r', out, n);
	data_text(data, c, out, n);
}

static void data_byte(struct smtp_data *data, char c, char *out, size_t *n)
{
	switch (data->state) {
	case SMTP_DATA_LINE_START:
		if (c == '.')
			data->state = SMTP_DATA_DOT;
		else
			data_text(data, c, out, n);
		break;
	case SMTP_DATA_TEXT:
		data_text(data, c, out, n);
		break;
	case SMTP_DATA_CR:
		data_after_cr(data, c, out, n);
		break;
	case SMTP_DATA_DOT:
		/* RFC 5321 4.5.2: the first dot of a line is removed. */
		if (c == '\r')
			data->state = SMTP_DATA_DOT_CR;
		else
			data_text(data, c, out, n);
		break;
	case SMTP_DATA_DOT_CR:
		if (c == '\n') {
			data->state = SMTP_DATA_DONE;
			break;
		}
		/* ".\rX": the line held a dot and a bare CR. */
		data_after_cr(data, c, out, n);
		break;
	case SMTP_DATA_DONE:
		break;
	}
}

size_t smtp_data_feed(struct smtp_data *data, const char *in, size_t len, char *out,
		      size_t *out_len_r)
{
	size_t i = 0, n = 0;
	while (i < len && data->state != SMTP_DATA_DONE)
		data_byte(data, in[i++], out, &n);
	*out_len_r = n;
	return i;
}

/* A small printf: formats into a buffer (vsnprintf) or streams to COM1
 * under the console lock (printf). */
#include "kit_internal.h"

struct sink {
	void (*put)(struct sink *s, char c);
	char *buf;
	size_t size, len;
	size_t count;
};

static void emit(struct sink *s, char c)
{
	s->put(s, c);
	s->count++;
}

static void emit_pad(struct sink *s, char c, int n)
{
	while (n-- > 0)
		emit(s, c);
}

static void format_number(struct sink *s, unsigned long long v, bool neg, int base, bool upper,
			  int width, int prec, bool left, bool zero, bool alt, char sign)
{
	char digits[24];
	int nd = 0;
	const char *set = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	while (v) {
		digits[nd++] = set[v % (unsigned)base];
		v /= (unsigned)base;
	}
	if (prec < 0 && nd == 0)
		digits[nd++] = '0';
	int ndig = nd > prec ? nd : prec;           /* digits incl. precision zeros */
	const char *prefix = "";
	if (neg)
		prefix = "-";
	else if (sign)
		prefix = sign == '+' ? "+" : " ";
	if (alt && base == 16 && nd && !(nd == 1 && digits[0] == '0'))
		prefix = upper ? "0X" : "0x";
	if (alt && base == 8 && ndig == nd && (nd == 0 || digits[nd - 1] != '0'))
		ndig++;
	int plen = (int)strlen(prefix);
	int pad = width - ndig - plen;
	if (!left && !(zero && prec < 0))
		emit_pad(s, ' ', pad);
	for (const char *p = prefix; *p; p++)
		emit(s, *p);
	if (!left && zero && prec < 0)
		emit_pad(s, '0', pad);
	emit_pad(s, '0', ndig - nd);
	while (nd)
		emit(s, digits[--nd]);
	if (left)
		emit_pad(s, ' ', pad);
}

static void format(struct sink *s, const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			emit(s, *fmt);
			continue;
		}
		bool left = false, zero = false, alt = false;
		char sign = 0;
		int width = 0, prec = -1, lng = 0;
		for (;; fmt++) {
			char f = fmt[1];
			if (f == '-') left = true;
			else if (f == '0') zero = true;
			else if (f == '#') alt = true;
			else if (f == '+') sign = '+';
			else if (f == ' ') { if (!sign) sign = ' '; }
			else break;
		}
		fmt++;
		if (*fmt == '*') {
			width = va_arg(ap, int);
			if (width < 0) { left = true; width = -width; }
			fmt++;
		} else {
			while (*fmt >= '0' && *fmt <= '9')
				width = width * 10 + (*fmt++ - '0');
		}
		if (*fmt == '.') {
			fmt++;
			prec = 0;
			if (*fmt == '*') {
				prec = va_arg(ap, int);
				fmt++;
			} else {
				while (*fmt >= '0' && *fmt <= '9')
					prec = prec * 10 + (*fmt++ - '0');
			}
		}
		for (;; fmt++) {
			if (*fmt == 'l') lng++;
			else if (*fmt == 'z' || *fmt == 'j' || *fmt == 't') lng = 2;
			else if (*fmt == 'h') lng--;
			else break;
		}
		char c = *fmt;
		if (!c)
			break;
		unsigned long long u;
		long long d;
		switch (c) {
		case 'd': case 'i':
			d = lng >= 1 ? (lng >= 2 ? va_arg(ap, long long) : va_arg(ap, long)) : va_arg(ap, int);
			if (lng == -1) d = (short)d;
			if (lng <= -2) d = (signed char)d;
			format_number(s, d < 0 ? -(unsigned long long)d : (unsigned long long)d, d < 0, 10,
				      false, width, prec, left, zero, false, sign);
			break;
		case 'u': case 'x': case 'X': case 'o':
			u = lng >= 1 ? (lng >= 2 ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned long))
				     : va_arg(ap, unsigned int);
			if (lng == -1) u = (unsigned short)u;
			if (lng <= -2) u = (unsigned char)u;
			format_number(s, u, false, c == 'u' ? 10 : c == 'o' ? 8 : 16, c == 'X', width, prec,
				      left, zero, alt, 0);
			break;
		case 'p': {
			void *p = va_arg(ap, void *);
			format_number(s, (uintptr_t)p, false, 16, false, width, prec, left, zero, true, 0);
			break;
		}
		case 'c': {
			char ch = (char)va_arg(ap, int);
			if (!left) emit_pad(s, ' ', width - 1);
			emit(s, ch);
			if (left) emit_pad(s, ' ', width - 1);
			break;
		}
		case 's': {
			const char *str = va_arg(ap, const char *);
			if (!str)
				str = "(null)";
			int n = (int)(prec >= 0 ? strnlen(str, (size_t)prec) : strlen(str));
			if (!left) emit_pad(s, ' ', width - n);
			for (int i = 0; i < n; i++)
				emit(s, str[i]);
			if (left) emit_pad(s, ' ', width - n);
			break;
		}
		case '%':
			emit(s, '%');
			break;
		default:
			emit(s, '%');
			emit(s, c);
			break;
		}
	}
}

static void buf_put(struct sink *s, char c)
{
	if (s->len + 1 < s->size)
		s->buf[s->len++] = c;
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct sink s = { .put = buf_put, .buf = buf, .size = size };
	format(&s, fmt, ap);
	if (size)
		buf[s.len] = 0;
	return (int)s.count;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

static void serial_put(struct sink *s, char c)
{
	serial_putc(c);
}

int vprintf(const char *fmt, va_list ap)
{
	struct sink s = { .put = serial_put };
	console_lock();
	format(&s, fmt, ap);
	console_unlock();
	return (int)s.count;
}

int printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vprintf(fmt, ap);
	va_end(ap);
	return n;
}

int puts(const char *str)
{
	console_lock();
	serial_write(str, strlen(str));
	serial_putc('\n');
	console_unlock();
	return 0;
}

int putchar(int c)
{
	serial_putc((char)c);
	return (unsigned char)c;
}

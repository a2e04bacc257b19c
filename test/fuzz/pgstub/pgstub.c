/*
 * pgstub.c: the stand-in backend of test/fuzz/pgstub/postgres.h (see there).
 */
#include "postgres.h"

#include <setjmp.h>
#include <stdio.h>

/* ---- errors ---- */

int			pgstub_sqlstate;
char		pgstub_message[512];
jmp_buf    *pgstub_error_target;
static int	error_level;

void
pgstub_errstart(int elevel)
{
	error_level = elevel;
	pgstub_sqlstate = ERRCODE_INTERNAL_ERROR;
	pgstub_message[0] = '\0';
}

void
pgstub_errfinish(void)
{
	/* the parsers only raise ERROR; anything else is a bug in them or here */
	if (error_level < ERROR || pgstub_error_target == NULL)
		abort();
	longjmp(*pgstub_error_target, 1);
}

int
errcode(int sqlerrcode)
{
	pgstub_sqlstate = sqlerrcode;
	return 0;
}

int
errmsg(const char *fmt, ...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(pgstub_message, sizeof(pgstub_message), fmt, ap);
	va_end(ap);
	return 0;
}

/* details and hints are formatted (so bad format arguments show) and dropped */
int
errdetail(const char *fmt, ...)
{
	char		buf[512];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return 0;
}

int
errhint(const char *fmt, ...)
{
	char		buf[512];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return 0;
}

bool
pgstub_try(void (*fn) (void *), void *arg)
{
	jmp_buf		here;
	jmp_buf    *volatile saved = pgstub_error_target;

	pgstub_sqlstate = 0;
	pgstub_message[0] = '\0';
	if (setjmp(here) == 0)
	{
		pgstub_error_target = &here;
		fn(arg);
		pgstub_error_target = saved;
		return true;
	}
	pgstub_error_target = saved;
	return false;
}

void
FlushErrorState(void)
{
	pgstub_sqlstate = 0;
	pgstub_message[0] = '\0';
}

void
pgstub_sqlstate_text(int code, char out[6])
{
	int			i;

	for (i = 0; i < 5; i++)
		out[i] = (char) (((code >> (6 * i)) & 0x3F) + '0');
	out[5] = '\0';
}

/* ---- memory ---- */

typedef struct Chunk
{
	struct Chunk *next;
	max_align_t data[];
} Chunk;
static Chunk *chunks;

void *
palloc(size_t size)
{
	Chunk	   *c = malloc(sizeof(Chunk) + (size ? size : 1));

	if (c == NULL)
		abort();
	c->next = chunks;
	chunks = c;
	return c->data;
}

void *
palloc0(size_t size)
{
	void	   *p = palloc(size);

	memset(p, 0, size);
	return p;
}

char *
pnstrdup(const char *s, size_t len)
{
	size_t		n = strnlen(s, len);
	char	   *p = palloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
pstrdup(const char *s)
{
	return pnstrdup(s, strlen(s));
}

void
pfree(void *p)
{
	(void) p;					/* freed with the arena */
}

void
pgstub_reset(void)
{
	while (chunks)
	{
		Chunk	   *next = chunks->next;

		free(chunks);
		chunks = next;
	}
}

/* ---- StringInfo ---- */

char *
psprintf(const char *fmt, ...)
{
	va_list		ap;
	int			n;
	char	   *out;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	out = palloc(n + 1);
	va_start(ap, fmt);
	vsnprintf(out, n + 1, fmt, ap);
	va_end(ap);
	return out;
}

void
initStringInfo(StringInfo str)
{
	str->maxlen = 256;
	str->data = palloc(str->maxlen);
	str->data[0] = '\0';
	str->len = 0;
	str->cursor = 0;
}

static void
append_n(StringInfo str, const char *s, int n)
{
	if (str->len + n + 1 > str->maxlen)
	{
		int			newlen = (str->len + n + 1) * 2;
		char	   *p = palloc(newlen);

		memcpy(p, str->data, str->len + 1);
		str->data = p;
		str->maxlen = newlen;
	}
	memcpy(str->data + str->len, s, n);
	str->len += n;
	str->data[str->len] = '\0';
}

void
appendStringInfoString(StringInfo str, const char *s)
{
	append_n(str, s, (int) strlen(s));
}

void
appendStringInfo(StringInfo str, const char *fmt, ...)
{
	va_list		ap;
	int			n;
	char	   *buf;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	buf = palloc(n + 1);
	va_start(ap, fmt);
	vsnprintf(buf, n + 1, fmt, ap);
	va_end(ap);
	append_n(str, buf, n);
}

/* ---- Numeric ---- */

Numeric
pgstub_numeric(bool neg, const char *digits, int ndigits, int exp)
{
	NumericData *n = palloc(sizeof(NumericData));
	char	   *d;

	/* normalise: no leading zeros, trailing zeros moved into the exponent */
	while (ndigits > 0 && digits[0] == '0')
		digits++, ndigits--;
	while (ndigits > 0 && digits[ndigits - 1] == '0')
		ndigits--, exp++;
	d = palloc(ndigits + 1);
	memcpy(d, digits, ndigits);
	d[ndigits] = '\0';
	n->kind = 'f';
	n->neg = ndigits > 0 && neg;
	n->ndigits = ndigits;
	n->digits = d;
	n->exp = ndigits > 0 ? exp : 0;
	return n;
}

Numeric
int64_to_numeric(int64 v)
{
	char		buf[32];
	uint64		u = v < 0 ? (uint64) 0 - (uint64) v : (uint64) v;
	int			len = snprintf(buf, sizeof(buf), "%llu", (unsigned long long) u);

	return pgstub_numeric(v < 0, buf, len, 0);
}

bool
numeric_is_nan(Numeric n)
{
	return n->kind == 'n';
}

bool
numeric_is_inf(Numeric n)
{
	return n->kind == 'p' || n->kind == 'm';
}

/* -1, 0, 1 for a finite sign */
static int
sign_of(Numeric n)
{
	return n->ndigits == 0 ? 0 : (n->neg ? -1 : 1);
}

static int
cmp_abs(Numeric a, Numeric b)
{
	/* the position of the most significant digit decides, then the digits */
	int64		ta = (int64) a->ndigits + a->exp;
	int64		tb = (int64) b->ndigits + b->exp;
	int			i;

	if (ta != tb)
		return ta < tb ? -1 : 1;
	for (i = 0; i < a->ndigits || i < b->ndigits; i++)
	{
		char		ca = i < a->ndigits ? a->digits[i] : '0';
		char		cb = i < b->ndigits ? b->digits[i] : '0';

		if (ca != cb)
			return ca < cb ? -1 : 1;
	}
	return 0;
}

/* PostgreSQL's order: -Infinity < finite < +Infinity < NaN, NaN = NaN */
int
pgstub_numeric_cmp(Numeric a, Numeric b)
{
	static const char order[] = "mfpn";
	int			ra = (int) (strchr(order, a->kind) - order);
	int			rb = (int) (strchr(order, b->kind) - order);
	int			sa,
				sb,
				c;

	if (ra != rb)
		return ra < rb ? -1 : 1;
	if (a->kind != 'f')
		return 0;
	sa = sign_of(a);
	sb = sign_of(b);
	if (sa != sb)
		return sa < sb ? -1 : 1;
	if (sa == 0)
		return 0;
	c = cmp_abs(a, b);
	return sa < 0 ? -c : c;
}

char *
pgstub_numeric_text(Numeric n)
{
	StringInfoData s;
	int			i;

	if (n->kind != 'f')
		return pstrdup(n->kind == 'n' ? "NaN" : n->kind == 'p' ? "Infinity" : "-Infinity");
	if (n->ndigits == 0)
		return pstrdup("0");
	initStringInfo(&s);
	appendStringInfo(&s, "%s%se%d", n->neg ? "-" : "", n->digits, n->exp);
	(void) i;
	return s.data;
}

Datum
pgstub_numeric_trunc(Datum num, Datum scale)
{
	Numeric		n = DatumGetNumeric(num);
	int			keep;

	if (DatumGetInt32(scale) != 0)
		abort();				/* only trunc(n, 0) is modelled */
	if (n->kind != 'f' || n->exp >= 0)
		return num;
	keep = n->ndigits + n->exp;
	if (keep <= 0)
		return NumericGetDatum(pgstub_numeric(false, "", 0, 0));
	return NumericGetDatum(pgstub_numeric(n->neg, n->digits, keep, 0));
}

Datum
pgstub_numeric_int4(Datum num)
{
	Numeric		n = DatumGetNumeric(num);
	int64		v = 0;
	int			i;

	if (n->kind != 'f' || n->exp < 0 || (int64) n->ndigits + n->exp > 10)
		ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE), errmsg("integer out of range")));
	for (i = 0; i < n->ndigits + n->exp; i++)
		v = v * 10 + (i < n->ndigits ? n->digits[i] - '0' : 0);
	if (n->neg)
		v = -v;
	if (v < INT32_MIN || v > INT32_MAX)
		ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE), errmsg("integer out of range")));
	return Int32GetDatum((int32) v);
}

Datum
pgstub_numeric_int8(Datum num)
{
	Numeric		n = DatumGetNumeric(num);
	uint64		v = 0;
	int			i;

	if (n->kind != 'f' || n->exp < 0 || (int64) n->ndigits + n->exp > 19)
		ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE), errmsg("bigint out of range")));
	for (i = 0; i < n->ndigits + n->exp; i++)
		v = v * 10 + (i < n->ndigits ? n->digits[i] - '0' : 0);	/* < 10^19 < 2^64 */
	if (v > (uint64) INT64_MAX + (n->neg ? 1 : 0))
		ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE), errmsg("bigint out of range")));
	return Int64GetDatum(n->neg ? (int64) (0 - v) : (int64) v);
}

/* ---- timestamps ---- */

static int
digits(const char **s, int n)
{
	int			v = 0;

	while (n-- > 0)
	{
		if (**s < '0' || **s > '9')
			return -1;
		v = v * 10 + (*(*s)++ - '0');
	}
	return v;
}

/* days since 2000-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil) */
static int64
days_from_2000(int y, int m, int d)
{
	int64		era;
	int			yoe,
				doy;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (int) (y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468 - 10957;
}

Datum
pgstub_timestamptz_in(Datum str, Datum typioparam, Datum typmod)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	const char *s = DatumGetCString(str);
	int			y, mo, d, h = 0, mi = 0, sec = 0, usec = 0, off = 0;

	if (strcmp(s, "infinity") == 0 || strcmp(s, "+infinity") == 0)
		return (Datum) DT_NOEND;
	if (strcmp(s, "-infinity") == 0)
		return (Datum) DT_NOBEGIN;
	if ((y = digits(&s, 4)) < 1 || *s++ != '-' || (mo = digits(&s, 2)) < 1 || mo > 12 ||
		*s++ != '-' || (d = digits(&s, 2)) < 1 ||
		d > mdays[mo - 1] + (mo == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		goto bad;
	if (*s == ' ' || *s == 'T')
	{
		s++;
		if ((h = digits(&s, 2)) < 0 || *s++ != ':' || (mi = digits(&s, 2)) < 0 || mi > 59)
			goto bad;
		if (*s == ':')
		{
			s++;
			if ((sec = digits(&s, 2)) < 0 || sec > 60)
				goto bad;
			if (*s == '.')
			{
				int			n = 0;

				s++;
				while (*s >= '0' && *s <= '9')
				{
					if (n++ < 6)
						usec = usec * 10 + (*s - '0');
					s++;
				}
				if (n == 0)
					goto bad;
				for (; n < 6; n++)
					usec *= 10;
			}
		}
		/* as the backend: 24:00:00 is the next midnight, nothing later */
		if (h > 24 || (h == 24 && (mi || sec || usec)))
			goto bad;
	}
	if (*s == 'Z')
		s++;
	else if (*s == '+' || *s == '-')
	{
		int			sign = *s++ == '-' ? -1 : 1;
		int			oh = digits(&s, 2),
					om = 0;

		if (oh < 0 || oh > 15)
			goto bad;
		if (*s == ':' && ((s++, om = digits(&s, 2)) < 0 || om > 59))
			goto bad;
		off = sign * (oh * 3600 + om * 60);
	}
	if (*s != '\0')
		goto bad;
	return (Datum) (((days_from_2000(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off) * INT64CONST(1000000)) + usec);
bad:
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
			 errmsg("invalid input syntax for type timestamp with time zone: \"%s\"", DatumGetCString(str))));
	return 0;
}

/* ---- Jsonb iterator ---- */

JsonbIterator *
JsonbIteratorInit(JsonbContainer *container)
{
	JsonbIterator *it = palloc0(sizeof(JsonbIterator));

	it->c = container;
	it->pos = -1;
	return it;
}

static void
value_out(JsonbValue *src, JsonbValue *dst, bool skipNested)
{
	if (!skipNested && src->type == jbvBinary)
		abort();				/* recursion into nested containers is not modelled */
	*dst = *src;
}

JsonbIteratorToken
JsonbIteratorNext(JsonbIterator **itp, JsonbValue *val, bool skipNested)
{
	JsonbIterator *it = *itp;
	JsonbContainer *c;

	if (it == NULL || it->done)
		return WJB_DONE;
	c = it->c;
	if (it->pos < 0)
	{
		it->pos = 0;
		if (c->is_object)
		{
			val->type = jbvObject;
			return WJB_BEGIN_OBJECT;
		}
		val->type = jbvArray;
		return WJB_BEGIN_ARRAY;
	}
	if (it->pos >= c->n)
	{
		it->done = true;
		return c->is_object ? WJB_END_OBJECT : WJB_END_ARRAY;
	}
	if (c->is_object)
	{
		if (!it->in_value)
		{
			*val = c->keys[it->pos];
			it->in_value = true;
			return WJB_KEY;
		}
		value_out(&c->vals[it->pos], val, skipNested);
		it->in_value = false;
		it->pos++;
		return WJB_VALUE;
	}
	value_out(&c->vals[it->pos], val, skipNested);
	it->pos++;
	return WJB_ELEM;
}

JsonbValue *
getKeyJsonValueFromContainer(JsonbContainer *container, const char *keyVal, int keyLen,
							 JsonbValue *res)
{
	int			i;

	if (!container->is_object)
		return NULL;
	for (i = 0; i < container->n; i++)
		if (container->keys[i].val.string.len == keyLen &&
			memcmp(container->keys[i].val.string.val, keyVal, keyLen) == 0)
		{
			if (res == NULL)
				res = palloc(sizeof(JsonbValue));
			*res = container->vals[i];
			return res;
		}
	return NULL;
}

JsonbValue *
findJsonbValueFromContainer(JsonbContainer *container, uint32 flags, JsonbValue *key)
{
	if (!(flags & JB_FOBJECT))
		abort();				/* only object lookups are modelled */
	return getKeyJsonValueFromContainer(container, key->val.string.val, key->val.string.len, NULL);
}

JsonbValue *
getIthJsonbValueFromContainer(JsonbContainer *container, uint32 i)
{
	JsonbValue *res;

	if (!container->is_array || i >= (uint32) container->n)
		return NULL;
	res = palloc(sizeof(JsonbValue));
	*res = container->vals[i];
	return res;
}

/* ---- JSON text -> Jsonb ---- */

#define MAX_DEPTH 1000
#define MAX_EXP 200000			/* numeric's range is far smaller: the input refuses it */

typedef struct Parser
{
	const char *s;
	size_t		len;
	size_t		pos;
	int			depth;
	bool		bad;
} Parser;

static void
skip_ws(Parser *p)
{
	while (p->pos < p->len &&
		   (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
		p->pos++;
}

static bool
lit(Parser *p, const char *word)
{
	size_t		n = strlen(word);

	if (p->len - p->pos >= n && memcmp(p->s + p->pos, word, n) == 0)
	{
		p->pos += n;
		return true;
	}
	return false;
}

static int
hex4(Parser *p)
{
	int			v = 0,
				i;

	if (p->len - p->pos < 4)
		return -1;
	for (i = 0; i < 4; i++)
	{
		char		c = p->s[p->pos++];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

static void
put_utf8(StringInfo out, unsigned cp)
{
	char		b[4];
	int			n;

	if (cp < 0x80)
		b[0] = (char) cp, n = 1;
	else if (cp < 0x800)
		b[0] = (char) (0xC0 | (cp >> 6)), b[1] = (char) (0x80 | (cp & 0x3F)), n = 2;
	else if (cp < 0x10000)
		b[0] = (char) (0xE0 | (cp >> 12)), b[1] = (char) (0x80 | ((cp >> 6) & 0x3F)),
			b[2] = (char) (0x80 | (cp & 0x3F)), n = 3;
	else
		b[0] = (char) (0xF0 | (cp >> 18)), b[1] = (char) (0x80 | ((cp >> 12) & 0x3F)),
			b[2] = (char) (0x80 | ((cp >> 6) & 0x3F)), b[3] = (char) (0x80 | (cp & 0x3F)), n = 4;
	append_n(out, b, n);
}

/* the length of a valid UTF-8 sequence at s (at most n bytes), 0 if invalid */
static int
utf8_len(const unsigned char *s, size_t n)
{
	int			len,
				i;
	unsigned	cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xE0) == 0xC0)
		len = 2, cp = s[0] & 0x1F;
	else if ((s[0] & 0xF0) == 0xE0)
		len = 3, cp = s[0] & 0x0F;
	else if ((s[0] & 0xF8) == 0xF0)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if ((size_t) len > n)
		return 0;
	for (i = 1; i < len; i++)
	{
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

static bool
parse_string(Parser *p, JsonbValue *out)
{
	StringInfoData s;

	if (p->pos >= p->len || p->s[p->pos] != '"')
		return false;
	p->pos++;
	initStringInfo(&s);
	for (;;)
	{
		unsigned char c;

		if (p->pos >= p->len)
			return false;
		c = (unsigned char) p->s[p->pos];
		if (c == '"')
		{
			p->pos++;
			break;
		}
		if (c < 0x20)
			return false;
		if (c == '\\')
		{
			char		e;

			if (++p->pos >= p->len)
				return false;
			e = p->s[p->pos++];
			switch (e)
			{
				case '"': append_n(&s, "\"", 1); break;
				case '\\': append_n(&s, "\\", 1); break;
				case '/': append_n(&s, "/", 1); break;
				case 'b': append_n(&s, "\b", 1); break;
				case 'f': append_n(&s, "\f", 1); break;
				case 'n': append_n(&s, "\n", 1); break;
				case 'r': append_n(&s, "\r", 1); break;
				case 't': append_n(&s, "\t", 1); break;
				case 'u':
					{
						int			cp = hex4(p);

						if (cp <= 0)	/* invalid, or \u0000, which jsonb refuses */
							return false;
						if (cp >= 0xDC00 && cp <= 0xDFFF)
							return false;
						if (cp >= 0xD800 && cp <= 0xDBFF)
						{
							int			lo;

							if (!lit(p, "\\u") || (lo = hex4(p)) < 0xDC00 || lo > 0xDFFF)
								return false;
							cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
						}
						put_utf8(&s, (unsigned) cp);
						break;
					}
				default:
					return false;
			}
			continue;
		}
		{
			int			n = utf8_len((const unsigned char *) p->s + p->pos, p->len - p->pos);

			if (n == 0)
				return false;
			append_n(&s, p->s + p->pos, n);
			p->pos += n;
		}
	}
	out->type = jbvString;
	out->val.string.val = s.data;
	out->val.string.len = s.len;
	return true;
}

static bool
parse_number(Parser *p, JsonbValue *out)
{
	bool		neg = false;
	size_t		int_start,
				int_end,
				frac_start = 0,
				frac_end = 0;
	long		e = 0;
	char	   *digits;
	int			nd;

	if (p->pos < p->len && p->s[p->pos] == '-')
		neg = true, p->pos++;
	int_start = p->pos;
	if (p->pos < p->len && p->s[p->pos] == '0')
		p->pos++;
	else
	{
		if (p->pos >= p->len || p->s[p->pos] < '1' || p->s[p->pos] > '9')
			return false;
		while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
			p->pos++;
	}
	int_end = p->pos;
	if (p->pos < p->len && p->s[p->pos] == '.')
	{
		p->pos++;
		frac_start = p->pos;
		while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
			p->pos++;
		frac_end = p->pos;
		if (frac_end == frac_start)
			return false;
	}
	if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E'))
	{
		bool		eneg = false;
		size_t		es;

		p->pos++;
		if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
			eneg = p->s[p->pos++] == '-';
		es = p->pos;
		while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
		{
			if (e < MAX_EXP * 10L)
				e = e * 10 + (p->s[p->pos] - '0');
			p->pos++;
		}
		if (p->pos == es)
			return false;
		if (eneg)
			e = -e;
	}
	nd = (int) ((int_end - int_start) + (frac_end - frac_start));
	if (nd > MAX_EXP)
		return false;
	digits = palloc(nd + 1);
	memcpy(digits, p->s + int_start, int_end - int_start);
	memcpy(digits + (int_end - int_start), p->s + frac_start, frac_end - frac_start);
	e -= (long) (frac_end - frac_start);
	if (e > MAX_EXP || e < -MAX_EXP)
		return false;
	out->type = jbvNumeric;
	out->val.numeric = pgstub_numeric(neg, digits, nd, (int) e);
	return true;
}

static bool parse_value(Parser *p, JsonbValue *out);

static int
key_order(const void *a, const void *b)
{
	const JsonbValue *x = a,
			   *y = b;

	if (x->val.string.len != y->val.string.len)
		return x->val.string.len < y->val.string.len ? -1 : 1;
	return memcmp(x->val.string.val, y->val.string.val, x->val.string.len);
}

typedef struct Pair
{
	JsonbValue	key;			/* first: sorted with key_order */
	JsonbValue	val;
	int			seq;
} Pair;

static int
pair_order(const void *a, const void *b)
{
	const Pair *x = a,
			   *y = b;
	int			c = key_order(&x->key, &y->key);

	return c ? c : (x->seq < y->seq ? -1 : 1);
}

static bool
parse_container(Parser *p, JsonbValue *out, bool object)
{
	JsonbContainer *c = palloc0(sizeof(JsonbContainer));
	int			cap = 4,
				n = 0;
	Pair	   *pairs = palloc(cap * sizeof(Pair));

	if (++p->depth > MAX_DEPTH)
		return false;
	p->pos++;					/* { or [ */
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == (object ? '}' : ']'))
		p->pos++;
	else
		for (;;)
		{
			if (n == cap)
			{
				Pair	   *np = palloc(2 * cap * sizeof(Pair));

				memcpy(np, pairs, n * sizeof(Pair));
				pairs = np;
				cap *= 2;
			}
			skip_ws(p);
			if (object)
			{
				if (!parse_string(p, &pairs[n].key))
					return false;
				skip_ws(p);
				if (!lit(p, ":"))
					return false;
				skip_ws(p);
			}
			if (!parse_value(p, &pairs[n].val))
				return false;
			pairs[n].seq = n;
			n++;
			skip_ws(p);
			if (lit(p, ","))
				continue;
			if (lit(p, object ? "}" : "]"))
				break;
			return false;
		}
	p->depth--;
	if (object)
	{
		/* like jsonb: keys sorted by (length, bytes), the last of duplicates kept */
		int			i,
					m = 0;

		qsort(pairs, n, sizeof(Pair), pair_order);
		for (i = 0; i < n; i++)
		{
			if (m > 0 && key_order(&pairs[m - 1].key, &pairs[i].key) == 0)
				m--;
			pairs[m++] = pairs[i];
		}
		n = m;
	}
	c->is_object = object;
	c->is_array = !object;
	c->n = n;
	c->keys = palloc((n ? n : 1) * sizeof(JsonbValue));
	c->vals = palloc((n ? n : 1) * sizeof(JsonbValue));
	for (int i = 0; i < n; i++)
	{
		c->keys[i] = pairs[i].key;
		c->vals[i] = pairs[i].val;
	}
	out->type = jbvBinary;
	out->val.binary.data = c;
	out->val.binary.len = 0;
	return true;
}

static bool
parse_value(Parser *p, JsonbValue *out)
{
	skip_ws(p);
	if (p->pos >= p->len)
		return false;
	switch (p->s[p->pos])
	{
		case '{':
			return parse_container(p, out, true);
		case '[':
			return parse_container(p, out, false);
		case '"':
			return parse_string(p, out);
		case 't':
			out->type = jbvBool, out->val.boolean = true;
			return lit(p, "true");
		case 'f':
			out->type = jbvBool, out->val.boolean = false;
			return lit(p, "false");
		case 'n':
			out->type = jbvNull;
			return lit(p, "null");
		default:
			return parse_number(p, out);
	}
}

Jsonb *
pgstub_parse_json(const char *text, size_t len)
{
	Parser		p = {text, len, 0, 0, false};
	JsonbValue	v;
	Jsonb	   *jb;

	if (!parse_value(&p, &v))
		return NULL;
	skip_ws(&p);
	if (p.pos != p.len)
		return NULL;
	jb = palloc0(sizeof(Jsonb));
	if (v.type == jbvBinary)
		jb->root = *v.val.binary.data;
	else
	{
		/* a raw scalar: jsonb stores it as a one-element array flagged scalar */
		jb->root.is_array = true;
		jb->root.is_scalar = true;
		jb->root.n = 1;
		jb->root.keys = palloc(sizeof(JsonbValue));
		jb->root.vals = palloc(sizeof(JsonbValue));
		jb->root.vals[0] = v;
	}
	return jb;
}

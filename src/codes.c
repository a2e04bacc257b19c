/*
 * codes.c: the voucher code format (see codes.h). Pure C: no allocation, no
 * PostgreSQL, no OpenSSL; fuzzed by test/fuzz/fuzz_codes.c.
 *
 * 31 is prime and every position has its own weight (2..18, the check 1), so
 * a single wrong character changes the sum by weight * difference, and a swap
 * of neighbours by the difference of the characters: neither is 0 mod 31.
 */
#include "codes.h"

#include <string.h>

const char	lyc_alphabet[] = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";

typedef unsigned __int128 u128;

static int
check_value(const int *vals)
{
	int			sum = 0;
	int			i;

	for (i = 0; i < LYC_DATA; i++)
		sum += (i + 2) * vals[i];
	return (LYC_ALPHABET_SIZE - sum % LYC_ALPHABET_SIZE) % LYC_ALPHABET_SIZE;
}

void
lyc_format(uint64_t mac, int key_id, int64_t voucher_id, char *out)
{
	u128		v;
	int			vals[LYC_DATA];
	int			i;
	int			o = 0;

	v = ((u128) (mac & ((1ULL << LYC_MAC_BITS) - 1)) << (2 + LYC_KEY_BITS + LYC_ID_BITS)) |
		((u128) LYC_VERSION << (LYC_KEY_BITS + LYC_ID_BITS)) |
		((u128) (key_id & ((1 << LYC_KEY_BITS) - 1)) << LYC_ID_BITS) |
		(u128) ((uint64_t) voucher_id & ((1ULL << LYC_ID_BITS) - 1));
	for (i = LYC_DATA - 1; i >= 0; i--)
	{
		vals[i] = (int) (v % LYC_ALPHABET_SIZE);
		v /= LYC_ALPHABET_SIZE;
	}
	for (i = 0; i < LYC_DATA; i++)
	{
		if (i > 0 && i % 6 == 0)
			out[o++] = '-';
		out[o++] = lyc_alphabet[vals[i]];
	}
	out[o++] = lyc_alphabet[check_value(vals)];
	out[o] = '\0';
}

LycResult
lyc_parse(const char *text, LycCode *out)
{
	int			vals[LYC_LEN];
	int			n = 0;
	const char *p;
	u128		v = 0;
	int			i;

	for (p = text; *p; p++)
	{
		char		c = *p;
		const char *pos;

		if (c == '-' || c == ' ')
			continue;
		if (c >= 'a' && c <= 'z')
			c -= 'a' - 'A';
		pos = strchr(lyc_alphabet, c);
		if (pos == NULL || n == LYC_LEN)
			return LYC_MALFORMED;
		out->normal[n] = c;
		vals[n++] = (int) (pos - lyc_alphabet);
	}
	out->normal[n] = '\0';
	if (n != LYC_LEN)
		return LYC_MALFORMED;
	if (check_value(vals) != vals[LYC_DATA])
		return LYC_MISTYPED;
	for (i = 0; i < LYC_DATA; i++)
		v = v * LYC_ALPHABET_SIZE + vals[i];
	if (((v >> (LYC_KEY_BITS + LYC_ID_BITS)) & 3) != LYC_VERSION ||
		(v >> (2 + LYC_KEY_BITS + LYC_ID_BITS + LYC_MAC_BITS)) != 0)
		return LYC_BAD_VERSION;
	out->key_id = (int) ((v >> LYC_ID_BITS) & ((1 << LYC_KEY_BITS) - 1));
	out->voucher_id = (int64_t) (v & (((u128) 1 << LYC_ID_BITS) - 1));
	out->mac = (uint64_t) ((v >> (2 + LYC_KEY_BITS + LYC_ID_BITS)) & (((u128) 1 << LYC_MAC_BITS) - 1));
	return LYC_OK;
}

/*
 * fuzz_codes.c: libFuzzer harness for the voucher code parser (src/codes.c).
 *
 * Properties checked on every input:
 *  - parsing never crashes, reads out of bounds or overflows (ASan, UBSan);
 *  - a code that parses re-formats to exactly its normalised form (so every
 *    accepted code has one meaning);
 *  - formatting any (mac, key, id) and parsing it back gives the same fields,
 *    and changing any one character of it, or swapping two different
 *    neighbours, is caught (malformed is impossible, mistyped is required).
 */
#include "codes.h"

#include <stdlib.h>
#include <string.h>

static void
must(int cond)
{
	if (!cond)
		abort();
}

static void
strip(const char *in, char *out)
{
	for (; *in; in++)
		if (*in != '-')
			*out++ = *in;
	*out = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		text[256];
	LycCode		c;
	char		formatted[LYC_LEN + 3];
	char		plain[LYC_LEN + 1];
	size_t		n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;

	/* 1. arbitrary text */
	memcpy(text, data, n);
	text[n] = '\0';
	if (lyc_parse(text, &c) == LYC_OK)
	{
		lyc_format(c.mac, c.key_id, c.voucher_id, formatted);
		strip(formatted, plain);
		must(strcmp(plain, c.normal) == 0);
	}

	/* 2. round trip and error detection from fields taken from the input */
	if (size >= 14)
	{
		uint64_t	mac = 0;
		int64_t		id = 0;
		int			key = data[0] & 63;
		int			pos = data[1] % LYC_LEN;
		int			delta = 1 + data[2] % (LYC_ALPHABET_SIZE - 1);
		int			i;
		LycCode		back;
		char		typo[LYC_LEN + 1];

		for (i = 0; i < 5; i++)
			mac = (mac << 8) | data[3 + i];
		for (i = 0; i < 5; i++)
			id = (id << 8) | data[8 + i];
		id &= (1LL << LYC_ID_BITS) - 1;
		lyc_format(mac, key, id, formatted);
		must(lyc_parse(formatted, &back) == LYC_OK);
		must(back.mac == mac && back.key_id == key && back.voucher_id == id);

		strip(formatted, plain);
		/* one wrong character */
		strcpy(typo, plain);
		typo[pos] = lyc_alphabet[(strchr(lyc_alphabet, typo[pos]) - lyc_alphabet + delta) % LYC_ALPHABET_SIZE];
		must(lyc_parse(typo, &back) == LYC_MISTYPED);
		/* two neighbours swapped */
		if (pos + 1 < LYC_LEN && plain[pos] != plain[pos + 1])
		{
			strcpy(typo, plain);
			typo[pos] = plain[pos + 1];
			typo[pos + 1] = plain[pos];
			must(lyc_parse(typo, &back) == LYC_MISTYPED);
		}
	}
	return 0;
}

/*
 * crypto.c: the only file that includes OpenSSL.
 *
 * Codes people type (referral codes now, vouchers later) use an alphabet
 * without look-alike characters (no 0/O, 1/I/L, 5/S, 2/Z, 8/B), drawn from
 * OpenSSL's CSPRNG with rejection sampling so every character is uniform.
 */
#include "loyalty.h"

#include <openssl/err.h>
#include <openssl/rand.h>

static const char code_alphabet[] = "34679ACDEFGHJKMNPQRTUVWXY";

void
ly_random_code(char *buf, int len)
{
	const int	nalpha = sizeof(code_alphabet) - 1;
	/* largest multiple of nalpha below 256: bytes above it are rejected */
	const int	limit = 256 - (256 % nalpha);
	unsigned char bytes[64];
	int			filled = 0;

	while (filled < len)
	{
		int			i;

		if (RAND_bytes(bytes, sizeof(bytes)) != 1)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate random bytes"),
					 errdetail("OpenSSL: %s", ERR_error_string(ERR_get_error(), NULL))));
		for (i = 0; i < (int) sizeof(bytes) && filled < len; i++)
			if (bytes[i] < limit)
				buf[filled++] = code_alphabet[bytes[i] % nalpha];
	}
	buf[len] = '\0';
}

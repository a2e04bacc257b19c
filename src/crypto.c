/*
 * crypto.c: the only file that includes OpenSSL.
 *
 * Codes people type (referral codes, vouchers) use an alphabet of 31
 * characters without look-alikes (no 0/O, 1/I/L). 31 is prime, which is what
 * makes the voucher check character catch every single-character error and
 * every swap of two adjacent characters. Randomness comes from OpenSSL's
 * CSPRNG, with rejection sampling so every character is uniform; MACs are
 * HMAC-SHA256 and are compared in constant time.
 */
#include "loyalty.h"
#include "codes.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

static void
openssl_error(const char *what)
{
	unsigned long e = ERR_get_error();

	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("could not %s", what),
			 errdetail("OpenSSL: %s", e ? ERR_error_string(e, NULL) : "unknown error")));
}

void
ly_random_bytes(unsigned char *buf, int len)
{
	if (RAND_bytes(buf, len) != 1)
		openssl_error("generate random bytes");
}

void
ly_random_code(char *buf, int len)
{
	const int	limit = 256 - (256 % LYC_ALPHABET_SIZE);	/* reject bytes above it */
	unsigned char bytes[64];
	int			filled = 0;

	while (filled < len)
	{
		int			i;

		ly_random_bytes(bytes, sizeof(bytes));
		for (i = 0; i < (int) sizeof(bytes) && filled < len; i++)
			if (bytes[i] < limit)
				buf[filled++] = lyc_alphabet[bytes[i] % LYC_ALPHABET_SIZE];
	}
	buf[len] = '\0';
}

/* HMAC-SHA256 of msg under key into out[32]. */
void
ly_hmac_sha256(const unsigned char *key, int keylen, const unsigned char *msg, size_t msglen,
			   unsigned char *out)
{
	unsigned int outlen = 0;

	if (HMAC(EVP_sha256(), key, keylen, msg, msglen, out, &outlen) == NULL || outlen != 32)
		openssl_error("compute HMAC-SHA256");
}

bool
ly_equal_ct(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

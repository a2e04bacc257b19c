/*
 * codes.h: the voucher code format, with no PostgreSQL or OpenSSL in it, so
 * that a fuzzer can drive the parser on its own (test/fuzz).
 *
 * A code is 18 characters of a 31-character alphabet: 17 encode an 84-bit
 * number, MAC (40 bits) | version (2) | key id (6) | voucher id (36), most
 * significant first; the 18th is a check character such that
 * sum((i + 2) * value(i), i = 0..16) + check = 0 (mod 31).
 */
#ifndef LOYALTY_CODES_H
#define LOYALTY_CODES_H

#include <stdbool.h>
#include <stdint.h>

#define LYC_ALPHABET_SIZE 31
#define LYC_DATA 17
#define LYC_LEN (LYC_DATA + 1)
#define LYC_VERSION 1
#define LYC_KEY_BITS 6
#define LYC_ID_BITS 36
#define LYC_MAC_BITS 40

extern const char lyc_alphabet[];

typedef enum
{
	LYC_OK,
	LYC_MALFORMED,				/* a character outside the alphabet, or the wrong length */
	LYC_MISTYPED,				/* the check character does not match */
	LYC_BAD_VERSION				/* not a code of this format */
} LycResult;

typedef struct LycCode
{
	uint64_t	mac;			/* 40 bits */
	int			key_id;
	int64_t		voucher_id;
	char		normal[LYC_LEN + 1];	/* upper case, no separators */
} LycCode;

/* Parse a typed code (dashes and spaces ignored, lower case accepted). */
extern LycResult lyc_parse(const char *text, LycCode *out);

/* The display form (three dash-separated groups of six) of (mac, key id, voucher id); out has 21 bytes. */
extern void lyc_format(uint64_t mac, int key_id, int64_t voucher_id, char *out);

#endif							/* LOYALTY_CODES_H */

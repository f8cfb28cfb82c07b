/*
 * Money as exact integers (DESIGN.md §7). Amounts are int64 minor units; the
 * text form is a decimal in major units with at most the currency's minor
 * digits. Everything here is integer arithmetic on exact decimal text.
 */
#ifndef WALLEX_BASE_MONEY_H
#define WALLEX_BASE_MONEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* The minor-unit exponent of an ISO 4217 code (USD 2, JPY 0, KWD 3), or -1
 * when the code is not a known currency. */
int wx_currency_exponent(const char *code);

/*
 * Parses a non-negative decimal ("100.00", "0.3", "12") with at most
 * `exponent` fraction digits into minor units. The grammar is JSON's number
 * grammar without sign and exponent: 0 | [1-9][0-9]* then optionally '.'
 * and one or more digits. Returns 0, WX_ERR_INVALID for anything else, or
 * WX_ERR_OVERFLOW when the value does not fit in int64 minor units.
 */
int wx_money_parse(const char *text, size_t len, int exponent, int64_t *minor_out);

/* Appends minor units as a decimal with exactly `exponent` fraction digits
 * ("100.00", "0.30", "5", "-1.50"). */
void wx_money_format(struct wx_buf *b, int64_t minor, int exponent);
/* A JSON member "key":<amount> in a known currency's minor digits. */
void wx_money_json_member(struct wx_buf *b, const char *key, int64_t minor, const char *currency,
                          bool *first);
/* The same for sums past int64 (totals over many amounts). */
void wx_money_format_wide(struct wx_buf *b, __int128 minor, int exponent);

/* A sum past int64 as decimal text and back, for storing totals exactly
 * (SQLite's integers are int64 and would turn an overflow into a float).
 * wx_wide_parse is false for anything that is not such text. */
void wx_wide_format(struct wx_buf *b, __int128 v);
bool wx_wide_parse(const char *text, __int128 *out);

/* n / d rounded half to even (banker's rounding), d > 0, n >= 0: an
 * average in minor units with no bias over many averages. */
__int128 wx_div_half_even(__int128 n, __int128 d);

#endif

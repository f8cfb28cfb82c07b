/* Exact money parsing and formatting; see money.h. */
#include "base/money.h"

#include <assert.h>
#include <string.h>

#include "base/err.h"

struct currency {
    char code[4];
    int exponent;
};

/* Active ISO 4217 codes and their minor-unit exponents, sorted by code for
 * bsearch. Source: the ISO 4217 list (amendment 176). */
static const struct currency currencies[] = {
    {"AED", 2}, {"AFN", 2}, {"ALL", 2}, {"AMD", 2}, {"ANG", 2}, {"AOA", 2}, {"ARS", 2},
    {"AUD", 2}, {"AWG", 2}, {"AZN", 2}, {"BAM", 2}, {"BBD", 2}, {"BDT", 2}, {"BGN", 2},
    {"BHD", 3}, {"BIF", 0}, {"BMD", 2}, {"BND", 2}, {"BOB", 2}, {"BRL", 2}, {"BSD", 2},
    {"BTN", 2}, {"BWP", 2}, {"BYN", 2}, {"BZD", 2}, {"CAD", 2}, {"CDF", 2}, {"CHF", 2},
    {"CLF", 4}, {"CLP", 0}, {"CNY", 2}, {"COP", 2}, {"CRC", 2}, {"CUP", 2}, {"CVE", 2},
    {"CZK", 2}, {"DJF", 0}, {"DKK", 2}, {"DOP", 2}, {"DZD", 2}, {"EGP", 2}, {"ERN", 2},
    {"ETB", 2}, {"EUR", 2}, {"FJD", 2}, {"FKP", 2}, {"GBP", 2}, {"GEL", 2}, {"GHS", 2},
    {"GIP", 2}, {"GMD", 2}, {"GNF", 0}, {"GTQ", 2}, {"GYD", 2}, {"HKD", 2}, {"HNL", 2},
    {"HTG", 2}, {"HUF", 2}, {"IDR", 2}, {"ILS", 2}, {"INR", 2}, {"IQD", 3}, {"IRR", 2},
    {"ISK", 0}, {"JMD", 2}, {"JOD", 3}, {"JPY", 0}, {"KES", 2}, {"KGS", 2}, {"KHR", 2},
    {"KMF", 0}, {"KPW", 2}, {"KRW", 0}, {"KWD", 3}, {"KYD", 2}, {"KZT", 2}, {"LAK", 2},
    {"LBP", 2}, {"LKR", 2}, {"LRD", 2}, {"LSL", 2}, {"LYD", 3}, {"MAD", 2}, {"MDL", 2},
    {"MGA", 2}, {"MKD", 2}, {"MMK", 2}, {"MNT", 2}, {"MOP", 2}, {"MRU", 2}, {"MUR", 2},
    {"MVR", 2}, {"MWK", 2}, {"MXN", 2}, {"MYR", 2}, {"MZN", 2}, {"NAD", 2}, {"NGN", 2},
    {"NIO", 2}, {"NOK", 2}, {"NPR", 2}, {"NZD", 2}, {"OMR", 3}, {"PAB", 2}, {"PEN", 2},
    {"PGK", 2}, {"PHP", 2}, {"PKR", 2}, {"PLN", 2}, {"PYG", 0}, {"QAR", 2}, {"RON", 2},
    {"RSD", 2}, {"RUB", 2}, {"RWF", 0}, {"SAR", 2}, {"SBD", 2}, {"SCR", 2}, {"SDG", 2},
    {"SEK", 2}, {"SGD", 2}, {"SHP", 2}, {"SLE", 2}, {"SOS", 2}, {"SRD", 2}, {"SSP", 2},
    {"STN", 2}, {"SVC", 2}, {"SYP", 2}, {"SZL", 2}, {"THB", 2}, {"TJS", 2}, {"TMT", 2},
    {"TND", 3}, {"TOP", 2}, {"TRY", 2}, {"TTD", 2}, {"TWD", 2}, {"TZS", 2}, {"UAH", 2},
    {"UGX", 0}, {"USD", 2}, {"UYI", 0}, {"UYU", 2}, {"UYW", 4}, {"UZS", 2}, {"VED", 2},
    {"VES", 2}, {"VND", 0}, {"VUV", 0}, {"WST", 2}, {"XAF", 0}, {"XCD", 2}, {"XOF", 0},
    {"XPF", 0}, {"YER", 2}, {"ZAR", 2}, {"ZMW", 2}, {"ZWG", 2},
};

int wx_currency_exponent(const char *code)
{
    if (strlen(code) != 3)
        return -1;
    size_t lo = 0, hi = sizeof(currencies) / sizeof(currencies[0]);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(code, currencies[mid].code);
        if (c == 0)
            return currencies[mid].exponent;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int wx_money_parse(const char *text, size_t len, int exponent, int64_t *minor_out)
{
    assert(exponent >= 0 && exponent <= 4);
    size_t i = 0;
    if (len == 0 || !is_digit(text[0]))
        return WX_ERR_INVALID;
    /* JSON forbids leading zeros; so do we, in strings too. */
    if (text[0] == '0' && len > 1 && is_digit(text[1]))
        return WX_ERR_INVALID;

    int64_t v = 0;
    bool overflow = false;
    for (; i < len && is_digit(text[i]); i++) {
        overflow |= __builtin_mul_overflow(v, 10, &v);
        overflow |= __builtin_add_overflow(v, text[i] - '0', &v);
    }
    int frac_digits = 0;
    if (i < len && text[i] == '.') {
        i++;
        if (i == len || !is_digit(text[i]))
            return WX_ERR_INVALID;
        for (; i < len && is_digit(text[i]); i++) {
            if (++frac_digits > exponent)
                return WX_ERR_INVALID;
            overflow |= __builtin_mul_overflow(v, 10, &v);
            overflow |= __builtin_add_overflow(v, text[i] - '0', &v);
        }
    }
    if (i != len)
        return WX_ERR_INVALID;
    for (; frac_digits < exponent; frac_digits++)
        overflow |= __builtin_mul_overflow(v, 10, &v);
    if (overflow)
        return WX_ERR_OVERFLOW;
    *minor_out = v;
    return 0;
}

void wx_money_format(struct wx_buf *b, int64_t minor, int exponent)
{
    assert(exponent >= 0 && exponent <= 4);
    char tmp[32];
    char *end = tmp + sizeof(tmp);
    char *p = end;
    /* Work on the magnitude as unsigned so INT64_MIN formats too; 64-bit
     * division here: every answer formats amounts, and 128-bit division
     * (wx_money_format_wide) cost 700 instructions a request. */
    uint64_t mag = minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
    for (int d = 0; d < exponent; d++) {
        *--p = (char)('0' + mag % 10);
        mag /= 10;
    }
    if (exponent > 0)
        *--p = '.';
    do {
        *--p = (char)('0' + mag % 10);
        mag /= 10;
    } while (mag != 0);
    if (minor < 0)
        *--p = '-';
    wx_buf_add(b, p, (size_t)(end - p));
}

void wx_money_format_wide(struct wx_buf *b, __int128 minor, int exponent)
{
    assert(exponent >= 0 && exponent <= 4);
    char tmp[48];
    char *end = tmp + sizeof(tmp);
    char *p = end;
    /* Work on the magnitude as unsigned so the most negative value formats too. */
    unsigned __int128 mag =
        minor < 0 ? (unsigned __int128)0 - (unsigned __int128)minor : (unsigned __int128)minor;
    for (int d = 0; d < exponent; d++) {
        *--p = (char)('0' + (int)(mag % 10));
        mag /= 10;
    }
    if (exponent > 0)
        *--p = '.';
    do {
        *--p = (char)('0' + (int)(mag % 10));
        mag /= 10;
    } while (mag != 0);
    if (minor < 0)
        *--p = '-';
    wx_buf_add(b, p, (size_t)(end - p));
}

void wx_wide_format(struct wx_buf *b, __int128 v)
{
    wx_money_format_wide(b, v, 0);
}

bool wx_wide_parse(const char *text, __int128 *out)
{
    bool neg = *text == '-';
    const char *p = text + neg;
    if (*p == '\0' || strlen(p) > 39)
        return false;
    unsigned __int128 v = 0;
    const unsigned __int128 max = ((unsigned __int128)1 << 127) - 1;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return false;
        unsigned __int128 next = v * 10 + (unsigned)(*p - '0');
        if (next / 10 != v || next > max)
            return false;
        v = next;
    }
    *out = neg ? -(__int128)v : (__int128)v;
    return true;
}

__int128 wx_div_half_even(__int128 n, __int128 d)
{
    assert(d > 0 && n >= 0);
    __int128 q = n / d, r = n % d;
    if (2 * r > d || (2 * r == d && (q & 1)))
        q++;
    return q;
}

void wx_money_json_member(struct wx_buf *b, const char *key, int64_t minor, const char *currency,
                          bool *first)
{
    int exponent = wx_currency_exponent(currency);
    assert(exponent >= 0); /* amounts are only ever held in known currencies */
    wx_buf_json_key(b, key, first);
    wx_money_format(b, minor, exponent);
}

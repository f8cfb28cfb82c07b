/* libFuzzer: amount parsing and formatting. Anything that parses formats
 * back to a text that parses to the same minor units. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/money.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int exponent = data[0] % 5;
    int64_t minor;
    if (wx_money_parse((const char *)data + 1, size - 1, exponent, &minor) != 0)
        return 0;
    assert(minor >= 0);
    struct wx_buf b;
    wx_buf_init(&b);
    wx_money_format(&b, minor, exponent);
    assert(wx_buf_ok(&b));
    int64_t back = -1;
    assert(wx_money_parse(b.data, b.len, exponent, &back) == 0);
    assert(back == minor);
    wx_buf_free(&b);
    return 0;
}

/*
 * The name rule of API.md and the names of permission levels. Pure.
 *
 * Names are compared byte for byte: case-sensitive, as on Linux file
 * systems, and without Unicode normalisation (the base system has no ICU),
 * so "é" as one code point (NFC) and as "e" plus a combining accent (NFD)
 * are two names. docs/architecture.md says why and what a client does.
 */
#include <string.h>

#include "base/unicode.h"
#include "files/files.h"

bool files_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > FILES_NAME_BYTES_MAX || !wx_utf8_valid(name, len))
        return false;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7F || c == '/')
            return false;
        /* C1 controls U+0080-U+009F are C2 80 .. C2 9F in UTF-8 (the UTF-8
         * is well formed, so a C2 always has a next byte). */
        if (c == 0xC2 && (unsigned char)name[i + 1] <= 0x9F)
            return false;
    }
    return true;
}

static const char *const level_names[] = {
    [FILES_LEVEL_READ] = "read",
    [FILES_LEVEL_WRITE] = "write",
    [FILES_LEVEL_MANAGE] = "manage",
};

const char *files_level_name(enum files_level level)
{
    return level >= FILES_LEVEL_READ && level <= FILES_LEVEL_MANAGE ? level_names[level] : "none";
}

bool files_level_parse(const char *name, enum files_level *out)
{
    for (int l = FILES_LEVEL_READ; l <= FILES_LEVEL_MANAGE; l++) {
        if (strcmp(name, level_names[l]) == 0) {
            *out = (enum files_level)l;
            return true;
        }
    }
    return false;
}

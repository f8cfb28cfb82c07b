/* File-driven fault injection; see fault.h. */
#include "base/fault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *fault_dir;

void wx_fault_init(const char *dir)
{
    free(fault_dir);
    fault_dir = dir != NULL && dir[0] != '\0' ? strdup(dir) : NULL;
}

static bool fault_path(const char *name, char *out, size_t out_bytes)
{
    if (fault_dir == NULL)
        return false;
    int n = snprintf(out, out_bytes, "%s/%s", fault_dir, name);
    return n > 0 && (size_t)n < out_bytes;
}

bool wx_fault_active(const char *name)
{
    char path[4096];
    return fault_path(name, path, sizeof(path)) && access(path, F_OK) == 0;
}

int64_t wx_fault_value(const char *name)
{
    char path[4096];
    if (!fault_path(name, path, sizeof(path)))
        return 0;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    long long v = 0;
    if (fscanf(f, "%lld", &v) != 1)
        v = 0;
    fclose(f);
    return v;
}

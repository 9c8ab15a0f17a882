/*
 * Where a tool looks for kcapi-aio.so when neither --provider-path nor
 * OPENSSL_MODULES names a directory: the build tree's module directory when
 * the tool runs from there (it is built beside the module), else NULL, which
 * leaves OpenSSL's own module directory (where a package installs the module).
 * An installed tool thus never loads a module from a build tree.
 */
#ifndef KCAPI_AIO_TOOL_MODULE_DIR_H
#define KCAPI_AIO_TOOL_MODULE_DIR_H

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *tool_module_dir(void)
{
    char self[PATH_MAX], build[PATH_MAX], *slash;
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

    if (n <= 0)
        return NULL;
    self[n] = '\0';
    if ((slash = strrchr(self, '/')) == NULL)
        return NULL;
    *slash = '\0';
    if (realpath(KCAPI_AIO_BUILD_MODULE_DIR, build) == NULL || strcmp(self, build) != 0)
        return NULL;
    return KCAPI_AIO_BUILD_MODULE_DIR;
}

#endif

/*
 * fuzz config: helpwired's config file (`name = value` lines, # comments;
 * server/ops/config.c). The input is the file, read through --config as
 * helpwired reads it (a memfd named by its /proc path); when it parses, the
 * effective settings (the audit log's config.start text) are rendered and
 * must be one `name=value` line per setting.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "server/ops/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("helpwire-fuzz-config", MFD_CLOEXEC);
    if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
        abort();
    char path[64], arg0[] = "helpwired", arg1[] = "--config";
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    char *argv[] = {arg0, arg1, path, NULL};
    hw_config cfg;
    char err[512] = "";
    hw_config_defaults(&cfg);
    FILE *out = fopen("/dev/null", "w");
    int rc = hw_config_parse(&cfg, 3, argv, out, err, sizeof err);
    if (rc < 0 && !err[0])
        abort(); /* a refusal always says why */
    if (rc == 0) {
        char *text = hw_config_effective(&cfg);
        if (!text)
            abort();
        for (char *line = text, *nl; *line; line = nl + 1) {
            nl = strchr(line, '\n');
            char *eq = strchr(line, '=');
            if (!nl || !eq || eq > nl)
                abort();
        }
        free(text);
    }
    hw_config_free(&cfg);
    fclose(out);
    close(fd);
    return 0;
}

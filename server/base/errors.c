/*
 * errors: name and description tables for the HW_E* codes (see errors.h).
 * A table, not a switch, so adding a code is one line here.
 */
#include "server/base/errors.h"

#include <stddef.h>

static const struct {
    const char *name;
    const char *text;
} HW_ERRORS[HW_ERR_COUNT] = {
    [0] = {"HW_OK", "success"},
    [-HW_ENOTFOUND] = {"HW_ENOTFOUND", "not found"},
    [-HW_EEXISTS] = {"HW_EEXISTS", "already exists"},
    [-HW_ECONFLICT] = {"HW_ECONFLICT", "version conflict"},
    [-HW_EPRECONDITION] = {"HW_EPRECONDITION", "precondition failed"},
    [-HW_EINVALID] = {"HW_EINVALID", "invalid argument"},
    [-HW_ENOMEM] = {"HW_ENOMEM", "out of memory"},
    [-HW_EIO] = {"HW_EIO", "input/output error"},
    [-HW_EFULL] = {"HW_EFULL", "storage full"},
    [-HW_ECLOSED] = {"HW_ECLOSED", "store closed"},
    [-HW_EBUSY] = {"HW_EBUSY", "resource busy"},
    [-HW_ESCHEMA] = {"HW_ESCHEMA", "unsupported data file or schema version"},
    [-HW_ECORRUPT] = {"HW_ECORRUPT", "stored record is corrupt"},
    [-HW_ETOOBIG] = {"HW_ETOOBIG", "too big"},
    [-HW_ENOSPACE] = {"HW_ENOSPACE", "no space left on the disk"},
    [-HW_STOP] = {"HW_STOP", "stopped by a visitor (not an error)"},
};

const char *hw_strerror(int code)
{
    if (code > 0 || code <= -HW_ERR_COUNT || !HW_ERRORS[-code].text)
        return "unknown error";
    return HW_ERRORS[-code].text;
}

const char *hw_errname(int code)
{
    if (code > 0 || code <= -HW_ERR_COUNT || !HW_ERRORS[-code].name)
        return "HW_E?";
    return HW_ERRORS[-code].name;
}

/*
 * open: hw_store_open (contract: store.h), the engine opened with the
 * schema upgrades of migrate.c.
 *
 * The one place the engine and the upgrade steps meet: store.c takes the
 * steps as a table and never names migrate.c, migrate.c uses the engine and
 * never calls back into its open, and this file, above both, hands the one
 * to the other.
 */
#include "server/store/migrate.h"
#include "server/store/store.h"
#include "server/store/store_internal.h"

int hw_store_open(hw_store **out, const hw_store_options *opts, char *err, size_t errlen)
{
    size_t n;
    const hw_store_upgrade *upgrades = hw_migrate_upgrades(&n);
    return hw_store__open(out, opts, upgrades, n, err, errlen);
}

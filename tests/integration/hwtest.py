"""hwtest: runs a module's unittest cases and ends with the summary lines
the suite counts ("[  PASSED  ] N test(s)." / "[  FAILED  ] N test(s).").

Also the small waits every test needs: wait_for (a condition, bounded) and
set_clock (the simulated clock of a helpwired run with --clock-file).
"""
import os
import sys
import time
import unittest


def main(module="__main__"):
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[module])
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed - len(result.skipped)
    print("[  PASSED  ] %d test(s)." % passed)
    if failed:
        print("[  FAILED  ] %d test(s)." % failed)
    sys.stdout.flush()
    sys.exit(1 if failed else 0)


def wait_for(pred, timeout=15, interval=0.1):
    """Calls pred until it answers something true, for at most timeout
    seconds; returns that answer, or pred's last one."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return pred()


def set_clock(path, ms):
    """Sets the simulated clock of a helpwired started with --clock-file
    path to ms (Unix milliseconds), atomically."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % ms)
    os.replace(tmp, path)

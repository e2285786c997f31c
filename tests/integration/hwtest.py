"""hwtest: runs a module's unittest cases and ends with the summary lines
the suite counts ("[  PASSED  ] N test(s)." / "[  FAILED  ] N test(s).").
"""
import sys
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

"""The SIPp load driver (driver.py), its generated scenario and command line (scenario.py), and the
reading of what SIPp writes back (stats.py)."""

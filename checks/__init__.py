"""Pure checks: functions from captured evidence and a registry entry to verdicts.

Nothing in this package performs I/O or imports another badgewatch package.
"""

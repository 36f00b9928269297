"""The error tree: every error badgewatch raises on purpose descends from :class:`BadgewatchError`.

``checks`` is the bottom layer (it imports nothing of ours), so the root and its four branches live
here and every package may import them. Each concrete error is defined beside the code that raises it;
its class line names its branch. A command catches the root alone: it prints the message (Chinese,
written for an official) and logs the detail; an error outside this tree is a bug, and its traceback is
what a developer needs.

Lower-level errors (SQLAlchemy, Twisted, dnspython, redis, ``OSError`` …) are translated into this tree
where they cross into our code — the database seam in ``storage/db.py``, the command line in
``badgewatch.py`` — and never shown to an official as they are. Where a class keeps a builtin base
beside its branch (``ValueError``, ``KeyError``, Scrapy's ``IgnoreRequest``) that is for the callers
and frameworks that already catch it.

The hierarchy::

    BadgewatchError
    ├── InputError                  what a person gave us is wrong (a file, a row, an argument)
    │   ├── ConfigError             storage/config.py      badgewatch.toml / BADGEWATCH_* settings
    │   ├── DomainError             checks/domains.py      a domain name that is not one
    │   ├── RegistryFileError       storage/registry.py    a registry file that cannot be read
    │   ├── ImportRefused           storage/registry.py    rows refused (all-or-nothing import)
    │   ├── TableError              storage/tables.py      a CSV/XLSX table that cannot be read
    │   ├── AnnualImportError       reports/annual_import.py
    │   ├── ReportInputError        reports/source.py      no such scan / office / year
    │   ├── SavedPageError          crawler/saved.py       a saved page `inspect` cannot read
    │   ├── InspectError            crawler/inspect.py     what `inspect` was given is not a page
    │   └── AccountError            review/accounts.py     a user name, role or password refused
    ├── StateError                  the operation does not fit the state of the data
    │   ├── ScanError               crawler/scanlocks.py   a scan cannot start, resume or go on
    │   │   ├── ScanLockedError     crawler/scanlocks.py   an overlapping scan is running
    │   │   └── VantageError        crawler/vantage.py     the reference sites failed: no scan opened
    │   ├── ScheduleError           storage/chain.py       a schedule cannot be added, run or found
    │   │   ├── StageFailed         storage/chain.py       one attempt of a chain's stage failed
    │   │   └── Interrupted         storage/chain.py       the daemon stopped during a stage
    │   ├── TransitionError         reports/annual.py      an annual report cannot move to that state
    │   ├── DecisionError           review/decisions.py    a reviewer's decision refused
    │   ├── BlobNotFoundError       storage/evidence.py    evidence the database names is not stored
    │   └── UnknownReasonError      checks/reasons.py      a reason code not in the catalogue
    ├── ServiceError                a service we depend on failed (database, SMTP, Redis)
    │   ├── DatabaseError           storage/db.py
    │   ├── DeliveryError           reports/delivery/mail.py
    │   └── DistributedError        crawler/distributed.py
    └── CrawlError                  one request of a scan was refused or unreadable (becomes a
        │                           verdict's reason, never reaches a person as such)
        ├── DnsFailedError          crawler/errors.py
        ├── AddressRefusedError     crawler/errors.py
        ├── TooLargeError           crawler/errors.py
        ├── MalformedResponseError  crawler/errors.py
        └── TlcpOnlyError           crawler/errors.py
"""

from __future__ import annotations


class BadgewatchError(Exception):
    """The root: an error badgewatch raises on purpose, with a message a person can act on."""


class InputError(BadgewatchError):
    """What a person gave us is wrong: a file, a row, a setting, an argument."""


class StateError(BadgewatchError):
    """The operation does not fit the current state of the data (a scan running, a report approved)."""


class ServiceError(BadgewatchError):
    """A service badgewatch depends on failed: the database, the mail server, Redis."""


class CrawlError(BadgewatchError):
    """One request of a scan was refused or could not be read; it ends as a verdict's reason."""


__all__ = ["BadgewatchError", "CrawlError", "InputError", "ServiceError", "StateError"]

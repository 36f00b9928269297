"""The registry file (one row per website, and the 编办 sheet): pure functions, no I/O.

One module per concern: ``columns`` (the column catalogue, finding and matching the header row),
``values`` (cell parsers and :class:`RowError`), ``rows`` (validating registry rows, alone and across
the file), ``offices`` (validating the 编办 sheet). The names used elsewhere are re-exported here.
"""

from checks.registry.columns import (
    HEADER_OF,
    OFFICE_COLUMNS,
    OFFICE_HEADER_OF,
    REGISTRY_COLUMNS,
    Column,
    HeaderMap,
    Suggestion,
    closest_column,
    find_header_row,
    match_headers,
    normalise_header,
)
from checks.registry.offices import LEVEL_LABELS, OfficeRow, level_of_code, validate_offices
from checks.registry.rows import RegistryRow, RegistryValidator, validate_row
from checks.registry.values import (
    RowError,
    SiteUrl,
    clean,
    parse_badge_status,
    parse_bool,
    parse_date,
    parse_site_url,
    parse_unit_kind,
    split_list,
)

__all__ = [
    "HEADER_OF",
    "LEVEL_LABELS",
    "OFFICE_COLUMNS",
    "OFFICE_HEADER_OF",
    "REGISTRY_COLUMNS",
    "Column",
    "HeaderMap",
    "OfficeRow",
    "RegistryRow",
    "RegistryValidator",
    "RowError",
    "SiteUrl",
    "Suggestion",
    "clean",
    "closest_column",
    "find_header_row",
    "level_of_code",
    "match_headers",
    "normalise_header",
    "parse_badge_status",
    "parse_bool",
    "parse_date",
    "parse_site_url",
    "parse_unit_kind",
    "split_list",
    "validate_offices",
    "validate_row",
]

#!/bin/bash
# tests/chaos/check_sqlite.sh - `make check`'s bounded chaos runs against
# SQLite (tests/chaos/check.sh sqlite).
exec bash "$(dirname "$0")/check.sh" sqlite

#!/bin/bash
# tests/chaos/check_redis.sh - `make check`'s bounded chaos runs against
# Redis (tests/chaos/check.sh redis).
exec bash "$(dirname "$0")/check.sh" redis

#!/bin/sh
# tests/faults/clock_faketime_memory.sh - the memory backend's timing wheel in
# a process whose wall clock steps an hour forward or back one second after
# it starts (libfaketime), never early and never spinning.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/clock_faketime.sh"
exec ./tests/faults/clock_procs memory:

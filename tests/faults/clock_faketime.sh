# tests/faults/clock_faketime.sh - sourced by the clock_faketime_*.sh tests:
# finds libfaketime (Debian package faketime) and exports its path as
# AT_FAKETIME_LIB for tests/faults/clock_procs, which preloads it into its
# worker children only.  The MT variant: the children are multithreaded.
# A missing libfaketime is a failure that says how to install it, never a
# skip: these tests are the only check that a wrong wall clock cannot make a
# job run early.
AT_FAKETIME_LIB=
for f in /usr/lib/*/faketime/libfaketimeMT.so.1 /usr/lib/faketime/libfaketimeMT.so.1 \
         /usr/lib64/faketime/libfaketimeMT.so.1 /usr/local/lib/faketime/libfaketimeMT.so.1; do
  if [ -r "$f" ]; then AT_FAKETIME_LIB=$f; break; fi
done
if [ -z "$AT_FAKETIME_LIB" ]; then
  echo "FAIL: libfaketime is needed by the wall-clock jump tests;" >&2
  echo "      install it with: apt-get install faketime" >&2
  exit 1
fi
export AT_FAKETIME_LIB

#!/usr/bin/env python3
"""Reference model for tests/cron_cases.h.

Independent of lib/cron.c and lib/tzfile.c: time zones come from Python's
zoneinfo, and fire times are found by scanning UTC instants (not local
times) and applying the documented rule literally:

  an instant u fires  iff  (the wall time at u matches and u is its first
  occurrence: fold == 0)  or  (a forward change happens at u and one of the
  wall times it skips matches).

@every: multiples of the period since the epoch.
"""
import re
import sys
from datetime import datetime, timezone, timedelta
from zoneinfo import ZoneInfo

MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
DAYS = "SUN MON TUE WED THU FRI SAT".split()
MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
          "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
          "@hourly": "0 * * * *"}
SPECS = [(0, 59, 59, None), (0, 59, 59, None), (0, 23, 23, None), (1, 31, 31, None),
         (1, 12, 12, MONTHS), (0, 7, 6, DAYS)]


def val(tok, spec):
    lo, hi, smax, names = spec
    if tok.isdigit():
        v = int(tok)
    else:
        v = names.index(tok.upper()) + lo
    assert lo <= v <= hi
    return v


def field(text, spec):
    lo, hi, smax, names = spec
    out = set()
    elems = text.split(",")
    star = len(elems) == 1 and text in ("*", "*/1")
    for e in elems:
        step = 1
        had_step = "/" in e
        if had_step:
            e, s = e.split("/")
            step = int(s)
        if e == "*":
            a, b = lo, smax
        elif "-" in e:
            x, y = e.split("-")
            a, b = val(x, spec), val(y, spec)
        else:
            a = val(e, spec)
            b = max(a, smax) if had_step else a
        for v in range(a, b + 1, step):
            out.add(0 if (spec is SPECS[5] and v == 7) else v)
    return out, star


def parse(expr):
    expr = expr.strip()
    if expr.startswith("@"):
        expr = MACROS[expr.lower()]
    f = expr.split()
    if len(f) == 5:
        f = ["0"] + f
    sets = [field(t, s) for t, s in zip(f, SPECS)]
    return sets


def matches(c, dt):
    (sec, _), (mn, _), (hr, _), (dom, domstar), (mon, _), (dow, dowstar) = c
    if dt.second not in sec or dt.minute not in mn or dt.hour not in hr or dt.month not in mon:
        return False
    wd = (dt.weekday() + 1) % 7
    dm, dw = dt.day in dom, wd in dow
    if domstar:
        return dw
    if dowstar:
        return dm
    return dm or dw


def day_matches(c, d):
    (_, _), (_, _), (_, _), (dom, domstar), (mon, _), (dow, dowstar) = c
    if d.month not in mon:
        return False
    wd = (d.weekday() + 1) % 7
    dm, dw = d.day in dom, wd in dow
    if domstar:
        return dw
    if dowstar:
        return dm
    return dm or dw


def wall(u, z):
    return datetime.fromtimestamp(u, tz=z)


def fires_at(c, z, u, step):
    """Does instant u (whole seconds) fire?"""
    w = wall(u, z)
    if w.fold == 0 and matches(c, w.replace(tzinfo=None)):
        return True
    # forward change at u: compare with the offset just before
    before = wall(u - 1, z)
    ob, on = before.utcoffset(), w.utcoffset()
    if on > ob:
        start = datetime.fromtimestamp(u, tz=timezone.utc).replace(tzinfo=None) + ob
        end = datetime.fromtimestamp(u, tz=timezone.utc).replace(tzinfo=None) + on
        t = start
        while t < end:
            if matches(c, t):
                return True
            t += timedelta(seconds=step)
    return False


def next_fire(c, z, after, six):
    """First firing instant > after (seconds, may be fractional)."""
    step = 1 if six else 60
    u = int(after // 1) + 1
    if not six:
        u = ((u + 59) // 60) * 60
    limit = u + 40 * 366 * 86400
    while u < limit:
        w = wall(u, z)
        lw = w.replace(tzinfo=None)
        if not day_matches(c, lw.date()):
            # jump to the next local midnight (re-checked, so overshoot-safe)
            nxt = (lw.replace(hour=0, minute=0, second=0) + timedelta(days=1) - lw).total_seconds()
            # do not jump over a forward change of this day: check the gap instants on the way
            u2 = u + int(nxt)
            # a forward change inside (u, u2] skips wall times of this (non-matching) day or of the
            # next day's first minutes; scan the next day's start by falling through the loop.
            u = max(u + step, u2 - 3 * 3600)  # land a bit early to catch a gap at midnight
            if not six:
                u = (u // 60) * 60
            continue
        if fires_at(c, z, u, step):
            return u
        u += step
    return None


def iso(u):
    return datetime.fromtimestamp(u, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(s):
    if "." in s:
        base, frac = s[:-1].split(".")
        return datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp() + int(frac) / 1000
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def every_ms(expr):
    d = expr.split()[1]
    total = 0
    for num, unit in re.findall(r"(\d+)(ms|s|m|h|d)", d):
        total += int(num) * {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000}[unit]
    return total


def expected(expr, tz, after, n):
    if expr.strip().lower().startswith("@every"):
        p = every_ms(expr)
        t = round(parse_iso(after) * 1000)
        out = []
        for _ in range(n):
            t = (t // p + 1) * p
            out.append(t)
        return ["ms:%d" % x for x in out]
    c = parse(expr)
    z = ZoneInfo(tz or "UTC")
    six = len(expr.split()) == 6
    t = parse_iso(after)
    out = []
    for _ in range(n):
        u = next_fire(c, z, t, six)
        assert u is not None, (expr, tz, after)
        out.append(iso(u))
        t = u
    return out

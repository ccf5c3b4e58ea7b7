#!/usr/bin/env python3
"""Writes tests/cron_cases.h: expected values from oracle.py (zoneinfo)."""
import sys
from datetime import datetime, timezone, timedelta
from zoneinfo import ZoneInfo
import cron_oracle as oracle  # tests/cron_oracle.py

NY, BER, LH = "America/New_York", "Europe/Berlin", "Australia/Lord_Howe"

# (expression, zone, after, how many fire times, comment)
VALID = [
    # ---- plain fields, UTC
    ("* * * * *", None, "2026-01-01T00:00:00Z", 3, "every minute, strictly after"),
    ("*/5 * * * *", None, "2026-01-01T00:03:00Z", 3, "step from *"),
    ("0 * * * *", None, "2026-01-01T00:00:00Z", 3, "hourly"),
    ("0 0 * * *", "UTC", "2026-01-01T00:00:00Z", 3, "daily, UTC by name"),
    ("30 4 1,15 * *", None, "2026-01-01T00:00:00Z", 4, "list of days"),
    ("10-40/10 * * * *", None, "2026-01-01T00:00:00Z", 5, "range with step"),
    ("5/15 * * * *", None, "2026-01-01T00:00:00Z", 5, "N/step is N-59/step"),
    ("0 9-17 * * MON-FRI", None, "2026-01-02T16:30:00Z", 4, "office hours, weekday names"),
    ("0 0 * * SUN", None, "2026-01-01T00:00:00Z", 2, "Sunday by name"),
    ("0 0 * * 7", None, "2026-01-01T00:00:00Z", 2, "7 is Sunday"),
    ("0 0 * * 0,7", None, "2026-01-01T00:00:00Z", 2, "0 and 7 are the same day"),
    ("0 0 1 JAN *", None, "2026-01-01T00:00:00Z", 2, "month name"),
    ("0 12 * jan,Jul *", None, "2026-01-31T00:00:00Z", 3, "names are case-insensitive"),
    ("0 0 13 * FRI", None, "2026-02-01T00:00:00Z", 5, "dom OR dow when both restricted"),
    ("0 0 1 * MON", None, "2026-01-01T00:00:00Z", 5, "the 1st or any Monday"),
    ("0 0 */2 * *", None, "2026-01-29T00:00:00Z", 4, "odd days; */2 restricts dom"),
    ("0 0 * * */2", None, "2026-01-01T00:00:00Z", 4, "Sun, Tue, Thu, Sat"),
    ("0 0 1-7 * MON", None, "2026-02-01T00:00:00Z", 9, "days 1-7 OR Mondays, not 'first Monday'"),
    ("0 0 1-31 * MON", None, "2026-02-01T00:00:00Z", 3, "a full dom range is still restricted"),
    ("0 0 * 2 MON", None, "2026-01-01T00:00:00Z", 3, "dom * : only the weekday counts"),
    ("0 0 13 * *", None, "2026-01-01T00:00:00Z", 3, "dow * : only the day of month counts"),
    ("0 0 29 2 *", None, "2025-01-01T00:00:00Z", 3, "leap day: 2025 -> 2028-02-29"),
    ("0 0 29 2 *", None, "2096-03-01T00:00:00Z", 2, "2100 is not a leap year"),
    ("0 0 29 2 *", None, "2399-06-01T00:00:00Z", 1, "2400 is a leap year"),
    ("0 0 31 * *", None, "2026-01-31T00:00:00Z", 4, "months without a 31st are skipped"),
    ("0 0 30 2 MON", None, "2026-01-01T00:00:00Z", 3, "impossible dom but dow OR: Mondays of February"),
    ("59 23 31 12 *", None, "2026-06-01T00:00:00Z", 2, "last minute of the year"),
    ("0 0 1 1 *", None, "2026-01-01T00:00:00Z", 2, "strictly after a fire time"),
    ("0 0 1 */3 *", None, "2026-01-15T00:00:00Z", 4, "quarterly"),
    ("0 0 1 2/3 *", None, "2026-01-15T00:00:00Z", 4, "Feb, May, Aug, Nov"),
    ("1,2,3-5,10-20/5 * * * *", None, "2026-01-01T00:00:00Z", 9, "mixed list"),
    ("0 0 * * 5-7", None, "2026-01-01T00:00:00Z", 4, "Fri..Sun with 7"),
    ("0 0 * * 1-5/2", None, "2026-01-01T00:00:00Z", 4, "Mon, Wed, Fri"),
    ("0 0 * * Fri-sat", None, "2026-01-01T00:00:00Z", 3, "weekday name range"),
    ("0 0 1 jun-AUG *", None, "2026-01-01T00:00:00Z", 3, "month name range"),
    ("0 0 1 JAN-DEC/4 *", None, "2026-02-01T00:00:00Z", 3, "month name range with step"),
    ("00 05 * * *", None, "2026-01-01T00:00:00Z", 2, "leading zeros"),
    ("  0 0 * * *  ", None, "2026-01-01T00:00:00Z", 1, "surrounding blanks"),
    ("0\t0\t*\t*\t*", None, "2026-01-01T00:00:00Z", 1, "tabs separate fields"),
    ("0 0 * * * ", None, "2026-01-01T00:00:00Z", 1, "trailing blank"),
    ("*,5 0 * * *", None, "2026-01-01T00:30:00Z", 3, "'*' in a list"),
    ("0 0 1,1,1 * *", None, "2026-01-01T00:00:00Z", 2, "duplicates are harmless"),
    ("0 0 31 1,3 *", None, "2026-02-01T00:00:00Z", 2, "31st of Jan and Mar"),
    ("0 12 * * 1", None, "1969-12-01T00:00:00Z", 3, "before the epoch"),
    ("*/20 * * * *", None, "2026-01-01T00:00:00.001Z", 2, "after with milliseconds"),
    ("0 0 * * *", None, "9999-12-30T12:00:00Z", 1, "the last day that can fire"),
    # ---- seconds (6 fields)
    ("30 * * * * *", None, "2026-01-01T00:00:00Z", 3, "seconds field"),
    ("*/10 * * * * *", None, "2026-01-01T00:00:05Z", 4, "every 10 seconds"),
    ("0 0 0 * * *", None, "2026-01-01T00:00:00Z", 2, "6 fields, daily"),
    ("15,45 30 12 * * *", None, "2026-01-01T00:00:00Z", 4, "two seconds in one minute"),
    ("0-5 0 0 1 1 *", None, "2026-01-01T00:00:00Z", 7, "seconds range at new year"),
    ("* * * * * *", None, "2026-01-01T12:00:00.500Z", 3, "every second after a fraction"),
    ("59 59 23 31 12 *", None, "2026-01-01T00:00:00Z", 1, "last second of the year"),
    ("5/20 * * * * *", None, "2026-01-01T00:00:00Z", 4, "N/step in seconds"),
    ("0 0 12 * * SUN", None, "2026-01-01T00:00:00Z", 2, "6 fields with weekday name"),
    # ---- macros
    ("@yearly", None, "2026-03-01T00:00:00Z", 2, ""),
    ("@annually", None, "2026-03-01T00:00:00Z", 1, ""),
    ("@monthly", None, "2026-03-15T00:00:00Z", 2, ""),
    ("@weekly", None, "2026-01-01T00:00:00Z", 2, "Sundays"),
    ("@daily", None, "2026-01-01T10:00:00Z", 2, ""),
    ("@midnight", None, "2026-01-01T10:00:00Z", 1, ""),
    ("@hourly", None, "2026-01-01T10:30:00Z", 2, ""),
    ("@Daily", None, "2026-01-01T10:00:00Z", 1, "macros are case-insensitive"),
    ("  @hourly  ", None, "2026-01-01T10:30:00Z", 1, "blanks around a macro"),
    ("@daily", BER, "2026-03-28T12:00:00Z", 2, "macros follow the zone"),
    ("@hourly", NY, "2026-11-01T04:30:00Z", 3, "hourly across the fall-back: 01:00 once"),
    # ---- @every: multiples of the period since the epoch, zone ignored
    ("@every 90s", None, "2026-01-01T00:00:01Z", 3, ""),
    ("@every 1h30m", None, "2026-01-01T00:10:00Z", 3, ""),
    ("@every 500ms", None, "2026-01-01T00:00:00.200Z", 3, "milliseconds"),
    ("@every 1d", None, "2026-01-01T05:00:00Z", 2, "days are 86400 s, aligned to UTC"),
    ("@every 7m", None, "2026-01-01T00:00:00Z", 3, "not a divisor of the hour"),
    ("@every 1h", "Asia/Kolkata", "2026-01-01T00:10:00Z", 2, "zone does not matter"),
    ("@every 15m", NY, "2026-11-01T05:50:00Z", 3, "elapsed time across the fall-back"),
    ("@EVERY 2h", None, "2026-01-01T01:00:00Z", 1, ""),
    ("@every 1m1s1ms", None, "2026-01-01T00:00:00Z", 2, "units combine"),
    ("@every 1s", None, "1969-12-31T23:59:59.500Z", 2, "before the epoch"),
    # ---- America/New_York, spring forward (02:00 EST -> 03:00 EDT)
    ("30 2 * * *", NY, "2026-03-07T12:00:00Z", 3, "02:30 skipped: fires at 03:00 EDT"),
    ("0 2 * * *", NY, "2026-03-07T12:00:00Z", 3, "02:00 skipped"),
    ("59 2 * * *", NY, "2026-03-07T12:00:00Z", 2, "02:59 skipped"),
    ("0 3 * * *", NY, "2026-03-07T12:00:00Z", 2, "03:00 exists"),
    ("0 * * * *", NY, "2026-03-08T04:00:00Z", 5, "hourly: 02:00 and 03:00 fire once together"),
    ("*/15 * * * *", NY, "2026-03-08T06:40:00Z", 4, "the gap's quarters collapse into one"),
    ("30 2 * * * ", NY, "2026-03-08T07:00:00Z", 1, "after the collapsed fire: next day"),
    ("0 1-3 * * *", NY, "2026-03-07T12:00:00Z", 5, "hours 1..3 on the spring-forward day"),
    ("30 2 * 3 SUN", NY, "2026-03-01T00:00:00Z", 3, "Sunday 02:30 with the gap"),
    ("30 2 * * *", NY, "2030-03-09T12:00:00Z", 2, "2030"),
    ("30 2 * * *", NY, "2045-03-11T12:00:00Z", 2, "2045: beyond the table, POSIX footer"),
    ("30 2 * * *", NY, "2100-03-13T12:00:00Z", 2, "2100"),
    ("30 2 * 4 *", NY, "2006-03-31T12:00:00Z", 3, "2006: old US rule (first Sunday of April)"),
    ("30 2 11 3 *", NY, "2007-01-01T00:00:00Z", 2, "2007: new US rule"),
    ("0 0 * * *", NY, "2026-03-07T00:00:00Z", 3, "midnight across spring forward"),
    # ---- America/New_York, fall back (02:00 EDT -> 01:00 EST)
    ("30 1 * * *", NY, "2026-10-31T12:00:00Z", 2, "01:30 repeated: first occurrence only"),
    ("0 * * * *", NY, "2026-11-01T03:30:00Z", 5, "hourly: 01:00 once, then 02:00 EST"),
    ("*/30 * * * *", NY, "2026-11-01T04:00:00Z", 5, "the repeated half hours fire once"),
    ("30 1 * * *", NY, "2026-11-01T06:10:00Z", 1, "after in the second pass: next day"),
    ("* * * * *", NY, "2026-11-01T06:00:00Z", 2, "second pass start: next is 02:00 EST"),
    ("* * * * *", NY, "2026-11-01T05:58:30Z", 3, "end of the first pass"),
    ("0 2 * * *", NY, "2026-10-31T12:00:00Z", 2, "02:00 EST exists once"),
    ("0 1 * * *", NY, "2045-11-04T12:00:00Z", 2, "2045 fall back from the footer"),
    ("*/20 1 * * *", NY, "2045-11-05T04:00:00Z", 4, ""),
    ("0 0 * * *", NY, "2026-10-31T00:00:00Z", 3, "midnight across fall back"),
    ("30 1 * * SUN", NY, "2026-10-20T00:00:00Z", 3, ""),
    ("0 9 * * MON-FRI", NY, "2026-03-06T00:00:00Z", 3, "office start across spring forward"),
    # ---- Europe/Berlin (02:00 CET -> 03:00 CEST, 03:00 CEST -> 02:00 CET)
    ("30 2 * * *", BER, "2026-03-28T00:00:00Z", 3, "spring: 02:30 skipped"),
    ("30 2 * * *", BER, "2026-10-24T12:00:00Z", 2, "fall: 02:30 repeated"),
    ("0 * * * *", BER, "2026-03-28T23:30:00Z", 4, "hourly across spring forward"),
    ("0 * * * *", BER, "2026-10-24T23:30:00Z", 5, "hourly across fall back"),
    ("*/15 2 * * *", BER, "2026-10-24T23:50:00Z", 5, "02:xx fires once on the fall-back day"),
    ("0 0 * * *", BER, "2026-03-28T00:00:00Z", 3, ""),
    ("0 9 * * MON-FRI", BER, "2026-03-27T00:00:00Z", 3, ""),
    ("30 2 * * *", BER, "2038-03-27T00:00:00Z", 2, "2038: first year after a fat table"),
    ("30 2 * * *", BER, "2050-03-26T00:00:00Z", 2, "2050 spring, footer"),
    ("30 2 * * *", BER, "2050-10-29T12:00:00Z", 2, "2050 fall, footer"),
    ("0 3 * 4 *", BER, "1980-04-05T12:00:00Z", 2, "1980: first German DST"),
    ("0 0 1 1 *", BER, "2026-06-01T00:00:00Z", 2, "new year in Berlin"),
    ("0 0 12 * * *", BER, "2026-03-28T00:00:00Z", 3, "6 fields in a zone"),
    ("30 30 2 * * *", BER, "2026-03-28T00:00:00Z", 2, "6 fields in the gap"),
    # ---- Australia/Lord_Howe: 30-minute DST (+10:30 / +11)
    ("0 2 * * *", LH, "2026-10-02T12:00:00Z", 3, "spring: 02:00 skipped, 02:30 exists"),
    ("15 2 * * *", LH, "2026-10-02T12:00:00Z", 3, "02:15 skipped"),
    ("30 2 * * *", LH, "2026-10-02T12:00:00Z", 3, "02:30 exists"),
    ("*/15 * * * *", LH, "2026-10-03T15:10:00Z", 4, "gap quarters collapse"),
    ("45 1 * * *", LH, "2026-04-03T12:00:00Z", 3, "fall: 01:45 repeated"),
    ("*/10 1 * * *", LH, "2026-04-04T14:20:00Z", 6, "fall: 01:30..01:50 once"),
    ("0 * * * *", LH, "2026-04-04T13:00:00Z", 4, "hourly across the fall back"),
    ("0 2 * * *", LH, "2040-10-05T00:00:00Z", 3, "2040: footer"),
    ("45 1 * * *", LH, "2040-03-30T00:00:00Z", 3, "2040 fall: footer"),
    ("0 2 * * *", LH, "2099-10-01T00:00:00Z", 3, "2099"),
    ("0 0 * * *", LH, "2026-10-01T00:00:00Z", 3, ""),
    # ---- other zones
    ("0 0 * * *", "America/Sao_Paulo", "2018-11-02T12:00:00Z", 3, "DST at midnight: 00:00 skipped"),
    ("0 0 * * *", "America/Sao_Paulo", "2019-02-15T12:00:00Z", 3, "fall back at midnight"),
    ("0 12 * * *", "Pacific/Apia", "2011-12-29T00:00:00Z", 3, "Samoa skipped 2011-12-30"),
    ("0 0 * * *", "America/Santiago", "2040-08-31T12:00:00Z", 3, "footer with /24"),
    ("0 0 * * *", "America/Santiago", "2040-04-06T12:00:00Z", 3, "footer with /24, fall back"),
    ("30 2 * * *", "Asia/Jerusalem", "2040-03-21T00:00:00Z", 3, "footer with /26"),
    ("0 0 * * *", "America/Nuuk", "2040-03-23T00:00:00Z", 3, "footer with /-1"),
    ("30 23 * * *", "America/Nuuk", "2040-03-23T00:00:00Z", 3, "footer with /-1: 23:30 skipped"),
    ("0 9 * * *", "Asia/Kolkata", "2026-01-01T00:00:00Z", 2, "+05:30"),
    ("0 9 * * *", "Asia/Kathmandu", "2026-01-01T00:00:00Z", 2, "+05:45"),
    ("30 2 * * *", "Pacific/Chatham", "2026-09-25T00:00:00Z", 3, "+12:45/+13:45 spring"),
    ("30 1 * * *", "America/St_Johns", "2026-11-01T00:00:00Z", 2, "-03:30"),
    ("0 2 * * *", "Australia/Sydney", "2026-10-03T00:00:00Z", 2, "southern hemisphere spring"),
    ("30 2 * * *", "Australia/Sydney", "2026-04-04T00:00:00Z", 2, "southern hemisphere fall"),
    ("0 12 * * *", "Etc/GMT+5", "2026-01-01T00:00:00Z", 2, "'+' in a zone name"),
    ("0 12 * * *", "EST5EDT", "2026-07-01T00:00:00Z", 1, ""),
    ("0 12 * * *", "Etc/UTC", "2026-01-01T00:00:00Z", 1, ""),
    ("30 2 * * *", "Europe/London", "2026-03-28T00:00:00Z", 2, ""),
    ("30 1 * * *", "Europe/Dublin", "2026-10-24T12:00:00Z", 2, "negative DST in the data"),
]

# (expression, zone, after, error, position) - positions by hand
INVALID = [
    ("", None, "AT_ERR_INVAL", 0),
    ("   ", None, "AT_ERR_INVAL", 3),
    ("* * * *", None, "AT_ERR_INVAL", 7),
    ("*", None, "AT_ERR_INVAL", 1),
    ("* * * * * * *", None, "AT_ERR_INVAL", 12),
    ("60 * * * *", None, "AT_ERR_INVAL", 0),
    ("0 24 * * *", None, "AT_ERR_INVAL", 2),
    ("10 1,25 * * *", None, "AT_ERR_INVAL", 5),
    ("0 0 0 * *", None, "AT_ERR_INVAL", 4),
    ("0 0 32 * *", None, "AT_ERR_INVAL", 4),
    ("0 0 * 13 *", None, "AT_ERR_INVAL", 6),
    ("0 0 * 0 *", None, "AT_ERR_INVAL", 6),
    ("0 0 * * 8", None, "AT_ERR_INVAL", 8),
    ("40-10 * * * *", None, "AT_ERR_INVAL", 0),
    ("*/0 * * * *", None, "AT_ERR_INVAL", 2),
    ("*/61 * * * *", None, "AT_ERR_INVAL", 2),
    ("1,,2 * * * *", None, "AT_ERR_INVAL", 2),
    ("1, * * * *", None, "AT_ERR_INVAL", 2),
    (",1 * * * *", None, "AT_ERR_INVAL", 0),
    ("0 0 * * FOO", None, "AT_ERR_INVAL", 8),
    ("0 0 * MON *", None, "AT_ERR_INVAL", 6),
    ("0 0 * * MONDAY", None, "AT_ERR_INVAL", 8),
    ("0 0 * JANUARY *", None, "AT_ERR_INVAL", 6),
    ("a * * * *", None, "AT_ERR_INVAL", 0),
    ("0 0 * * 1-", None, "AT_ERR_INVAL", 10),
    ("0 0 1- * *", None, "AT_ERR_INVAL", 6),
    ("0 0 1-5/ * *", None, "AT_ERR_INVAL", 8),
    ("0 0 1-5/x * *", None, "AT_ERR_INVAL", 8),
    ("5-* * * * *", None, "AT_ERR_INVAL", 2),
    ("*-5 * * * *", None, "AT_ERR_INVAL", 1),
    ("1/2/3 * * * *", None, "AT_ERR_INVAL", 3),
    ("0 0 * * * extra", None, "AT_ERR_INVAL", 10),
    ("0 0 * * * * x", None, "AT_ERR_INVAL", 12),
    ("0 0 L * *", None, "AT_ERR_INVAL", 4),
    ("0 0 ? * *", None, "AT_ERR_INVAL", 4),
    ("0 0 * * 1#2", None, "AT_ERR_INVAL", 9),
    ("0 0 * * 7-1", None, "AT_ERR_INVAL", 8),
    ("0 0 * * SAT-SUN", None, "AT_ERR_INVAL", 8),
    ("0 0 * JAN-DEC/0 *", None, "AT_ERR_INVAL", 14),
    ("00000000000061 * * * *", None, "AT_ERR_INVAL", 0),
    ("0 0 * * 0x1", None, "AT_ERR_INVAL", 9),
    ("-1 * * * *", None, "AT_ERR_INVAL", 0),
    ("1-2-3 * * * *", None, "AT_ERR_INVAL", 3),
    ("0 0 * * */8", None, "AT_ERR_INVAL", 10),
    ("0 0 */32 * *", None, "AT_ERR_INVAL", 6),
    ("0 */25 * * *", None, "AT_ERR_INVAL", 4),
    ("0 0 * */13 *", None, "AT_ERR_INVAL", 8),
    ("60 0 0 * * *", None, "AT_ERR_INVAL", 0),
    ("0 60 0 * * *", None, "AT_ERR_INVAL", 2),
    ("* * * * * ,", None, "AT_ERR_INVAL", 10),
    ("0 0 * * 1,2,", None, "AT_ERR_INVAL", 12),
    ("0 0 \x01 * *", None, "AT_ERR_INVAL", 4),
    ("0 0 * * *\x7f", None, "AT_ERR_INVAL", 9),
    ("0 0 \xc3\xa9 * *", None, "AT_ERR_INVAL", 4),
    ("@foo", None, "AT_ERR_INVAL", 0),
    ("@", None, "AT_ERR_INVAL", 0),
    ("@reboot", None, "AT_ERR_INVAL", 0),
    ("@daily x", None, "AT_ERR_INVAL", 7),
    ("@daily5", None, "AT_ERR_INVAL", 0),
    ("@everyday", None, "AT_ERR_INVAL", 0),
    ("@every", None, "AT_ERR_INVAL", 6),
    ("@every   ", None, "AT_ERR_INVAL", 9),
    ("@every5m", None, "AT_ERR_INVAL", 6),
    ("@every 0s", None, "AT_ERR_INVAL", 7),
    ("@every 0h0m", None, "AT_ERR_INVAL", 7),
    ("@every 10", None, "AT_ERR_INVAL", 9),
    ("@every 10x", None, "AT_ERR_INVAL", 9),
    ("@every 1h30", None, "AT_ERR_INVAL", 11),
    ("@every h", None, "AT_ERR_INVAL", 7),
    ("@every 5m extra", None, "AT_ERR_INVAL", 10),
    ("@every 1.5h", None, "AT_ERR_INVAL", 8),
    ("@every -5m", None, "AT_ERR_INVAL", 7),
    ("@every 36601d", None, "AT_ERR_INVAL", 7),
    ("@every 99999999999999999999s", None, "AT_ERR_INVAL", 7),
    ("0 0 * * * @daily", None, "AT_ERR_INVAL", 10),
    # zones
    ("0 0 * * *", "Mars/Olympus_Mons", "AT_ERR_NOTFOUND", -1),
    ("0 0 * * *", "America", "AT_ERR_NOTFOUND", -1),
    ("0 0 * * *", "Europe/Nowhere", "AT_ERR_NOTFOUND", -1),
    ("0 0 * * *", "../etc/passwd", "AT_ERR_INVAL", -1),
    ("0 0 * * *", "/etc/localtime", "AT_ERR_INVAL", -1),
    ("0 0 * * *", "Europe/Berlin ", "AT_ERR_INVAL", -1),
    ("0 0 * * *", "America/New_York/", "AT_ERR_INVAL", -1),
    ("0 0 * * *", "Europe//Berlin", "AT_ERR_INVAL", -1),
    ("0 0 * * *", "zone.tab", "AT_ERR_INVAL", -1),
    ("0 0 * * *", "", "AT_ERR_INVAL", -1),
    ("0 0 * * *", "Europe/Berlin\n", "AT_ERR_INVAL", -1),
    # never fires
    ("0 0 30 2 *", None, "AT_ERR_RANGE", -1),
    ("0 0 31 2 *", None, "AT_ERR_RANGE", -1),
    ("0 0 31 4,6,9,11 *", None, "AT_ERR_RANGE", -1),
    ("0 0 30,31 FEB *", "Europe/Berlin", "AT_ERR_RANGE", -1),
]

# (expression, zone, after) that never fire again after `after`
RANGE_AFTER = [
    ("0 0 * * *", None, "9999-12-31T12:00:00Z"),
    ("@every 1d", None, "9999-12-31T12:00:00Z"),
    ("0 0 29 2 *", None, "9996-03-01T00:00:00Z"),
    ("0 0 1 1 *", "Europe/Berlin", "9999-06-01T00:00:00Z"),
]


def c_str(s):
    out = '"'
    for ch in s.encode():
        if ch == 0x22 or ch == 0x5c:
            out += "\\" + chr(ch)
        elif ch == 9:
            out += "\\t"
        elif ch == 10:
            out += "\\n"
        elif ch < 0x20 or ch >= 0x7f:
            out += '\\x%02x""' % ch
        else:
            out += chr(ch)
    return out + '"'


def zone(z):
    return "NULL" if z is None else c_str(z)


def ms(s):
    return round(oracle.parse_iso(s) * 1000)


def main():
    lines = []
    w = lines.append
    w("/*")
    w(" * cron_cases.h - the table of tests/test_cron.c.  Generated; do not edit by")
    w(" * hand.  Expected fire times were computed by an independent model (Python's")
    w(" * zoneinfo over the system tz database, scanning UTC instants one by one and")
    w(" * applying the rule of at_cron_next(3) literally: an instant fires when its")
    w(" * wall time matches at its first occurrence, or when a forward change at that")
    w(" * instant skips a matching wall time), never by libasynctask itself; the DST")
    w(" * cases were also checked by hand.  Error positions were written by hand.")
    w(" */")
    w("")
    w("struct cron_valid_case {")
    w("    const char *expr, *tz;")
    w("    int64_t after_ms;      /* %s */" % "the start")
    w("    const char *after_iso; /* the same, for messages */")
    w("    int n;")
    w("    const char *next[9];   /* ISO-8601 UTC; \"ms:N\" for sub-second times */")
    w("    const char *note;")
    w("};")
    w("")
    w("static const struct cron_valid_case k_valid[] = {")
    for expr, tz, after, n, note in VALID:
        exp = oracle.expected(expr, tz, after, n)
        assert len(exp) <= 9
        w("    {%s, %s, INT64_C(%d), %s, %d," % (c_str(expr), zone(tz), ms(after), c_str(after), n))
        w("     {%s}," % ", ".join(c_str(x) for x in exp))
        w("     %s}," % c_str(note))
    w("};")
    w("")
    w("struct cron_error_case {")
    w("    const char *expr, *tz;")
    w("    int err;")
    w("    int32_t pos; /* byte offset reported by at_cron_check, -1 when the expression is valid */")
    w("};")
    w("")
    w("static const struct cron_error_case k_errors[] = {")
    for expr, tz, err, pos in INVALID:
        w("    {%s, %s, %s, %d}," % (c_str(expr), zone(tz), err, pos))
    w("};")
    w("")
    w("struct cron_range_case {")
    w("    const char *expr, *tz;")
    w("    int64_t after_ms;")
    w("};")
    w("")
    w("static const struct cron_range_case k_range[] = {")
    for expr, tz, after in RANGE_AFTER:
        w("    {%s, %s, INT64_C(%d)}, /* %s */" % (c_str(expr), zone(tz), ms(after), after))
    w("};")
    w("")
    # Footer transitions: offset changes found by scanning zoneinfo hour by
    # hour and bisecting to the second.
    w("/* Offset changes after the zone files' tables (POSIX footer), from zoneinfo. */")
    w("struct tz_change_case {")
    w("    const char *tz;")
    w("    int64_t at_s;")
    w("    int32_t off_before, off_after;")
    w("};")
    w("")
    w("static const struct tz_change_case k_changes[] = {")
    for z, years in [(NY, (2040, 2077)), (BER, (2039, 2061)), (LH, (2038, 2090)),
                     ("America/Santiago", (2045,)), ("Asia/Jerusalem", (2044,)),
                     ("America/Nuuk", (2042,)), ("Pacific/Chatham", (2050,))]:
        zi = ZoneInfo(z)
        for y in years:
            t0 = int(datetime(y, 1, 1, tzinfo=timezone.utc).timestamp())
            t1 = int(datetime(y + 1, 1, 1, tzinfo=timezone.utc).timestamp())
            off = lambda t: int(datetime.fromtimestamp(t, tz=zi).utcoffset().total_seconds())
            t = t0
            while t < t1:
                if off(t) != off(t + 3600):
                    lo, hi = t, t + 3600
                    while hi - lo > 1:
                        mid = (lo + hi) // 2
                        if off(mid) == off(t):
                            lo = mid
                        else:
                            hi = mid
                    w("    {%s, INT64_C(%d), %d, %d}, /* %s */" % (
                        c_str(z), hi, off(lo), off(hi),
                        datetime.fromtimestamp(hi, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")))
                t += 3600
    w("};")
    sys.stdout.write("\n".join(lines) + "\n")


main()

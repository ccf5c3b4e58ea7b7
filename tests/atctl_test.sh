#!/bin/sh
# atctl_test.sh - golden-output tests of the atctl tool (man/atctl.1).
#
# Every subcommand and every error path runs against temporary SQLite
# stores; each case's standard output, standard error and exit status,
# with job ids and current times normalised by sed, must equal its golden
# file tests/atctl/NAME.out.  Times in the years 2030-2099 are left as they
# are, so fixed --at times prove the RFC 3339 arithmetic.  Other cases check
# behaviour directly: the worker running shell commands (results, a
# failing command, a timeout, a graceful SIGTERM), and `metrics` checked by
# `promtool check metrics` (when installed) and by the strict parser of the
# text format below (always).
#
# One line per case, then "N passed, N failed"; exit 1 on any failure.
# ATCTL_UPDATE_GOLDEN=1 rewrites the golden files from the current output
# (review the diff before committing it).
#
# Usage: tests/atctl_test.sh   (from the build directory; ATCTL=path and
# SRCDIR=top source directory may be set; make check sets SRCDIR.)
set -u
LC_ALL=C
export LC_ALL
here=$(cd "$(dirname "$0")" && pwd)
SRCDIR=${SRCDIR:-${top_srcdir:-$here/..}}
ATCTL=${ATCTL:-./tools/atctl}
golden=$SRCDIR/tests/atctl
update=${ATCTL_UPDATE_GOLDEN:-}

if [ ! -x "$ATCTL" ]; then
    echo "atctl_test: FAIL: $ATCTL not built"
    exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/atctl_test.XXXXXX") || exit 99
worker_pid=
cleanup() {
    if [ -n "$worker_pid" ]; then
        kill -KILL "$worker_pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

pass=0
failed=0
ok() {
    pass=$((pass + 1))
    echo "ok   $1"
}
bad() {
    failed=$((failed + 1))
    echo "FAIL $1${2:+: $2}"
}

# Job ids (26 characters of Crockford base32) become <id---...> and times of
# 2000-2029 (now, give or take) <time---...>, of the same widths so that
# tables keep their alignment; the pid of a worker PID, the
# temporary directory TMP.
norm() {
    sed -E -e "s#$tmp#TMP#g" -e 's/\b[0-9A-HJKMNP-TV-Z]{26}\b/<id---------------------->/g' \
        -e 's/20[0-2][0-9]-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z/<time------------------>/g' \
        -e 's/^atctl [0-9.]+ \(libasynctask [0-9.]+\)$/atctl VERSION (libasynctask VERSION)/' \
        -e 's/\(pid [0-9]+\)/(pid PID)/'
}

# case NAME ARGS...: run atctl ARGS (standard input from $stdin_file when
# set) and compare with tests/atctl/NAME.out.
stdin_file=/dev/null
case_() {
    name=$1
    shift
    "$ATCTL" "$@" <"$stdin_file" >"$tmp/stdout" 2>"$tmp/stderr"
    rc=$?
    {
        printf '$ atctl'
        for arg in "$@"; do
            case $arg in
            *[!A-Za-z0-9_./:@=+,-]* | '') printf " '%s'" "$arg" ;;
            *) printf ' %s' "$arg" ;;
            esac
        done
        echo
        cat "$tmp/stdout"
        if [ -s "$tmp/stderr" ]; then
            echo "--- stderr"
            cat "$tmp/stderr"
        fi
        echo "--- exit $rc"
    } | norm >"$tmp/got"
    if [ -n "$update" ]; then
        cp "$tmp/got" "$golden/$name.out"
        ok "$name (golden file written)"
    elif [ ! -f "$golden/$name.out" ]; then
        bad "$name" "no golden file tests/atctl/$name.out"
    elif diff -u "$golden/$name.out" "$tmp/got" >"$tmp/diff"; then
        ok "$name"
    else
        bad "$name" "output differs from tests/atctl/$name.out:"
        sed 's/^/    /' "$tmp/diff"
    fi
}

# Run atctl for its output only (setting up a case).
q() {
    "$ATCTL" "$@" 2>"$tmp/q.err"
}

# ------------------------------------------------------------ global
ATCTL_STORE=sqlite:$tmp/jobs.db
export ATCTL_STORE
case_ help --help
case_ version --version
case_ no_command
case_ unknown_command frobnicate
case_ unknown_global_option --verbose list
case_ unknown_option list --colour
case_ short_option list -q 1
case_ store_needs_value --store
case_ store_unknown_scheme --store nosuch:x list
case_ store_bad_path --store "sqlite:$tmp/no/such/dir/x.db" list
printf 'this is not a database, it only has a name ending in .db\n' >"$tmp/junk.db"
case_ store_not_a_database --store "sqlite:$tmp/junk.db" stats
case_ option_needs_value enqueue t --queue
case_ flag_takes_no_value list --json=yes

# ------------------------------------------------------------- enqueue
printf 'line 1\nline 2\n' >"$tmp/payload.txt"
case_ enqueue_prints_id enqueue mail.send --payload hello
case_ enqueue_json enqueue mail.send --json --queue mail --priority 7 --max-attempts 3
case_ enqueue_payload_file enqueue mail.send --payload "@$tmp/payload.txt" --queue files
printf 'from stdin' >"$tmp/stdin.txt"
stdin_file=$tmp/stdin.txt
case_ enqueue_payload_stdin enqueue mail.send --payload @- --queue files
stdin_file=/dev/null
case_ enqueue_at_offset enqueue report.build --at 2031-01-02T03:04:05.250+01:00 --queue later
case_ enqueue_at_fraction_truncated enqueue report.build --at 2032-02-29T23:59:59.123456Z --queue later
case_ enqueue_delay enqueue mail.send --delay 1h30m --queue later
case_ enqueue_missing_type enqueue
case_ enqueue_extra_argument enqueue a b
case_ enqueue_bad_type_name enqueue 'bad type!'
case_ enqueue_payload_file_missing enqueue t --payload "@$tmp/none.txt"
case_ enqueue_delay_unknown_unit enqueue t --delay 90x
case_ enqueue_delay_no_unit enqueue t --delay 90
case_ enqueue_delay_wrong_order enqueue t --delay 30m1h
case_ enqueue_delay_repeated_unit enqueue t --delay 1s1s
case_ enqueue_delay_empty enqueue t --delay ''
case_ enqueue_delay_negative enqueue t --delay -5s
case_ enqueue_delay_overflow enqueue t --delay 99999999999999999999d
case_ enqueue_at_no_zone enqueue t --at 2026-12-01T09:00:00
case_ enqueue_at_no_T enqueue t --at '2026-12-01 09:00:00Z'
case_ enqueue_at_bad_day enqueue t --at 2026-02-29T09:00:00Z
case_ enqueue_at_bad_month enqueue t --at 2026-13-01T09:00:00Z
case_ enqueue_at_leap_second enqueue t --at 2026-12-31T23:59:60Z
case_ enqueue_at_bad_offset enqueue t --at 2026-12-01T09:00:00+25:00
case_ enqueue_at_trailing enqueue t --at 2026-12-01T09:00:00Zjunk
case_ enqueue_at_and_delay enqueue t --at 2031-01-01T00:00:00Z --delay 1s
case_ enqueue_priority_range enqueue t --priority 1001
case_ enqueue_priority_not_int enqueue t --priority high
case_ enqueue_max_attempts_zero enqueue t --max-attempts 0
case_ enqueue_bad_queue_name enqueue t --queue 'no spaces'
key_id=$(q enqueue order.expire --key order-42 --queue orders)
case_ enqueue_duplicate_key enqueue order.expire --key order-42 --queue orders

# Delays are measured by the store's clock: run_at = created + 90 s.
delay_id=$(q enqueue t --delay 90s --queue later)
"$ATCTL" show --json "$delay_id" >"$tmp/delay.json"
created=$(sed -n 's/.*"created": "\(.*\)".*/\1/p' "$tmp/delay.json")
run_at=$(sed -n 's/.*"run_at": "\(.*\)".*/\1/p' "$tmp/delay.json")
diff_ms=$(($(date -u -d "$run_at" +%s%3N) - $(date -u -d "$created" +%s%3N)))
if [ "$diff_ms" -eq 90000 ]; then ok delay_90s_is_run_at_minus_created; else
    bad delay_90s_is_run_at_minus_created "run_at - created = $diff_ms ms"; fi

# ---------------------------------------------------------- show, list
show_id=$(q enqueue mail.send --payload "$(printf 'tab\there "quoted" \\ end')" --queue mail --priority -3)
case_ show_text show "$show_id"
case_ show_json show --json "$show_id"
case_ show_not_found show 00000000000000000000000000
case_ show_malformed_id show not-an-id
case_ show_missing_id show
printf 'bin\000\377ary' >"$tmp/binary"
bin_id=$(q enqueue blob.t --payload "@$tmp/binary" --queue blobs)
case_ show_binary_payload show "$bin_id"
case_ show_binary_payload_json show --json "$bin_id"
case_ list_all list
case_ list_queue list --queue later
case_ list_state list --state scheduled
case_ list_limit list --limit 2
case_ list_json list --json --queue files
case_ list_empty list --queue nothing.here
case_ list_bad_state list --state sleeping
case_ list_bad_limit list --limit 0
case_ list_extra_argument list later

# -------------------------------------------------------------- cancel
cancel_id=$(q enqueue t --queue cancels)
case_ cancel cancel "$cancel_id"
case_ cancel_again cancel "$cancel_id"
case_ cancel_json cancel --json "$(q enqueue t --queue cancels)"
case_ cancel_not_found cancel 00000000000000000000000000

# ----------------------------------------------------- stats and queues
case_ pause_queue pause mail
case_ stats_text stats
case_ stats_json stats --json
case_ resume_queue resume mail
case_ pause_json pause --json later
case_ pause_bad_name pause 'a b'
case_ pause_missing pause
case_ stats_extra_argument stats now

# ------------------------------------------------------------ --store
case_ store_option_overrides_env --store "sqlite:$tmp/other.db" stats
case_ store_option_after_command stats --store "sqlite:$tmp/other.db"

# ---------------------------------------------------------------- cron
ATCTL_STORE=sqlite:$tmp/cron.db
export ATCTL_STORE
case_ cron_add cron add nightly '0 3 * * *' --type report.build --tz Europe/Berlin --payload '{"r":1}'
case_ cron_add_update cron add nightly '30 3 * * *' --type report.build --tz Europe/Berlin --queue reports \
    --misfire skip --priority 5 --max-attempts 2
case_ cron_add_json cron add --json every90 '@every 90s' --type ping --misfire all
case_ cron_add_bad_expr cron add bad '61 * * * *' --type t
case_ cron_add_bad_zone cron add bad '1 * * * *' --type t --tz Mars/Olympus
case_ cron_add_no_type cron add bad '1 * * * *'
case_ cron_add_bad_misfire cron add bad '1 * * * *' --type t --misfire sometimes
case_ cron_add_bad_name cron add 'bad name' '1 * * * *' --type t
case_ cron_add_unquoted_expr cron add bad 1 '*' '*' '*' '*' --type t
case_ cron_list cron list
case_ cron_pause cron pause nightly
case_ cron_list_paused cron list
case_ cron_list_json cron list --json
case_ cron_resume cron resume nightly
case_ cron_rm cron rm every90
case_ cron_rm_not_found cron rm every90
case_ cron_pause_not_found cron pause nope
case_ cron_missing_subcommand cron
case_ cron_unknown_subcommand cron edit nightly
case_ cron_option_on_list cron list --type t

# ------------------------------------------------------------ workflow
ATCTL_STORE=sqlite:$tmp/wf.db
export ATCTL_STORE
cat >"$tmp/wf.json" <<'EOF'
{"nodes": [
  {"name": "fetch", "type": "etl.fetch", "payload": {"url": "https://example.org/a"}, "queue": "etl"},
  {"name": "parse", "type": "etl.parse", "after": ["fetch"], "on_parent_failure": "dead", "max_attempts": 3},
  {"name": "load", "type": "etl.load", "after": ["parse"], "delay": "1m", "priority": 9, "payload": "text"},
  {"name": "report", "type": "etl.report", "completion": true}
]}
EOF
case_ workflow_submit workflow submit "$tmp/wf.json"
wf_id=$(q workflow submit "$tmp/wf.json")
case_ workflow_show workflow show "$wf_id"
case_ workflow_show_json workflow show --json "$wf_id"
parse_id=$(q workflow submit --json "$tmp/wf.json" | sed -n 's/^ *"parse": "\(.*\)",*$/\1/p')
case_ workflow_job_show show "$parse_id"
case_ workflow_submit_json workflow submit --json "$tmp/wf.json"
stdin_file=$tmp/wf.json
case_ workflow_submit_stdin workflow submit -
stdin_file=/dev/null
wf_bad() {
    printf '%s\n' "$2" >"$tmp/bad.json"
    case_ "$1" workflow submit "$tmp/bad.json"
}
wf_bad workflow_cycle '{"nodes":[{"name":"a","type":"t","after":["b"]},{"name":"b","type":"t","after":["a"]}]}'
wf_bad workflow_unknown_field '{"nodes":[{"name":"a","type":"t","afterr":["b"]}]}'
wf_bad workflow_unknown_top_field '{"nodes":[{"name":"a","type":"t"}],"name":"x"}'
wf_bad workflow_syntax_error '{"nodes":[{"name":"a" "type":"t"}]}'
wf_bad workflow_duplicate_key '{"nodes":[{"name":"a","name":"b","type":"t"}]}'
wf_bad workflow_not_object '[1,2]'
wf_bad workflow_empty '{"nodes":[]}'
wf_bad workflow_missing_name '{"nodes":[{"type":"t"}]}'
wf_bad workflow_missing_type '{"nodes":[{"name":"a"}]}'
wf_bad workflow_unknown_parent '{"nodes":[{"name":"a","type":"t","after":["zz"]}]}'
wf_bad workflow_self_parent '{"nodes":[{"name":"a","type":"t","after":["a"]}]}'
wf_bad workflow_duplicate_node '{"nodes":[{"name":"a","type":"t"},{"name":"a","type":"t"}]}'
wf_bad workflow_bad_policy '{"nodes":[{"name":"a","type":"t"},{"name":"b","type":"t","after":["a"],"on_parent_failure":"retry"}]}'
wf_bad workflow_bad_delay '{"nodes":[{"name":"a","type":"t","delay":"5 minutes"}]}'
wf_bad workflow_bad_at '{"nodes":[{"name":"a","type":"t","at":"tomorrow"}]}'
wf_bad workflow_bad_priority '{"nodes":[{"name":"a","type":"t","priority":"high"}]}'
wf_bad workflow_completion_with_after '{"nodes":[{"name":"a","type":"t"},{"name":"c","type":"t","completion":true,"after":["a"]}]}'
wf_bad workflow_after_job_missing '{"nodes":[{"name":"a","type":"t","after_jobs":["00000000000000000000000000"]}]}'
case_ workflow_file_missing workflow submit "$tmp/none.json"
case_ workflow_show_not_found workflow show 00000000000000000000000000
case_ workflow_missing_subcommand workflow
case_ workflow_unknown_subcommand workflow run x

# -------------------------------------------------------------- worker
ATCTL_STORE=sqlite:$tmp/work.db
export ATCTL_STORE
for i in 1 2 3; do q enqueue echo.t --payload "message $i" >/dev/null; done
q enqueue fail.t --payload x --max-attempts 1 --queue other >/dev/null
q enqueue slow.t --max-attempts 1 --queue other >/dev/null
q enqueue env.t --payload p --queue other >/dev/null

# wait_for STATE COUNT: until COUNT jobs are in STATE (at most 20 s).
wait_for() {
    i=0
    while [ $i -lt 200 ]; do
        n=$("$ATCTL" list --state "$1" --limit 1000 2>/dev/null | tail -n +2 | wc -l)
        [ "$n" -ge "$2" ] && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

"$ATCTL" worker --exec 'echo.t=cat' --exec 'fail.t=echo first >&2; echo "it broke" >&2; exit 3' \
    --exec "slow.t=sleep 29.$$" \
    --exec 'env.t=echo "$AT_JOB_TYPE $AT_JOB_QUEUE $AT_JOB_ATTEMPT ${#AT_JOB_ID}"; cat >/dev/null' \
    --queue default --queue other --concurrency 3 --timeout 1s --kill-after 200ms \
    >"$tmp/worker.out" 2>"$tmp/worker.err" &
worker_pid=$!
if wait_for succeeded 4 && wait_for dead 2; then ok worker_finishes_jobs; else
    bad worker_finishes_jobs "jobs did not finish in 20 s"; sed 's/^/    /' "$tmp/worker.err"; fi
kill -TERM "$worker_pid"
wait "$worker_pid"
wrc=$?
worker_pid=
if [ "$wrc" -eq 0 ]; then ok worker_sigterm_exits_0; else bad worker_sigterm_exits_0 "exit $wrc"; fi
if grep -q 'stopped: 6 started, 4 succeeded, 2 failed, 0 released' "$tmp/worker.err"; then
    ok worker_reports_counters
else
    bad worker_reports_counters "$(tail -1 "$tmp/worker.err")"
fi
if pgrep -f "sleep 29.$$" >/dev/null 2>&1; then
    bad worker_timeout_kills_child "sleep 29.$$ is still running"
else
    ok worker_timeout_kills_child
fi
case_ worker_results list --json --state succeeded
case_ worker_dead_list dead list
case_ worker_dead_list_json dead list --json --queue other

# Shutdown drains: a job running at SIGTERM finishes and is acked.
q enqueue echo.t --payload drained >/dev/null
"$ATCTL" worker --exec 'echo.t=sleep 1; cat' --quiet >"$tmp/drain.out" 2>&1 &
worker_pid=$!
i=0
until "$ATCTL" list --state running | grep -q echo.t || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
kill -TERM "$worker_pid"
wait "$worker_pid"
wrc=$?
worker_pid=
if [ "$wrc" -eq 0 ] && "$ATCTL" list --json --state succeeded | grep -q '"result": "drained"'; then
    ok worker_sigterm_drains_running_job
else
    bad worker_sigterm_drains_running_job "exit $wrc; $(cat "$tmp/drain.out")"
fi

# Past the grace period a running job is given back, not failed.
q enqueue slow2.t --queue grace >/dev/null
"$ATCTL" worker --exec 'slow2.t=sleep 30' --queue grace --grace 300ms --kill-after 200ms --quiet \
    >"$tmp/grace.out" 2>&1 &
worker_pid=$!
i=0
until "$ATCTL" list --state running | grep -q slow2.t || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
kill -INT "$worker_pid"
wait "$worker_pid"
wrc=$?
worker_pid=
if [ "$wrc" -eq 0 ] && "$ATCTL" list --queue grace | grep -q ' ready .* 0/25'; then
    ok worker_sigint_past_grace_releases_job
else
    bad worker_sigint_past_grace_releases_job "exit $wrc; $("$ATCTL" list --queue grace)"
fi

case_ worker_no_exec worker
case_ worker_bad_exec worker --exec cat
case_ worker_duplicate_type worker --exec 't=a' --exec 't=b'
case_ worker_bad_timeout worker --exec 't=true' --timeout soon
case_ worker_bad_concurrency worker --exec 't=true' --concurrency 0

# ------------------------------------------------ dead letters, purge
dead_id=$("$ATCTL" dead list --json --queue other | sed -n 's/^    "id": "\(.*\)",$/\1/p' | head -1)
case_ dead_requeue_one dead requeue "$dead_id"
case_ dead_requeue_not_dead dead requeue "$dead_id"
case_ dead_requeue_all dead requeue --all
case_ dead_requeue_all_queue_json dead requeue --all --queue other --json
case_ dead_requeue_nothing dead requeue
case_ dead_requeue_id_and_all dead requeue "$dead_id" --all
case_ dead_list_with_all dead list --all
case_ dead_missing_subcommand dead
case_ dead_unknown_subcommand dead bury
case_ purge_retention purge
case_ purge_bad_duration purge --older-than 7days
case_ purge_extra_argument purge now
case_ purge_older_than_0 purge --older-than 0s
case_ purge_json purge --json --older-than 7d

# ------------------------------------------------------------- metrics
ATCTL_STORE=sqlite:$tmp/metrics.db
export ATCTL_STORE
for i in 1 2 3; do q enqueue echo.t --payload "m $i" --queue fast >/dev/null; done
q enqueue echo.t --queue later --delay 1h >/dev/null
q cron add tick '*/5 * * * *' --type tick >/dev/null
q cron add tock '@hourly' --type tock >/dev/null
q cron pause tock >/dev/null
q pause later >/dev/null
"$ATCTL" worker --exec 'echo.t=cat' --queue fast --quiet >/dev/null 2>&1 &
worker_pid=$!
wait_for succeeded 3
kill -TERM "$worker_pid"
wait "$worker_pid"
worker_pid=
"$ATCTL" metrics >"$tmp/metrics.txt"
mrc=$?
if [ "$mrc" -eq 0 ]; then ok metrics_exits_0; else bad metrics_exits_0 "exit $mrc"; fi
# The deterministic part of the exposition: counts, not durations.
grep -E '^(asynctask_jobs|asynctask_queue_paused|asynctask_schedules|asynctask_job_sample_limit|asynctask_job_[a-z]+_seconds_(count|bucket\{[^}]*le="\+Inf"))' \
    "$tmp/metrics.txt" >"$tmp/metrics.counts"
if [ -n "$update" ]; then
    cp "$tmp/metrics.counts" "$golden/metrics_counts.txt"
    ok "metrics_counts (golden file written)"
elif diff -u "$golden/metrics_counts.txt" "$tmp/metrics.counts" >"$tmp/diff"; then
    ok metrics_counts
else
    bad metrics_counts "differs from tests/atctl/metrics_counts.txt:"
    sed 's/^/    /' "$tmp/diff"
fi
if grep -q '^# HELP asynctask_job_wait_seconds .*not lifetime totals' "$tmp/metrics.txt"; then
    ok metrics_help_says_sampled
else
    bad metrics_help_says_sampled
fi
case_ metrics_sample_bad metrics --sample 0
case_ metrics_json_refused metrics --json

# A strict reader of the text format 0.0.4: comment and sample syntax,
# TYPE before samples and once per family, families contiguous, no
# duplicate series, histogram buckets with ascending le and cumulative
# counts, the +Inf bucket equal to _count.
check_exposition() {
    awk '
    function fail(msg) { printf "line %d: %s: %s\n", NR, msg, $0; bad = 1; exit 1 }
    function family(n) {
        if (n in type) return n
        b = n; sub(/_(bucket|sum|count)$/, "", b)
        if (b in type && (type[b] == "histogram" || type[b] == "summary")) return b
        return n
    }
    /^# HELP / {
        if ($3 !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*$/) fail("bad metric name in HELP")
        if ($3 in help) fail("second HELP"); help[$3] = 1; next
    }
    /^# TYPE / {
        if ($3 !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*$/) fail("bad metric name in TYPE")
        if ($4 !~ /^(counter|gauge|histogram|summary|untyped)$/ || NF != 4) fail("bad TYPE line")
        if ($3 in type) fail("second TYPE"); if ($3 in seen) fail("TYPE after samples")
        type[$3] = $4; next
    }
    /^#/ { next }
    /^$/ { fail("empty line") }
    {
        line = $0
        if (!match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*/)) fail("bad metric name")
        name = substr(line, 1, RLENGTH); rest = substr(line, RLENGTH + 1); labels = ""
        if (substr(rest, 1, 1) == "{") {
            if (!match(rest, /^\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")*,?)?\}/))
                fail("bad label set")
            labels = substr(rest, 1, RLENGTH); rest = substr(rest, RLENGTH + 1)
        }
        if (rest !~ /^ ([-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?|[-+]Inf|NaN)( -?[0-9]+)?$/)
            fail("bad value")
        value = substr(rest, 2); sub(/ .*/, "", value)
        fam = family(name)
        if (!(fam in type)) fail("sample without TYPE")
        if (fam != cur && (fam in seen)) fail("family not contiguous")
        cur = fam; seen[fam] = 1
        if ((name labels) in series) fail("duplicate series"); series[name labels] = 1
        if (type[fam] == "histogram") {
            key = labels; le = ""
            if (match(key, /le="[^"]*"/)) { le = substr(key, RSTART + 4, RLENGTH - 5); sub(/,?le="[^"]*"/, "", key) }
            key = fam key
            if (name == fam "_bucket") {
                if (le == "") fail("bucket without le")
                lev = (le == "+Inf") ? 1e308 : le + 0
                if ((key in lastle) && lev <= lastle[key]) fail("le not ascending")
                if ((key in lastcnt) && value + 0 < lastcnt[key]) fail("bucket counts not cumulative")
                lastle[key] = lev; lastcnt[key] = value + 0
                if (le == "+Inf") inf[key] = value + 0
            } else if (name == fam "_count") {
                if (!(key in inf)) fail("_count without a +Inf bucket")
                if (inf[key] != value + 0) fail("+Inf bucket differs from _count")
            } else if (name != fam "_sum") fail("unexpected histogram sample")
        }
    }
    END { exit bad }' "$1"
}
if check_exposition "$tmp/metrics.txt" >"$tmp/expo.err"; then ok metrics_strict_format_check; else
    bad metrics_strict_format_check "$(cat "$tmp/expo.err")"; fi
# The checker itself must refuse what it is meant to refuse.
printf '# TYPE x gauge\nx 1\nx 2\n' >"$tmp/dup.txt"
printf '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 0\nh_count 1\n' >"$tmp/hist.txt"
if ! check_exposition "$tmp/dup.txt" >/dev/null && ! check_exposition "$tmp/hist.txt" >/dev/null; then
    ok metrics_checker_refuses_bad_input
else
    bad metrics_checker_refuses_bad_input
fi
if command -v promtool >/dev/null 2>&1; then
    if promtool check metrics <"$tmp/metrics.txt" >"$tmp/promtool.out" 2>&1; then ok metrics_promtool_check; else
        bad metrics_promtool_check "$(cat "$tmp/promtool.out")"; fi
else
    echo "skip metrics_promtool_check (promtool not installed: apt-get install prometheus)"
fi

echo "atctl: $pass passed, $failed failed"
[ "$failed" -eq 0 ]

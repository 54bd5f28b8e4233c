# vm-tests/guest/lib.sh — helpers for the guest side of a VM scenario (POSIX sh, no python/jq in
# the guest). Sourced by the driver (run) and by each boot's check script.
#
# Everything the host learns comes from marker lines, one per line:
#   @@PROVISION-<KIND> <json>
# KIND: BOOT, UNIT, RESULT, DATA, HOST-STEP, LOG-BEGIN/LOG-END (raw lines in between), DONE,
# and from the watchdog/emergency hooks GUEST-TIMEOUT, EMERGENCY. The driver opens the results
# channel (virtio-serial port org.provision.results, else the serial console) on fd 3; a
# virtio port can be open only once, so children inherit fd 3 and never reopen it.
#
# Check-script helpers (the ones scenarios use):
#   check NAME CMD [ARG…]         run CMD; RESULT ok if it exits 0 (output tail kept as detail)
#   check_eq NAME ACTUAL EXPECTED RESULT ok if the two strings are equal
#   result NAME true|false [DETAIL]
#   wait_for SECONDS CMD [ARG…]   poll CMD every 0.2 s until it succeeds; 1 on timeout
#   data KEY JSON                 report a JSON value;  data_cmd KEY CMD… (CMD prints JSON)
#   data_text KEY CMD…            report CMD's output as a JSON string
#   unit_json UNIT                the unit's state as JSON (also sent for provision-* by the driver)
#   host_step NAME [SECONDS]      ask the host to run the boot's host step NAME and wait for it
#   crash_now                     power off at once, no sync, no unmount (crash scenarios)
#   step_of TEXT [PROVISION-ARGS…] the number of the step of `provision [ARGS] --dry-run disks`
#                                 whose description starts with TEXT (fails if none)
# Variables: PT_BOOT (1-based), PT_SCENARIO, PT_HTTP (http://10.0.2.2:PORT of the host's server).

PT_DIR=/usr/lib/provision-test
PT_STATE=/run/provision-test
mkdir -p "$PT_STATE"
if [ -r /etc/provision-test/env ]; then set -a; . /etc/provision-test/env; set +a; fi
export LVM_SUPPRESS_FD_WARNINGS=1
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

# JSON string (with quotes) of $1: escapes \ " and control characters, keeps newlines as \n.
# Plain strings (the common case) take no subprocess: under TCG every fork+exec costs ~0.1 s.
json_str() {
    case $1 in
    *[\\\"]* | *[![:print:]]*)
        printf '%s' "$1" | tr -d '\000-\010\013\014\016-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' \
            -e 's/\t/\\t/g' -e 's/\r//g' | awk 'BEGIN { ORS = ""; print "\"" } NR > 1 { print "\\n" } { print } END { print "\"" }' ;;
    *) printf '"%s"' "$1" ;;
    esac
}

marker() { # marker KIND [JSON]
    if [ -n "${2:-}" ]; then printf '@@PROVISION-%s %s\n' "$1" "$2" >&3; else printf '@@PROVISION-%s\n' "$1" >&3; fi
}

result() { # result NAME true|false [DETAIL]
    echo "$2 $1" >>"$PT_STATE/results"
    read -r _up _ </proc/uptime
    marker RESULT "{\"name\":$(json_str "$1"),\"ok\":$2,\"t\":$_up,\"detail\":$(json_str "${3:-}")}"
}

check() { # check NAME CMD [ARG…]
    _name=$1; shift
    _out=$("$@" 2>&1) && _rc=0 || _rc=$?
    case $_out in *"
"*"
"*"
"*) _out=$(printf '%s' "$_out" | tail -n 20) ;; esac
    if [ "$_rc" -eq 0 ]; then result "$_name" true "$_out"; else result "$_name" false "exit $_rc: $_out"; fi
    return 0
}

check_eq() { # check_eq NAME ACTUAL EXPECTED
    if [ "$2" = "$3" ]; then result "$1" true "$2"; else result "$1" false "got '$2', want '$3'"; fi
}

wait_for() { # wait_for SECONDS CMD [ARG…]
    _end=$(( $(cut -d. -f1 /proc/uptime) + $1 )); shift
    until "$@" >/dev/null 2>&1; do
        [ "$(cut -d. -f1 /proc/uptime)" -lt "$_end" ] || return 1
        sleep 0.2
    done
}

data() { marker DATA "{\"key\":$(json_str "$1"),\"value\":$2}"; }

data_cmd() { # data_cmd KEY CMD… — CMD prints JSON (newlines are dropped: JSON strings hold none)
    _k=$1; shift
    if _out=$("$@" 2>/tmp/.pt-err); then
        _out=$(printf '%s' "$_out" | tr -d '\n')
        data "$_k" "${_out:-null}"
    else
        data "$_k" "{\"error\":$(json_str "exit $?: $(cat /tmp/.pt-err)")}"
    fi
}

data_text() { _k=$1; shift; data "$_k" "$(json_str "$("$@" 2>&1)")"; }

unit_json() { # the unit's state, e.g. {"unit":"x.service","LoadState":"loaded",…}
    systemctl show -p LoadState,ActiveState,SubState,Result,ExecMainStatus,ExecMainCode,UnitFileState "$1" 2>/dev/null |
        awk -v u="$1" 'BEGIN { ORS = ""; print "{\"unit\":\"" u "\"" }
            { i = index($0, "="); k = substr($0, 1, i - 1); v = substr($0, i + 1); gsub(/["\\]/, "", v)
              if (v ~ /^-?[0-9]+$/) print ",\"" k "\":" v; else print ",\"" k "\":\"" v "\"" }
            END { print "}" }'
}

host_step() { # host_step NAME [SECONDS] — the host runs the step, we wait for its verdict
    marker HOST-STEP "{\"name\":$(json_str "$1")}"
    _end=$(( $(cut -d. -f1 /proc/uptime) + ${2:-120} ))
    while [ "$(cut -d. -f1 /proc/uptime)" -lt "$_end" ]; do
        if curl -fsS -m 5 -o "$PT_STATE/step.$1" "$PT_HTTP/_harness/step/$1" 2>/dev/null; then
            return 0
        fi
        sleep 0.5
    done
    result "host-step $1" false "no answer from the host within ${2:-120} s"
    return 1
}

step_of() { # step_of TEXT [PROVISION-ARGS…]
    _t=$1; shift
    provision --dry-run "$@" disks 2>/dev/null | awk -v t="$_t" '
        match($0, /^ *[0-9]+\. \[[A-Za-z]+\] /) {
            d = substr($0, RLENGTH + 1)
            if (index(d, t) == 1) { n = $1; sub(/\.$/, "", n); print n; found = 1; exit }
        }
        END { exit !found }'
}

crash_now() {
    echo 1 >/proc/sys/kernel/sysrq
    echo o >/proc/sysrq-trigger
}

# Dump what an investigator needs (the provision units' journal, failed units, jobs) between
# LOG markers, on fd 3.
dump_logs() {
    marker LOG-BEGIN "{\"title\":\"systemctl --failed\"}"
    systemctl --failed --no-pager --plain --no-legend >&3 2>&1
    marker LOG-END
    marker LOG-BEGIN "{\"title\":\"systemctl list-jobs\"}"
    systemctl list-jobs --no-pager >&3 2>&1
    marker LOG-END
    marker LOG-BEGIN "{\"title\":\"journalctl -b -u provision-*\"}"
    journalctl -b --no-pager -o short-monotonic -u 'provision-*' >&3 2>&1
    marker LOG-END
    for u in $(systemctl --failed --plain --no-legend 2>/dev/null | awk '{print $1}' | grep -v '^provision-'); do
        marker LOG-BEGIN "{\"title\":\"journalctl -b -u $u\"}"
        journalctl -b --no-pager -o short-monotonic -u "$u" | tail -n 50 >&3 2>&1
        marker LOG-END
    done
}

#!/usr/bin/env bash
# patchpilot-agent.sh: applies OS security updates on one Kubernetes node (apt and dnf families) and prints a report.
#
# Runs as root on the node: a privileged Job enters the host's namespaces and runs it from its ConfigMap
# (src/cluster/kube/job-manifest.ts: `nsenter --target 1 ... -- bash /proc/self/fd/9 [options]`), or by hand over SSH. Human-readable log lines go to stderr; stdout carries exactly one line, the agent report
# (src/engine/report.ts):
#   {"result":"patched|no-updates|failed","upgraded":[{"name","from","to"}],"held":[],"rebootRequired":bool,
#    "rebootPackages":[],"error":{"code","message"}|null,"durationSeconds":n}
#
# Options:
#   --lock-timeout SECONDS  how long to wait for another package manager's lock (default 600); apt gets it as
#                           DPkg::Lock::Timeout (lock-frontend), holds and `dpkg --configure -a` retry within it,
#                           dnf waits for other dnf/yum/rpm processes within it
#   --hold "PKG ..."        packages never to upgrade (default: kubeadm kubectl kubelet kubernetes-cni cri-tools
#                           containerd runc); only the installed ones are held (apt-mark hold, restored on exit) or
#                           excluded (dnf --exclude). An entry may be a pattern (kernel*, kernel-[0-9]*): apt holds
#                           each installed package dpkg-query matches; dnf gets --exclude=PATTERN when an installed
#                           name matches it. Entries are never expanded by this shell against file names
#   --min-free-mb MB        fail with DISK_FULL when / or the package cache has less free space (default 50); apt
#                           also compares the download size with the free space in /var/cache/apt/archives
#   --security-only         only updates from security sources (the default)
#   --all                   every available update (apt: the node's own sources; dnf: without --security); holds
#                           still apply
#   --download-only         download what the upgrade would install into the package cache and install nothing
#                           (prefetch before a maintenance window); sets no holds; the result is "no-updates"
#   --dry-run               change nothing (the scan before a cordon): `upgraded` lists what would be upgraded,
#                           result is "patched" when something would change and "no-updates" otherwise;
#                           rebootRequired: a reboot is pending already or applying the upgrades would need one.
#                           apt refreshes package lists into a private temporary directory; no holds are set.
#
# Security-only: apt reads only the suites ending in -security (or the old /updates form) from sources.list,
# sources.list.d/*.list and deb822 sources.list.d/*.sources, copies them into a private temporary source list, and
# ignores every other source (-o Dir::Etc::SourceParts, APT::Get::List-Cleanup=0 keeps the other suites' lists).
# dnf uses `upgrade --security` (updateinfo). No keyserver is ever contacted; /etc/apt is never modified.
#
# Exit codes: 0 patched or no-updates; 1 failed (the report's error says why: LOCK_TIMEOUT, REPO_UNREACHABLE,
# DISK_FULL, DPKG_INTERRUPTED, POSTINST_FAILED, UNSUPPORTED_OS, NOT_ROOT, NO_SECURITY_SOURCES,
# PACKAGE_MANAGER_FAILED); 2 usage error (report code USAGE); 128+N killed by signal N (report code AGENT_CRASHED,
# holds restored first). Every exit path restores holds and removes the temporary files (trap on EXIT INT TERM HUP).
set -uo pipefail
shopt -s nullglob

exec 3>&1 1>&2 # fd 3: the report; everything else goes to stderr
export LC_ALL=C

LOCK_TIMEOUT=600
HOLD_LIST="kubeadm kubectl kubelet kubernetes-cni cri-tools containerd runc"
MIN_FREE_MB=50
DRY_RUN=0
SECURITY_ONLY=1
DOWNLOAD_ONLY=0

FAMILY=""
TMPD=""
REPORTED=0
CLEANED=0
SNAPSHOT_TAKEN=0
REBOOT=false
declare -a HELD=() WE_HELD=() EXCLUDES=() REBOOT_PKGS=() UP_NAMES=() UP_FROM=() UP_TO=()
declare -A BEFORE=() AFTER=() AFTER_OK=()

# Milliseconds since the epoch. Deadlines use it rather than bash's SECONDS, which counts whole seconds from the
# shell's start and can expire a lock timeout almost a second early (and EPOCHREALTIME needs bash 5; RHEL 8 has 4.4).
now_ms() { date +%s%3N; }
deadline_after() { printf '%s' $(($(now_ms) + LOCK_TIMEOUT * 1000)); }
past() { (($(now_ms) >= $1)); }

log() { printf '[%s] patchpilot-agent: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

json_str() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  s=${s//$'\t'/\\t}
  s=$(printf '%s' "$s" | tr -d '\000-\037\177')
  printf '"%s"' "$s"
}

json_arr() { # json_arr item...
  local out="" x
  for x in "$@"; do out+="${out:+,}$(json_str "$x")"; done
  printf '[%s]' "$out"
}

emit_report() { # emit_report result code message
  [[ $REPORTED -eq 1 ]] && return 0
  REPORTED=1
  local result=$1 code=${2:-} msg=${3:-} up="" i err=null
  for i in "${!UP_NAMES[@]}"; do
    up+="${up:+,}{\"name\":$(json_str "${UP_NAMES[$i]}"),\"from\":$(json_str "${UP_FROM[$i]}"),\"to\":$(json_str "${UP_TO[$i]}")}"
  done
  if [[ -n $code ]]; then err="{\"code\":$(json_str "$code"),\"message\":$(json_str "${msg:0:1000}")}"; fi
  printf '{"result":"%s","upgraded":[%s],"held":%s,"rebootRequired":%s,"rebootPackages":%s,"error":%s,"durationSeconds":%d}\n' \
    "$result" "$up" "$(json_arr "${HELD[@]}")" "$REBOOT" "$(json_arr "${REBOOT_PKGS[@]}")" "$err" "$SECONDS" >&3
}

# Retries "$@" (a command that fails at once when the dpkg lock is taken, e.g. apt-mark) until LOCK_TIMEOUT.
# Returns 0 on success, 1 on a non-lock failure, 3 when the lock stayed taken. Output in $RETRY_OUT.
retry_on_lock() {
  local deadline rc
  deadline=$(deadline_after)
  while :; do
    RETRY_OUT=$("$@" 2>&1)
    rc=$?
    [[ -n $RETRY_OUT ]] && printf '%s\n' "$RETRY_OUT" >&2
    [[ $rc -eq 0 ]] && return 0
    if ! grep -qiE 'lock|locked by another process' <<<"$RETRY_OUT"; then return 1; fi
    if past "$deadline"; then return 3; fi
    sleep 1
  done
}

restore_holds() {
  [[ ${#WE_HELD[@]} -eq 0 ]] && return 0
  log "restoring hold state: unhold ${WE_HELD[*]}"
  local saved=$LOCK_TIMEOUT
  ((LOCK_TIMEOUT < 60)) && LOCK_TIMEOUT=60
  if retry_on_lock apt-mark unhold "${WE_HELD[@]}"; then WE_HELD=(); else log "WARNING: could not unhold ${WE_HELD[*]}"; fi
  LOCK_TIMEOUT=$saved
}

cleanup() {
  [[ $CLEANED -eq 1 ]] && return 0
  CLEANED=1
  [[ $FAMILY == apt ]] && restore_holds
  [[ -n $TMPD && -d $TMPD ]] && rm -rf -- "$TMPD"
  return 0
}

# finish result [code message [exit]]: restores everything, prints the report, exits.
finish() {
  local result=$1 code=${2:-} msg=${3:-} rc=${4:-}
  trap '' INT TERM HUP
  if [[ $SNAPSHOT_TAKEN -eq 1 && $DRY_RUN -eq 0 ]]; then take_snapshot AFTER && compute_upgraded; fi
  cleanup
  if [[ -n $code ]]; then log "FAILED: $code: $msg"; else log "done: $result (${#UP_NAMES[@]} upgraded)"; fi
  emit_report "$result" "$code" "$msg"
  if [[ -z $rc ]]; then if [[ $result == failed ]]; then rc=1; else rc=0; fi; fi
  exit "$rc"
}
fail() { finish failed "$1" "$2" "${3:-1}"; }

on_signal() { fail AGENT_CRASHED "agent killed by signal $1" "$2"; }
on_exit() {
  local rc=$?
  cleanup
  if [[ $REPORTED -eq 0 ]]; then emit_report failed AGENT_CRASHED "agent exited unexpectedly (status $rc)"; fi
}
trap on_exit EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM
trap 'on_signal HUP 129' HUP

usage() { sed -n '2,30p' "${BASH_SOURCE[0]}" 2>/dev/null | sed 's/^# \{0,1\}//' >&2; }

while [[ $# -gt 0 ]]; do
  case $1 in
    --dry-run) DRY_RUN=1 ;;
    --security-only) SECURITY_ONLY=1 ;;
    --all) SECURITY_ONLY=0 ;;
    --download-only) DOWNLOAD_ONLY=1 ;;
    --lock-timeout) LOCK_TIMEOUT=${2:-}; shift ;;
    --lock-timeout=*) LOCK_TIMEOUT=${1#*=} ;;
    --hold) HOLD_LIST=${2-}; shift ;;
    --hold=*) HOLD_LIST=${1#*=} ;;
    --min-free-mb) MIN_FREE_MB=${2:-}; shift ;;
    --min-free-mb=*) MIN_FREE_MB=${1#*=} ;;
    -h | --help) usage; REPORTED=1; exit 0 ;;
    *) fail USAGE "unknown option: $1" 2 ;;
  esac
  shift
done
[[ $LOCK_TIMEOUT =~ ^[0-9]+$ ]] || fail USAGE "--lock-timeout needs a whole number of seconds, got '$LOCK_TIMEOUT'" 2
[[ $MIN_FREE_MB =~ ^[0-9]+$ ]] || fail USAGE "--min-free-mb needs a whole number, got '$MIN_FREE_MB'" 2
read -r -a HOLD_NAMES <<<"${HOLD_LIST//,/ }"

[[ $(id -u) -eq 0 ]] || fail NOT_ROOT "patchpilot-agent must run as root (uid is $(id -u))"

# ---------------------------------------------------------------------------------------------------------------
# Holds

# The hold list against what is installed. An entry may be a pattern (kernel*) or carry an architecture (libfoo:i386).
# apt: the entry reaches dpkg-query as one argument, and apt-mark gets the names dpkg-query gives with the architecture
# wherever dpkg shows one (${binary:Package}, e.g. libc6:i386), so a foreign package is held, not the native one of the
# same name. dnf: the entry is matched by [[ == ]] against rpm's installed names. Never by this shell against file
# names. HELD gets the installed names (WE_HELD those apt-mark is to hold); dnf's EXCLUDES gets --exclude=ENTRY per
# entry that matched, patterns as written.
apt_resolve_holds() {
  local p name st
  local -A seen=()
  for p in "${HOLD_NAMES[@]}"; do
    while read -r name st; do
      [[ -z $name || -n ${seen[$name]:-} ]] && continue
      seen[$name]=1
      case $st in
        ii) HELD+=("$name"); [[ $DRY_RUN -eq 0 && $DOWNLOAD_ONLY -eq 0 ]] && WE_HELD+=("$name") ;;
        hi) HELD+=("$name") ;; # already held by someone else: left as it is
      esac
    done < <(dpkg-query -W -f='${binary:Package} ${db:Status-Abbrev}\n' "$p" 2>/dev/null)
  done
}

# rpm is asked for every installed name and the entries are matched here: `rpm -qa PATTERN` reads its pattern as a
# regex (kube?et is ^kube?et$, [!d] a class of "!" and "d"), not as the glob dnf's --exclude matches. [[ == ]] with
# the entry unquoted is that glob, against the name only (never file names).
dnf_resolve_holds() {
  local p name matched
  local -a installed=()
  local -A seen=()
  mapfile -t installed < <(rpm -qa --qf '%{NAME}\n' 2>/dev/null)
  for p in "${HOLD_NAMES[@]}"; do
    matched=0
    for name in "${installed[@]}"; do
      [[ -n $name && $name == $p ]] || continue
      matched=1
      [[ -n ${seen[$name]:-} ]] && continue
      seen[$name]=1
      HELD+=("$name")
    done
    [[ $matched -eq 1 ]] && EXCLUDES+=("--exclude=$p")
  done
}

# ---------------------------------------------------------------------------------------------------------------
# Package snapshots: name -> version of every installed package; `upgraded` is what changed between two of them.

take_snapshot() { # take_snapshot BEFORE|AFTER
  local -n snap=$1
  snap=()
  local name ver st
  if [[ $FAMILY == apt ]]; then
    [[ $1 == AFTER ]] && AFTER_OK=()
    while IFS=$'\t' read -r name ver st; do
      [[ -z $ver ]] && continue
      case ${st:1:1} in n | c) continue ;; esac # not installed, config-files only
      snap[$name]=$ver
      if [[ $1 == AFTER && ${st:1:1} == i ]]; then AFTER_OK[$name]=1; fi
    done < <(dpkg-query -W -f='${Package}\t${Version}\t${db:Status-Abbrev}\n' 2>/dev/null)
  else
    # install-only packages (kernel) have several versions: keep the newest
    while read -r name ver; do
      snap[$name]=$ver
      [[ $1 == AFTER ]] && AFTER_OK[$name]=1
    done < <(rpm -qa --qf '%{NAME} %|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\n' 2>/dev/null | sort -k1,1 -k2,2V)
  fi
  return 0
}

# Packages installed before whose version changed and that ended fully installed (dpkg "ii"/"hi"; a package left
# half-configured by a failing postinst is not in the list).
compute_upgraded() {
  UP_NAMES=() UP_FROM=() UP_TO=()
  local name
  while read -r name; do
    [[ -z $name ]] && continue
    local to=${AFTER[$name]:-}
    if [[ -n $to && $to != "${BEFORE[$name]}" && -n ${AFTER_OK[$name]:-} ]]; then
      UP_NAMES+=("$name") UP_FROM+=("${BEFORE[$name]}") UP_TO+=("$to")
    fi
  done < <(printf '%s\n' "${!BEFORE[@]}" | sort)
}

free_kb() { df -Pk "$1" 2>/dev/null | awk 'NR==2 {print $4}'; }

check_min_free() { # check_min_free dir...
  local d kb
  for d in "$@"; do
    [[ -d $d ]] || continue
    kb=$(free_kb "$d")
    [[ -z $kb ]] && continue
    if ((kb < MIN_FREE_MB * 1024)); then
      fail DISK_FULL "only $((kb / 1024)) MB free in $d, below --min-free-mb $MIN_FREE_MB"
    fi
  done
}

# The first line matching a pattern in a log, else its last "E:"/"Error" line, else its last line.
pick_message() { # pick_message file pattern
  local m
  m=$(grep -m1 -A1 -E "$2" "$1" 2>/dev/null | tr '\n' ' ' | sed -E 's/ +/ /g; s/ $//')
  [[ -z $m ]] && m=$(grep -E '^(E:|Error)' "$1" 2>/dev/null | tail -n1)
  [[ -z $m ]] && m=$(grep -v '^[[:space:]]*$' "$1" 2>/dev/null | tail -n1)
  printf '%s' "$m"
}

RE_LOCK='Could not get lock|Unable to acquire the dpkg frontend lock|Unable to lock directory|locked by another process|dpkg frontend lock'
RE_DISK="You don't have enough free space|No space left on device|Failed writing received data to disk|Curl error \(23\)|needs [0-9.]+ ?[KMG]?B more space|Disk Requirements"
RE_POSTINST='(post|pre)-(installation|removal) script subprocess returned error|Error in (POSTIN|PREIN|POSTTRANS|PRETRANS|POSTUN|PREUN) scriptlet|scriptlet failed|Sub-process /usr/bin/dpkg returned an error code'
RE_REPO='Failed to fetch|Could not connect|Connection refused|Unable to connect|Temporary failure resolving|Could not resolve|no longer has a Release file|Failed to download metadata|Cannot download repomd|Curl error|Cannot download|Network is unreachable|Some index files failed to download'

# classify log-file default-code: prints "CODE<TAB>message".
classify() {
  local f=$1 code
  if grep -qE "$RE_LOCK" "$f"; then code=LOCK_TIMEOUT; m=$(pick_message "$f" "$RE_LOCK")
  elif grep -qE "$RE_DISK" "$f"; then code=DISK_FULL; m=$(pick_message "$f" "$RE_DISK")
  elif grep -qE "dpkg was interrupted" "$f"; then code=DPKG_INTERRUPTED; m=$(pick_message "$f" 'dpkg was interrupted')
  elif grep -qE "$RE_POSTINST" "$f"; then code=POSTINST_FAILED; m=$(pick_message "$f" 'error processing package|Error in [A-Z]+ scriptlet|scriptlet failed')
  elif grep -qE "$RE_REPO" "$f"; then code=REPO_UNREACHABLE; m=$(pick_message "$f" '^(E|Error|W):.*|Failed to download metadata')
  else code=$2; m=$(pick_message "$f" '^(E:|Error)')
  fi
  printf '%s\t%s' "$code" "$m"
}

run_logged() { # run_logged logfile cmd...: runs cmd, its output to stderr and the log; returns cmd's status
  local f=$1
  shift
  "$@" 2>&1 | tee "$f" >&2
  return "${PIPESTATUS[0]}"
}

fail_from_log() { # fail_from_log logfile default-code what
  local c
  c=$(classify "$1" "$2")
  fail "${c%%$'\t'*}" "$3: ${c#*$'\t'}"
}

# ---------------------------------------------------------------------------------------------------------------
# apt family

# Prints the security suites of classic one-line sources (deb lines whose suite ends in -security or /updates).
classic_security_lines() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -r $f ]] || continue
    awk '
      { sub(/#.*/, "") }
      $1 != "deb" { next }
      {
        i = 2
        if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }   # skip [options]
        suite = $(i + 1)
        if (suite ~ /-security\/?$/ || suite ~ /\/updates\/?$/) print
      }' "$f"
  done
}

# Prints deb822 stanzas reduced to their security suites (Types: deb only, Enabled: no skipped).
deb822_security_stanzas() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -r $f ]] || continue
    awk '
      function flush(   n, i, k, out, suites, types, keep) {
        if (nf == 0) return
        keep = 1; suites = ""; types = 0
        for (i = 1; i <= nf; i++) {
          k = tolower(key[i])
          if (k == "enabled" && tolower(val[i]) ~ /^[[:space:]]*no/) keep = 0
          if (k == "types") { if (val[i] ~ /(^|[[:space:]])deb([[:space:]]|$)/) types = 1; else keep = 0 }
          if (k == "suites") {
            n = split(val[i], s, /[[:space:]]+/)
            for (j = 1; j <= n; j++) if (s[j] ~ /-security\/?$/ || s[j] ~ /\/updates\/?$/) suites = suites " " s[j]
          }
        }
        if (keep && types && suites != "") {
          for (i = 1; i <= nf; i++) {
            k = tolower(key[i])
            if (k == "suites") out = out "Suites:" suites "\n"
            else if (k == "types") out = out "Types: deb\n"
            else out = out key[i] ":" raw[i]
          }
          printf "%s\n", out
        }
        nf = 0
      }
      /^[[:space:]]*#/ { next }
      /^[[:space:]]*$/ { flush(); next }
      /^[[:space:]]/ { if (nf > 0) raw[nf] = raw[nf] $0 "\n"; next }   # continuation line (e.g. an inline key)
      {
        nf++
        p = index($0, ":")
        key[nf] = substr($0, 1, p - 1)
        raw[nf] = substr($0, p + 1) "\n"
        val[nf] = substr($0, p + 1)
      }
      END { flush() }' "$f"
  done
}

apt_recover_dpkg() {
  local audit deadline out rc
  deadline=$(deadline_after)
  while :; do
    audit=$(dpkg --audit 2>&1)
    [[ -z $audit ]] && return 0
    log "dpkg reports unfinished packages; running dpkg --configure -a"
    printf '%s\n' "$audit" >&2
    out=$(dpkg --force-confdef --force-confold --configure -a 2>&1)
    rc=$?
    printf '%s\n' "$out" >&2
    if [[ $rc -eq 0 ]]; then
      audit=$(dpkg --audit 2>&1)
      [[ -z $audit ]] && { log "dpkg --configure -a repaired the interrupted dpkg run"; return 0; }
      fail DPKG_INTERRUPTED "dpkg --configure -a left unfinished packages: $(head -n3 <<<"$audit")"
    fi
    if grep -qE "$RE_LOCK" <<<"$out"; then
      past "$deadline" && fail LOCK_TIMEOUT "dpkg lock still taken after ${LOCK_TIMEOUT}s: $(grep -m1 -E "$RE_LOCK" <<<"$out")"
      sleep 1
      continue
    fi
    fail DPKG_INTERRUPTED "dpkg --configure -a could not repair the interrupted dpkg run: $(grep -m1 -E 'error|Errors' <<<"$out")"
  done
}

apt_main() {
  export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 APT_LISTCHANGES_FRONTEND=none UCF_FORCE_CONFFOLD=1
  TMPD=$(mktemp -d /tmp/patchpilot-agent.XXXXXX) || fail PACKAGE_MANAGER_FAILED "cannot create a temporary directory"
  local -a opts=(-q -o APT::Get::List-Cleanup=0 -o "DPkg::Lock::Timeout=$LOCK_TIMEOUT" -o Dpkg::Use-Pty=0
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  if [[ $SECURITY_ONLY -eq 1 ]]; then
    mkdir -p "$TMPD/sources.list.d"
    classic_security_lines >"$TMPD/security.list"
    deb822_security_stanzas >"$TMPD/sources.list.d/security.sources"
    [[ -s $TMPD/sources.list.d/security.sources ]] || rm -f "$TMPD/sources.list.d/security.sources"
    if [[ ! -s $TMPD/security.list && ! -e $TMPD/sources.list.d/security.sources ]]; then
      fail NO_SECURITY_SOURCES "no -security suite in /etc/apt/sources.list, sources.list.d/*.list or *.sources"
    fi
    log "security sources:"
    cat "$TMPD/security.list" "$TMPD"/sources.list.d/*.sources >&2
    opts+=(-o "Dir::Etc::SourceList=$TMPD/security.list" -o "Dir::Etc::SourceParts=$TMPD/sources.list.d")
  else
    log "all sources (--all)"
  fi
  if [[ $DRY_RUN -eq 1 ]]; then
    # Package lists go to a private directory and no cache file is written: the dry run changes nothing.
    mkdir -p "$TMPD/lists/partial"
    opts+=(-o "Dir::State::Lists=$TMPD/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=)
  fi

  take_snapshot BEFORE
  SNAPSHOT_TAKEN=1
  apt_resolve_holds

  if [[ $DRY_RUN -eq 0 ]]; then
    check_min_free / /var/cache/apt/archives
    apt_recover_dpkg
    if [[ ${#WE_HELD[@]} -gt 0 ]]; then
      log "holding ${WE_HELD[*]}"
      local to_hold=("${WE_HELD[@]}")
      WE_HELD=()
      retry_on_lock apt-mark hold "${to_hold[@]}"
      case $? in
        0) WE_HELD=("${to_hold[@]}") ;;
        3) fail LOCK_TIMEOUT "apt-mark hold: dpkg lock still taken after ${LOCK_TIMEOUT}s: $(grep -m1 -E "$RE_LOCK" <<<"$RETRY_OUT")" ;;
        *) apt-mark unhold "${to_hold[@]}" >/dev/null 2>&1; fail PACKAGE_MANAGER_FAILED "apt-mark hold failed: $RETRY_OUT" ;;
      esac
    fi
  fi

  log "apt-get update (security sources only)"
  run_logged "$TMPD/update.log" apt-get "${opts[@]}" --error-on=any update || fail_from_log "$TMPD/update.log" REPO_UNREACHABLE "apt-get update"

  if [[ $DRY_RUN -eq 1 ]]; then
    run_logged "$TMPD/sim.log" apt-get "${opts[@]}" -s upgrade --with-new-pkgs || fail_from_log "$TMPD/sim.log" PACKAGE_MANAGER_FAILED "apt-get -s upgrade"
    local name old new held
    while read -r name old new; do
      for held in "${HELD[@]}"; do [[ $name == "$held" ]] && continue 2; done
      [[ -z ${BEFORE[$name]:-} ]] && continue # a new package, not an upgrade
      UP_NAMES+=("$name") UP_FROM+=("$old") UP_TO+=("$new")
    done < <(sed -nE 's/^Inst ([^ ]+) \[([^]]+)\] \(([^ ]+) .*/\1 \2 \3/p' "$TMPD/sim.log")
    [[ -e /var/run/reboot-required ]] && REBOOT=true
    predict_reboot '^(linux-image|linux-modules|linux-generic|linux-virtual|linux-aws|linux-azure|linux-gcp|linux-kvm)'
    if [[ ${#UP_NAMES[@]} -gt 0 ]]; then finish patched; else finish no-updates; fi
  fi

  # Disk preflight: the download size apt reports against the free space in the archive cache.
  local need_bytes avail_kb
  need_bytes=$(apt-get "${opts[@]}" -qq -y --print-uris upgrade --with-new-pkgs 2>/dev/null | awk '/^'\''/ {s += $3} END {print s + 0}')
  avail_kb=$(free_kb /var/cache/apt/archives)
  if [[ -n $avail_kb ]] && ((need_bytes / 1024 + 1 > avail_kb)); then
    fail DISK_FULL "need $((need_bytes / 1024 + 1)) kB in /var/cache/apt/archives to download updates, $avail_kb kB free"
  fi

  if [[ $DOWNLOAD_ONLY -eq 1 ]]; then
    log "apt-get --download-only upgrade"
    run_logged "$TMPD/download.log" apt-get "${opts[@]}" -y --download-only upgrade --with-new-pkgs || fail_from_log "$TMPD/download.log" PACKAGE_MANAGER_FAILED "apt-get --download-only upgrade"
    finish no-updates
  fi

  log "apt-get upgrade ($([[ $SECURITY_ONLY -eq 1 ]] && printf 'security only' || printf 'all sources'); held: ${HELD[*]:-none})"
  local rc
  run_logged "$TMPD/upgrade.log" apt-get "${opts[@]}" -y upgrade --with-new-pkgs
  rc=$?
  if [[ $rc -ne 0 ]] && grep -q 'dpkg was interrupted' "$TMPD/upgrade.log"; then
    apt_recover_dpkg
    run_logged "$TMPD/upgrade.log" apt-get "${opts[@]}" -y upgrade --with-new-pkgs
    rc=$?
  fi
  log "apt-get upgrade exited $rc"

  if [[ -e /var/run/reboot-required ]]; then
    REBOOT=true
    if [[ -r /var/run/reboot-required.pkgs ]]; then mapfile -t REBOOT_PKGS < <(grep -v '^[[:space:]]*$' /var/run/reboot-required.pkgs | sort -u); fi
  fi
  [[ $rc -ne 0 ]] && fail_from_log "$TMPD/upgrade.log" PACKAGE_MANAGER_FAILED "apt-get upgrade"
  take_snapshot AFTER
  compute_upgraded
  SNAPSHOT_TAKEN=0
  if [[ ${#UP_NAMES[@]} -gt 0 ]]; then finish patched; else finish no-updates; fi
}

# ---------------------------------------------------------------------------------------------------------------
# dnf family

dnf_lock_holder() { # prints "pid (comm)" of another running package manager, if any
  local d comm
  for d in /proc/[0-9]*; do
    [[ ${d#/proc/} == "$$" || ${d#/proc/} == "$BASHPID" ]] && continue
    comm=$(cat "$d/comm" 2>/dev/null) || continue
    case $comm in dnf | yum | rpm | dnf-automatic | microdnf | yum-cron) printf '%s (%s)' "${d#/proc/}" "$comm"; return 0 ;; esac
  done
  return 1
}

dnf_main() {
  TMPD=$(mktemp -d /tmp/patchpilot-agent.XXXXXX) || fail PACKAGE_MANAGER_FAILED "cannot create a temporary directory"
  take_snapshot BEFORE
  SNAPSHOT_TAKEN=1
  dnf_resolve_holds
  [[ $DRY_RUN -eq 0 ]] && check_min_free / /var/cache/dnf

  local deadline holder
  deadline=$(deadline_after)
  while holder=$(dnf_lock_holder); do
    past "$deadline" && fail LOCK_TIMEOUT "another package manager is still running after ${LOCK_TIMEOUT}s: process $holder"
    log "waiting for process $holder to finish"
    sleep 1
  done

  local -a dnf=(dnf -y --refresh --setopt=skip_if_unavailable=False)
  if [[ $DRY_RUN -eq 1 ]]; then
    local rc name ver
    run_logged "$TMPD/check.log" "${dnf[@]}" check-update $([[ $SECURITY_ONLY -eq 1 ]] && printf -- --security) "${EXCLUDES[@]}"
    rc=$?
    [[ $rc -ne 0 && $rc -ne 100 ]] && fail_from_log "$TMPD/check.log" PACKAGE_MANAGER_FAILED "dnf check-update --security"
    while read -r name ver; do
      name=${name%.*}
      [[ -z ${BEFORE[$name]:-} ]] && continue
      UP_NAMES+=("$name") UP_FROM+=("${BEFORE[$name]}") UP_TO+=("$ver")
    done < <(awk '/^(Obsoleting|Security:)/ {exit} NF == 3 && $1 ~ /\./ && $2 ~ /^[0-9]/ {print $1, $2}' "$TMPD/check.log" | sort -u)
    dnf_reboot_check
    predict_reboot '^(kernel|kernel-core|kernel-rt|glibc|linux-firmware|systemd|dbus|dbus-broker|dbus-daemon|microcode_ctl)$'
    if [[ ${#UP_NAMES[@]} -gt 0 ]]; then finish patched; else finish no-updates; fi
  fi

  local -a scope=()
  [[ $SECURITY_ONLY -eq 1 ]] && scope=(--security)
  if [[ $DOWNLOAD_ONLY -eq 1 ]]; then
    log "dnf upgrade --downloadonly ${scope[*]}"
    run_logged "$TMPD/download.log" "${dnf[@]}" upgrade --downloadonly "${scope[@]}" "${EXCLUDES[@]}" || fail_from_log "$TMPD/download.log" PACKAGE_MANAGER_FAILED "dnf upgrade --downloadonly"
    SNAPSHOT_TAKEN=0
    finish no-updates
  fi

  log "dnf upgrade ${scope[*]} (excluded: ${HELD[*]:-none})"
  local rc
  run_logged "$TMPD/upgrade.log" "${dnf[@]}" upgrade "${scope[@]}" "${EXCLUDES[@]}"
  rc=$?
  log "dnf upgrade exited $rc"
  take_snapshot AFTER
  compute_upgraded
  SNAPSHOT_TAKEN=0
  dnf_reboot_check
  [[ $rc -ne 0 ]] && fail_from_log "$TMPD/upgrade.log" PACKAGE_MANAGER_FAILED "dnf upgrade --security"
  # dnf exits 0 when a scriptlet fails; the package is installed but its setup did not finish.
  if grep -qE "$RE_POSTINST" "$TMPD/upgrade.log"; then
    fail POSTINST_FAILED "dnf upgrade --security: $(pick_message "$TMPD/upgrade.log" 'Error in [A-Z]+ scriptlet|scriptlet failed')"
  fi
  if [[ ${#UP_NAMES[@]} -gt 0 ]]; then finish patched; else finish no-updates; fi
}

# Dry run: applying the listed upgrades would need a reboot when one of them matches PATTERN (kernel packages on apt,
# which install /var/run/reboot-required; what `needs-restarting -r` lists on dnf).
predict_reboot() {
  local name
  for name in "${UP_NAMES[@]}"; do
    if [[ $name =~ $1 ]]; then REBOOT=true REBOOT_PKGS+=("$name"); fi
  done
}

# needs-restarting -r: 1 = reboot needed (lists the packages), 0 = not. Without the plugin: compare the running
# kernel with the newest installed kernel package.
dnf_reboot_check() {
  local out rc
  out=$(dnf -q needs-restarting -r 2>&1)
  rc=$?
  printf '%s\n' "$out" >&2
  if [[ $rc -eq 1 ]] && grep -q 'Reboot is required' <<<"$out"; then
    REBOOT=true
    mapfile -t REBOOT_PKGS < <(sed -nE 's/^[[:space:]]*\*[[:space:]]+([^[:space:]]+).*/\1/p' <<<"$out" | sort -u)
  elif [[ $rc -ne 0 ]]; then
    local newest
    newest=$(rpm -q kernel kernel-core --qf '%{VERSION}-%{RELEASE}.%{ARCH}\n' 2>/dev/null | grep -v 'not installed' | sort -V | tail -n1)
    if [[ -n $newest && $newest != "$(uname -r)" ]]; then REBOOT=true REBOOT_PKGS=(kernel); fi
  fi
}

# ---------------------------------------------------------------------------------------------------------------

OS_ID="" OS_VERSION=""
if [[ -r /etc/os-release ]]; then
  OS_ID=$(. /etc/os-release && printf '%s' "${ID:-}")
  OS_VERSION=$(. /etc/os-release && printf '%s' "${VERSION_ID:-}")
fi
case $OS_ID in
  ubuntu | debian) FAMILY=apt; command -v apt-get >/dev/null && command -v dpkg >/dev/null || FAMILY="" ;;
  rocky | rhel | centos | almalinux | ol | fedora) FAMILY=dnf; command -v dnf >/dev/null && command -v rpm >/dev/null || FAMILY="" ;;
esac
[[ -n $FAMILY ]] || fail UNSUPPORTED_OS "unsupported operating system: ID='${OS_ID:-unknown}' VERSION_ID='$OS_VERSION' (needs ubuntu/debian with apt-get, or rhel/rocky/centos/almalinux/ol/fedora with dnf)"
log "OS $OS_ID $OS_VERSION, family $FAMILY, lock timeout ${LOCK_TIMEOUT}s, hold list: ${HOLD_NAMES[*]:-none}$([[ $DRY_RUN -eq 1 ]] && printf ', DRY RUN')"

if [[ $FAMILY == apt ]]; then apt_main; else dnf_main; fi

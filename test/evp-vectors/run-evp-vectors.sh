#!/usr/bin/env bash
# Runs OpenSSL's own AES cipher vector files through OpenSSL's evp_test against one provider.
#
#   run-evp-vectors.sh --skip REASON
#       prints REASON and exits 77 (ctest's SKIP_RETURN_CODE for these tests).
#   run-evp-vectors.sh --evp-test BIN --data DIR --provider NAME [--module PATH] --work DIR
#                      [--chunk N] [--corrupt] FILE...
#       FILE...     vector file names inside --data (e.g. evpciph_aes_common.txt)
#       --provider  provider name; with --module, the module file to load under that name
#                   (without --module the name must be a built-in provider such as "default")
#       --chunk N   pass -chunk N to evp_test (updates of N bytes)
#       --corrupt   self-check: flip one ciphertext digit in the first kept stanza of each file
#                   that expects success; succeed only if evp_test reports each as a failure
#
# The libctx evp_test uses gets a config that activates only that provider, and every fetch
# carries "provider=NAME". evp_test treats a cipher it cannot fetch as an error, not a skip, so
# the vector files are first reduced to the AES-CBC, AES-CTR and AES-GCM stanzas: the other
# stanzas become comment lines, which keeps every line number equal to the original file's.
# Failures are reported against the original file path. The run passes only when evp_test
# succeeds and, for every file, ran exactly the kept stanzas with no errors and no skips. One
# exception: from OpenSSL 3.6 on, evp_test itself skips CBC stanzas under -chunk ("does not
# support fragmentation"); those skips are counted, named, and allowed for CBC ciphers only.
set -euo pipefail

skip_rc=77
die() { printf 'run-evp-vectors: error: %s\n' "$*" >&2; exit 2; }

evp_test="" data="" provider="" module="" work="" chunk="" corrupt=0
files=()
while (($#)); do
  case $1 in
    --skip) printf 'SKIPPED: %s\n' "${2:-no reason given}"; exit "$skip_rc" ;;
    --evp-test) evp_test=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --provider) provider=$2; shift 2 ;;
    --module) module=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --chunk) chunk=$2; shift 2 ;;
    --corrupt) corrupt=1; shift ;;
    --*) die "unknown option $1" ;;
    *) files+=("$1"); shift ;;
  esac
done
[[ -x $evp_test ]] || die "evp_test not found or not executable: '$evp_test'"
[[ -d $data ]] || die "vector directory not found: '$data'"
[[ -n $provider ]] || die "--provider is required"
[[ -n $work ]] || die "--work is required"
((${#files[@]})) || die "no vector files given"
[[ -z $module || -f $module ]] || die "provider module not found: '$module' (build the kcapi-aio target)"

rm -rf "$work"
mkdir -p "$work"

# --- Config: only the provider under test in evp_test's library context ----------------------
conf=$work/evp-vectors.cnf
{
  printf 'openssl_conf = openssl_init\n\n[openssl_init]\nproviders = provider_sect\n\n'
  printf '[provider_sect]\n%s = under_test_sect\n\n[under_test_sect]\n' "$provider"
  [[ -z $module ]] || printf 'module = %s\n' "$module"
  printf 'activate = 1\n'
} >"$conf"

# --- Reduce each vector file to the modes under test, line numbers unchanged ------------------
# Writes the reduced file and "kept" lines "<line> <mode>" for each kept cipher stanza.
reduce() {
  awk -v corrupt="$corrupt" -v keptfile="$3" '
    function mode_of(name,    n) {
      n = tolower(name)
      if (n ~ /^aes-(128|192|256)-(cbc|ctr|gcm)$/) return substr(n, 9)
      if (n ~ /^aes(128|192|256)$/) return "cbc"
      if (n ~ /^id-aes(128|192|256)-gcm$/) return "gcm"
      return ""
    }
    function flush(    i, cipher, mode, avail, line, corrupted) {
      if (nl == 0) return
      cipher = ""; avail = ""; expects_error = 0
      for (i = 1; i <= nl; i++) {
        if (buf[i] ~ /^Result[ \t]*=/) expects_error = 1
        line = buf[i]
        if (line ~ /^Cipher[ \t]*=/) { sub(/^Cipher[ \t]*=[ \t]*/, "", line); sub(/[ \t\r]+$/, "", line); cipher = line }
        line = buf[i]
        if (line ~ /^Availablein[ \t]*=/) { sub(/^Availablein[ \t]*=[ \t]*/, "", line); sub(/[ \t\r]+$/, "", line); avail = line }
      }
      mode = (cipher == "") ? "" : mode_of(cipher)
      # A stanza reserved for another provider (e.g. fips-only behaviour) is not ours to run.
      if (avail != "" && avail != "default") mode = ""
      if (cipher != "" && mode == "") {
        for (i = 1; i <= nl; i++) print "# [not AES-CBC/CTR/GCM] " buf[i]
      } else {
        corrupted = 0
        for (i = 1; i <= nl; i++) {
          line = buf[i]
          # The provider under test stands in for the default provider.
          if (line ~ /^Availablein[ \t]*=/) line = "# [provider under test] " line
          if (corrupt && mode != "" && !ndone && !expects_error && line ~ /^Ciphertext[ \t]*=[ \t]*[0-9A-Fa-f]+[ \t]*$/) {
            sub(/[ \t]+$/, "", line)
            line = substr(line, 1, length(line) - 1) (substr(line, length(line)) == "0" ? "1" : "0")
            corrupted = 1
          }
          print line
        }
        if (mode != "" && (!corrupt || corrupted)) {
          print start, mode > keptfile
          if (corrupted) ndone = 1
        }
      }
      nl = 0; start = 0
    }
    /^[ \t\r]*$/ { flush(); print; next }
    # evp_test numbers a stanza by its first line that is not a comment.
    { if (start == 0 && $0 !~ /^#/) start = NR; buf[++nl] = $0 }
    END { flush() }
  ' "$1" >"$2"
  touch "$3"
}

reduced=() expected=()
declare -A orig_of=()
for f in "${files[@]}"; do
  src=$data/$f
  [[ -f $src ]] || die "vector file not found: $src"
  out=$work/$f kept=$work/$f.kept
  reduce "$src" "$out" "$kept"
  [[ $(wc -l <"$src") -eq $(wc -l <"$out") ]] || die "reducing $f changed its line count"
  n=$(wc -l <"$kept")
  ((n > 0)) || die "$f has no AES-CBC/CTR/GCM stanza: nothing would run"
  if ((corrupt)); then
    printf 'run-evp-vectors: self-check: %s: corrupted the Ciphertext of the stanza at line %s\n' \
      "$f" "$(awk '{print $1; exit}' "$kept")"
  else
    printf 'run-evp-vectors: %s: %s stanzas kept (%s)\n' "$f" "$n" \
      "$(awk '{c[$2]++} END {for (m in c) printf "%s%s=%d", s++ ? " " : "", m, c[m]}' "$kept")"
  fi
  reduced+=("$out") expected+=("$n")
  orig_of[$out]=$src
done

# --- Run --------------------------------------------------------------------------------------
args=(-config "$conf" -propquery "provider=$provider")
[[ -z $chunk ]] || args+=(-chunk "$chunk")
printf 'run-evp-vectors: %s %s <%d files>\n' "$evp_test" "${args[*]}" "${#reduced[@]}"
log=$work/evp_test.log
set +e
OPENSSL_CONF=/dev/null "$evp_test" "${args[@]}" "${reduced[@]}" >"$log" 2>&1
rc=$?
set -e
# Point messages at the original files (same line numbers).
for out in "${reduced[@]}"; do
  sed -i "s#${out//#/\\#}#${orig_of[$out]//#/\\#}#g" "$log"
done
# Show everything but the per-stanza chatter ("X is fetched", "RUNNING TEST FOR CIPHER X" and
# their "INFO: @" headers); the whole output stays in the log file.
awk '
  /^[ \t]*# (INFO|ERROR|WARNING):/ { if (held != "") print held; held = $0; next }
  /# ([^ ]+ is fetched|RUNNING TEST FOR CIPHER .*)$/ || /^[ \t]*#[ \t]*$/ { held = ""; next }
  { if (held != "") print held; held = ""; print }
  END { if (held != "") print held }
' "$log"
printf 'run-evp-vectors: full evp_test output: %s\n' "$log"

# --- Verdict ----------------------------------------------------------------------------------
# evp_test prints one "Completed N tests with E errors and S skipped" per file, in order.
mapfile -t done_lines < <(grep -o 'Completed [0-9]* tests with [0-9]* errors and [0-9]* skipped' "$log" || true)
# Per file (same order), the CBC stanzas evp_test declined to fragment under -chunk.
mapfile -t frag_skips < <(awk '
  /skipping, .* does not support fragmentation/ { if (tolower($0) ~ /skipping, .aes(-(128|192|256)-cbc|128|192|256)./) n++ }
  /Completed [0-9]+ tests with/ { print n + 0; n = 0 }
' "$log")
bad=0 failing_files=0
for i in "${!reduced[@]}"; do
  f=${files[i]} want=${expected[i]}
  line=${done_lines[i]:-}
  if [[ -z $line ]]; then
    printf 'run-evp-vectors: FAIL %s: evp_test printed no summary (crashed or stopped early)\n' "$f"
    bad=1 failing_files=$((failing_files + 1)); continue
  fi
  read -r _ n _ _ e _ _ s _ <<<"$line"
  fs=0
  if [[ -n $chunk ]]; then fs=${frag_skips[i]:-0}; fi
  if ((fs > 0 && fs <= s)); then
    printf 'run-evp-vectors: %s: evp_test does not fragment CBC: %s CBC stanzas skipped by evp_test itself\n' "$f" "$fs"
    s=$((s - fs)) want=$((want - fs))
  fi
  if ((corrupt)); then
    printf 'run-evp-vectors: self-check: %s: %s stanzas ran, %s errors (1 expected), %s skipped\n' "$f" "$n" "$e" "$s"
    ((e == 0)) || failing_files=$((failing_files + 1))
    continue
  fi
  printf 'run-evp-vectors: %s: %s of %s stanzas ran, %s errors, %s skipped\n' "$f" "$n" "$want" "$e" "$s"
  if ((e != 0 || s != 0 || n != want)); then
    bad=1 failing_files=$((failing_files + 1))
    ((s == 0)) || printf 'run-evp-vectors: FAIL %s: %s stanzas skipped (every kept stanza must run)\n' "$f" "$s"
    ((n == want)) || printf 'run-evp-vectors: FAIL %s: %s stanzas ran, %s expected\n' "$f" "$n" "$want"
    ((e == 0)) || printf 'run-evp-vectors: FAIL %s: %s errors\n' "$f" "$e"
  fi
done
((rc == 0)) || { printf 'run-evp-vectors: %s: evp_test exited with %d\n' "$( ((corrupt)) && echo self-check || echo FAIL)" "$rc"; bad=1; }

# One line per failed stanza: original file:line, cipher, operation, what evp_test said.
{ grep -o '[^ ]*:[0-9]*: Source of above error.*' "$log" || true; } | while IFS= read -r msg; do
  loc=${msg%%: Source of above error*} why=${msg#*Source of above error }
  file=${loc%:*} line=${loc##*:}
  info=$(awk -v l="$line" '
    NR >= l && /^[ \t\r]*$/ { exit }
    NR >= l && /^(Cipher|Operation)[ \t]*=/ { sub(/[ \t]*=[ \t]*/, "="); printf "%s ", $0 }
  ' "$file")
  printf 'run-evp-vectors: FAILED STANZA %s:%s %s-> %s\n' "${file##*/}" "$line" "$info" "$why"
done

# Every mode under test must have run somewhere.
if ((!corrupt)); then
  for m in cbc ctr gcm; do
    c=$(cat "${reduced[@]/%/.kept}" | awk -v m="$m" '$2 == m' | wc -l)
    ((c > 0)) || { printf 'run-evp-vectors: FAIL: no AES-%s stanza in the files given\n' "${m^^}"; bad=1; }
  done
fi

if ((corrupt)); then
  # Every file had one corrupted vector: every file must have failed, with evp_test's own
  # error report naming that stanza's line.
  ok=1
  ((rc != 0 && failing_files == ${#files[@]})) || ok=0
  for i in "${!files[@]}"; do
    first=$(awk 'NR == 1 {print $1}' "$work/${files[i]}.kept")
    grep -q -- "${files[i]}:$first" "$log" || { ok=0; printf 'run-evp-vectors: no failure reported at %s:%s\n' "${files[i]}" "$first"; }
  done
  if ((ok)); then
    printf 'run-evp-vectors: PASS: every corrupted vector was reported as a failure\n'
    exit 0
  fi
  printf 'run-evp-vectors: FAIL: a corrupted vector went unnoticed\n'
  exit 1
fi
((bad == 0)) || exit 1
printf 'run-evp-vectors: PASS: %s\n' "$(IFS=+; echo "${expected[*]}") stanzas on provider $provider"

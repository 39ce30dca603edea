#!/usr/bin/env bash
# Make `apt-get source` work: add deb-src entries mirroring this machine's own Debian `deb`
# entries (deb822 .sources files and one-line .list files alike), in a file of our own, then
# update the lists. Nothing is done when source records are already available.
. "$(dirname "$0")/common.sh"
PKG="${1:-kubernetes}"
if [ -n "$(apt-cache showsrc "$PKG" 2>/dev/null | head -1)" ]; then
  log "deb-src entries present ($PKG found)"; exit 0
fi
OUT=/etc/apt/sources.list.d/envplane-deb-src.sources
tmp="$(mktemp)"
shopt -s nullglob
# deb822: every stanza whose Types has `deb` (and whose URIs look like Debian's), as deb-src.
for f in /etc/apt/sources.list.d/*.sources; do
  [ "$f" = "$OUT" ] && continue
  awk -v RS= -v ORS='\n\n' '
    /(^|\n)Types:[^\n]*(^|[ \t])deb([ \t]|\n|$)/ && /(^|\n)URIs:[^\n]*debian/ && !/(^|\n)Enabled: *no/ {
      n = split($0, lines, "\n"); out = ""
      for (i = 1; i <= n; i++) {
        if (lines[i] ~ /^#/) continue
        if (lines[i] ~ /^Types:/) lines[i] = "Types: deb-src"
        out = out lines[i] "\n"
      }
      printf "%s\n", out
    }' "$f" >>"$tmp"
done
# one-line format: `deb [opts] URI suite comps` -> `deb-src ...`, written as a deb822 stanza.
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [ -f "$f" ] || continue
  grep -E '^[[:space:]]*deb[[:space:]]' "$f" | grep -i debian | while read -r _ rest; do
    opts=""
    if [[ "$rest" == \[* ]]; then opts="${rest%%]*}"; opts="${opts#[}"; rest="${rest#*] }"; fi
    read -r uri suite comps <<<"$rest"
    printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: %s\n' "$uri" "$suite" "$comps" >>"$tmp"
    for o in $opts; do
      case "$o" in signed-by=*) printf 'Signed-By: %s\n' "${o#signed-by=}" >>"$tmp" ;; esac
    done
    printf '\n' >>"$tmp"
  done
done
if [ ! -s "$tmp" ]; then
  rm -f "$tmp"; log "no Debian deb entries found to mirror as deb-src"; exit 1
fi
log "writing $OUT"
as_root install -m 0644 "$tmp" "$OUT"
rm -f "$tmp"
as_root apt-get update -qq
if [ -z "$(apt-cache showsrc "$PKG" 2>/dev/null | head -1)" ]; then
  log "still no source record for $PKG after adding $OUT"; exit 1
fi

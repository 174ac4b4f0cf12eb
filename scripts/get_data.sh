#!/usr/bin/env bash
# Fetches the default corpora into data/corpora/ (git-ignored): the King James Bible (Debian's
# bible-kjv) and Jane Austen's six novels (Debian's r-cran-janeaustenr, downloaded and unpacked
# without installing it or R). Idempotent; not a tokenizer or a preparer. What is missing comes from
# Debian's package mirror through apt-get; python3 (standard library only) reads the R data.
#
# kjv.txt: one chapter per paragraph: a "<Book> <chapter>" heading line, then one verse per line
# (verse labels stripped), a blank line between chapters (the kjv_book synthetic task reads this).
#
# austen.txt: the novels in publication order (also the R package's austen_books() order): Sense
# and Sensibility, Pride and Prejudice, Mansfield Park, Emma, Northanger Abbey, Persuasion. The
# lines of the books as the package has them (Project Gutenberg texts: hard-wrapped lines, a blank
# line between paragraphs), a blank line between books; each book opens with its title line.
# scripts/extract_rdata_text.py reads them out of the package's R data (data/Rdata.rdb/.rdx).
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

austen="$out/austen.txt"
austen_objects=(sensesensibility prideprejudice mansfieldpark emma northangerabbey persuasion)
austen_titles=("SENSE AND SENSIBILITY" "PRIDE AND PREJUDICE" "MANSFIELD PARK" "EMMA" "NORTHANGER ABBEY"
  "Persuasion")
# austen_ok FILE: r-cran-janeaustenr 1.0.0-1 (Debian 12) gives 4,025,034 bytes and 73,427 lines.
austen_ok() {
  size_ok "$1" 3900000 && [[ "$(head -n1 "$1")" == "${austen_titles[0]}" ]] || return 1
  (( $(wc -l < "$1") >= 70000 )) || return 1
  local t
  for t in "${austen_titles[@]}"; do grep -qx "$t" "$1" || return 1; done
}
if austen_ok "$austen"; then
  echo "austen.txt: present ($(stat -c %s "$austen") bytes), skipped"
else
  command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1 \
    || die "apt-get and dpkg are missing: austen.txt comes from the Debian package r-cran-janeaustenr"
  py=/usr/bin/python3
  [[ -x "$py" ]] || py="$(command -v python3)" || die "python3 is missing: install the Debian package python3"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  # apt-get download needs no root and installs nothing: it puts the .deb into the current folder.
  if ! (cd "$work" && apt-get download r-cran-janeaustenr) >"$work/log" 2>&1; then
    die "cannot download the Debian package r-cran-janeaustenr with apt-get (offline, or no package" \
      "index: apt-get update?): $(grep -v '^W:' "$work/log" | tail -n 2 | tr '\n' ' ')"
  fi
  debs=("$work"/r-cran-janeaustenr_*.deb)
  [[ -f "${debs[0]}" ]] || die "apt-get download r-cran-janeaustenr left no r-cran-janeaustenr_*.deb"
  dpkg -x "${debs[0]}" "$work/root" || die "cannot unpack $(basename "${debs[0]}") with dpkg -x"
  db="$work/root/usr/lib/R/site-library/janeaustenr/data/Rdata"
  [[ -f "$db.rdb" && -f "$db.rdx" ]] || die "$(basename "${debs[0]}") has no" \
    "usr/lib/R/site-library/janeaustenr/data/Rdata.rdb and .rdx (the package layout changed?)"
  tmp="$(mktemp "$out/.austen.XXXXXX")"
  if ! "$py" "$root/scripts/extract_rdata_text.py" "$db" "${austen_objects[@]}" > "$tmp" 2>"$work/err"; then
    rm -f "$tmp"; die "cannot read the novels out of $(basename "${debs[0]}"): $(head -n 1 "$work/err")"
  fi
  if ! austen_ok "$tmp"; then
    lines=$(wc -l < "$tmp"); bytes=$(stat -c %s "$tmp"); rm -f "$tmp"
    die "austen.txt came out wrong ($bytes bytes, $lines lines; expected >= 3900000 bytes, >= 70000" \
      "lines, the first line \"${austen_titles[0]}\" and a title line per book); did the package change?"
  fi
  chmod 644 "$tmp"  # mktemp makes it 0600
  mv "$tmp" "$austen"
  echo "austen.txt: $(stat -c %s "$austen") bytes, $(wc -l < "$austen") lines"
fi

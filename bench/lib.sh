# Sourced by the bench scripts: what every one of them needs first.

[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"

# need PROGRAM PACKAGE: the program, installed from Debian's package when it is missing and
# this runs as root; otherwise the script stops here and says what to install.
need() {
  local program=$1 package=$2
  [ -x "$program" ] || command -v "$program" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "$(basename "$0"): installing $package for $program..." >&2
    apt-get install -y --no-install-recommends "$package" >/dev/null 2>&1 ||
      { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends "$package" >/dev/null 2>&1; } ||
      { echo "$(basename "$0"): cannot install $package (needed for $program)" >&2; exit 1; }
  fi
  [ -x "$program" ] || command -v "$program" >/dev/null 2>&1 ||
    { echo "$(basename "$0"): $program is missing (Debian: apt-get install $package)" >&2; exit 1; }
}

# The release binaries, built first: $bin (embed-star) and $bench_bin (embed-star-bench, the
# in-process measurements); a failed build stops the script with the compiler's errors.
release_binary() {
  echo "building the release binaries..." >&2
  local log
  log=$(mktemp)
  if ! { swift build -c release --product embed-star && swift build -c release --product embed-star-bench; } >"$log" 2>&1; then
    grep -E "error" "$log" >&2 || tail -20 "$log" >&2
    rm -f "$log"
    echo "$(basename "$0"): the release build failed" >&2
    exit 1
  fi
  rm -f "$log"
  bin="$(swift build -c release --show-bin-path)/embed-star"
  bench_bin="$(swift build -c release --show-bin-path)/embed-star-bench"
}

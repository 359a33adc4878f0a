# Shared by the bench scripts: builds the release binaries, runs one benchmark driver RUNS times
# (default 1) against the release `accolade`, and prints the median of every RESULT figure.
# Usage (after `cd` to the repository root): run_bench <driver binary name> [driver args…]
run_bench() {
  local driver="$1"
  shift
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/accolade-target}"
  cargo build --release -q -p accolade-server -p accolade-bench
  local runs="${RUNS:-1}" out
  out=$(mktemp)
  for i in $(seq 1 "$runs"); do
    echo "--- run $i/$runs"
    "$CARGO_TARGET_DIR/release/$driver" --binary "$CARGO_TARGET_DIR/release/accolade" "$@" | tee -a "$out"
  done
  if [ "$runs" -gt 1 ]; then
    echo "--- medians over $runs runs"
    grep '^RESULT' "$out" | sed 's/^RESULT //' | tr ' ' '\n' | awk -F= '{v[$1]=v[$1]" "$2} END {for (k in v) {n=split(v[k],a," "); asort(a); printf "%s=%s\n", k, a[int((n+1)/2)]}}' | sort
  fi
  rm -f "$out"
}

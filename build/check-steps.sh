# Shared by the check scripts (sourced, not run): a work folder, and `run NAME COMMAND...`, which prints the step's name and
# runs it; the first step that fails ends the script with a line naming that step and the kept work folder.
# Usage: source "$(dirname "$0")/check-steps.sh" <check name> <work folder prefix>
set -euo pipefail
check_name="$1"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d "/tmp/$2.XXXXXX")"
step="setup"
trap 'status=$?; if [ $status -ne 0 ]; then echo "$check_name FAILED at step: $step (exit $status); files kept in $work" >&2; fi' EXIT
run() { step="$1"; shift; echo "== $step"; "$@"; }
started=$SECONDS

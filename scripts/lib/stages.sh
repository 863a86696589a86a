# Times the stages of a script and prints them at the end, passed or failed, so a slow stage
# shows in every CI log. Source it, then `stage NAME command...`; `on_exit COMMAND` registers
# cleanup to run at exit (before the table is printed). A script called by another (scripts/test
# under .ci/run) adds its rows to the caller's table: EMBED_STAR_STAGES names the file they are
# collected in, and the outermost script prints it.
_stage_hooks=()
if [ -z "${EMBED_STAR_STAGES:-}" ]; then
  EMBED_STAR_STAGES=$(mktemp)
  export EMBED_STAR_STAGES
  _stages_owner=1
  _stages_started=$(date +%s)
else
  _stages_owner=
fi

on_exit() { _stage_hooks+=("$*"); }

_stages_exit() {
  local status=$? hook
  for hook in "${_stage_hooks[@]}"; do eval "$hook" || true; done
  if [ -n "$_stages_owner" ]; then
    echo
    echo "== time per stage ($([ $status -eq 0 ] && echo passed || echo "FAILED, exit $status")) =="
    cat "$EMBED_STAR_STAGES"
    printf '%-44s %6ss\n' "total" "$(( $(date +%s) - _stages_started ))"
    rm -f "$EMBED_STAR_STAGES"
  fi
  exit $status
}
trap _stages_exit EXIT

stage() {  # name, command...
  local name=$1 started status=0
  shift
  started=$(date +%s)
  "$@" || status=$?
  printf '%-44s %6ss%s\n' "$name" "$(( $(date +%s) - started ))" "$([ $status -eq 0 ] || echo "  FAILED (exit $status)")" >>"$EMBED_STAR_STAGES"
  return $status
}

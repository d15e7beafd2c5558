# Sourced by the set-up scripts: start_daemon LOG COMMAND [ARGS...] starts a long-running service
# in the background, in a session of its own, its output in LOG, its working directory /.
# Descriptors the script inherited (a caller's `flock FILE bash scripts/setup.sh`, say) are closed
# first: the service would otherwise hold them, and the caller's lock, for as long as it runs. The
# caller's directory is left for the same reason: podman's service kept a clone's directory after
# the clone was removed and made again, and every container it created then failed ("conmon
# failed: exit status 1").
start_daemon() {
  local log=$1
  shift
  (
    for fd in $(ls /proc/$BASHPID/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
    cd /
    exec setsid nohup "$@" >"$log" 2>&1 </dev/null
  ) &
}

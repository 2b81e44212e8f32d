# Sourced by bin/test: starts the container components the image integration tests (*IT) need,
# all on this machine and nothing pulled from a public registry:
#   - a CNCF distribution registry on 127.0.0.1:5000 (Debian package docker-registry),
#   - a Docker engine (dockerd) on a socket of its own, its default network on a bridge of its own
#     (berth-test0, 172.29.249.1/24; BERTH_TEST_BRIDGE, BERTH_TEST_BRIDGE_CIDR),
#   - base images built here once per machine and pushed to that registry: a Debian bookworm
#     minbase made with debootstrap; that plus a jlink'ed Java runtime laid out like the public
#     eclipse-temurin images (/opt/java/openjdk), and, like them, without the OpenMP runtime; and
#     that plus the OpenMP runtime (Debian's libgomp1), which XGBoost's library needs.
# berth_test_containers exports DOCKER_HOST, BERTH_TEST_REGISTRY, BERTH_TEST_BASE,
# BERTH_TEST_BASE_JAVA and BERTH_TEST_BASE_LLM; berth_test_containers_stop (for an EXIT trap) stops
# what it started itself, never what it found running and reused.
# State (persistent, so the base images are built once): BERTH_TEST_STATE, by default
# ${XDG_CACHE_HOME:-$HOME/.cache}/berth-test. Needs root (dockerd, debootstrap), curl, ip and flock
# (bin/test checks the first two; without flock, concurrent runs are not serialized).
# Every command's result is checked explicitly: bin/test calls this under `set -e`, but as the left
# side of `||`, where errexit does not apply.

BERTH_TEST_REGISTRY_ADDR="127.0.0.1:5000"
BERTH_TEST_BRIDGE="${BERTH_TEST_BRIDGE:-berth-test0}"
BERTH_TEST_BRIDGE_CIDR="${BERTH_TEST_BRIDGE_CIDR:-172.29.249.1/24}"
BERTH_TEST_APT_LINE="apt-get install -y --no-install-recommends docker.io docker-compose docker-registry skopeo umoci debootstrap busybox-static"

# Filled in by berth_test_containers; read by berth_test_containers_stop.
_bt_started_registry_pid=""
_bt_started_dockerd_pid=""
_bt_sock=""
_bt_exec_root=""
_bt_run=""

_bt_say() { echo "bin/test: $*" >&2; }

# True while process $1 exists and is not a zombie.
_bt_alive() {
  kill -0 "$1" 2>/dev/null || return 1
  ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# _bt_wait SECONDS PID CHECK...: polls CHECK every 0.2 s until it succeeds (0), the process PID
# (if not empty) dies (1) or SECONDS pass (2).
_bt_wait() {
  local seconds="$1" pid="$2" tries
  shift 2
  tries=$((seconds * 5))
  while [ "$tries" -gt 0 ]; do
    "$@" >/dev/null 2>&1 && return 0
    if [ -n "$pid" ] && ! _bt_alive "$pid"; then
      "$@" >/dev/null 2>&1 && return 0
      return 1
    fi
    sleep 0.2
    tries=$((tries - 1))
  done
  "$@" >/dev/null 2>&1 && return 0
  return 2
}

_bt_registry_up() {
  local code
  code=$(curl --noproxy '*' -s -o /dev/null -m 2 -w '%{http_code}' "http://$BERTH_TEST_REGISTRY_ADDR/v2/") || return 1
  [ "$code" = 200 ]
}

_bt_docker() { docker -H "unix://$_bt_sock" "$@"; }
_bt_dockerd_up() { _bt_docker version --format '{{.Server.Version}}'; }

_bt_image_exists() { skopeo inspect --tls-verify=false "docker://$1" >/dev/null 2>&1; }

# Prints the tail of log file $1 indented, to stderr.
_bt_log_tail() { [ -f "$1" ] && tail -n 25 "$1" | sed 's/^/    /' >&2; return 0; }

# The Debian mirror apt uses for bookworm (deb822 .sources first, then one-line .list files).
_bt_debian_mirror() {
  local f uri=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri=$(awk '
      function flush() { if (deb && suite && first != "" && found == "") found = first; deb = 0; suite = 0; first = "" }
      /^[[:space:]]*$/ { flush(); next }
      /^[[:space:]]*#/ { next }
      tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
      tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == "bookworm") suite = 1 }
      tolower($1) == "uris:" { first = $2 }
      END { flush(); print found }' "$f")
    [ -n "$uri" ] && break
  done
  if [ -z "$uri" ]; then
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -f "$f" ] || continue
      uri=$(awk '$1 == "deb" {
          i = 2; if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
          if ($(i + 1) == "bookworm") { print $i; exit } }' "$f")
      [ -n "$uri" ] && break
    done
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

_bt_start_registry() {
  local storage="$BERTH_TEST_STATE/registry" config="$_bt_run/registry.yml" log="$_bt_run/registry.log"
  if _bt_registry_up; then
    _bt_say "reusing the registry already answering on $BERTH_TEST_REGISTRY_ADDR"
    return 0
  fi
  mkdir -p "$storage" || return 1
  # Single-quoted YAML scalars: a quote inside is doubled.
  cat >"$config" <<EOF || return 1
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: '${storage//\'/\'\'}'
  delete:
    enabled: true
http:
  secret: berth-test-local-only
  addr: $BERTH_TEST_REGISTRY_ADDR
EOF
  docker-registry serve "$config" </dev/null >"$log" 2>&1 {_bt_lock_fd}>&- &
  _bt_started_registry_pid=$!
  local rc=0
  _bt_wait 30 "$_bt_started_registry_pid" _bt_registry_up || rc=$?
  if [ "$rc" -ne 0 ]; then
    [ "$rc" -eq 1 ] && _bt_say "the registry (docker-registry serve $config) exited; its log $log ends with:" \
      || _bt_say "the registry did not answer on http://$BERTH_TEST_REGISTRY_ADDR/v2/ within 30 s; its log $log ends with:"
    _bt_log_tail "$log"
    return 1
  fi
  _bt_say "started the registry on $BERTH_TEST_REGISTRY_ADDR (pid $_bt_started_registry_pid, storage $storage)"
}

# A bridge of our own for dockerd's default network, so that it never shares docker0 with another
# dockerd on the machine (e.g. the docker.service that installing docker.io starts), which would
# hand out the same container addresses twice. Created once; left in place for the next run.
_bt_bridge() {
  local name="$BERTH_TEST_BRIDGE" cidr="$BERTH_TEST_BRIDGE_CIDR"
  if ! ip link show "$name" >/dev/null 2>&1; then
    ip link add name "$name" type bridge || return 1
  fi
  if [ -z "$(ip -4 -o addr show dev "$name" 2>/dev/null)" ]; then
    ip addr add "$cidr" dev "$name" || return 1
  fi
  ip link set "$name" up
}

_bt_start_dockerd() {
  local log="$_bt_run/dockerd.log"
  if _bt_dockerd_up >/dev/null 2>&1; then
    _bt_say "reusing the Docker engine already answering on $_bt_sock"
    return 0
  fi
  if ! _bt_bridge; then
    _bt_say "could not set up the network bridge $BERTH_TEST_BRIDGE ($BERTH_TEST_BRIDGE_CIDR) for dockerd"
    return 1
  fi
  mkdir -p "$BERTH_TEST_STATE/docker" "$_bt_exec_root" || return 1
  # dockerd starts a containerd of its own unless a system one listens on
  # /run/containerd/containerd.sock; should it use that one, namespaces of our own keep it
  # apart from a system dockerd's (namespace "moby").
  dockerd --data-root "$BERTH_TEST_STATE/docker" --exec-root "$_bt_exec_root" \
    -H "unix://$_bt_sock" --pidfile "$_bt_run/docker.pid" --bridge "$BERTH_TEST_BRIDGE" \
    --containerd-namespace berth-test --containerd-plugins-namespace berth-test-plugins \
    --insecure-registry "$BERTH_TEST_REGISTRY_ADDR" </dev/null >"$log" 2>&1 {_bt_lock_fd}>&- &
  _bt_started_dockerd_pid=$!
  local rc=0
  _bt_wait 60 "$_bt_started_dockerd_pid" _bt_dockerd_up || rc=$?
  if [ "$rc" -ne 0 ]; then
    [ "$rc" -eq 1 ] && _bt_say "dockerd exited; its log $log ends with:" \
      || _bt_say "dockerd did not answer on $_bt_sock within 60 s; its log $log ends with:"
    _bt_log_tail "$log"
    return 1
  fi
  _bt_say "started dockerd (pid $_bt_started_dockerd_pid, socket $_bt_sock, data $BERTH_TEST_STATE/docker)"
}

# The minbase rootfs (a debootstrap'ed bookworm, cached as a tarball) and, from the same run,
# libgomp1's package (cached beside it): debootstrap installs it, its .deb is kept, and it is purged
# again, so the minbase is a plain one.
_bt_minbase_rootfs() {
  local tarball="$1" deb="$2" mirror dir debs
  [ -s "$tarball" ] && [ -s "$deb" ] && return 0
  mirror=$(_bt_debian_mirror)
  _bt_say "making the test base rootfs (once per machine): debootstrap --variant=minbase bookworm from $mirror, about a minute ..."
  mkdir -p "$BERTH_TEST_STATE/tmp" || return 1
  dir=$(mktemp -d "$BERTH_TEST_STATE/tmp/minbase.XXXXXX") || return 1
  if ! debootstrap --variant=minbase --include=libgomp1 bookworm "$dir" "$mirror" </dev/null \
        >"$_bt_run/debootstrap.log" 2>&1; then
    _bt_say "debootstrap failed; its log $_bt_run/debootstrap.log ends with:"
    _bt_log_tail "$_bt_run/debootstrap.log"
    rm -rf --one-file-system "$dir"
    return 1
  fi
  debs=("$dir"/var/cache/apt/archives/libgomp1_*.deb)
  if [ ! -s "${debs[0]}" ] || ! cp "${debs[0]}" "$deb.part" \
      || ! chroot "$dir" dpkg --purge libgomp1 </dev/null >>"$_bt_run/debootstrap.log" 2>&1; then
    _bt_say "could not keep libgomp1's package from debootstrap's run (or purge it); $_bt_run/debootstrap.log ends with:"
    _bt_log_tail "$_bt_run/debootstrap.log"
    rm -rf --one-file-system "$dir"; rm -f "$deb.part"
    return 1
  fi
  # Like the official debian images: no device nodes, no apt lists or downloaded packages.
  if ! tar -C "$dir" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
      --exclude='./var/lib/apt/lists/*' --exclude='./var/cache/apt/*.bin' \
      --exclude='./var/cache/apt/archives/*.deb' -cf "$tarball.part" . \
      || ! mv "$tarball.part" "$tarball" || ! mv "$deb.part" "$deb"; then
    _bt_say "could not write the rootfs tarball $tarball or keep $deb"
    rm -rf --one-file-system "$dir"; rm -f "$tarball.part" "$deb.part"
    return 1
  fi
  rm -rf --one-file-system "$dir"
}

# The minbase: the rootfs, imported and pushed.
_bt_build_minbase() {
  local ref="$1" tarball="$2" log="$_bt_run/build-minbase.log"
  _bt_say "building test base image $ref from the rootfs $tarball ..."
  if ! _bt_docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' "$tarball" "$ref" >"$log" 2>&1 \
      || ! _bt_docker push "$ref" >>"$log" 2>&1; then
    _bt_say "docker import/push of $ref failed; $log ends with:"
    _bt_log_tail "$log"
    return 1
  fi
}

# _bt_build_push REF CONTEXT LOG: docker build CONTEXT as REF, push it, and remove CONTEXT.
_bt_build_push() {
  local ref="$1" ctx="$2" log="$3"
  if ! DOCKER_BUILDKIT=0 _bt_docker build -t "$ref" "$ctx" >>"$log" 2>&1 \
      || ! _bt_docker push "$ref" >>"$log" 2>&1; then
    _bt_say "docker build/push of $ref failed; $log ends with:"
    _bt_log_tail "$log"; rm -rf "$ctx"
    return 1
  fi
  rm -rf "$ctx"
}

# The Java base: minbase plus a jlink'ed runtime from $JAVA_HOME at /opt/java/openjdk.
_bt_build_java() {
  local ref="$1" from="$2" runtime="$3" log="$_bt_run/build-java.log" ctx want m mods="" available
  _bt_say "building test base image $ref: jlink runtime of $JAVA_HOME ($runtime) on $from ..."
  if [ ! -x "$JAVA_HOME/bin/jlink" ]; then
    _bt_say "the JDK at $JAVA_HOME has no bin/jlink"
    return 1
  fi
  available=" $("$JAVA_HOME/bin/java" --list-modules 2>/dev/null | sed 's/@.*//' | tr '\n' ' ') "
  for want in java.se jdk.unsupported jdk.crypto.ec jdk.zipfs jdk.jfr jdk.management; do
    case "$available" in
      *" $want "*) mods="${mods:+$mods,}$want" ;;
      *) _bt_say "  (this JDK has no module $want; leaving it out)" ;;
    esac
  done
  mkdir -p "$BERTH_TEST_STATE/tmp" || return 1
  ctx=$(mktemp -d "$BERTH_TEST_STATE/tmp/java.XXXXXX") || return 1
  if ! "$JAVA_HOME/bin/jlink" --add-modules "$mods" --strip-debug --no-header-files --no-man-pages \
        --output "$ctx/openjdk" >"$log" 2>&1; then
    _bt_say "jlink failed; $log ends with:"
    _bt_log_tail "$log"; rm -rf "$ctx"
    return 1
  fi
  m='/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  cat >"$ctx/Dockerfile" <<EOF
FROM $from
ENV JAVA_HOME=/opt/java/openjdk
ENV PATH=/opt/java/openjdk/bin:$m
ENV LANG=C.UTF-8
COPY openjdk /opt/java/openjdk
LABEL berth.test.java.runtime="$runtime"
CMD ["jshell"]
EOF
  _bt_build_push "$ref" "$ctx" "$log"
}

# The OpenMP base (BERTH_TEST_BASE_LLM, named for the language models that once needed it): the Java
# base plus libgomp1's files, which XGBoost's library links.
_bt_build_llm() {
  local ref="$1" from="$2" deb="$3" log="$_bt_run/build-llm.log" ctx
  _bt_say "building test base image $ref: $from plus $(basename "$deb") ..."
  mkdir -p "$BERTH_TEST_STATE/tmp" || return 1
  ctx=$(mktemp -d "$BERTH_TEST_STATE/tmp/llm.XXXXXX") || return 1
  if ! dpkg-deb -x "$deb" "$ctx/root" >"$log" 2>&1; then
    _bt_say "dpkg-deb -x $deb failed; $log ends with:"
    _bt_log_tail "$log"; rm -rf "$ctx"
    return 1
  fi
  cat >"$ctx/Dockerfile" <<EOT
FROM $from
COPY root/ /
EOT
  _bt_build_push "$ref" "$ctx" "$log"
}

_bt_setup() {
  local base="$BERTH_TEST_REGISTRY_ADDR/berth-test/minbase:bookworm" java llm major runtime have rebuilt=0
  local tarball="$BERTH_TEST_STATE/minbase-bookworm.tar" deb="$BERTH_TEST_STATE/libgomp1-bookworm.deb"
  _bt_start_registry || return 1
  _bt_start_dockerd || return 1

  if _bt_image_exists "$base"; then
    _bt_say "test base image $base is in the registry"
    if [ ! -s "$deb" ]; then
      _bt_minbase_rootfs "$tarball" "$deb" || return 1
    fi
  else
    _bt_minbase_rootfs "$tarball" "$deb" || return 1
    _bt_build_minbase "$base" "$tarball" || return 1
    rebuilt=1
  fi

  major=$(berth_java_major "$JAVA_HOME/bin/java")
  runtime=$(sed -n 's/^JAVA_RUNTIME_VERSION="\(.*\)"$/\1/p' "$JAVA_HOME/release" 2>/dev/null)
  [ -n "$runtime" ] || runtime="$major"
  java="$BERTH_TEST_REGISTRY_ADDR/berth-test/java:$major"
  have=$(skopeo inspect --tls-verify=false --format '{{index .Labels "berth.test.java.runtime"}}' \
    "docker://$java" 2>/dev/null) || have=""
  if [ "$rebuilt" -eq 0 ] && [ "$have" = "$runtime" ]; then
    _bt_say "test base image $java is in the registry (Java $runtime)"
  else
    _bt_build_java "$java" "$base" "$runtime" || return 1
    rebuilt=1
  fi

  # Built on the Java base, it carries that base's runtime label too.
  llm="$BERTH_TEST_REGISTRY_ADDR/berth-test/java-libgomp:$major"
  have=$(skopeo inspect --tls-verify=false --format '{{index .Labels "berth.test.java.runtime"}}' \
    "docker://$llm" 2>/dev/null) || have=""
  if [ "$rebuilt" -eq 0 ] && [ "$have" = "$runtime" ]; then
    _bt_say "test base image $llm is in the registry"
  else
    _bt_build_llm "$llm" "$java" "$deb" || return 1
  fi

  export DOCKER_HOST="unix://$_bt_sock"
  export BERTH_TEST_REGISTRY="$BERTH_TEST_REGISTRY_ADDR"
  export BERTH_TEST_BASE="$base"
  export BERTH_TEST_BASE_JAVA="$java"
  export BERTH_TEST_BASE_LLM="$llm"
}

berth_test_containers() {
  local tool missing=()
  for tool in dockerd docker docker-compose docker-registry skopeo debootstrap dpkg-deb chroot; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if [ ${#missing[@]} -gt 0 ] || [ "$(id -u)" -ne 0 ]; then
    if [ ${#missing[@]} -gt 0 ]; then
      _bt_say "missing tools the container image tests use: ${missing[*]}"
      echo "  install them with: sudo $BERTH_TEST_APT_LINE" >&2
      echo "  (.ci/run does this for CI)" >&2
    else
      _bt_say "the container image tests need root (dockerd, debootstrap), and this is uid $(id -u)"
    fi
    if [ "${CI:-}" = true ]; then
      return 1
    fi
    _bt_say "the container image tests will be skipped"
    return 0
  fi

  BERTH_TEST_STATE="${BERTH_TEST_STATE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth-test}"
  _bt_run="$BERTH_TEST_STATE/run"
  mkdir -p "$_bt_run" || return 1
  # Unix socket paths hold at most 107 bytes; the longest one dockerd makes is its containerd's
  # under the exec root. Too long a state path moves the sockets to a short directory.
  local sockdir="$_bt_run"
  # (+45: /docker-exec/containerd/containerd-debug.sock)
  if [ $((${#sockdir} + 45)) -gt 107 ]; then
    sockdir="/tmp/berth-test-$(id -u)"
    mkdir -p -m 700 "$sockdir" || return 1
    if [ ! -O "$sockdir" ] || [ -L "$sockdir" ]; then
      _bt_say "$sockdir is not a directory of this user's; set BERTH_TEST_STATE to a shorter path"
      return 1
    fi
  fi
  _bt_sock="$sockdir/docker.sock"
  _bt_exec_root="$sockdir/docker-exec"

  # One setup at a time per state directory (a second bin/test waits, then reuses).
  local rc=0
  if command -v flock >/dev/null 2>&1; then
    exec {_bt_lock_fd}>"$BERTH_TEST_STATE/lock" || return 1
    if ! flock -w 900 "$_bt_lock_fd"; then
      _bt_say "another bin/test held $BERTH_TEST_STATE/lock for 15 minutes"
      exec {_bt_lock_fd}>&-
      return 1
    fi
  else
    _bt_lock_fd=9 # closed in the daemons' redirections; nothing is open on it
  fi
  _bt_setup || rc=$?
  if command -v flock >/dev/null 2>&1; then
    flock -u "$_bt_lock_fd"
    exec {_bt_lock_fd}>&-
  fi
  return "$rc"
}

# _bt_stop_pid NAME PID: SIGTERM, up to 30 s for it to go, then SIGKILL.
_bt_stop_pid() {
  local name="$1" pid="$2"
  _bt_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  if ! _bt_wait 30 "" eval "! _bt_alive $pid"; then
    _bt_say "$name (pid $pid) did not stop within 30 s of SIGTERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    _bt_wait 10 "" eval "! _bt_alive $pid" || _bt_say "$name (pid $pid) is still there"
  fi
  wait "$pid" 2>/dev/null || true # reaps it when it is this shell's child
  return 0
}

_bt_stop_all() {
  local containerd_pid=""
  if [ -n "$_bt_started_dockerd_pid" ]; then
    containerd_pid=$(cat "$_bt_exec_root/containerd/containerd.pid" 2>/dev/null) || containerd_pid=""
    _bt_stop_pid dockerd "$_bt_started_dockerd_pid"
    # dockerd stops the containerd it started; should dockerd have been killed, stop that one too.
    if [ -n "$containerd_pid" ] && [ "$(cat "/proc/$containerd_pid/comm" 2>/dev/null)" = containerd ]; then
      _bt_stop_pid containerd "$containerd_pid"
    fi
    _bt_started_dockerd_pid=""
  fi
  if [ -n "$_bt_started_registry_pid" ]; then
    _bt_stop_pid registry "$_bt_started_registry_pid"
    _bt_started_registry_pid=""
  fi
}

# For bin/test's EXIT trap: stops the registry and dockerd if berth_test_containers started them.
# Always returns 0 (the `|| true` also keeps a caller's `set -e` from cutting it short).
berth_test_containers_stop() {
  _bt_stop_all || true
  return 0
}

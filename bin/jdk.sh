# Sourced by bin/berth and bin/test: finds a JDK >= 21 and exports JAVA_HOME.
# Order: JAVA_HOME if new enough, then the newest JDK installed beside the default one.

berth_java_major() { # prints the major version of the java binary $1
  "$1" -version 2>&1 | awk -F'"' '/version/ {split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit}'
}

berth_find_jdk() {
  local candidate best="" best_major=0 major
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/javac" ]; then
    major=$(berth_java_major "$JAVA_HOME/bin/java")
    if [ "${major:-0}" -ge 21 ]; then
      return 0
    fi
  fi
  for candidate in /usr/lib/jvm/* /opt/java/* /usr/local/lib/jvm/* \
      "$(dirname "$(dirname "$(readlink -f "$(command -v javac 2>/dev/null || echo /nonexistent)")")")"; do
    [ -x "$candidate/bin/javac" ] || continue
    major=$(berth_java_major "$candidate/bin/java")
    if [ "${major:-0}" -ge 21 ] && [ "$major" -gt "$best_major" ]; then
      best="$candidate"; best_major="$major"
    fi
  done
  if [ -z "$best" ]; then
    echo "berth: needs a JDK 21 or newer, and found none." >&2
    echo "  JAVA_HOME=${JAVA_HOME:-<unset>}; looked in /usr/lib/jvm, /opt/java and beside 'javac' on PATH." >&2
    echo "  Install one (e.g. 'apt-get install openjdk-21-jdk' or a Temurin 21+ JDK) or set JAVA_HOME to it." >&2
    return 1
  fi
  export JAVA_HOME="$best"
}

berth_find_mvn() {
  if ! command -v mvn >/dev/null 2>&1; then
    echo "berth: building needs Apache Maven 3.8+ ('apt-get install maven'), and 'mvn' is not on PATH." >&2
    return 1
  fi
}

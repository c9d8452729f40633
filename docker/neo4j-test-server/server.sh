#!/usr/bin/env bash
# roon's Neo4j test server: build it, start it, stop it, or run a command beside it.
#
#   server.sh check                     is Java 17+ and Maven here? (exit 3 and the reason if not)
#   server.sh build                     mvn package: compiles the server, caches the jars
#   server.sh start STATE [--home DIR]  start one in the background, wait until it is ready,
#                                       write STATE/env (NEO4J_URI, NEO4J_PASSWORD, ...)
#   server.sh stop STATE                SIGTERM, wait for the clean shutdown, remove STATE
#   server.sh admin HOME ARGS...        neo4j-admin ARGS with NEO4J_HOME=HOME (the import tool)
#   server.sh run CMD...                start one, run CMD with NEO4J_URI & co. set, stop it
#                                       whatever CMD did; exit with CMD's status
#
# `make test` is `server.sh run pytest ...`. With `run`, a missing Java or Maven is not an
# error: CMD runs without a server and ROON_NEO4J_SKIP_REASON says why, so the neo4j
# tests skip with that reason. Any other failure to start (a broken build, a server that
# is not ready within NEO4J_TEST_START_TIMEOUT seconds) fails loudly; NEO4J_TEST_SERVER=off
# runs CMD without a server on purpose. A NEO4J_URI already set is used as it is.
#
# Settings (environment): JAVA_HOME (else `java` on PATH), MVN (default mvn),
# MAVEN_REPO_LOCAL (Maven's local repository, default ~/.m2/repository),
# NEO4J_TEST_HEAP (JVM heap, default 1g), NEO4J_TEST_START_TIMEOUT (default 180 s).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MIN_JAVA=17 # Neo4j 5.26 runs on Java 17 and 21
START_TIMEOUT="${NEO4J_TEST_START_TIMEOUT:-180}"
STOP_TIMEOUT=60 # a clean shutdown takes a few seconds; SIGKILL after this
MAIN=roon.neo4jtest.Neo4jTestServer

say() { echo "neo4j test server: $*" >&2; }

java_bin() {
    if [ -n "${JAVA_HOME:-}" ]; then echo "$JAVA_HOME/bin/java"; else command -v java || true; fi
}

# Prints why the server cannot be built here, and returns 3; returns 0 when it can.
check() {
    local java mvn version major
    java="$(java_bin)"
    if [ -z "$java" ] || [ ! -x "$java" ]; then
        echo "no Java: the Neo4j test server needs Java $MIN_JAVA+ (install a JDK, or set JAVA_HOME)"
        return 3
    fi
    version="$("$java" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n 1)"
    major="${version%%.*}"
    [ "$major" = 1 ] && major="$(echo "$version" | cut -d. -f2)" # 1.8.0 is Java 8
    if ! [ "$major" -ge "$MIN_JAVA" ] 2>/dev/null; then
        echo "$java is Java ${version:-of an unknown version}: the Neo4j test server needs Java $MIN_JAVA+ (set JAVA_HOME)"
        return 3
    fi
    mvn="${MVN:-mvn}"
    if ! command -v "$mvn" >/dev/null 2>&1; then
        echo "no Maven ($mvn not on PATH): the Neo4j test server is built with Maven 3"
        return 3
    fi
    return 0
}

maven() {
    local args=(-q -B -f "$HERE/pom.xml")
    [ -n "${MAVEN_REPO_LOCAL:-}" ] && args+=("-Dmaven.repo.local=$MAVEN_REPO_LOCAL")
    "${MVN:-mvn}" "${args[@]}" "$@"
}

build() {
    local reason log
    if ! reason="$(check)"; then say "$reason"; return 3; fi
    log="$(mktemp)"
    if ! maven package >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        say "the Maven build failed (output above; the whole of it in $log)"
        return 1
    fi
    rm -f "$log"
}

classpath() { echo "$HERE/target/classes:$(cat "$HERE/target/classpath.txt")"; }

# start STATE [--home DIR] [--stdin FIFO]: the server's stdout/stderr go to STATE/server.log.
start() {
    local state="$1" stdin=/dev/null java password line deadline pid
    shift
    local args=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --home) args+=(--home "$2"); shift 2 ;;
            --stdin) stdin="$2"; args+=(--exit-on-stdin-eof); shift 2 ;;
            *) say "start: unknown argument $1"; return 2 ;;
        esac
    done
    build || return $?
    mkdir -p "$state"
    java="$(java_bin)"
    # a fresh password per server; hex, so it needs no quoting anywhere
    password="${ROON_NEO4J_TEST_PASSWORD:-roon-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')}"
    ROON_NEO4J_TEST_PASSWORD="$password" nohup "$java" "-Xmx${NEO4J_TEST_HEAP:-1g}" \
        -cp "$(classpath)" "$MAIN" "${args[@]}" <"$stdin" >"$state/server.log" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$state/pid"
    deadline=$((SECONDS + START_TIMEOUT))
    while :; do
        line="$(grep -m 1 '^ready bolt://' "$state/server.log" 2>/dev/null)"
        [ -n "$line" ] && break
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 40 "$state/server.log" >&2
            say "the server exited before it was ready (its output above)"
            rm -f "$state/pid"
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 40 "$state/server.log" >&2
            say "not ready after $START_TIMEOUT s (NEO4J_TEST_START_TIMEOUT); stopping it"
            stop "$state"
            return 1
        fi
        sleep 0.2
    done
    {
        printf 'NEO4J_URI=%s\n' "${line#ready }"
        printf 'NEO4J_USER=neo4j\nNEO4J_PASSWORD=%s\nNEO4J_DATABASE=neo4j\n' "$password"
    } >"$state/env"
    say "ready at ${line#ready } (pid $pid, Neo4j $(neo4j_version))"
}

neo4j_version() { sed -n 's|.*<neo4j.version>\(.*\)</neo4j.version>.*|\1|p' "$HERE/pom.xml"; }

stop() {
    local state="$1" pid waited=0
    [ -f "$state/pid" ] || return 0
    pid="$(cat "$state/pid")"
    if kill -TERM "$pid" 2>/dev/null; then
        while kill -0 "$pid" 2>/dev/null; do
            if [ "$waited" -ge $((STOP_TIMEOUT * 5)) ]; then
                say "pid $pid still running $STOP_TIMEOUT s after SIGTERM; killing it"
                kill -KILL "$pid" 2>/dev/null
                break
            fi
            sleep 0.2
            waited=$((waited + 1))
        done
    fi
    rm -rf "$state"
}

admin() {
    local home="$1"
    shift
    build || return $?
    mkdir -p "$home/conf"
    touch "$home/conf/neo4j.conf"
    NEO4J_HOME="$home" NEO4J_CONF="$home/conf" "$(java_bin)" "-Xmx${NEO4J_TEST_HEAP:-1g}" \
        -cp "$(classpath)" org.neo4j.cli.AdminTool "$@"
}

RUN_STATE="" # run's state directory, for its EXIT trap

run() {
    local reason status
    if [ -n "${NEO4J_URI:-}" ]; then
        say "NEO4J_URI is set: the tests use that server, none is started"
        "$@"
        return $?
    fi
    if [ "${NEO4J_TEST_SERVER:-on}" = off ]; then
        export ROON_NEO4J_SKIP_REASON="NEO4J_TEST_SERVER=off: no Neo4j test server started"
        "$@"
        return $?
    fi
    if ! reason="$(check)"; then
        say "$reason; the neo4j tests will skip"
        export ROON_NEO4J_SKIP_REASON="$reason"
        "$@"
        return $?
    fi
    RUN_STATE="$(mktemp -d "${TMPDIR:-/tmp}/roon-neo4j-run.XXXXXX")"
    # The server reads a FIFO that only this shell holds open (fd 9; read-write, so the
    # open does not wait for a reader): if this shell dies, even by SIGKILL, the server
    # reads EOF and stops by itself. No child but the server gets fd 9.
    mkfifo "$RUN_STATE/stdin"
    exec 9<>"$RUN_STATE/stdin"
    trap 'exec 9>&-; stop "$RUN_STATE/server"; rm -rf "$RUN_STATE"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    if ! start "$RUN_STATE/server" --stdin "$RUN_STATE/stdin" 9>&-; then
        status=$?
        say "could not start it (NEO4J_TEST_SERVER=off runs the tests without it)"
        return "$status"
    fi
    set -a
    # shellcheck disable=SC1091
    . "$RUN_STATE/server/env"
    set +a
    export ROON_NEO4J_TEST_WIPE=1 ROON_NEO4J_TEST_SERVER="$HERE/server.sh"
    "$@" 9>&-
    status=$?
    return "$status"
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
    check) reason="$(check)" || { echo "$reason"; exit 3; }; echo "ok: $(java_bin), ${MVN:-mvn}, Neo4j $(neo4j_version)" ;;
    build) build ;;
    classpath) classpath ;;
    start) [ $# -ge 1 ] || { say "usage: server.sh start STATE [--home DIR]"; exit 2; }; start "$@" ;;
    stop) [ $# -eq 1 ] || { say "usage: server.sh stop STATE"; exit 2; }; stop "$1" ;;
    admin) [ $# -ge 1 ] || { say "usage: server.sh admin HOME ARGS..."; exit 2; }; admin "$@" ;;
    run) [ $# -ge 1 ] || { say "usage: server.sh run CMD..."; exit 2; }; run "$@" ;;
    *) sed -n '2,12s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
esac

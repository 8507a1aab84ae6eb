#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for tests/slurm_test.py and for trying the
# sbatch scripts by hand: munged + slurmctld + slurmd (Debian's slurm-wlm and munge), run
# as root, without systemd or cgroups.
#
#   .ci/slurm_cluster.sh start    install if absent (apt-get), configure, start; idempotent
#   .ci/slurm_cluster.sh stop     stop the daemons this script started (cancels their jobs)
#   .ci/slurm_cluster.sh status   exit status 0 when this script's cluster answers
#
# Measured on a 2-core Debian 12 machine (slurm-wlm 22.05.8): install 17 s, start 10-11 s
# (until the node is idle), stop 5 s. State, spool, logs and pid
# files live in $HYPERPROTO_SLURM_DIR (default /tmp/hyperproto-slurm); the configuration
# is /etc/slurm/slurm.conf (where the clients look by default), which this script writes
# only when it is absent or its own.
set -euo pipefail

DIR=${HYPERPROTO_SLURM_DIR:-/tmp/hyperproto-slurm}
CONF=/etc/slurm/slurm.conf
MARK='# Written by hyperproto .ci/slurm_cluster.sh'
RUN=$DIR/run
HOST=$(hostname -s)
# The node advertises this many CPUs (slurmd's real count when larger): the tests' jobs
# mostly wait (for a signal, a requeue), so they run side by side on a 2-core machine.
NODE_CPUS=${HYPERPROTO_SLURM_CPUS:-16}

say() { printf 'slurm_cluster: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

alive() {  # alive NAME: the daemon whose pid this script recorded runs
  local f=$RUN/$1.pid
  [[ -s $f ]] && [[ $(cat "/proc/$(<"$f")/comm" 2>/dev/null) == "$1" ]]
}

answers() { grep -qxF "$MARK" "$CONF" 2>/dev/null && timeout 10 sinfo -h >/dev/null 2>&1; }

install_packages() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
    && command -v munged >/dev/null && return 0
  [[ $EUID -eq 0 ]] || die "SLURM is not installed, and installing it needs root."
  command -v apt-get >/dev/null || die "SLURM is not installed, and there is no apt-get."
  say "installing slurm-wlm and munge (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  local packages=(slurm-wlm munge)
  apt-get install -y -q "${packages[@]}" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q "${packages[@]}" >/dev/null; } \
    || die "apt-get install ${packages[*]} failed."
}

configure() {
  if [[ -e $CONF ]] && ! grep -qxF "$MARK" "$CONF"; then
    die "$CONF exists and is not this script's: not overwriting another cluster's" \
      "configuration."
  fi
  mkdir -p "$DIR"/{state,spool,log} "$RUN" /etc/slurm
  local real_cpus memory
  real_cpus=$(slurmd -C | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p')
  memory=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
  ((real_cpus > NODE_CPUS)) && NODE_CPUS=$real_cpus
  cat >"$CONF" <<EOF
$MARK
ClusterName=hyperproto
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# A requeued job may start again only cred_expire seconds after its requeue (default
# 120 s); 10 s, and a scheduler pass every 5 s, bring a requeue to 13-20 s.
AuthInfo=cred_expire=10
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5,bf_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# No cgroups (no systemd here): processes are found through /proc, nothing is bound.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
# SIGTERM to SIGKILL at a cancel, requeue or time limit (default 30 s).
KillWait=10
# Finished jobs stay in 'scontrol show job' for 10 minutes (there is no accounting).
MinJobAge=600
ReturnToService=2
JobRequeue=1
# The node's CPUs as configured here, not as detected (see NODE_CPUS above).
SlurmdParameters=config_overrides
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$NODE_CPUS RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
  if [[ ! -s /etc/munge/munge.key ]]; then
    mungekey --create --keyfile /etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  fi
  install -d -o munge -g munge -m 0755 /run/munge   # no systemd-tmpfiles here
  if [[ -S /run/munge/munge.socket.2 ]] \
    && munge -n </dev/null | unmunge >/dev/null 2>&1; then
    return 0  # a munged answers already (ours or the system's)
  fi
  # munged refuses to run as root ("insecure" munge-owned directories).
  runuser -u munge -- /usr/sbin/munged
  cp /run/munge/munged.pid "$RUN/munged.pid"  # ours: stop stops it
  munge -n </dev/null | unmunge >/dev/null || die "munged does not answer."
}

start() {
  local t0=$SECONDS
  if answers; then say "already running"; return 0; fi
  install_packages
  configure
  start_munge
  # -c: a clean start (no jobs saved by an earlier run, e.g. one killed mid-test).
  alive slurmctld || slurmctld -c
  alive slurmd || slurmd
  local state=''
  for _ in $(seq 60); do
    state=$(sinfo -h -N -o '%T' 2>/dev/null | head -1 || true)
    if [[ $state == idle* || $state == mixed* || $state == allocated* ]]; then
      say "up in $((SECONDS - t0)) s: node $HOST ($NODE_CPUS CPUs), partition debug," \
          "logs in $DIR/log"
      return 0
    fi
    sleep 1
  done
  tail -n 20 "$DIR"/log/*.log >&2 || true
  die "the node did not come up (state '$state')."
}

stop() {
  if alive slurmctld; then
    scancel --partition=debug 2>/dev/null || true  # no job outlives the daemons
    for _ in $(seq 30); do [[ -z $(squeue -h 2>/dev/null) ]] && break; sleep 1; done
  fi
  local name pid
  for name in slurmd slurmctld munged; do
    if alive "$name"; then
      pid=$(<"$RUN/$name.pid")
      kill -TERM "$pid"
      for _ in $(seq 20); do [[ -d /proc/$pid ]] || break; sleep 0.5; done
      [[ -d /proc/$pid ]] && kill -KILL "$pid"
      say "stopped $name (pid $pid)"
    fi
    rm -f "$RUN/$name.pid"
  done
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) if answers; then sinfo; squeue; else say "not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# A private single-node Slurm cluster on localhost for tests (Debian's
# slurm-wlm and munge), with everything under one folder: its own munged
# (socket and key), slurm.conf, state and spool, and free TCP ports, so it
# collides with no other Slurm or munge on the machine. Needs root (slurmd
# runs jobs as their user; munged runs as the munge user).
#
#   slurm_cluster.sh start DIR   # prints `export SLURM_CONF=DIR/slurm.conf`
#   slurm_cluster.sh stop DIR    # stops the daemons it started there
#
# Clients (sbatch, squeue, scontrol, scancel) find the cluster through
# SLURM_CONF. The node has two fake GPUs (gres gpu:2, symlinks to /dev/null:
# a gres without File= makes the node INVAL). Finished jobs stay visible to
# scontrol for a day (MinJobAge): without slurmdbd, sacct knows nothing.
set -euo pipefail
usage() { echo "usage: slurm_cluster.sh start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$2

die() {
  echo "slurm_cluster: $*" >&2
  exit 1
}

# Logs of the daemons, shown when something does not come up.
show_logs() {
  for f in "$dir"/log/*.log; do
    [ -f "$f" ] || continue
    echo "--- $f" >&2
    tail -n 20 "$f" >&2
  done
}

stop() {
  for name in slurmd slurmctld munged; do
    local f="$dir/run/$name.pid"
    [ -f "$f" ] || continue
    local pid
    pid=$(cat "$f")
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$f"
  done
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
  for p in munged slurmctld slurmd sbatch scontrol; do
    command -v "$p" >/dev/null || die "'$p' not found: install Debian's slurm-wlm and munge (scripts/setup.sh)"
  done
  [ "$(id -u)" -eq 0 ] || die "needs root (slurmd runs the jobs; munged runs as the munge user)"
  id munge >/dev/null 2>&1 || die "no 'munge' user: install Debian's munge (scripts/setup.sh)"
  mkdir -p "$dir"/{munge,state,spool,log,run}
  # munged refuses directories that others can write, and runs as munge.
  chmod 0755 "$dir" "$dir/run" "$dir/log"
  chmod 0755 "$dir/munge"  # the socket needs execute for all
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 0400 "$dir/munge/munge.key"
  chown -R munge:munge "$dir/munge"
  runuser -u munge -- munged --socket="$dir/munge/socket" --key-file="$dir/munge/munge.key" \
    --pid-file="$dir/munge/munged.pid" --seed-file="$dir/munge/seed" \
    --log-file="$dir/munge/munged.log" >"$dir/log/munged.out" 2>&1 ||
    { cat "$dir/log/munged.out" "$dir/munge/munged.log" >&2 2>/dev/null; die "munged did not start"; }
  cp "$dir/munge/munged.pid" "$dir/run/munged.pid"

  local host cpus mem
  host=$(hostname -s)
  # The node as slurmd sees it (a node configured larger than it is goes INVAL
  # unless config_overrides, used for the CPUs only).
  cpus=$(slurmd -C | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' | head -n 1)
  mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -n 1)
  [ -n "$cpus" ] && [ -n "$mem" ] || die "cannot read the node's CPUs/RealMemory from slurmd -C"
  # At least 4 CPUs to schedule on, whatever the machine has (config_overrides
  # below): tests run a few one-CPU jobs at once.
  ((cpus >= 4)) || cpus=4
  ln -sf /dev/null "$dir/fake-gpu0"
  ln -sf /dev/null "$dir/fake-gpu1"
  cat >"$dir/slurm.conf" <<EOF
ClusterName=candiestest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
AuthInfo=socket=$dir/munge/socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.file.pid
SlurmdPidFile=$dir/run/slurmd.file.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=1
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=512
MinJobAge=86400
ReturnToService=2
SchedulerType=sched/builtin
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
MpiDefault=none
GresTypes=gpu
KillWait=2
SlurmdTimeout=30
SlurmdParameters=config_overrides
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  echo "NodeName=$host Name=gpu File=$dir/fake-gpu[0-1]" >"$dir/gres.conf"
  export SLURM_CONF=$dir/slurm.conf

  slurmctld -D -c -f "$SLURM_CONF" >"$dir/log/slurmctld.out" 2>&1 &
  echo $! >"$dir/run/slurmctld.pid"
  local up=0
  for _ in $(seq 1 100); do
    if scontrol ping 2>/dev/null | grep -q "is UP"; then up=1; break; fi
    kill -0 "$(cat "$dir/run/slurmctld.pid")" 2>/dev/null || break
    sleep 0.1
  done
  ((up)) || { show_logs; stop; die "slurmctld did not come up"; }
  # slurmd only once the controller answers, or it registers late.
  slurmd -D -f "$SLURM_CONF" -N "$host" >"$dir/log/slurmd.out" 2>&1 &
  echo $! >"$dir/run/slurmd.pid"
  local state=
  for _ in $(seq 1 100); do
    state=$(sinfo -h -N -o %T 2>/dev/null | head -n 1)
    [ "$state" = idle ] && break
    kill -0 "$(cat "$dir/run/slurmd.pid")" 2>/dev/null || break
    sleep 0.1
  done
  [ "$state" = idle ] || { show_logs; stop; die "the node did not become idle (state '$state')"; }
  echo "export SLURM_CONF=$SLURM_CONF"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac

# Sourced by bench/parallel.sh and bench/parallel_peer.sh (POSIX sh).
# idle: the CPUs' idle share (percent) over one second, from /proc/stat.
# wait_idle: wait (up to 60 tries, i.e. about 60 s) until idle >= MIN_IDLE
# (default 90; 40 beside a deliberate busy process): the load average lags
# by a minute, other users' builds come and go. Leaves the last reading in
# $id and a description in $load.
idle() { set -- $(head -1 /proc/stat); t1=$(($2+$3+$4+$5+$6+$7+$8)) i1=$5; sleep 1
         set -- $(head -1 /proc/stat); t2=$(($2+$3+$4+$5+$6+$7+$8)) i2=$5
         echo $((100 * (i2 - i1) / (t2 - t1))); }
wait_idle() {
    tries=0
    while id=$(idle); [ "$id" -lt "${MIN_IDLE:-90}" ] && [ $tries -lt 60 ]; do tries=$((tries+1)); done
    load="$(cut -d' ' -f1 /proc/loadavg), idle $id%"
}

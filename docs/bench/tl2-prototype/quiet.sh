#!/bin/sh
# wait until no other process uses > 5% CPU (ps %CPU is a lifetime average; use two /proc/stat samples instead)
while :; do
  a=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat); sleep 5
  b=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat)
  busy=$(echo "$a $b" | awk '{u=$3-$1; i=$4-$2; print int(100*u/(u+i))}')
  [ "$busy" -lt 5 ] && break
  echo "busy ${busy}%, waiting" >&2
done

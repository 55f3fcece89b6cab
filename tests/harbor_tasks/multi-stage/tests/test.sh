#!/bin/bash
mkdir -p /logs/verifier
expected=$(( $(cat /opt/tools/applets.txt) + 1 ))
if [ "$expected" -gt 1 ] && [ "$(cat /work/answer.txt 2>/dev/null)" = "$expected" ]; then
  echo 1 > /logs/verifier/reward.txt
else
  echo 0 > /logs/verifier/reward.txt
fi

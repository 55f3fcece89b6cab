#!/bin/bash
# A reward of 1 only when the system file is there, as the task asks.
mkdir -p /logs/verifier
if [ "$(cat /etc/scenario/service.conf 2>/dev/null)" = "mode=$EXPECTED" ] && [ -f /tests/expected.txt ]; then
  echo 1 > /logs/verifier/reward.txt
else
  echo 0 > /logs/verifier/reward.txt
fi

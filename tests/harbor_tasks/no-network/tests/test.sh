#!/bin/bash
# Rewarded only when the task's answer is there and the devbox really has no way out.
mkdir -p /logs/verifier
if python3 -c "import socket; socket.create_connection(('1.1.1.1', 53), timeout=3)" 2>/dev/null; then
  echo 0 > /logs/verifier/reward.txt
elif [ "$(cat /root/status.txt 2>/dev/null)" = offline ]; then
  echo 1 > /logs/verifier/reward.txt
else
  echo 0 > /logs/verifier/reward.txt
fi

#!/bin/bash
set -euo pipefail
echo $(( $(cat /opt/tools/applets.txt) + 1 )) > /work/answer.txt

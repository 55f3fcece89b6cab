#!/bin/bash
set -euo pipefail
greeting=$(cat /app/data/greeting.txt)
while read -r name; do echo "$greeting $name"; done < /app/data/names.txt > /app/out.txt

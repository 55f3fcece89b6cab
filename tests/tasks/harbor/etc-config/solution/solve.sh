#!/bin/bash
set -euo pipefail
mkdir -p /etc/scenario
echo mode=enabled > /etc/scenario/service.conf

#!/bin/bash
echo offline > /root/status.txt

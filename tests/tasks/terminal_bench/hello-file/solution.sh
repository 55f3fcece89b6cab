#!/bin/bash
echo "hello terminal-bench" > /app/hello.txt

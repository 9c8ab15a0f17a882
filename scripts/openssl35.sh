#!/usr/bin/env bash
# Kept for existing callers: the same as scripts/openssl-src.sh 3.5.
exec bash "$(dirname "$0")/openssl-src.sh" 3.5 "$@"

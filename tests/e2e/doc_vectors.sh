#!/bin/sh
# doc_vectors.sh — docs/protocol.md promises that a client in another language can be written from the page alone.
# This runs the page's own golden-vector check (section 6.4, Python with the `cryptography` package and protoc's
# Python output) against tests/vectors/, so the page, the vectors and our C signer cannot drift apart.
#
# usage: doc_vectors.sh SOURCE_ROOT
set -eu
root=$1
work=$(mktemp -d /tmp/xba-doc-vectors.XXXXXX)
trap 'rm -rf "$work"' EXIT

protoc --python_out="$work" -I"$root/proto" "$root/proto/xba.proto"
# The first ```python block after the "### 6.4" heading.
sed -n '/^### 6.4/,/^## 7/p' "$root/docs/protocol.md" | sed -n '/^```python$/,/^```$/p' | sed '1d;$d' \
	>"$work/check.py"
[ -s "$work/check.py" ] || { echo "no python block in docs/protocol.md section 6.4"; exit 1; }
cd "$root"
PYTHONPATH="$work" /usr/bin/python3 "$work/check.py"
echo "docs/protocol.md 6.4: golden vectors reproduced by an independent implementation"
echo "1 passed, 0 failed"

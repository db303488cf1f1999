#!/usr/bin/env bash
# Regenerates the built-in call-flow prompts (8 kHz mono 16-bit). Needs espeak-ng and sox.
set -euo pipefail
cd "$(dirname "$0")"
say() { # name text
  espeak-ng -v en-gb -s 160 -w "/tmp/earshot-prompt-$1.wav" "$2"
  sox "/tmp/earshot-prompt-$1.wav" -r 8000 -c 1 -b 16 "$1.wav" norm -3
  rm "/tmp/earshot-prompt-$1.wav"
}
say default "Thank you for calling. Please hold."
say voicemail "Please leave a message after the tone."

#!/usr/bin/env bash
# Regenerates the demo speech clips (see README.md). Needs espeak-ng and sox.
set -euo pipefail
cd "$(dirname "$0")"
say() { # name voice speed text
  espeak-ng -v "$2" -s "$3" -w "/tmp/earshot-$1.wav" "$4"
  sox "/tmp/earshot-$1.wav" -r 8000 -c 1 -b 16 "$1.wav" norm -3
  rm "/tmp/earshot-$1.wav"
}
say agent-greeting en-gb 160 "Thank you for calling Acme, this is your agent speaking. How can I help?"
say agent-account en-gb 160 "Could you give me your account number, please?"
say agent-check en-gb 160 "Let me check that for you. One moment."
say agent-solved en-gb 160 "That is all sorted now. Is there anything else?"
say agent-payment en-gb 160 "I will take the card details now, so I am pausing the recording."
say agent-bye en-gb 160 "Thanks for calling. Have a lovely day."
say agent-outbound en-gb 160 "Hello, I am calling from Acme about your recent order."
say caller-hello en-us+f3 165 "Hi, I have a question about my last invoice."
say caller-account en-us+f3 165 "Sure, it is four four seven, two one nine."
say caller-problem en-us+f3 165 "The delivery never arrived, and I was charged twice."
say caller-thanks en-us+f3 165 "No, that is everything. Thank you so much."
say caller-voicemail en-us+f3 165 "Hello, this is a message for the support team. Please call me back about my order. Thanks."
say caller-voicemail-short en-us+f3 165 "Hi, it is Sam from Globex. Call me back when you can."

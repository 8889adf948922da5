#!/usr/bin/env bash
# `loom chat` in a real terminal (tmux): answers stream into the pane, /system, /save, /clear
# and /help work, Ctrl-C at the prompt does not leave, Ctrl-C during an answer stops it and the
# chat goes on, `loom run -m MODEL` with no prompt opens the same chat, Ctrl-D and /exit leave
# with status 0.
# Usage: chat_tmux.sh LOOM_BINARY MODEL_FOLDER
set -euo pipefail

loom=$1
model=$2
tmp=$(mktemp -d)
sock="loom-chat-test-$$"
t() { tmux -L "$sock" "$@"; }
cleanup() {
  t kill-server 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

pane() { t capture-pane -p -J -t "$1" -S -500; }
fail() {
  echo "FAIL: $*"
  echo "---- pane $session ----"
  pane "$session" || true
  exit 1
}
# Waits up to $2 seconds (default 60) until the pane shows a line matching $1.
wait_for() {
  local pattern=$1 limit=${2:-60} i
  for ((i = 0; i < limit * 10; i++)); do
    if pane "$session" | grep -qE -- "$pattern"; then return 0; fi
    sleep 0.1
  done
  fail "no line matching '$pattern' within $limit s"
}
prompts() { pane "$session" | grep -cE '^> ' || true; }
# Sends a line and waits for the chat's next prompt.
send() {
  local before
  before=$(prompts)
  t send-keys -t "$session" -l -- "$1"
  t send-keys -t "$session" Enter
  local i
  for ((i = 0; i < 1200; i++)); do
    if (($(prompts) > before)); then return 0; fi
    sleep 0.1
  done
  fail "no prompt after sending '$1'"
}
# The pane's shell ignores SIGINT so that only loom sees Ctrl-C (loom installs its own handler).
start() {
  session=$1
  shift
  t new-session -d -s "$session" -x 160 -y 50 \
    "bash -c 'trap \"\" INT; $* ; echo LOOM-EXIT=\$?; sleep 120'"
}
# The answer's text (no spaces) between the line "> $1" and the next prompt.
answer_to() {
  pane "$session" | sed -n "/^> $1/,/^> /p" | sed '1d;$d' | grep -v '^(' | tr -d '[:space:]'
}
type_line() {
  t send-keys -t "$session" -l -- "$1"
  t send-keys -t "$session" Enter
}

# 1. Answers, commands, the saved conversation.
start chat "$loom chat -m $model --temp 0 -n 40 -t 2"
wait_for '/help lists the commands'
wait_for '^> '
send "Who created the heaven and the earth?"
[[ -n $(answer_to "Who created") ]] || fail "no answer text after the first message"
send "/system Answer as the psalmist would."
wait_for '\(system message set\)'
send "And what did God see?"
send "/save $tmp/chat.json"
wait_for "\(saved 5 messages to $tmp/chat.json\)"
python3 - "$tmp/chat.json" <<'EOF' || fail "the saved conversation is not what was said"
import json, sys
m = json.load(open(sys.argv[1]))["messages"]
assert [x["role"] for x in m] == ["system", "user", "assistant", "user", "assistant"], m
assert m[0]["content"] == "Answer as the psalmist would."
assert m[1]["content"] == "Who created the heaven and the earth?"
assert m[3]["content"] == "And what did God see?"
assert m[2]["content"].strip() and m[4]["content"].strip()
EOF
send "/clear"
wait_for '\(conversation cleared\)'
send "/save $tmp/cleared.json"
wait_for "\(saved 1 messages to $tmp/cleared.json\)"
send "/help"
wait_for '^/save FILE'
send "/frobnicate"
wait_for '/frobnicate: not a command'
# Ctrl-C at the prompt says how to leave and stays.
t send-keys -t chat C-c
wait_for '\(/exit or Ctrl-D leaves\)'
type_line "/exit"
wait_for '^LOOM-EXIT=0$'

# 2. `loom run` with no prompt on a terminal is the same chat; Ctrl-D leaves.
start run "$loom run -m $model --temp 0 -n 16 -t 2"
wait_for '/help lists the commands'
wait_for '^> '
send "In the beginning"
[[ -n $(answer_to "In the beginning") ]] || fail "no answer from loom run's chat"
t send-keys -t run C-d
wait_for '^LOOM-EXIT=0$'

# 3. Ctrl-C during an answer stops it and the chat goes on. A larger random-weight model with
# the same tokenizer decodes slowly enough to interrupt, and shows the text arriving.
"$loom" synth --hidden 768 --layers 12 --heads 12 --ffn 2048 --context 4096 \
  --vocab-from "$model" -o "$tmp/slow" >/dev/null
start slow "$loom chat -m $tmp/slow --temp 1 --seed 7 -n 3000 --guard off -t 2"
wait_for '/help lists the commands' 120
wait_for '^> '
type_line "Tell me everything."
# Streaming: once the answer has begun, it keeps growing while it is being written.
sent=$(pane slow | wc -c)
for ((i = 0; i < 600; i++)); do
  (($(pane slow | wc -c) > sent + 40)) && break
  sleep 0.1
done
first=$(pane slow | wc -c)
((first > sent + 40)) || fail "no answer began within 60 s"
sleep 2
second=$(pane slow | wc -c)
((second > first)) || fail "the answer did not grow while streaming ($first -> $second bytes)"
t send-keys -t slow C-c
wait_for '\(stopped\)' 30
wait_for '^> $' 30
send "/save $tmp/slow.json"
python3 -c "
import json, sys
m = json.load(open('$tmp/slow.json'))['messages']
assert [x['role'] for x in m] == ['user', 'assistant'], m
assert len(m[1]['content']) > 0
" || fail "the stopped answer is not in the history"
type_line "/exit"
wait_for '^LOOM-EXIT=0$'
echo "chat_tmux: all checks passed"

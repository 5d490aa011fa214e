#!/usr/bin/env bash
# The main job: the server with its SQLite database, the demo partner site,
# and two headless apps (nexmile-cli) that register by app link and make a
# 20-second video call through the server, then a live with two viewers who
# comment and send gifts. Prints the reports; with a
# terminal attached, keeps the server and the site up until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --quiet -p nexmile-server -p nexmile-partner-demo -p nexmile-client -p nexmile
BIN="${CARGO_TARGET_DIR:-target}/debug"
mkdir -p var
# HTTPS everywhere, as in production: a certificate authority made once on
# this machine (var/tls/ca.pem) issues the server's certificate for
# 127.0.0.1 and localhost. Every client here trusts that authority: the apps
# through NEXMILE_CA_FILE, curl with --cacert, Chromium by the key's pin.
"$BIN/nexmile-server" --dev-certificates var/tls >/dev/null
export NEXMILE_CA_FILE=var/tls/ca.pem
NEXMILE=https://127.0.0.1:7443
CURL=(curl -fsS --cacert var/tls/ca.pem)
rm -rf var/profiles
LOGS=var/logs; mkdir -p "$LOGS"

"$BIN/nexmile-partner-demo" --listen 127.0.0.1:9000 --database sqlite://var/partner-demo.db \
  --site-code newsite1 --api-key test.key --site-token site-token-1 --signing-secret demo-signing-secret \
  --nexmile-url "$NEXMILE" --nexmile-ca var/tls/ca.pem >"$LOGS/partner-demo.log" 2>&1 &
PARTNER=$!
"$BIN/nexmile-server" --config config/nexmile.toml >"$LOGS/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER $PARTNER 2>/dev/null || true' EXIT
for url in http://127.0.0.1:9000/users.json "$NEXMILE/health"; do
  for _ in $(seq 100); do "${CURL[@]}" "$url" >/dev/null 2>&1 && break; sleep 0.1; done
done
echo "partner demo: http://127.0.0.1:9000/  (app links, request log at /log)"
echo "server:       $NEXMILE   (admin: Authorization: Bearer demo-admin-token; CA: var/tls/ca.pem)"
echo "plain http:   $("${CURL[@]}" -o /dev/null -w '%{http_code} to %{redirect_url}' http://127.0.0.1:7080/health)"
echo "HSTS:         $("${CURL[@]}" -D - -o /dev/null "$NEXMILE/health" | grep -i strict-transport | tr -d '\r')"

CLI=("$BIN/nexmile-cli" --server "$NEXMILE")
LINK=https://sbx.stream-works.biz/sbxapp
"${CLI[@]}" --profiles var/profiles/hanako open "$LINK/activateExUser/?site=newsite1&user=hanako&pass=hanako-pw"
"${CLI[@]}" --profiles var/profiles/airi open "$LINK/activateExUser/?site=newsite1&user=airi&pass=airi-pw"

echo "--- videoSetting download=1: the site's effect files into hanako's profile ---"
"${CLI[@]}" --profiles var/profiles/hanako open "$LINK/videoSetting/?site=newsite1&download=1" | grep -v '"event":"effects.progress"'

echo "--- videoSetting download=0: a 3-second video test with a wallpaper and a face mosaic (saved for calls) ---"
"${CLI[@]}" --profiles var/profiles/hanako open "$LINK/videoSetting/?site=newsite1&download=0" \
  --wallpaper picture:wallpapers/sakura.png --mosaic faces --duration 3000 | grep -v '"event":"quality"'

echo "--- a 20-second video call: hanako calls airi (100 yen a minute) ---"
"${CLI[@]}" --profiles var/profiles/airi listen --site newsite1 --calls 1 --answer-after 1500 \
  >"$LOGS/callee.jsonl" &
CALLEE=$!
sleep 1
"${CLI[@]}" --profiles var/profiles/hanako open "$LINK/makecall/?site=newsite1&calleeId=airi&video=1" \
  --hangup-after 20000 | tee "$LOGS/caller.jsonl" | grep -v '"event":"\(quality\|billing\)"' || true
wait $CALLEE || true
echo "--- last quality report of each side ---"
grep '"event":"quality"' "$LOGS/caller.jsonl" | tail -1
grep '"event":"quality"' "$LOGS/callee.jsonl" | tail -1
sleep 2
echo "--- what the partner site received ---"
curl -fsS http://127.0.0.1:9000/log.json | python3 -c '
import json, sys, urllib.parse
for r in json.load(sys.stdin)[-12:]:
    body = urllib.parse.unquote_plus(r["body"])
    kind = ""
    if r["path"] == "/CallService":
        try: kind = " callServiceTp=%s" % json.loads(body)["callServiceTp"]
        except Exception: pass
    print("%s %-4s %-14s%s signature=%s -> %s" % (r["at"], r["method"], r["path"], kind, r["signature"], r["replyStatus"]))'
echo "--- a live: airi broadcasts, hanako and taro watch; they comment and hanako sends gifts ---"
"${CLI[@]}" --profiles var/profiles/taro open "$LINK/activateExUser/?site=newsite1&user=taro&pass=taro-pw" >/dev/null
"${CLI[@]}" --profiles var/profiles/airi open "$LINK/videoSetting/?site=newsite1&download=1" >/dev/null
"${CLI[@]}" --profiles var/profiles/airi open "$LINK/broadcastLive/?site=newsite1&linkId=room-airi" \
  --live-for 14000 >"$LOGS/liver.jsonl" &
LIVER=$!
LIVE_TOKEN=""
for _ in $(seq 1 150); do
  LIVE_TOKEN=$( (grep -o '"liveToken":"[^"]*"' "$LOGS/liver.jsonl" 2>/dev/null || true) | head -1 | cut -d'"' -f4)
  [ -n "$LIVE_TOKEN" ] && break
  sleep 0.1
done
VIEW="$LINK/viewLive/?site=newsite1&liveToken=$LIVE_TOKEN&linkId=room-airi"
"${CLI[@]}" --profiles var/profiles/hanako open "$VIEW" --live-for 8000 \
  --comment "こんばんは" --comment "今日も楽しみにしていました" --gift 2:1 --gift 9:1 >"$LOGS/viewer-hanako.jsonl" &
HANAKO=$!
"${CLI[@]}" --profiles var/profiles/taro open "$VIEW" --live-for 6000 --comment "はじめまして" >"$LOGS/viewer-taro.jsonl" &
TARO=$!
wait $HANAKO $TARO $LIVER || true
echo "what the broadcaster saw:"
grep -h '"event":"live\.\(on_air\|joined\|comment\|item\|gift_on_video\|ended\)"' "$LOGS/liver.jsonl" | cut -c1-200 || true
echo "what each viewer received:"
grep -h '"event":"live.media"' "$LOGS/viewer-hanako.jsonl" "$LOGS/viewer-taro.jsonl" || true
echo "--- the server's outbox (通話終了 is retried until delivered) ---"
"${CURL[@]}" -H 'Authorization: Bearer demo-admin-token' "$NEXMILE/admin/outbox?limit=3"; echo

# The compatible surfaces, as an operator of each would call them.
echo "--- ImageFlux API: login, a schedule with a two-rung HLS ladder, its ingest and playlist ---"
IF=$NEXMILE/api
IF_TOKEN=$("${CURL[@]}" -X POST "$IF/login" -H 'content-type: application/json' \
  -d '{"email":"imageflux@example.com","password":"Password123","access_code":"0987654321"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
jst() { TZ=Asia/Tokyo date -d "$1" '+%Y/%m/%d %H:%M:%S'; }
SCHEDULE=$("${CURL[@]}" -X POST "$IF/schedule" -H "authorization: Bearer $IF_TOKEN" -H 'content-type: application/json' \
  -d "{\"name\":\"デモ配信 $(date +%H%M%S)\",\"start_datetime\":\"$(jst '-1 min')\",\"end_datetime\":\"$(jst '+5 min')\",
       \"imageflux_params\":[{\"durationSeconds\":2,\"startTimeOffset\":-4,\"video\":{\"width\":640,\"height\":480,\"fps\":30,\"bps\":1000000},\"audio\":{\"bps\":64000}},
                            {\"durationSeconds\":2,\"startTimeOffset\":-4,\"video\":{\"width\":320,\"height\":240,\"fps\":15,\"bps\":300000},\"audio\":{\"bps\":32000}}]}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["schedule_id"])')
DELIVERY=$("${CURL[@]}" "$IF/delivery?schedule_id=$SCHEDULE" -H "authorization: Bearer $IF_TOKEN"); echo "delivery: $DELIVERY"
VIEW=$("${CURL[@]}" "$IF/view?schedule_id=$SCHEDULE" -H "authorization: Bearer $IF_TOKEN"); echo "view:     $VIEW"
INGEST=$(echo "$DELIVERY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sora_url"])')
PLAYLIST=$(echo "$VIEW" | python3 -c 'import json,sys; print(json.load(sys.stdin)["playlist_url"])')
CHANNEL=$(echo "$DELIVERY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["channel_id"])')
"${CURL[@]}" -X POST "$IF/chat" -H "authorization: Bearer $IF_TOKEN" -H 'content-type: application/json' \
  -d "{\"schedule_id\":\"$SCHEDULE\",\"body\":\"まもなく配信します\"}" >/dev/null
echo "--- Chromium publishes 10 s over WHIP; ffprobe reads the HLS while it runs ---"
(cd ui && NEXMILE_SERVER_CERT=../var/tls/cert.pem node browser/whip.mjs ingest "$NEXMILE" "$IF_TOKEN" "$INGEST" 10 >"../$LOGS/whip.json") &
WHIP=$!
sleep 7
ffprobe -v error -tls_verify 1 -ca_file var/tls/ca.pem -show_entries stream=codec_name,width,height -of compact "$PLAYLIST" || true
wait $WHIP || true
"${CURL[@]}" -H 'Authorization: Bearer demo-admin-token' "$NEXMILE/admin/hls/$CHANNEL"; echo
echo "--- the schedule's chat as a social stream ---"
"$BIN/nexmile-cli" socialstream "$NEXMILE/socialstream/get.json/$CHANNEL/default" --for 1500 || true
echo "--- SkyWay Channel API (JSON-RPC 2.0): a batch ---"
"${CURL[@]}" -X POST "$NEXMILE/v1/json-rpc" -H 'authorization: Bearer demo-skyway-admin-token' \
  -H 'content-type: application/json' \
  -d '[{"jsonrpc":"2.0","id":1,"method":"findOrCreateChannel","params":{"name":"demo-room","metadata":"make run"}},
       {"jsonrpc":"2.0","id":2,"method":"findChannel","params":{"name":"no-such-room"}}]'; echo

# The desktop app, as hanako: in its own window when this machine has a
# display, otherwise under Xvfb with screenshots of what it shows.
APP_ENV=(NEXMILE_SERVER="$NEXMILE" NEXMILE_CA_FILE="$PWD/var/tls/ca.pem" NEXMILE_PROFILES=var/app-profiles WEBKIT_DISABLE_DMABUF_RENDERER=1)
rm -rf var/app-profiles
ACTIVATE="nexmile://activateExUser/?site=newsite1&user=hanako&pass=hanako-pw"
DOWNLOAD_LINK="nexmile://videoSetting/?site=newsite1&download=1"
TEST_LINK="nexmile://videoSetting/?site=newsite1&download=0"
if [ -n "${DISPLAY:-}" ] && [ -t 0 ]; then
  echo "--- the desktop app opens as hanako (its log: $LOGS/app.log) ---"
  env "${APP_ENV[@]}" "$BIN/nexmile" "$ACTIVATE" 2>"$LOGS/app.log" &
  echo "Server, partner demo and app keep running; Ctrl-C to stop."
  wait $SERVER
else
  SCREENS=var/screens; mkdir -p "$SCREENS"
  echo "--- no display: the desktop app under Xvfb; screenshots in $SCREENS/ ---"
  xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- bash -c '
    env "$@" "'"$BIN"'/nexmile" "'"$ACTIVATE"'" 2>"'"$LOGS"'/app.log" &
    APP=$!
    sleep 8; import -window root "'"$SCREENS"'/app-home.png"
    env "$@" "'"$BIN"'/nexmile" "'"$DOWNLOAD_LINK"'" 2>/dev/null
    sleep 4; import -window root "'"$SCREENS"'/app-effects-downloaded.png"
    env "$@" "'"$BIN"'/nexmile" "'"$TEST_LINK"'" 2>/dev/null
    sleep 8; import -window root "'"$SCREENS"'/app-video-test.png"
    kill $APP' _ "${APP_ENV[@]}"
  grep -v '"quality"' "$LOGS/app.log" | grep '^{' || true
  ls "$SCREENS"
  if [ -t 0 ]; then
    echo "Server and partner demo keep running; Ctrl-C to stop."
    wait $SERVER
  fi
fi

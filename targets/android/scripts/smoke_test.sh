#!/usr/bin/env bash
# Installs the debug APK on the running emulator, starts the app (which loads the model at
# start) and fails if the process died or logged a crash.
set -euo pipefail
package="{{application_id}}"
adb install -r app/build/outputs/apk/debug/app-debug.apk
adb logcat -c
adb shell am start -W -n "$package/org.itsmobile.app.MainActivity"
sleep 10
adb shell pidof "$package" >/dev/null || { adb logcat -d | tail -n 200; echo "app is not running"; exit 1; }
if adb logcat -d | grep -q "FATAL EXCEPTION"; then
    adb logcat -d | tail -n 200
    exit 1
fi
echo "smoke test passed"
